"""The case commands, `case` and `cases`: thin shells over complaint_triage.store.case_links."""

from __future__ import annotations

import json
import sys
from datetime import date
from typing import TYPE_CHECKING

import click

from complaint_triage.cli.common import UsageProblem, config_option, open_store, settings_for

if TYPE_CHECKING:  # the store (SQLAlchemy), the case models (pydantic) and rich load inside the commands
    from rich.console import Console

    from complaint_triage.cases import Case
    from complaint_triage.store import Store


class _StatusChoice(click.Choice):
    """The case statuses (plus `extra` words), read from complaint_triage.cases only when an option is parsed or shown."""

    def __init__(self, *extra: str):
        self._extra = extra
        super().__init__((), case_sensitive=True)

    @property
    def choices(self) -> tuple[str, ...]:
        from complaint_triage.cases import CASE_STATUSES

        return (*self._extra, *CASE_STATUSES)

    @choices.setter
    def choices(self, _value) -> None:
        pass  # click.Choice assigns its list; ours is computed


_format_option = click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)


def _all_cases(store: Store) -> list[Case]:
    return store.cases()


def _console() -> Console:
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


@click.command()
@click.argument("ident")
@click.option("--status", type=_StatusChoice(), help="Set the case's status.")
@click.option("--note", help="A note kept with the status change (what was done, by whom).")
@click.option(
    "--only", is_flag=True, help="Change only this case, not the other cases raised by the same mail."
)
@_format_option
@config_option
def case(
    ident: str, status: str | None, note: str | None, only: bool, output_format: str, config: str | None
) -> None:
    """Show one case (by complaint ID, case key or ASIN) with its history; --status changes it (and the cases raised by the same mail)."""
    if note and not status:
        raise UsageProblem("--note goes with --status")
    store = open_store(settings_for(config))
    if status:
        changed = store.set_case_status(ident, status, note, with_siblings=not only)
        key = changed[0]
        click.echo(f"{', '.join(changed)}: {status}", err=True)
    else:
        key = store.resolve_case(ident)
    found = next(iter(store.cases_by_key([key])), None)  # only this case's records are read
    store.close()
    if found is None:
        raise UsageProblem(f"case {key} has no stored messages")
    if output_format == "json":
        sys.stdout.write(found.model_dump_json(indent=2) + "\n")
        return
    _print_case(found, _console(), _today(config))


def _today(config: str | None) -> date:
    from complaint_triage.report import today_in

    return today_in(settings_for(config).schedule.timezone)


def _due(found: Case, today: date) -> str:
    from complaint_triage.report.outbound import relative_due

    return (
        f"{found.response_due} ({relative_due(found.response_due, today)})"
        if found.response_due and found.is_open
        else str(found.response_due or "")
    )


def _print_case(found: Case, console: Console, today: date) -> None:
    from rich.markup import escape

    console.print(
        f"[bold]{escape(found.key)}[/bold]  status: [bold]{found.status}[/bold]  urgency: {found.urgency}  kind: {found.kind}",
        markup=True,
        soft_wrap=True,
    )
    facts = [("Subject", found.subject), ("From", found.sender), ("Account", found.source_name or "")]
    facts += [
        (name, _due(found, today) if name == "Respond by" else value) for name, value in found.key_facts()
    ]
    facts += [("Messages", str(len(found.message_ids)))]
    for name, value in facts:
        if value:
            console.print(f"  {name}: {value}", markup=False, soft_wrap=True)
    for title, lines in (
        ("Checks", [f"[{c.severity}] {c.code}: {c.message}" for c in found.checks]),
        ("Next steps", [f"{n}. {step}" for n, step in enumerate(found.next_steps, 1)]),
        ("Links", found.links),
    ):
        if lines:
            console.print(f"{title}:", markup=False)
            for line in lines:
                console.print(
                    f"  {line}", markup=False, soft_wrap=True
                )  # soft wrap: a URL or key is never cut
    console.print("History:", markup=False)
    for event in found.history:
        console.print(
            f"  {event.at.isoformat(timespec='seconds')}  {event.status:<18} {event.actor:<4}  {event.note or ''}",
            markup=False,
        )


