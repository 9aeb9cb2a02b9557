"""Alerts: one notification per new critical (optionally high) case, by email and/or a JSON webhook.

Each (case, channel) pair is recorded in the `alerts` table, so a case is announced once and
re-processing never announces it again. A failed delivery is retried a few times within a run,
recorded with its reason, and tried again on later runs up to a limit. Dispatch runs after
records are committed, in its own job, so a slow or broken channel never holds up triage.
"""

from __future__ import annotations

import json
import logging
import os
import smtplib
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from tenacity import Retrying, stop_after_attempt, wait_exponential

from complaint_triage.store.case_links import load_cases_by_key
from complaint_triage.cases import Case, bundle
from complaint_triage.errors import AlertError
from complaint_triage.logs import register_secret, scrub
from complaint_triage.settings import AlertSettings, EmailAlertSettings, WebhookAlertSettings, parse_duration
from complaint_triage.store.tables import alerts, cases

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
    facts = {"ASINs": case.asins, "Marks": case.trademarks, "Registrations": case.registration_numbers, "Patents": case.patent_numbers,
             "Complaint IDs": case.complaint_ids, "Rights owner": case.rights_owner_emails, "Marketplace": [case.marketplace] if case.marketplace else []}
    lines += [f"{name}: {', '.join(values)}" for name, values in facts.items() if values]
    lines += [f"Why: {'; '.join(case.urgency_reasons)}"]
    lines += [f"Check ({check.severity}): {check.message}" for check in case.checks]
    lines += ["", "Next steps:"] + [f"{n}. {step}" for n, step in enumerate(case.next_steps, 1)]
    data = {"case_keys": keys, "urgency": case.urgency, "kind": case.kind, "subject": case.subject, "from": case.sender,
            "asins": case.asins, "complaint_ids": case.complaint_ids, "marketplace": case.marketplace,
            "response_due": case.response_due.isoformat() if case.response_due else None, "next_steps": case.next_steps}
    return Alert(case_keys=keys, urgency=case.urgency, title=title, text="\n".join(lines), facts=data)


