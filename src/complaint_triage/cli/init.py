"""`complaint-triage init [DIR]`: a commented starting configuration."""

from __future__ import annotations

from pathlib import Path

import click

from complaint_triage.resources import config_dir

CONFIG_NAME = "complaint-triage.toml"


def write_starter_config(directory: Path) -> Path:
    """Write DIR/complaint-triage.toml from the shipped starter; never over an existing file."""
    target = directory / CONFIG_NAME
    if target.exists():
        raise click.ClickException(f"{target} exists already; not overwritten")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        target.write_text(
            (config_dir() / "complaint-triage.starter.toml").read_text(encoding="utf-8"), encoding="utf-8"
        )
    except OSError as exc:
        raise click.ClickException(f"cannot write {target}: {exc.strerror or exc}") from None
    return target


def register(cli: click.Group) -> None:
    """Add the init command to the command group."""

    @cli.command()
    @click.argument("directory", default=".", type=click.Path(file_okay=False))
    def init(directory: str) -> None:
        """Write a commented starting configuration into DIRECTORY (default: here)."""
        target = write_starter_config(Path(directory))
        click.echo(
            f"configuration written to {target}; edit it, then: complaint-triage run --config {target}"
        )
