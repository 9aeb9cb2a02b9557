"""What every command shares: the --config option, and configuration problems as usage errors (one line, exit 2)."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING

import click

from complaint_triage.errors import ConfigError

if TYPE_CHECKING:
    from complaint_triage.settings import Settings

EXIT_USAGE = 2

config_option = click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    help="Configuration file (TOML). Default: $COMPLAINT_TRIAGE_CONFIG, ./config/complaint-triage.toml, or the shipped defaults.",
)


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


_opened_stores: list[str] = []


def open_store(settings: Settings, announce_now: bool = False):
    """The configured store, opened (and migrated).

    Which store it was is said on stderr, without its password: as the command's last line, or
    inside its one-line error (see `opened_stores`); a long-running command says it at once.
    """
    from complaint_triage.store import Store, redact_url

    shown = redact_url(settings.store.url)
    if announce_now:
        logging.getLogger("complaint_triage").info("store: %s", shown)
    else:
        _opened_stores.append(shown)
    return Store(settings.store.url)


def opened_stores() -> list[str]:
    """The stores this command opened and has not yet named on stderr (taken: each is named once)."""
    named, _opened_stores[:] = list(dict.fromkeys(_opened_stores)), []
    return named


def freeze_startup_heap() -> None:
    """Keep what start-up built (the spaCy pipeline, SQLAlchemy, the settings) out of the garbage collector's walks.

    Those objects live as long as the process; left in the collector's oldest generation, every
    full collection walks all of them again: 16 of the 130 us per message of IMAP ingestion without
    triage, and more with the pipeline loaded. Frozen before forking, they also stay shared with
    `--workers` processes instead of being copied when a collection touches them.
    """
    gc.collect()
    gc.freeze()
