"""Source health: which sources are failing, and one alert per outage (then one recovery notice) on every channel.

An outage starts at a source's first failed poll after a good one (`failing_since` in its status).
It is announced once it has lasted `[alerts] source_down_after`, or at once when the credentials
were refused, since waiting will not help then. A source no poll has reached for that long (the
service stopped or stuck) is down too. Each announcement is a row of the alert log keyed
`source:NAME:down:SINCE` per channel, so it goes out once however many runs and workers see the
outage; the recovery notice, `source:NAME:up:SINCE`, goes on the channels that carried the outage
alert once a poll works again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta

from complaint_triage.alerts import Alert, Channel, DispatchReport, _deliver, channels_for, outcome_state
from complaint_triage.logs import scrub
from complaint_triage.records import SourceStatus
from complaint_triage.settings import Settings, SourceSettings, parse_duration

FAILING_STATES = ("failing", "down", "stale")


@dataclass(frozen=True)
class SourceHealth:
    """One source's status, judged: its state, whether its credentials work, and the outage it is in, if any."""

    status: SourceStatus
    state: (
        str  # ok | not polled | failing (not yet for long) | down (announce it) | stale (no poll reached it)
    )
    auth: str  # ok | failed | unknown
    outage_since: datetime | None = None

    @property
    def failing(self) -> bool:
        """True when the source is not reading mail now."""
        return self.state in FAILING_STATES

    def as_json(self) -> dict:
        """The status and the judgement as one JSON-ready dict."""
        values = {
            key: value.isoformat(timespec="seconds") if isinstance(value, datetime) else value
            for key, value in asdict(self.status).items()
        }
        return {
            **values,
            "state": self.state,
            "auth": self.auth,
            "outage_since": self.outage_since.isoformat(timespec="seconds") if self.outage_since else None,
        }


def _now() -> datetime:
    return datetime.now(UTC)


def stale_after(settings: Settings) -> timedelta:
    """How long without any poll makes a source stale: the down time, or two poll intervals when they are longer."""
    return max(
        parse_duration(settings.alerts.source_down_after), 2 * parse_duration(settings.schedule.poll_every)
    )


def assess(status: SourceStatus, settings: Settings, now: datetime | None = None) -> SourceHealth:
    """Judge one source's status against `source_down_after` and the poll interval."""
    now = now or _now()
    auth = (
        "failed"
        if status.auth_failed
        else "ok"
        if status.failing_since is None and status.last_success_at
        else "unknown"
    )
    if status.last_poll_at is None:
        return SourceHealth(status, "not polled", auth)
    if status.failing_since is not None:
        long_enough = now - status.failing_since >= parse_duration(settings.alerts.source_down_after)
        return SourceHealth(
            status, "down" if status.auth_failed or long_enough else "failing", auth, status.failing_since
        )
    if now - status.last_poll_at >= stale_after(settings):
        return SourceHealth(status, "stale", auth, status.last_poll_at)
    return SourceHealth(status, "ok", auth)


def assess_all(
    settings: Settings, statuses: list[SourceStatus], now: datetime | None = None
) -> list[SourceHealth]:
    """Judge every source's status."""
    return [assess(status, settings, now) for status in statuses]


def remedy(source: SourceSettings, health: SourceHealth, settings: Settings) -> str:
    """What the person reading the alert should do about it, in one sentence."""
    if health.state == "stale":
        return (
            "no poll has reached this source: check that `complaint-triage run` is running and not stuck "
            "(its log says why); `complaint-triage status` shows every source"
        )
    if health.auth == "failed":
        return _auth_remedy(source)
    return (
        f"the error says what to check; the source is tried again every {settings.schedule.poll_every}, "
        f"and `complaint-triage status` shows when it works again"
    )


def _auth_remedy(source: SourceSettings) -> str:
    if source.type == "graph":
        where = (
            f"the environment variable {source.client_secret_env}"
            if source.client_secret_env
            else f"the file {source.client_secret_file or source.certificate_file}"
        )
        return (
            f"check the app's client secret or certificate in {where} (Entra secrets expire), and that the app "
            f"has the Mail.ReadWrite application permission with admin consent; `complaint-triage auth {source.name}` tries it"
        )
    if source.type == "gmail":
        if source.credentials_file:
            return (
                f"check the service account key in {source.credentials_file} and its domain-wide delegation "
                "(the gmail.modify scope) in the Workspace admin console; then `complaint-triage run --once`"
            )
        return (
            f"the refresh token in {source.token_file} was refused (revoked, or expired after 7 days for an app in "
            f"testing): run the consent flow again, `complaint-triage auth {source.name}`; then `complaint-triage run --once`"
        )
    if source.oauth2_provider == "microsoft":
        return (
            "check the app's client secret or certificate (Entra secrets expire), its IMAP.AccessAsApp permission "
            "and the mailbox permission of its service principal in Exchange; then `complaint-triage run --once`"
        )
    if source.oauth2_provider == "google":
        return (
            f"the Google token was refused: re-run `complaint-triage auth {source.name}` (the consent flow writes a new "
            "token_file), or check the service account's delegation of https://mail.google.com/; then `complaint-triage run --once`"
        )
    if source.oauth2_token_command:
        return "run oauth2_token_command by hand and check that it prints a valid access token; then `complaint-triage run --once`"
    where = (
        f"the environment variable {source.password_env}"
        if source.password_env
        else f"the file {source.password_file}"
    )
    return (
        f"check the password in {where} (Gmail needs an app password; Microsoft 365 takes no password over IMAP, "
        "only OAuth2); then `complaint-triage run --once`"
    )


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds") if moment else "never"


