"""The service commands, `run` and `status`: thin shells over complaint_triage.service."""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import asdict
from datetime import datetime
from typing import TYPE_CHECKING

import click

from complaint_triage.cli.common import config_option, freeze_startup_heap, open_store, settings_for

if TYPE_CHECKING:  # the service, the store and rich load inside the commands
    from complaint_triage.service import PollOutcome

log = logging.getLogger("complaint_triage.service")




@click.command()
@click.option("--once", is_flag=True, help="Poll every source once, then exit (no schedule, no daily summary).")
@config_option
def run(once: bool, config: str | None) -> None:
    """Run the service: poll every source on its schedule, write the daily summary; SIGTERM/SIGINT stop it cleanly."""
    from complaint_triage.service import Service, install_signal_handlers

    settings = settings_for(config)
    service = Service(settings, store=open_store(settings, announce_now=not once))
    freeze_startup_heap()
    install_signal_handlers(service.stop)
    if not once:
        service.run()
        return
    try:
        outcomes = service.poll_all()
    finally:
        service.close()
    _report_outcomes(outcomes)


def _report_outcomes(outcomes: list[PollOutcome]) -> None:
    """One log line per source (text or JSON, as configured); exit 1 when a source failed or a message could not be triaged."""
    for outcome in outcomes:
        summary = outcome.summary
        state = f"error: {outcome.error}" if outcome.error else "skipped: another worker holds its lease" if outcome.skipped else "ok"
        log.info("%s: %d triaged, %d failed; %s", outcome.source_name, summary.triaged, summary.failed, state, extra={"source": outcome.source_name, "count": summary.triaged})
    if any(outcome.error or outcome.summary.failed for outcome in outcomes):
        sys.exit(1)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


@click.command()
@click.option("--format", "output_format", type=click.Choice(["table", "json"]), default="table", show_default=True, help="Output format.")
@config_option
def status(output_format: str, config: str | None) -> None:
    """Show each source's last poll, last success, last error, messages triaged and backlog."""
    from rich.console import Console
    from rich.table import Table

    from complaint_triage.service import source_statuses

    settings = settings_for(config)
    store = open_store(settings)
    statuses = source_statuses(settings, store)
    store.close()
    if output_format == "json":
        for entry in statuses:
            sys.stdout.write(json.dumps(asdict(entry), default=_when) + "\n")
        return
    table = Table(title="Sources")
    for column in ("source", "last poll", "last success", "last error", "triaged", "backlog"):
        table.add_column(column)
    for entry in statuses:
        error = f"{_when(entry.last_error_at)}: {entry.last_error}" if entry.last_error else "-"
        table.add_row(entry.source_name, _when(entry.last_poll_at), _when(entry.last_success_at), error, str(entry.messages_triaged), str(entry.backlog))
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def register(group: click.Group) -> None:
    """Add `run` and `status` to the command group."""
    group.add_command(run)
    group.add_command(status)
