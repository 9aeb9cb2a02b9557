"""Alerts: one notification per new critical (optionally high) case, by email and/or a JSON webhook.

Each (case, channel) pair is recorded in the `alerts` table, so a case is announced once and
re-processing never announces it again. A failed delivery is retried a few times within a run,
recorded with its reason, and tried again on later runs up to a limit. Dispatch runs after
records are committed, in its own job, so a slow or broken channel never holds up triage.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from typing import TYPE_CHECKING, Protocol

from tenacity import Retrying, stop_after_attempt, wait_exponential

from complaint_triage.cases import Case, bundle
from complaint_triage.clock import as_utc, utc_now
from complaint_triage.credentials import read_secret, tls_context
from complaint_triage.errors import AlertError
from complaint_triage.logs import scrub
from complaint_triage.settings import AlertSettings, EmailAlertSettings, WebhookAlertSettings, parse_duration

if TYPE_CHECKING:
    from complaint_triage.store import Store

log = logging.getLogger("complaint_triage.alerts")


@dataclass(frozen=True)
class Alert:
    """What one notification says: a case (and the cases the same mail raised)."""

    case_keys: list[str]
    urgency: str
    title: str
    text: str
    facts: dict


class Channel(Protocol):
    """A way to deliver an alert."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver the alert or raise AlertError."""


def compose(case: Case) -> Alert:
    """The alert for a case: a one-line title and the key facts, the checks and the next steps as plain text."""
    keys = [case.key, *case.also]
    due = case.response_due.isoformat() if case.response_due else "no date stated"
    title = f"[{case.urgency.upper()}] {case.kind.replace('_', ' ')}: {', '.join(case.asins[:5]) or case.subject[:80]} (respond by {due})"
    lines = [title, "", f"Subject: {case.subject}", f"From: {case.sender}", f"Case: {', '.join(keys)}"]
    lines += [f"{name}: {value}" for name, value in case.key_facts()]
    lines += [f"Check ({check.severity}): {check.message}" for check in case.checks]
    lines += ["", "Next steps:"] + [f"{n}. {step}" for n, step in enumerate(case.next_steps, 1)]
    data = {
        "case_keys": keys,
        "urgency": case.urgency,
        "kind": case.kind,
        "subject": case.subject,
        "from": case.sender,
        "asins": case.asins,
        "complaint_ids": case.complaint_ids,
        "marketplace": case.marketplace,
        "response_due": case.response_due.isoformat() if case.response_due else None,
        "next_steps": case.next_steps,
    }
    return Alert(case_keys=keys, urgency=case.urgency, title=title, text="\n".join(lines), facts=data)


def secret_from(env_name: str | None, file_name: str | None, what: str) -> str | None:
    """A secret (a password, a webhook URL) from the environment variable or file the config names."""
    return read_secret(env_name, file_name, what, AlertError)


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return tls_context(ca_file, "alerts", AlertError)


class EmailChannel:
    """Alerts as plain-text email over SMTP (STARTTLS by default, certificate verified)."""

    name = "email"

    def __init__(self, settings: EmailAlertSettings):
        self.settings = settings

    def send(self, alert: Alert) -> None:
        """Send the alert to every configured recipient."""
        s = self.settings
        message = EmailMessage()
        message["Subject"], message["From"], message["To"] = alert.title, s.sender, ", ".join(s.to)
        message["X-Complaint-Triage-Case"] = ", ".join(alert.case_keys)
        message.set_content(alert.text)
        send_email(s, message, "alerts.email")


def send_email(s: EmailAlertSettings, message: EmailMessage, what: str) -> None:
    """Send MESSAGE over the SMTP settings S (TLS verified unless security is "none" to loopback); failures are one-line AlertErrors naming WHAT."""
    password = secret_from(s.password_env, s.password_file, "alerts.email")
    try:
        with _connect(s) as smtp:
            if s.username and password:
                smtp.login(s.username, password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        raise AlertError(f"{what}: {s.host}:{s.port}: {type(exc).__name__}: {exc}".splitlines()[0]) from None


def _connect(s: EmailAlertSettings) -> smtplib.SMTP:
    if s.security == "ssl":
        return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_seconds, context=_tls_context(s.ca_file))
    smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_seconds)
    if s.security == "starttls":
        smtp.starttls(context=_tls_context(s.ca_file))
    return smtp


class WebhookChannel:
    """Alerts as a JSON POST whose `text` a Slack-compatible endpoint shows; the other keys carry the facts."""

    name = "webhook"

    def __init__(self, settings: WebhookAlertSettings):
        self.settings = settings

    def send(self, alert: Alert) -> None:
        """POST the alert; anything but a 2xx answer is a failure."""
        url = secret_from(self.settings.url_env, self.settings.url_file, "alerts.webhook")
        payload = {"text": _slack_escape(alert.text), **alert.facts}
        post_json(url, payload, self.settings.ca_file, self.settings.timeout_seconds, "alerts.webhook")