def _secret(env_name: str | None, file_name: str | None, what: str) -> str | None:
    """A secret from the environment variable or file the config names (never from the config itself)."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise AlertError(f"{what}: environment variable {env_name} is not set")
    elif file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise AlertError(f"{what}: cannot read {file_name}: {exc.strerror or exc}") from None
    else:
        return None
    register_secret(value)
    return value


def _tls_context(ca_file: str | None) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=ca_file)


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
        password = _secret(s.password_env, s.password_file, "alerts.email")
        try:
            with self._connect() as smtp:
                if s.username and password:
                    smtp.login(s.username, password)
                smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as exc:
            raise AlertError(f"alerts.email: {s.host}:{s.port}: {type(exc).__name__}: {exc}".splitlines()[0]) from None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
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
        url = _secret(self.settings.url_env, self.settings.url_file, "alerts.webhook")
        body = json.dumps({"text": _slack_escape(alert.text), **alert.facts}, ensure_ascii=False).encode("utf-8")
        request = urllib.request.Request(url, data=body, method="POST", headers={"Content-Type": "application/json; charset=utf-8", "User-Agent": "complaint-triage"})
        context = _tls_context(self.settings.ca_file) if url.lower().startswith("https:") else None
        try:
            with urllib.request.urlopen(request, timeout=self.settings.timeout_seconds, context=context) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            raise AlertError(f"alerts.webhook: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:  # the URL (with its token) stays out of the message
            raise AlertError(f"alerts.webhook: {type(exc).__name__}: {getattr(exc, 'reason', exc)}") from None
        if not 200 <= status < 300:
            raise AlertError(f"alerts.webhook: HTTP {status}")


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


def _now() -> datetime:
    return datetime.now(timezone.utc)


def pending(engine: Engine, settings: AlertSettings, channel_names: list[str], now: datetime | None = None) -> list[Case]:
    """New cases at an alerting urgency, recent enough, that some channel has not announced yet (bundled by mail)."""
    now = now or _now()
    oldest = now - parse_duration(settings.max_age)
    with engine.connect() as connection:  # a case opens at its first message's date: a backfill of old mail stays quiet
        candidates = list(connection.execute(select(cases.c.case_key).where((cases.c.status == "new") & (cases.c.opened_at >= oldest))).scalars())
        done = connection.execute(select(alerts.c.case_key, alerts.c.channel, alerts.c.state, alerts.c.attempts).where(alerts.c.case_key.in_(candidates))).all()
    finished = {(row.case_key, row.channel) for row in done if row.state == "sent" or row.attempts >= settings.max_attempts}
    wanted = [case for case in load_cases_by_key(engine, candidates)
              if alerting(case, settings.urgencies) and _recent(case, oldest)
              and any((case.key, name) not in finished for name in channel_names)]
    return bundle(wanted)


def alerting(case: Case, urgencies: list[str]) -> bool:
    """At an alerting urgency; a case that needs review alerts like a high one."""
    return case.urgency in urgencies or (case.needs_review and "high" in urgencies)


def _recent(case: Case, oldest: datetime) -> bool:
    moment = case.last_received_at or case.opened_at
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment >= oldest


def dispatch(engine: Engine, settings: AlertSettings, channels: list[Channel] | None = None, now: datetime | None = None) -> DispatchReport:
    """Announce every pending case on every channel that has not yet; record each outcome. Never raises for a delivery failure."""
    channels = channels_for(settings) if channels is None else channels
    report = DispatchReport()
    if not channels:
        return report
    waiting = pending(engine, settings, [channel.name for channel in channels], now)
    with engine.connect() as connection:  # the log of just these cases: the table grows with every alert ever sent
        keys = [case.key for case in waiting]
        done = {(row.case_key, row.channel): row for row in connection.execute(select(alerts).where(alerts.c.case_key.in_(keys))).all()}
    for case in waiting:
        alert = compose(case)
        for channel in channels:
            previous = done.get((case.key, channel.name))
            if previous is not None and (previous.state == "sent" or previous.attempts >= settings.max_attempts):
                continue
            error = _deliver(channel, alert, settings.attempts_per_run)
            attempts = (previous.attempts if previous is not None else 0) + 1
            _record(engine, alert.case_keys, channel.name, error, attempts, settings.max_attempts)
            (report.failed if error else report.sent).append(f"{channel.name}:{case.key}")
    return report


def _deliver(channel: Channel, alert: Alert, attempts: int) -> str | None:
    """Send with a short exponential backoff; the last error's text, or None once delivered."""
    try:
        for attempt in Retrying(stop=stop_after_attempt(attempts), wait=wait_exponential(multiplier=0.5, max=5), reraise=True):
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


def _record(engine: Engine, case_keys: list[str], channel: str, error: str | None, attempts: int, max_attempts: int) -> None:
    """Note the outcome for every case the alert covered."""
    now = _now()
    state = "sent" if error is None else ("gave_up" if attempts >= max_attempts else "failed")
    values = {"state": state, "attempts": attempts, "last_error": error, "last_attempt_at": now, "sent_at": now if error is None else None}
    with engine.begin() as connection:
        dialect = {"sqlite": sqlite, "postgresql": postgresql}[connection.dialect.name]
        for key in case_keys:
            statement = dialect.insert(alerts).values(case_key=key, channel=channel, first_attempt_at=now, **values)
            connection.execute(statement.on_conflict_do_update(index_elements=["case_key", "channel"], set_=values))


def alert_log(engine: Engine) -> list[dict]:
    """Every recorded alert outcome, newest first."""
    with engine.connect() as connection:
        return [dict(row._mapping) for row in connection.execute(select(alerts).order_by(alerts.c.last_attempt_at.desc()))]
