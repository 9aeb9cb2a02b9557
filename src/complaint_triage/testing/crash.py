"""The crash harness of an IMAP sync: workers killed with SIGKILL at random points, restarted, again and again.

benchmarks/crash_sync.py runs it at volume and prints the figures; tests/test_crash.py and
tests/test_workers.py run it small.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from imapclient import SEEN
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine

from complaint_triage.store import Store
from complaint_triage.store.tables import folder_checkpoints, messages
from complaint_triage.testing.dovecot import PASSWORD, Dovecot
from complaint_triage.testing.measure import peak_rss_kib

PASSWORD_ENV = "COMPLAINT_TRIAGE_CRASH_IMAP_PASSWORD"
SOURCE = "crash"
STARTUP_SECONDS = 60.0
FINISH_SECONDS = 300.0


def worker_command(*arguments: str) -> list[str]:
    """The installed `complaint-triage` console script beside this interpreter, else the module."""
    script = Path(sys.executable).with_name("complaint-triage")
    return (
        [str(script), *arguments]
        if script.is_file()
        else [sys.executable, "-m", "complaint_triage.cli", *arguments]
    )


def service_config(
    store_url: str,
    server: Dovecot,
    mailboxes: dict[str, str],
    poll_seconds: int,
    reports_dir: Path,
    password_env: str = PASSWORD_ENV,
    commit_seconds: float = 1.0,
) -> str:
    """A service config: the store (committing every COMMIT_SECONDS at the latest), one IMAP source per MAILBOXES entry (source name -> user) polled every POLL_SECONDS, committed mail marked seen."""
    sources = "".join(
        f"""
[[sources]]
name = "{name}"
type = "imap"
host = "127.0.0.1"
port = {server.plain_port}
security = "none"
username = "{user}"
password_env = "{password_env}"
after = "seen"
fetch_chunk = 50
timeout_seconds = 10
"""
        for name, user in mailboxes.items()
    )
    return f"""
[store]
url = {json.dumps(store_url)}
commit_seconds = {commit_seconds}
{sources}
[schedule]
poll_every = "{poll_seconds}s"

[reports]
dir = {json.dumps(str(reports_dir))}
formats = ["json"]
"""


def write_config(
    directory: Path, server: Dovecot, user: str, store_url: str, commit_seconds: float = 1.0
) -> Path:
    """The crash run's config: one IMAP source on USER's mailbox, polled every second."""
    path = directory / "crash.toml"
    path.write_text(
        service_config(
            store_url, server, {SOURCE: user}, 1, directory / "reports", commit_seconds=commit_seconds
        )
    )
    return path


@dataclass
class Worker:
    """One `complaint-triage run` process, its log file, and what it used once reaped."""

    process: subprocess.Popen
    log_path: Path
    peak_rss_kib: int = 0

    @classmethod
    def start(cls, config: Path, log_path: Path) -> "Worker":
        """Start the service on CONFIG, its stderr in LOG_PATH."""
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                worker_command("run", "--config", str(config)),
                env={**os.environ, PASSWORD_ENV: PASSWORD},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        return cls(process, log_path)

    def wait_started(self, timeout: float = STARTUP_SECONDS) -> None:
        """Return once the service logged that it started (its first poll begins then)."""
        deadline = time.monotonic() + timeout
        while b"service started" not in self.log_path.read_bytes():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the worker did not start: {self.log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.02)

    def __enter__(self) -> "Worker":
        return self

    def __exit__(self, *_exc) -> None:
        """Whatever went wrong, no worker outlives its round."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def end(self, how: signal.Signals) -> int:
        """Note the peak RSS, send HOW, and return the exit status."""
        self.peak_rss_kib = peak_rss_kib(self.process.pid)
        self.process.send_signal(how)
        return self.process.wait(timeout=60)