def _one_line(text: str | None) -> str:
    lines = scrub(text or "").strip().splitlines()
    return lines[0] if lines else "none recorded"


def outage_alert(source: SourceSettings, health: SourceHealth, settings: Settings) -> Alert:
    """The alert that says a source is down: since when, the last error in one line, what to do."""
    status, key = health.status, _key(source.name, "down", health.outage_since)
    action, error = remedy(source, health, settings), _one_line(status.last_error)
    title = f"[SOURCE DOWN] {source.name}: no mail read since {_when(status.last_success_at)}"
    lines = [
        title,
        "",
        f"Source: {source.name} ({source.type})",
        f"Failing since: {_when(health.outage_since)}",
        f"Last successful poll: {_when(status.last_success_at)}",
        f"Credentials: {health.auth}",
        f"Last error: {error}",
        f"What to do: {action}",
    ]
    facts = {
        "event": "source_down",
        "source": source.name,
        "since": _when(health.outage_since),
        "last_success_at": _when(status.last_success_at),
        "auth": health.auth,
        "last_error": error,
        "action": action,
    }
    return Alert(case_keys=[key], urgency="critical", title=title, text="\n".join(lines), facts=facts)


def recovery_alert(source: SourceSettings, status: SourceStatus, since: datetime) -> Alert:
    """The notice that a source announced as down reads mail again."""
    title = f"[SOURCE RECOVERED] {source.name}: reading mail again since {_when(status.last_success_at)}"
    lines = [
        title,
        "",
        f"Source: {source.name} ({source.type})",
        f"Down from: {_when(since)}",
        f"Working again at: {_when(status.last_success_at)}",
    ]
    facts = {
        "event": "source_recovered",
        "source": source.name,
        "since": _when(since),
        "recovered_at": _when(status.last_success_at),
    }
    return Alert(
        case_keys=[_key(source.name, "up", since)],
        urgency="low",
        title=title,
        text="\n".join(lines),
        facts=facts,
    )


def _key(name: str, event: str, since: datetime) -> str:
    return f"source:{name}:{event}:{since.astimezone(UTC).isoformat()}"


def dispatch_source_alerts(
    store,
    settings: Settings,
    statuses: list[SourceStatus],
    channels: list[Channel] | None = None,
    now: datetime | None = None,
) -> DispatchReport:
    """Announce every outage due and every recovery of an announced one, once per channel; record each outcome."""
    channels = channels_for(settings.alerts) if channels is None else channels
    report = DispatchReport()
    if not channels:
        return report
    log_rows = store.alert_log.outcomes_with_prefix("source:")
    by_name = {status.source_name: status for status in statuses}
    for source in settings.sources:
        status = by_name.get(source.name, SourceStatus(source.name))
        health = assess(status, settings, now)
        if health.state == "down":
            _send(store, settings, outage_alert(source, health, settings), channels, log_rows, report)
        for since, channel_names in _announced_outages(log_rows, source.name).items():
            if status.last_success_at is not None and status.last_success_at > since:
                wanted = [channel for channel in channels if channel.name in channel_names]
                _send(store, settings, recovery_alert(source, status, since), wanted, log_rows, report)
    return report


def _announced_outages(log_rows: dict, name: str) -> dict[datetime, set[str]]:
    """The outages of source NAME whose alert was delivered, with the channels that carried it."""
    prefix = f"source:{name}:down:"
    found: dict[datetime, set[str]] = {}
    for (key, channel), row in log_rows.items():
        if key.startswith(prefix) and row["state"] == "sent":
            found.setdefault(datetime.fromisoformat(key[len(prefix) :]), set()).add(channel)
    return found


def _send(
    store, settings: Settings, alert: Alert, channels: list[Channel], log_rows: dict, report: DispatchReport
) -> None:
    """Deliver ALERT on each channel that has not carried it (nor given up on it); note each outcome."""
    key, limit = alert.case_keys[0], settings.alerts.max_attempts
    for channel in channels:
        previous = log_rows.get((key, channel.name))
        if previous is not None and (previous["state"] == "sent" or previous["attempts"] >= limit):
            continue
        error = _deliver(channel, alert, settings.alerts.attempts_per_run)
        attempts = (previous["attempts"] if previous is not None else 0) + 1
        store.alert_log.record_outcome(
            [key], channel.name, outcome_state(error, attempts, limit), attempts, error
        )
        (report.failed if error else report.sent).append(f"{channel.name}:{key}")
