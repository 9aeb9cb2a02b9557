"""The background service: one scheduled job per source, the daily summary, clean shutdown on SIGTERM/SIGINT.

A poll is `ingest` with hooks around it: the source's lease (leases.py: several workers may share
the store, and only the holder polls; the others skip), retries with exponential backoff on
transient failures (each attempt resumes from the committed checkpoint), the checkpoint written in
the commit's transaction, a stop flag checked between messages so that a shutdown finishes the
message in hand, commits it and returns, and the outcome recorded as the source's status.
"""

from __future__ import annotations

import email.parser
import email.policy
import logging
import signal
import threading
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Iterable, Iterator
from zoneinfo import ZoneInfo

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_when_event_set,
    wait_exponential,
)

from complaint_triage import alerts, health
from complaint_triage import report as reports
from complaint_triage.errors import SourceAuthError, SourceInterrupted, TransientSourceError, TriageError
from complaint_triage.ingest import IngestSummary, ingest
from complaint_triage.pipeline.parse import message_identity
from complaint_triage.pipeline.triage import default_triager
from complaint_triage.records import RawMessage, SourceStatus
from complaint_triage.resources import model_location
from complaint_triage.settings import Settings, SourceSettings, parse_duration
from complaint_triage.sources import sources_for_path
from complaint_triage.sources.base import CheckpointLedger, MailSource
from complaint_triage.sources.imap import ImapSource
from complaint_triage.store import Store
from complaint_triage.store.leases import Lease

log = logging.getLogger("complaint_triage.service")

IDLE_RENEW_SECONDS = 600  # RFC 2177 asks for a new IDLE within 29 minutes; servers and NATs drop quieter ones


@dataclass(frozen=True)
class Backoff:
    """How a poll retries after a dropped connection or a timeout."""

    attempts: int = 5
    first_wait: float = 1.0
    max_wait: float = 60.0


@dataclass
class PollOutcome:
    """What one poll of one source did."""

    source_name: str
    summary: IngestSummary = field(default_factory=IngestSummary)
    error: str | None = None
    skipped: bool = False  # another worker held the source's lease


class SavedMailSource(MailSource):
    """A directory, mbox or Maildir from the config, opened afresh on every poll."""

    def __init__(self, settings: SourceSettings):
        self.name, self.path, self.type = settings.name, settings.path, settings.type

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield the messages found at the path now, read as the declared type."""
        return sources_for_path(self.path, self.name, self.type).fetch_messages()


class OneAtATime:
    """Serialises triage across source threads: the spaCy pipeline's memory zones are not safe to share."""

    def __init__(self, triager):
        self.triager, self.lock = triager, threading.Lock()

    def triage_bytes(self, raw: bytes, source: str = "<bytes>", source_name: str | None = None):
        """Triage one message while holding the lock."""
        with self.lock:
            return self.triager.triage_bytes(raw, source=source, source_name=source_name)


def build_source(
    settings: SourceSettings, checkpoints: CheckpointLedger, stop: threading.Event
) -> MailSource:
    """The mail source a [[sources]] entry describes."""
    if settings.type == "graph":
        from complaint_triage.sources.graph import (
            GraphSource,  # httpx and MSAL only for those who read Microsoft 365
        )

        return GraphSource(settings, stop)
    if settings.type == "gmail":
        from complaint_triage.sources.gmail import GmailSource

        return GmailSource(settings, stop)
    return ImapSource(settings, checkpoints, stop) if settings.type == "imap" else SavedMailSource(settings)


def header_identity(raw: bytes) -> str:
    """The store identity of a message read from its headers alone."""
    headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw[:262144])
    value = headers.get("Message-ID")
    return message_identity(raw, str(value).strip() if value is not None else None)


