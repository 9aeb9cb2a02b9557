"""The case commands, `case` and `cases`: thin shells over complaint_triage.store.case_links."""

from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.table import Table

from complaint_triage.store.case_links import load_cases, load_cases_by_key, resolve_case_key, set_status
from complaint_triage.cases import CASE_STATUSES, OPEN_STATUSES, Case
from complaint_triage.cli.common import UsageProblem, config_option, settings_for
from complaint_triage.store import Store

_format_option = click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format.")




def _all_cases(store: Store) -> list[Case]:
    return load_cases(store.engine, {record.message_id: record for record in store.records()})


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@click.command()
@click.argument("ident")
@click.option("--status", type=click.Choice(CASE_STATUSES), help="Set the case's status.")
@click.option("--note", help="A note kept with the status change (what was done, by whom).")
@click.option("--only", is_flag=True, help="Change only this case, not the other cases raised by the same mail.")
@_format_option
@config_option
def case(ident: str, status: str | None, note: str | None, only: bool, output_format: str, config: str | None) -> None:
    """Show one case (by complaint ID, case key or ASIN) with its history; --status changes it (and the cases raised by the same mail)."""
    if note and not status:
        raise UsageProblem("--note goes with --status")
    store = Store(settings_for(config).store.url)
    if status:
        changed = set_status(store.engine, ident, status, note, with_siblings=not only)
        key = changed[0]
        click.echo(f"{', '.join(changed)}: {status}", err=True)
    else:
        key = resolve_case_key(store.engine, ident)
    found = next(iter(load_cases_by_key(store.engine, [key])), None)  # only this case's records are read
    store.close()
    if found is None:
        raise UsageProblem(f"case {key} has no stored messages")
    if output_format == "json":
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
        return
    _print_case(found, _console())


def _print_case(found: Case, console: Console) -> None:
    console.print(f"[bold]{found.key}[/bold]  status: [bold]{found.status}[/bold]  urgency: {found.urgency}  kind: {found.kind}", markup=True)
    facts = [("Subject", found.subject), ("From", found.sender), ("ASINs", ", ".join(found.asins)), ("Marks", ", ".join(found.trademarks)),
             ("Complaint IDs", ", ".join(found.complaint_ids)), ("Rights owner", ", ".join(found.rights_owner_emails) or (found.rights_owner or "")),
             ("Marketplace", found.marketplace or ""), ("Respond by", str(found.response_due or "")), ("Messages", str(len(found.message_ids)))]
    for name, value in facts:
        if value:
            console.print(f"  {name}: {value}", markup=False)
    console.print("History:", markup=False)
    for event in found.history:
        console.print(f"  {event.at.isoformat(timespec='seconds')}  {event.status:<18} {event.actor:<4}  {event.note or ''}", markup=False)


@click.command()
@click.option("--status", "wanted", type=click.Choice(["open", "all", *CASE_STATUSES]), default="open", show_default=True, help="Which cases: open (new or acknowledged), all, or one status.")
@_format_option
@config_option
def cases(wanted: str, output_format: str, config: str | None) -> None:
    """List cases, most urgent and soonest due first."""
    store = Store(settings_for(config).store.url)
    found = [c for c in _all_cases(store) if wanted == "all" or c.status == wanted or (wanted == "open" and c.status in OPEN_STATUSES)]
    store.close()
    found.sort(key=lambda c: (not c.needs_review, ("critical", "high", "medium", "low").index(c.urgency), str(c.response_due or "9999")))
    if output_format == "json":
        for entry in found:
            sys.stdout.write(json.dumps(entry.model_dump(mode="json", exclude={"history"}), ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Cases ({wanted})")
    for column in ("case", "status", "urgency", "kind", "respond by", "ASINs", "subject"):
        table.add_column(column)
    for entry in found:
        table.add_row(entry.key, entry.status, entry.urgency + (" REVIEW" if entry.needs_review else ""), entry.kind, str(entry.response_due or "-"), " ".join(entry.asins) or "-", entry.subject[:60])
    _console().print(table)


@click.command("alerts")
@click.option("--send", is_flag=True, help="Send the pending alerts now (the service does this after every poll).")
@_format_option
@config_option
def alerts_command(send: bool, output_format: str, config: str | None) -> None:
    """Show the alert log and the cases waiting to be announced; --send announces them."""
    from complaint_triage import alerts

    settings = settings_for(config)
    if not settings.alerts.enabled:
        raise UsageProblem("no alert channel configured: add [alerts.email] or [alerts.webhook] to the config")
    store = Store(settings.store.url)
    names = [channel.name for channel in alerts.channels_for(settings.alerts)]
    if send:
        result = alerts.dispatch(store.engine, settings.alerts)
        click.echo(f"{len(result.sent)} sent, {len(result.failed)} not delivered", err=True)
    waiting = alerts.pending(store.engine, settings.alerts, names)
    entries = alerts.alert_log(store.engine)
    store.close()
    if output_format == "json":
        sys.stdout.write(json.dumps({"pending": [c.key for c in waiting], "log": entries}, default=str, ensure_ascii=False) + "\n")
        return
    console = _console()
    console.print(f"Pending: {', '.join(c.key for c in waiting) or 'none'}", markup=False)
    table = Table(title="Alerts")
    for column in ("case", "channel", "state", "attempts", "last attempt", "last error"):
        table.add_column(column)
    for entry in entries:
        table.add_row(entry["case_key"], entry["channel"], entry["state"], str(entry["attempts"]), str(entry["last_attempt_at"])[:19], entry["last_error"] or "-")
    console.print(table)


def register(group: click.Group) -> None:
    """Add `case`, `cases` and `alerts` to the command group."""
    group.add_command(case)
    group.add_command(cases)
    group.add_command(alerts_command)