@click.command()
@click.option(
    "--status",
    "wanted",
    type=_StatusChoice("open", "all"),
    default="open",
    show_default=True,
    help="Which cases: open (new or acknowledged), all, or one status.",
)
@_format_option
@config_option
def cases(wanted: str, output_format: str, config: str | None) -> None:
    """List cases, most urgent and soonest due first."""
    from rich.table import Table

    from complaint_triage.cases import OPEN_STATUSES
    from complaint_triage.records import URGENCIES

    store = open_store(settings_for(config))
    found = [
        c
        for c in _all_cases(store)
        if wanted == "all" or c.status == wanted or (wanted == "open" and c.status in OPEN_STATUSES)
    ]
    store.close()
    found.sort(key=lambda c: (not c.needs_review, URGENCIES.index(c.urgency), str(c.response_due or "9999")))
    if output_format == "json":  # one JSON document, a list of cases
        sys.stdout.write(
            json.dumps(
                [entry.model_dump(mode="json", exclude={"history"}) for entry in found],
                indent=2,
                ensure_ascii=False,
            )
            + "\n"
        )
        return
    today = _today(config)
    table = Table(title=f"Cases ({wanted})")
    table.add_column("case", overflow="fold", min_width=22)  # folded, never cut: the key is what `case` takes
    for column in ("account", "status", "urgency", "kind", "respond by", "next step", "subject"):
        table.add_column(column, overflow="fold")
    for entry in found:
        table.add_row(
            entry.key,
            entry.source_name or "-",
            entry.status,
            entry.urgency + (" REVIEW" if entry.needs_review else ""),
            entry.kind,
            _due(entry, today) or "-",
            entry.next_steps[0] if entry.next_steps else "-",
            entry.subject[:60],
        )
    _console().print(table)


@click.command("alerts")
@click.option(
    "--send", is_flag=True, help="Send the pending alerts now (the service does this after every poll)."
)
@_format_option
@config_option
def alerts_command(send: bool, output_format: str, config: str | None) -> None:
    """Show the alert log and the cases waiting to be announced; --send announces them."""
    from rich.table import Table

    from complaint_triage import alerts

    settings = settings_for(config)
    if not settings.alerts.enabled:
        raise UsageProblem(
            "no alert channel configured: add [alerts.email] or [alerts.webhook] to the config"
        )
    store = open_store(settings)
    names = [channel.name for channel in alerts.channels_for(settings.alerts)]
    if send:
        from complaint_triage import health
        from complaint_triage.service import source_statuses

        result = alerts.dispatch(store, settings.alerts)
        sources = health.dispatch_source_alerts(store, settings, source_statuses(settings, store))
        click.echo(
            f"{len(result.sent) + len(sources.sent)} sent, {len(result.failed) + len(sources.failed)} not delivered",
            err=True,
        )
    waiting = alerts.pending(store, settings.alerts, names)
    entries = alerts.alert_log(store)
    store.close()
    if output_format == "json":
        sys.stdout.write(
            json.dumps({"pending": [c.key for c in waiting], "log": entries}, default=str, ensure_ascii=False)
            + "\n"
        )
        return
    console = _console()
    console.print(f"Pending: {', '.join(c.key for c in waiting) or 'none'}", markup=False)
    table = Table(title="Alerts")
    for column in ("case", "channel", "state", "attempts", "last attempt", "last error"):
        table.add_column(column)
    for entry in entries:
        table.add_row(
            entry["case_key"],
            entry["channel"],
            entry["state"],
            str(entry["attempts"]),
            str(entry["last_attempt_at"])[:19],
            entry["last_error"] or "-",
        )
    console.print(table)


def register(group: click.Group) -> None:
    """Add `case`, `cases` and `alerts` to the command group."""
    group.add_command(case)
    group.add_command(cases)
    group.add_command(alerts_command)