class Service:
    """The sources, triager and store of one configuration: polled once, or run on a schedule until stopped."""

    def __init__(
        self, settings: Settings, store: Store | None = None, triager=None, backoff: Backoff = Backoff()
    ):
        self.settings, self.backoff = settings, backoff
        self.store = store or Store(settings.store.url)
        self.checkpoints = self.store.checkpoints
        self.leases = self.store.leases()
        self.triager = OneAtATime(
            triager
            or default_triager(
                settings.schedule.timezone,
                model_location(settings.pipeline.model_dir),
                settings.pipeline.tables_dir,
                attachments=settings.attachments,
            )
        )
        self.stop = threading.Event()
        self._scheduler: BackgroundScheduler | None = None
        self.sources = [build_source(source, self.checkpoints, self.stop) for source in settings.sources]

    # -- polling ---------------------------------------------------------------------------

    def poll(self, source) -> PollOutcome:
        """One poll of one source under its lease (skipped when another worker holds it); the outcome is recorded as its status, never raised."""
        try:
            with self.leases.hold(source.name) as lease:
                return self._poll_leased(source, lease) if lease is not None else self._skipped(source)
        except TriageError as exc:  # the lease could not be asked for: the store is out of reach
            log.error("%s", exc, extra={"source": source.name})
            return PollOutcome(source.name, error=str(exc))

    @staticmethod
    def _skipped(source) -> PollOutcome:
        log.debug(
            "%s: another worker holds the lease: poll skipped", source.name, extra={"source": source.name}
        )
        return PollOutcome(source.name, skipped=True)

    def _poll_leased(self, source, lease: Lease) -> PollOutcome:
        """One poll while holding the lease, retried on transient failures; the checkpoint is read only now."""
        outcome, auth_failed = PollOutcome(source.name), False
        try:
            for attempt in self._retrying():
                with attempt:
                    outcome.summary.merge(self._ingest(source, lease))
        except SourceInterrupted as exc:  # a shutdown, not a failure: the status stays as it was
            log.info("%s", exc, extra={"source": source.name})
            return outcome
        except TriageError as exc:
            outcome.error, auth_failed = str(exc), isinstance(exc, SourceAuthError)
            log.error("%s", exc, extra={"source": source.name})
        except Exception as exc:  # a bug in one source must not stop the service or the other sources
            outcome.error = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("poll of %s failed", source.name, extra={"source": source.name})
        self.checkpoints.record_poll(
            source.name,
            outcome.error,
            source.backlog,
            auth_failed=auth_failed,
            token_expires_at=source.token_expires_at,
        )
        if outcome.summary.stored or outcome.error:  # new cases, or an outage that may be due
            self._wake_alerts()
        return outcome

    def poll_all(self) -> list[PollOutcome]:
        """Poll every source once, one after the other; a failing source does not stop the rest."""
        return [self.poll(source) for source in self.sources if not self.stop.is_set()]

    def _retrying(self) -> Retrying:
        return Retrying(
            retry=retry_if_exception_type(TransientSourceError),
            stop=stop_after_attempt(self.backoff.attempts) | stop_when_event_set(self.stop),
            wait=wait_exponential(multiplier=self.backoff.first_wait, max=self.backoff.max_wait),
            sleep=self.stop.wait,  # a shutdown cuts a backoff short
            before_sleep=lambda state: log.warning(
                "%s; retrying in %.1f s", state.outcome.exception(), state.upcoming_sleep
            ),
            reraise=True,
        )

    def _ingest(self, source, lease: Lease) -> IngestSummary:
        # An API source resumes from the cursor committed last; other sources know their place or are read whole.
        messages = (
            source.fetch_messages(self.checkpoints.cursor(source.name, source.scope))
            if source.uses_cursor
            else source.fetch_messages()
        )
        if (
            not source.keeps_place
        ):  # saved mail has no checkpoint, an API cursor may re-read a page: skip what is stored
            messages = (
                message
                for message in messages
                if not self.store.holds(header_identity(message.raw), message.raw)
            )
        summary = ingest(
            self._until_stopped(messages, lease),
            self.triager,
            self.store,
            settle=source.settle,
            on_commit=self._committer(source, lease),
            durable=source.touches_mailbox,
            batch_seconds=self.settings.store.commit_seconds,
        )
        if (
            source.uses_cursor and source.completed_cursor() is not None
        ):  # the round ran to its end and all of it is committed
            self.checkpoints.save_cursor(source.name, source.scope, source.completed_cursor())
        return summary

    def _until_stopped(self, messages: Iterable[RawMessage], lease: Lease) -> Iterator[RawMessage]:
        """The messages until a stop is asked for or the lease is found lost: ingest then commits what it holds and returns."""
        for message in messages:
            yield message
            if self.stop.is_set():
                log.info("stopping: the messages in hand are committed, the rest waits for the next run")
                return
            if lease.lost:  # another worker may have the source now: let it go on from the checkpoint
                return

    def _committer(self, source: MailSource, lease: Lease):
        def on_commit(connection, messages: list[RawMessage]) -> None:
            lease.confirm()  # once a batch: a lost lease ends the poll after this commit
            source.record_progress(connection, messages)
            if source.uses_cursor:
                self.checkpoints.advance_cursor(
                    connection, source.name, source.scope, source.cursor_after(messages)
                )
            self.checkpoints.count_triaged(connection, source.name, len(messages))

        return on_commit

    def watch(self, source: MailSource, every: timedelta) -> None:
        """Poll, then wait in IDLE for new mail (renewed well inside 29 minutes), or poll every EVERY without IDLE; until stopped.

        The lease is held for a poll and the wait after it; a worker without it tries again after EVERY.
        """
        seconds = every.total_seconds()
        while not self.stop.is_set():
            if not self._watch_cycle(source, seconds):
                self.stop.wait(seconds)

    def _watch_cycle(self, source: MailSource, seconds: float) -> bool:
        """One poll and one wait for mail under the lease; False when the next cycle should wait SECONDS first."""
        try:
            with self.leases.hold(source.name) as lease:
                if lease is None:
                    self._skipped(source)
                    return False
                outcome = self._poll_leased(source, lease)
                return self.stop.is_set() or (
                    not outcome.error and self._wait_for_mail(source, min(seconds, IDLE_RENEW_SECONDS))
                )
        except TriageError as exc:  # the lease could not be asked for
            log.error("%s", exc, extra={"source": source.name})
            return False

    def _wait_for_mail(self, source: MailSource, seconds: float) -> bool:
        try:
            if source.wait_for_mail(seconds):
                return True
            log.info("%s: the server has no IDLE: polling every %.0f s", source.name, seconds)
            return False
        except TriageError as exc:
            log.warning("%s: IDLE ended (%s): polling now", source.name, exc)
            return True

    # -- alerts ----------------------------------------------------------------------------

    def send_alerts(self) -> None:
        """Announce new critical (and, if configured, high) cases and sources down or back; failures are recorded and retried later, never raised."""
        try:
            result = alerts.dispatch(self.store, self.settings.alerts)
            sources = health.dispatch_source_alerts(
                self.store, self.settings, source_statuses(self.settings, self.store)
            )
        except TriageError as exc:
            log.error("alerts: %s", exc)
            return
        sent, failed = len(result.sent) + len(sources.sent), len(result.failed) + len(sources.failed)
        if sent or failed:
            log.info("alerts: %d sent, %d not delivered", sent, failed)

    def _wake_alerts(self) -> None:
        """Run the alerts job now (after a poll committed new records), in its own thread: triage never waits for a channel."""
        if self._scheduler is not None and self.settings.alerts.enabled:
            try:
                self._scheduler.modify_job(
                    "alerts", next_run_time=datetime.now(ZoneInfo(self.settings.schedule.timezone))
                )
            except Exception as exc:  # the scheduler is shutting down: the next start sends what is pending
                log.debug("alerts job not woken: %s", exc)

    # -- the daily summary -----------------------------------------------------------------

    def write_daily_reports(self, day: date | None = None, deliver: bool = False) -> list[Path]:
        """Write the summary in every configured format (and, with DELIVER, send it): by default the day up to the report time.

        At 07:00 that is yesterday 07:00 to today 07:00, so what came in overnight is in it.
        """
        zone = self.settings.schedule.timezone
        hour, minute = (int(part) for part in self.settings.schedule.daily_report_at.split(":"))
        starts = timedelta(hours=hour, minutes=minute) if day is None else timedelta(0)
        day = day or (datetime.now(ZoneInfo(zone)) - starts).date() - timedelta(days=1)
        summary = reports.summary_for_day(self.store, day, zone, self.settings.escalations, day_starts=starts)
        directory = Path(self.settings.reports.dir)
        directory.mkdir(parents=True, exist_ok=True)
        written = [
            self._write_report(summary, output_format, directory)
            for output_format in self.settings.reports.formats
        ]
        if deliver:
            from complaint_triage.report.delivery import deliver_summary

            deliver_summary(summary, self.settings)
        return [path for path in written if path is not None]

    @staticmethod
    def _write_report(summary: reports.DailySummary, output_format: str, directory: Path) -> Path | None:
        try:
            text = reports.render(summary, output_format)
        except ImportError as exc:  # a renderer not installed in this build
            log.warning("no %s renderer (%s): that format is skipped", output_format, exc)
            return None
        path = directory / f"summary-{summary.day.isoformat()}.{reports.EXTENSIONS[output_format]}"
        path.write_text(text, encoding="utf-8")
        log.info("daily summary written to %s", path)
        return path

    def _daily_report_job(self) -> None:
        try:
            self.write_daily_reports(deliver=True)
        except (TriageError, OSError) as exc:
            log.error("daily summary failed: %s", exc)

    # -- the scheduler ---------------------------------------------------------------------

    def scheduler(self) -> BackgroundScheduler:
        """One job per source (max_instances=1, missed runs coalesced) and the daily summary."""
        zone = ZoneInfo(self.settings.schedule.timezone)
        every = parse_duration(self.settings.schedule.poll_every)
        scheduler = BackgroundScheduler(
            timezone=zone,
            executors={"default": ThreadPoolExecutor(len(self.sources) + 2)},
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": int(every.total_seconds()),
            },
        )
        now = datetime.now(zone)
        for source in self.sources:
            if source.watches:
                scheduler.add_job(
                    self.watch, args=[source, every], id=f"watch:{source.name}", next_run_time=now
                )
            else:
                scheduler.add_job(
                    self.poll,
                    IntervalTrigger(seconds=every.total_seconds(), timezone=zone),
                    args=[source],
                    id=f"poll:{source.name}",
                    next_run_time=now,
                )
        hour, minute = (int(part) for part in self.settings.schedule.daily_report_at.split(":"))
        scheduler.add_job(
            self._daily_report_job,
            CronTrigger(hour=hour, minute=minute, timezone=zone),
            id="daily-report",
            misfire_grace_time=3600,
        )
        if self.settings.alerts.enabled:
            scheduler.add_job(
                self.send_alerts,
                IntervalTrigger(seconds=every.total_seconds(), timezone=zone),
                id="alerts",
                next_run_time=now,
            )
        self._scheduler = scheduler
        return scheduler

    def run(self) -> None:
        """Run the schedule until stop is set, then let running polls commit what they hold, and close."""
        scheduler = self.scheduler()
        scheduler.start()
        log.info(
            "service started: %d sources, polling every %s",
            len(self.sources),
            self.settings.schedule.poll_every,
        )
        while not self.stop.wait(1.0):
            pass
        log.info("stopping: finishing the messages in hand")
        scheduler.shutdown(wait=True)
        self.close()
        log.info("stopped")

    def close(self) -> None:
        """Log out of every server and release the store."""
        for source in self.sources:
            source.close()
        self.leases.close()
        self.store.close()


def install_signal_handlers(stop: threading.Event) -> None:
    """SIGTERM and SIGINT ask the service to stop after the messages in hand (main thread only)."""

    def handler(signum, _frame) -> None:
        log.info("%s received: stopping after the messages in hand", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def source_statuses(settings: Settings, store: Store) -> list[SourceStatus]:
    """Each configured source's status, in config order; a source never polled has an empty one."""
    known = store.checkpoints.statuses()
    return [known.get(source.name, SourceStatus(source.name)) for source in settings.sources]
