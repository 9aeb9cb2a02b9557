"""What the workspace's forms and API calls do: case actions, the sources page, replaying failures, the summary of a day."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from complaint_triage.cases import CASE_STATUSES
from complaint_triage.errors import CaseError
from complaint_triage.settings import Settings, SourceSettings
from complaint_triage.store import Store
from complaint_triage.store.case_links import set_status
from complaint_triage.store.case_work import add_note, assign, failed_mail
from complaint_triage.store.checkpoints import Checkpoints, SourceStatus
from complaint_triage.store.users import User, get_user


def apply(store: Store, user: User, key: str, action: str, fields: dict[str, str]) -> str | None:
    """Do ACTION (status, note or assign) on the case KEY as USER; returns what was wrong, or None when it was done."""
    try:
        if action == "status":
            if fields.get("status") not in CASE_STATUSES:
                return f"status must be one of {', '.join(CASE_STATUSES)}"
            set_status(store, key, fields["status"], fields.get("note") or None, actor=user.username)
        elif action == "note":
            add_note(store, key, fields.get("note", ""), user.username)
        elif action == "assign":
            return _assign(store, user, key, fields.get("assignee") or None)
        else:
            return f"unknown action {action!r}: use status, note or assign"
    except CaseError as exc:
        return str(exc)
    return None


def _assign(store: Store, user: User, key: str, assignee: str | None) -> str | None:
    from complaint_triage.store.case_links import load_cases_by_key

    if assignee is not None:
        person = get_user(store, assignee)
        case = next(iter(load_cases_by_key(store, [key])), None)
        if person is None or case is None or not person.may_see(case.source_name):
            return f"{assignee!r} is not a user who may see this case"
    assign(store, key, assignee, user.username)
    return None


@dataclass
class SourceView:
    """One source on the sources page."""

    name: str
    type: str
    where: str
    sign_in: str
    status: SourceStatus


def _sign_in(source: SourceSettings) -> str:
    """How the source signs in and whether its secret is there (never the secret itself)."""
    if source.type != "imap":
        return "files: no sign-in"
    if source.oauth2_token_command:
        return "OAuth2 token command"
    if source.password_env:
        return f"password from ${source.password_env}: {'set' if os.environ.get(source.password_env) else 'NOT SET'}"
    if source.password_file:
        return f"password file {source.password_file}: {'present' if Path(source.password_file).is_file() else 'MISSING'}"
    return "none"


def source_views(store: Store, settings: Settings, user: User) -> tuple[list[SourceView], list[dict]]:
    """The configured sources the user may see with their poll status, and their stored failures."""
    statuses = Checkpoints(store).statuses()
    views = []
    for source in settings.sources:
        if user.may_see(source.name):
            where = (
                f"{source.host}:{source.port} {', '.join(source.all_folders)}"
                if source.type == "imap"
                else str(source.path)
            )
            views.append(
                SourceView(
                    source.name,
                    source.type,
                    where,
                    _sign_in(source),
                    statuses.get(source.name, SourceStatus(source.name)),
                )
            )
    failures = [row for row in failed_mail(store) if user.may_see(row["source_name"])]
    return views, failures


def replay_failures(store: Store, settings: Settings):
    """Triage every stored failure again from its kept bytes; returns the ingest summary."""
    from complaint_triage.ingest import ingest
    from complaint_triage.pipeline.triage import default_triager

    messages = list(store.raw_messages(failed_only=True))
    return ingest(
        messages,
        default_triager(settings.schedule.timezone),
        store,
        batch_seconds=settings.store.commit_seconds,
    )


def summary_html(store: Store, settings: Settings, user: User, wanted: str | None) -> str | None:
    """The HTML summary of the day WANTED (YYYY-MM-DD, 'today', 'latest'; default yesterday) over the user's accounts; None for a bad date."""
    from complaint_triage.report import render
    from complaint_triage.report.summary import build_summary, latest_day, summary_rows
    from complaint_triage.store.case_links import load_cases
    from complaint_triage.web.views import today_in

    zone = settings.schedule.timezone
    rows = [row for row in summary_rows(store.rows()) if user.may_see(row["record"].source_name)]
    today = today_in(zone)
    if wanted in (None, "", "yesterday"):
        day = today - timedelta(days=1)
    elif wanted == "today":
        day = today
    elif wanted == "latest":
        day = latest_day(rows, zone) or today
    else:
        try:
            day = date.fromisoformat(wanted)
        except ValueError:
            return None
    cases = [
        c
        for c in load_cases(store, {row["record"].message_id: row["record"] for row in rows})
        if user.may_see(c.source_name)
    ]
    return render(build_summary(rows, day, zone, cases, settings.escalations), "html")
