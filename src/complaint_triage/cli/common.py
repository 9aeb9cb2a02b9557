"""What every command shares: the --config option, and configuration problems as usage errors (one line, exit 2)."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import click

from complaint_triage.errors import ConfigError

if TYPE_CHECKING:
    from complaint_triage.settings import Settings

EXIT_USAGE = 2

config_option = click.option("--config", "config", type=click.Path(dir_okay=False), help="Configuration file (TOML). Default: $COMPLAINT_TRIAGE_CONFIG, ./config/complaint-triage.toml, or the shipped defaults.")


class UsageProblem(click.ClickException):
    """A usage error: one line on stderr, exit 2."""

    exit_code = EXIT_USAGE


def settings_for(config: str | None) -> Settings:
    """The configuration, or a usage error naming what is wrong with it."""
    from complaint_triage.settings import (
        load_settings,  # pydantic loads only for commands that read the config
    )

    try:
        return load_settings(config)
    except ConfigError as exc:
        raise UsageProblem(str(exc)) from None


def freeze_startup_heap() -> None:
    """Keep what start-up built (the spaCy pipeline, SQLAlchemy, the settings) out of the garbage collector's walks.

    Those objects live as long as the process; left in the collector's oldest generation, every
    full collection walks all of them again: 16 of the 130 us per message of IMAP ingestion without
    triage, and more with the pipeline loaded. Frozen before forking, they also stay shared with
    `--workers` processes instead of being copied when a collection touches them.
    """
    gc.collect()
    gc.freeze()
