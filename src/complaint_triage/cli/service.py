"""The service commands, `run` and `status`: thin shells over complaint_triage.service."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime
from typing import TYPE_CHECKING

import click

from complaint_triage.cli.common import (
    UsageProblem,
    config_option,
    freeze_startup_heap,
    open_store,
    settings_for,
)

if TYPE_CHECKING:  # the service, the store and rich load inside the commands
    from complaint_triage.service import PollOutcome

log = logging.getLogger("complaint_triage.service")


@click.command()
@click.option(
    "--once", is_flag=True, help="Poll every source once, then exit (no schedule, no daily summary)."
)
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
        if service.settings.alerts.enabled:  # what is due now goes out before the process ends
            service.send_alerts()
    finally:
        service.close()
    _report_outcomes(outcomes)


def _report_outcomes(outcomes: list[PollOutcome]) -> None:
    """One log line per source (text or JSON, as configured); exit 1 when a source failed or a message could not be triaged."""
    for outcome in outcomes:
        summary = outcome.summary
        state = (
            f"error: {outcome.error}"
            if outcome.error
            else "skipped: another worker holds its lease"
            if outcome.skipped
            else "ok"
        )
        log.info(
            "%s: %d triaged, %d failed; %s",
            outcome.source_name,
            summary.triaged,
            summary.failed,
            state,
            extra={"source": outcome.source_name, "count": summary.triaged},
        )
    if any(outcome.error or outcome.summary.failed for outcome in outcomes):
        sys.exit(1)


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never"


@click.command()
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="Output format.",
)
@config_option
def status(output_format: str, config: str | None) -> None:
    """Show each source's state, credentials, token expiry, last poll and error; exit 1 when any source is failing."""
    from complaint_triage import health
    from complaint_triage.service import source_statuses

    settings = settings_for(config)
    store = open_store(settings)
    judged = health.assess_all(settings, source_statuses(settings, store))
    store.close()
    failing = [entry.status.source_name for entry in judged if entry.failing]
    if output_format == "json":
        document = {"ok": not failing, "failing": failing, "sources": [entry.as_json() for entry in judged]}
        sys.stdout.write(json.dumps(document, ensure_ascii=False) + "\n")
    else:
        _status_table(judged)
    if failing:
        sys.exit(1)


def _status_table(judged: list) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Sources")
    for column in (
        "source",
        "state",
        "auth",
        "token expires",
        "last poll",
        "last success",
        "last error",
        "triaged",
        "backlog",
    ):
        table.add_column(column)
    for entry in judged:
        s = entry.status
        error = f"{_when(s.last_error_at)}: {s.last_error}" if s.last_error and entry.failing else "-"
        expiry = _when(s.token_expires_at) if s.token_expires_at else "-"
        table.add_row(
            s.source_name,
            entry.state,
            entry.auth,
            expiry,
            _when(s.last_poll_at),
            _when(s.last_success_at),
            error,
            str(s.messages_triaged),
            str(s.backlog),
        )
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@click.command()
@click.argument("source_name", metavar="SOURCE")
@config_option
def auth(source_name: str, config: str | None) -> None:
    """Get SOURCE's OAuth2 token now: Google's consent flow for a token_file (a local redirect), else a token by the app's credentials."""
    from complaint_triage.errors import TriageError
    from complaint_triage.sources.oauth import authorize

    settings = settings_for(config)
    source = next((entry for entry in settings.sources if entry.name == source_name), None)
    if source is None:
        raise UsageProblem(
            f"no source named {source_name!r} in the config (sources: {', '.join(s.name for s in settings.sources) or 'none'})"
        )
    try:
        click.echo(authorize(source), err=True)
    except TriageError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


def register(group: click.Group) -> None:
    """Add `run`, `status` and `auth` to the command group."""
    group.add_command(run)
    group.add_command(status)
    group.add_command(auth)