@dataclass
class StoreView:
    """What the harness reads from the store the workers write."""

    engine: Engine

    def stored(self) -> int:
        """Records of the source so far."""
        with self.engine.connect() as connection:
            return connection.execute(
                select(func.count()).select_from(messages).where(messages.c.source_name == SOURCE)
            ).scalar_one()

    def last_uid(self) -> int:
        """The folder checkpoint: every UID up to it is said to be committed."""
        query = select(folder_checkpoints.c.last_uid).where(
            (folder_checkpoints.c.source_name == SOURCE) & (folder_checkpoints.c.folder == "INBOX")
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar() or 0

    def recorded_uids(self) -> set[int]:
        """The UIDs that have a record, read from each record's source (`...;UID=n`)."""
        with self.engine.connect() as connection:
            sources = connection.execute(
                select(messages.c.source).where(messages.c.source_name == SOURCE)
            ).scalars()
            return {int(source.rsplit(";UID=", 1)[1]) for source in sources}

    def rows_per_message(self) -> dict[str, int]:
        """Rows by Message-ID."""
        query = (
            select(messages.c.message_id, func.count())
            .where(messages.c.source_name == SOURCE)
            .group_by(messages.c.message_id)
        )
        with self.engine.connect() as connection:
            return dict(connection.execute(query).all())

    def retriaged(self) -> int:
        """Rows whose message was triaged more than once (committed, then fetched and triaged again)."""
        query = (
            select(func.count())
            .select_from(messages)
            .where((messages.c.source_name == SOURCE) & (messages.c.attempts > 1))
        )
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()


@dataclass
class CrashFigures:
    """What a crash-safety run found."""

    messages: int
    kills: int = 0
    kills_after_sync: int = 0  # kills that came when every message was already stored
    duplicates: int = 0
    losses: int = 0
    retriaged: int = 0
    checkpoint_ahead: int = 0  # kills after which some UID <= last_uid had no record
    unsettled: int = 0  # messages still without \\Seen at the end
    peak_rss_mib: float = 0.0
    seconds: float = 0.0
    stored_at_kills: list[int] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """True when nothing was doubled, lost, re-triaged, left unflagged or checkpointed ahead of its records."""
        return not (
            self.duplicates or self.losses or self.retriaged or self.checkpoint_ahead or self.unsettled
        )

    def lines(self) -> list[str]:
        """The figures, one per line."""
        return [
            f"messages: {self.messages}",
            f"kills (SIGKILL): {self.kills}, {self.kills - self.kills_after_sync} of them mid-sync; records committed at each kill: {' '.join(map(str, self.stored_at_kills))}",
            f"duplicates: {self.duplicates}",
            f"losses: {self.losses}",
            f"re-triaged after commit: {self.retriaged}",
            f"checkpoint-ahead violations: {self.checkpoint_ahead}",
            f"left without \\Seen: {self.unsettled}",
            f"peak RSS of a worker: {self.peak_rss_mib:.0f} MiB",
            f"time: {self.seconds:.1f} s (every restart included)",
        ]


@dataclass
class SyncPace:
    """How fast a freshly started worker syncs: seconds before its first commit, then messages per second (learnt round by round)."""

    first_commit: float = (
        1.5  # from "service started" to the first commit: the poll's start and one commit's worth of triage
    )
    rate: float = 150.0  # messages committed per second once commits flow

    def kill_delay(self, rng: random.Random, remaining: int, kills_left: int) -> float:
        """Seconds to let a worker sync before the kill: random, within an even share of the sync left, and short of its end."""
        left = self.first_commit + remaining / self.rate  # the whole sync, were the worker left alone
        return rng.uniform(0.0, min(2.0 * left / (kills_left + 2), 0.8 * left))

    def learn(self, commits: list[tuple[float, int]], waited: float) -> None:
        """Update the estimates from one round: (seconds after its start, records stored) at each commit seen in WAITED seconds; the rate moves halfway."""
        if not commits:  # killed before its first commit: that one comes later than WAITED
            self.first_commit = max(self.first_commit, waited)
            return
        self.first_commit = commits[0][
            0
        ]  # the latest round tells best: the start varies less than the kill times
        if len(commits) > 1:
            (start, first), (end, last) = commits[0], commits[-1]
            self.rate = (self.rate + (last - first) / max(end - start, 1e-3)) / 2


def commits_during(view: "StoreView", seconds: float, before: int) -> list[tuple[float, int]]:
    """Wait SECONDS, noting when the record count grew (seconds from the start) and to what: the kill time itself stays random."""
    start, seen, commits = time.monotonic(), before, []
    while (elapsed := time.monotonic() - start) < seconds:
        if (count := view.stored()) > seen:
            seen, commits = count, commits + [(elapsed, count)]
        time.sleep(min(0.05, max(0.0, seconds - elapsed)))
    return commits


def crash_sync(
    server: Dovecot,
    user: str,
    message_ids: set[str],
    store_url: str,
    workdir: Path,
    kills: int,
    seed: int = 1,
    commit_seconds: float = 1.0,
) -> CrashFigures:
    """Sync USER's mailbox with KILLS workers killed at random points, then one run to the end; count what went wrong."""
    rng, figures, pace = (
        random.Random(seed),
        CrashFigures(len(message_ids)),
        SyncPace(first_commit=0.5 + commit_seconds),
    )
    Store(store_url).close()  # the tables exist before the first worker, as after an install
    config, view = (
        write_config(workdir, server, user, store_url, commit_seconds),
        StoreView(create_engine(store_url)),
    )
    uids, started, peaks = server.uids(user), time.perf_counter(), []
    try:
        for round_ in range(kills):
            before = view.stored()
            with Worker.start(config, workdir / f"worker-{round_}.log") as worker:
                worker.wait_started()
                delay = pace.kill_delay(rng, len(uids) - before, kills - round_ - 1)
                pace.learn(commits_during(view, delay, before), delay)
                if worker.end(signal.SIGKILL) != -signal.SIGKILL:
                    raise RuntimeError(
                        f"the worker ended by itself: {worker.log_path.read_text(errors='replace')[-2000:]}"
                    )
            peaks.append(worker.peak_rss_kib)
            _check_after_kill(figures, view, uids)
        peaks.append(_run_to_the_end(config, workdir, view, max(uids)))
        figures.seconds = time.perf_counter() - started
        _count_outcome(figures, view, server, user, message_ids)
    finally:
        view.engine.dispose()
    figures.peak_rss_mib = max(peaks) / 1024
    return figures


def _check_after_kill(figures: CrashFigures, view: StoreView, uids: list[int]) -> None:
    """Count the kill, and whether the checkpoint it left claims a UID that has no record."""
    stored, last_uid, recorded = view.stored(), view.last_uid(), view.recorded_uids()
    figures.kills += 1
    figures.kills_after_sync += stored == len(uids)
    figures.stored_at_kills.append(stored)
    figures.checkpoint_ahead += any(uid not in recorded for uid in uids if uid <= last_uid)


def _run_to_the_end(config: Path, workdir: Path, view: StoreView, last_uid: int) -> int:
    """One worker until the checkpoint reaches LAST_UID (nothing left to fetch), stopped with SIGTERM; returns its peak RSS in KiB."""
    with Worker.start(config, workdir / "worker-final.log") as worker:
        worker.wait_started()
        deadline = time.monotonic() + FINISH_SECONDS
        while view.last_uid() < last_uid:
            if worker.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the final worker did not finish: {worker.log_path.read_text(errors='replace')[-2000:]}"
                )
            time.sleep(0.1)
        time.sleep(1.5)  # the settle after the last commit, or the next poll's catch-up
        if worker.end(signal.SIGTERM) != 0:
            raise RuntimeError(
                f"the final worker exited {worker.process.returncode}: {worker.log_path.read_text(errors='replace')[-2000:]}"
            )
    return worker.peak_rss_kib


def _count_outcome(
    figures: CrashFigures, view: StoreView, server: Dovecot, user: str, message_ids: set[str]
) -> None:
    rows = view.rows_per_message()
    figures.duplicates = sum(count - 1 for count in rows.values() if count > 1)
    figures.losses = len(message_ids - set(rows))
    figures.retriaged = view.retriaged()
    figures.checkpoint_ahead += any(
        uid not in view.recorded_uids() for uid in server.uids(user) if uid <= view.last_uid()
    )
    figures.unsettled = sum(SEEN not in flags for flags in server.flags(user).values())


@contextlib.contextmanager
def store_url_for(postgres: bool, directory: Path) -> Iterator[str]:
    """A SQLite file in DIRECTORY, or a fresh schema on the test PostgreSQL (dropped afterwards)."""
    if not postgres:
        yield f"sqlite:///{directory / 'store.db'}"
        return
    from complaint_triage.testing.postgres import postgres_schema_url

    with postgres_schema_url() as url:
        yield url
