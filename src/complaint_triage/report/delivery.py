"""The morning summary delivered: by e-mail over the alert SMTP settings, and its short version to the chat channels.

A failed channel is logged and does not stop the others; nothing here raises.
"""

from __future__ import annotations

import logging

from complaint_triage.alerts import post_json, secret_from, send_email
from complaint_triage.errors import TriageError
from complaint_triage.report.outbound import email_message, slack_payload, teams_payload
from complaint_triage.report.summary import DailySummary
from complaint_triage.settings import Settings

log = logging.getLogger("complaint_triage.report.delivery")


def deliver_summary(summary: DailySummary, settings: Settings) -> dict[str, str | None]:
    """Send the summary everywhere [reports] says; returns each channel's error (None: delivered)."""
    outcome: dict[str, str | None] = {}
    reports = settings.reports
    if reports.email_to:
        outcome["email"] = _attempt(lambda: _email(summary, settings))
    for number, chat in enumerate(reports.chat):
        name = f"{chat.type}:{number}"
        payload = (slack_payload if chat.type == "slack" else teams_payload)(summary, reports.workspace_url)
        outcome[name] = _attempt(
            lambda chat=chat, payload=payload: post_json(
                secret_from(chat.url_env, chat.url_file, f"reports.chat {chat.type}"),
                payload,
                chat.ca_file,
                chat.timeout_seconds,
                f"reports.chat {chat.type}",
            )
        )
    for name, error in outcome.items():
        if error:
            log.error("daily summary not delivered to %s: %s", name, error)
        else:
            log.info("daily summary of %s delivered to %s", summary.day, name)
    return outcome


def _email(summary: DailySummary, settings: Settings) -> None:
    smtp = settings.alerts.email
    if smtp is None:
        raise TriageError("reports.email_to needs the SMTP settings of [alerts.email]")
    send_email(smtp, email_message(summary, smtp.sender, settings.reports.email_to), "reports.email_to")


def _attempt(action) -> str | None:
    try:
        action()
    except TriageError as exc:
        return str(exc).splitlines()[0]
    return None