def post_json(url: str, payload: dict, ca_file: str | None, timeout: float, what: str) -> None:
    """POST PAYLOAD as JSON; anything but a 2xx answer is an AlertError naming WHAT (never the URL, which carries a token)."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "complaint-triage"},
    )
    context = _tls_context(ca_file) if url.lower().startswith("https:") else None
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        raise AlertError(f"{what}: HTTP {exc.code}") from None
    except (
        urllib.error.URLError,
        OSError,
        ValueError,
    ) as exc:  # the URL (with its token) stays out of the message
        raise AlertError(f"{what}: {type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
    if not 200 <= status < 300:
        raise AlertError(f"{what}: HTTP {status}")


def _slack_escape(text: str) -> str:
    """Slack reads &, < and > as markup; message text must not make links or mentions."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def channels_for(settings: AlertSettings) -> list[Channel]:
    """The channels the config sets up."""
    found: list[Channel] = []
    if settings.email is not None:
        found.append(EmailChannel(settings.email))
    if settings.webhook is not None:
        found.append(WebhookChannel(settings.webhook))
    return found


@dataclass
class DispatchReport:
    """What one run of dispatch did."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def pending(
    store: Store, settings: AlertSettings, channel_names: list[str], now: datetime | None = None
) -> list[Case]:
    """New cases at an alerting urgency, recent enough, that some channel has not announced yet (bundled by mail)."""
    now = now or utc_now()
    oldest = now - parse_duration(settings.max_age)
    candidates = store.alert_log.new_case_keys(oldest)  # a backfill of old mail stays quiet
    done = store.alert_log.outcomes(candidates)
    finished = {
        key for key, row in done.items() if row["state"] == "sent" or row["attempts"] >= settings.max_attempts
    }
    wanted = [
        case
        for case in store.cases_by_key(candidates)
        if alerting(case, settings.urgencies)
        and _recent(case, oldest)
        and any((case.key, name) not in finished for name in channel_names)
    ]
    return bundle(wanted)


def alerting(case: Case, urgencies: list[str]) -> bool:
    """At an alerting urgency; a case that needs review alerts like a high one."""
    return case.urgency in urgencies or (case.needs_review and "high" in urgencies)


def _recent(case: Case, oldest: datetime) -> bool:
    moment = case.last_received_at or case.opened_at
    moment = as_utc(moment)
    return moment >= oldest


def dispatch(
    store: Store, settings: AlertSettings, channels: list[Channel] | None = None, now: datetime | None = None
) -> DispatchReport:
    """Announce every pending case on every channel that has not yet; record each outcome. Never raises for a delivery failure."""
    channels = channels_for(settings) if channels is None else channels
    report = DispatchReport()
    if not channels:
        return report
    waiting = pending(store, settings, [channel.name for channel in channels], now)
    done = store.alert_log.outcomes([case.key for case in waiting])
    for case in waiting:
        alert = compose(case)
        for channel in channels:
            previous = done.get((case.key, channel.name))
            if previous is not None and (
                previous["state"] == "sent" or previous["attempts"] >= settings.max_attempts
            ):
                continue
            error = _deliver(channel, alert, settings.attempts_per_run)
            attempts = (previous["attempts"] if previous is not None else 0) + 1
            store.alert_log.record_outcome(
                alert.case_keys,
                channel.name,
                outcome_state(error, attempts, settings.max_attempts),
                attempts,
                error,
            )
            (report.failed if error else report.sent).append(f"{channel.name}:{case.key}")
    return report


def outcome_state(error: str | None, attempts: int, max_attempts: int) -> str:
    """What a delivery attempt leaves in the alert log: sent, failed (to be tried again) or gave_up."""
    return "sent" if error is None else ("gave_up" if attempts >= max_attempts else "failed")


def _deliver(channel: Channel, alert: Alert, attempts: int) -> str | None:
    """Send with a short exponential backoff; the last error's text, or None once delivered."""
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.5, max=5), reraise=True
        ):
            with attempt:
                channel.send(alert)
    except AlertError as exc:
        message = scrub(str(exc))
        log.warning("alert for %s not delivered: %s", alert.case_keys[0], message)
        return message
    except Exception as exc:  # a bug in a channel must not stop triage or the other channels
        message = scrub(f"internal error: {type(exc).__name__}: {exc}")
        log.exception("alert for %s failed", alert.case_keys[0])
        return message
    log.info("alert for %s sent by %s", alert.case_keys[0], channel.name)
    return None


def alert_log(store: Store) -> list[dict]:
    """Every recorded alert outcome, newest first."""
    return store.alert_log.entries()
