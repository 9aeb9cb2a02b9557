"""Several workers on one store: each source polled by one worker at a time, and taken over when its worker dies.

The main test starts three `complaint-triage run` processes on one config: a store in a PostgreSQL
schema of its own and four Dovecot mailboxes, polled every second while mail keeps arriving. One
worker is killed with SIGKILL while it holds a source's lease in the middle of a poll. At the end
every delivered message has exactly one record, triaged once (a poll overlapping another one of
the same source would have triaged the same mail again), every checkpoint stands at its folder's
last UID, and the workers' own logs show that no two of them ever held one source's lease at once.
Smaller tests check the lease itself (refused while held, freed by a dead holder, on PostgreSQL
and SQLite), a lease held through an IDLE wait, and a poll that loses its lease half-way.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from imapclient import SEEN
from sqlalchemy import create_engine, func, select, text

from complaint_triage.service import OneAtATime, Service
from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.store.leases import FileLeases, lease_key, leases_for
from complaint_triage.store.tables import folder_checkpoints, messages
from complaint_triage.testing.crash import service_config, worker_command
from complaint_triage.testing.dovecot import PASSWORD
from complaint_triage.testing.mail import PASSWORD_ENV, sample_messages
from complaint_triage.testing.postgres import postgres_schema_url
from tests.conftest import require_postgres

WORKERS, SOURCES, POLL_SECONDS = 3, 4, 1
VICTIM_BATCH = 200


def write_config(path: Path, store_url: str, server, users: list[str]) -> Path:
    """One config for every worker: the shared store and one IMAP source per mailbox, polled every second."""
    mailboxes = {f"box{n}": user for n, user in enumerate(users)}
    path.write_text(
        service_config(store_url, server, mailboxes, POLL_SECONDS, path.parent / "reports", PASSWORD_ENV)
    )
    return path


@dataclass
class Fleet:
    """The worker processes, each with its log file and its PostgreSQL application_name."""

    config: Path
    directory: Path
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    killed_at: dict[str, float] = field(default_factory=dict)

    def start(self, name: str) -> None:
        """Start one worker; its PostgreSQL sessions carry NAME as application_name (libpq's PGAPPNAME)."""
        env = {**os.environ, PASSWORD_ENV: PASSWORD, "PGAPPNAME": name}
        with (self.directory / f"{name}.log").open("wb") as log:
            command = worker_command("--log-format", "json", "--verbose", "run", "--config", str(self.config))
            self.processes[name] = subprocess.Popen(
                command, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
            )

    def kill(self, name: str) -> None:
        """SIGKILL one worker, as a crash or the OOM killer would."""
        self.killed_at[name] = time.time()
        self.processes[name].kill()
        self.processes[name].wait(timeout=30)

    def stop(self) -> dict[str, int]:
        """SIGTERM the workers still running; their exit statuses."""
        running = {name: process for name, process in self.processes.items() if name not in self.killed_at}
        for process in running.values():
            process.send_signal(signal.SIGTERM)
        return {name: process.wait(timeout=60) for name, process in running.items()}

    def kill_all(self) -> None:
        """Leave nothing running, whatever happened."""
        for process in self.processes.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    def log_entries(self, name: str) -> list[dict]:
        """The worker's JSON log lines (a line cut short by SIGKILL is skipped)."""
        entries = []
        for line in (self.directory / f"{name}.log").read_text(errors="replace").splitlines():
            try:
                entries.append(json.loads(line))
            except ValueError:
                continue
        return entries


def lease_session(engine, schema: str, source_name: str) -> tuple[int, str] | None:
    """The pid and application_name of the session holding the source's advisory lock, if any."""
    unsigned = lease_key(schema, source_name) & 0xFFFFFFFFFFFFFFFF
    query = text("""
        SELECT a.pid, a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid::bigint = :high AND l.objid::bigint = :low""")
    with engine.connect() as connection:
        row = connection.execute(query, {"high": unsigned >> 32, "low": unsigned & 0xFFFFFFFF}).first()
    return tuple(row) if row else None


def lease_holder(engine, schema: str, source_name: str) -> str | None:
    """The application_name of the session holding the source's lease, if any."""
    session = lease_session(engine, schema, source_name)
    return session[1] if session else None


def stored_like(engine, pattern: str) -> int:
    """Records whose Message-ID matches the LIKE pattern."""
    with engine.connect() as connection:
        return connection.execute(
            select(func.count()).select_from(messages).where(messages.c.message_id.like(pattern))
        ).scalar_one()


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll CONDITION every 20 ms until it holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def lease_intervals(fleet: Fleet) -> dict[str, list[tuple[float, float, str]]]:
    """Per source, each (taken, released, worker) from the workers' debug logs; a killed worker's open lease ends at its kill."""
    intervals: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    for name in fleet.processes:
        taken: dict[str, float] = {}
        for entry in fleet.log_entries(name):
            moment, source = datetime.fromisoformat(entry["time"]).timestamp(), entry.get("source")
            if entry["message"].endswith(": lease taken"):
                taken[source] = moment
            elif entry["message"].endswith(": lease released"):
                intervals[source].append((taken.pop(source), moment, name))
        for source, moment in taken.items():
            assert name in fleet.killed_at, f"{name} never released {source}"
            intervals[source].append((moment, fleet.killed_at[name], name))
    return intervals


def overlaps(intervals: list[tuple[float, float, str]]) -> list[tuple]:
    """Pairs of leases of one source held by two workers at the same time."""
    ordered = sorted(intervals)
    return [(first, second) for first, second in zip(ordered, ordered[1:]) if second[0] < first[1]]


@dataclass
class Deliveries:
    """Mail delivered to the test mailboxes while the workers run, and its Message-IDs."""

    server: object
    users: list[str]
    message_ids: set[str] = field(default_factory=set)

    def deliver(self, box: int, count: int, tag: str) -> None:
        """COUNT new messages to mailbox BOX."""
        self.server.append(self.users[box], sample_messages(count, tag))
        self.message_ids.update(f"<{tag}-{n}@test.example>" for n in range(count))

    def rounds(self, first: int, last: int, count: int = 10) -> None:
        """A few messages to every mailbox, round after round, half a second apart."""
        for round_ in range(first, last):
            for box in range(len(self.users)):
                self.deliver(box, count, f"w{box}-r{round_}")
            time.sleep(0.5)


def current_schema(engine) -> str:
    """The schema the URL's search_path selects."""
    with engine.connect() as connection:
        return connection.execute(text("SELECT current_schema()")).scalar()


def kill_mid_poll(fleet: Fleet, engine, source_name: str, tag: str, batch: int) -> tuple[str, int]:
    """Wait until a worker holds SOURCE_NAME's lease with part of the BATCH tagged TAG committed, SIGKILL it; its name and what it committed."""
    schema, holder = current_schema(engine), []

    def mid_poll() -> bool:
        holder[:] = [lease_holder(engine, schema, source_name)]
        return holder[0] is not None and 0 < stored_like(engine, f"<{tag}-%") < batch

    wait_for(mid_poll, 30, f"a worker in the middle of {source_name}'s long poll")
    fleet.kill(holder[0])
    return holder[0], stored_like(engine, f"<{tag}-%")


def store_outcome(engine) -> tuple[dict[str, int], int, dict[str, int]]:
    """Rows per Message-ID, rows triaged more than once, and each source's checkpoint."""
    with engine.connect() as connection:
        rows = dict(
            connection.execute(
                select(messages.c.message_id, func.count()).group_by(messages.c.message_id)
            ).all()
        )
        retriaged = connection.execute(
            select(func.count()).select_from(messages).where(messages.c.attempts > 1)
        ).scalar_one()
        checkpoints = dict(
            connection.execute(select(folder_checkpoints.c.source_name, folder_checkpoints.c.last_uid)).all()
        )
    return rows, retriaged, checkpoints


def test_three_workers_share_the_sources_one_at_a_time_and_take_over_from_a_killed_one(
    dovecot, imap_password, tmp_path
):
    require_postgres()
    mail, started = Deliveries(dovecot, [dovecot.new_user() for _ in range(SOURCES)]), time.monotonic()
    with postgres_schema_url() as url:
        Store(url).close()  # the schema is migrated once, as at install time
        engine = create_engine(url)
        fleet = Fleet(write_config(tmp_path / "workers.toml", url, dovecot, mail.users), tmp_path)
        try:
            for box in range(SOURCES):
                mail.deliver(box, 30, f"w{box}-early")
            for n in range(WORKERS):
                fleet.start(f"ct-worker-{n}")
            wait_for(lambda: stored_like(engine, "<w%") == len(mail.message_ids), 60, "the early mail")
            mail.rounds(0, 3)
            mail.deliver(
                0, VICTIM_BATCH, "w0-victim"
            )  # a long poll of box0, to kill its worker in the middle of it
            victim, stored_at_kill = kill_mid_poll(fleet, engine, "box0", "w0-victim", VICTIM_BATCH)
            mail.rounds(3, 5)
            wait_for(lambda: stored_like(engine, "<w%") == len(mail.message_ids), 45, "every message stored")
            time.sleep(POLL_SECONDS + 0.5)  # the settle after the last commit
            exits = fleet.stop()
        finally:
            fleet.kill_all()
        rows, retriaged, checkpoints = store_outcome(engine)
        engine.dispose()

    intervals, killed_at = lease_intervals(fleet), fleet.killed_at[victim]
    takeover = min(start for start, _, _ in intervals["box0"] if start > killed_at) - killed_at
    grants = {
        name: sum(1 for spans in intervals.values() for *_, owner in spans if owner == name)
        for name in fleet.processes
    }
    print(
        f"{len(mail.message_ids)} messages, {SOURCES} sources, {WORKERS} workers, {victim} killed with {stored_at_kill}/{VICTIM_BATCH} "
        f"of its poll committed; box0 taken over {takeover:.2f} s later; leases per worker {grants}; {time.monotonic() - started:.1f} s"
    )

    assert exits == {name: 0 for name in fleet.processes if name != victim}
    assert set(rows) == mail.message_ids and set(rows.values()) == {1}  # none lost, none doubled
    assert retriaged == 0  # no message triaged by two polls
    assert checkpoints == {f"box{n}": len(dovecot.uids(user)) for n, user in enumerate(mail.users)}
    assert all(SEEN in flags for user in mail.users for flags in dovecot.flags(user).values())
    assert {source: overlaps(spans) for source, spans in intervals.items()} == {
        f"box{n}": [] for n in range(SOURCES)
    }
    assert takeover < POLL_SECONDS + 2.0
    assert sum(1 for count in grants.values() if count) >= 2  # the work really was shared


def test_a_lease_is_refused_while_held_and_freed_when_its_holder_dies(tmp_path):
    require_postgres()
    with postgres_schema_url() as url:
        engine = create_engine(url)
        leases = leases_for(engine)
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLD_A_LEASE, url], stdout=subprocess.PIPE, text=True
        )
        try:
            assert holder.stdout.readline().strip() == "held"
            with leases.hold("box") as lease:
                assert lease is None
            with leases.hold("other box") as lease:
                assert lease is not None and lease.confirm()
            holder.kill()
            holder.wait()
            wait_for(lambda: _can_take(leases, "box"), 5, "the dead holder's lease to be freed")
        finally:
            holder.kill()
            leases.close()
            engine.dispose()


def test_sqlite_leases_are_file_locks_that_a_dead_process_releases(tmp_path):
    database = tmp_path / "store.db"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_A_LEASE, f"sqlite:///{database}"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        leases = FileLeases(str(database))
        assert not _can_take(leases, "box") and _can_take(leases, "other box")
        holder.kill()
        holder.wait()
        assert _can_take(leases, "box")
    finally:
        holder.kill()


def test_the_lease_key_is_the_same_everywhere_and_apart_per_schema():
    assert (
        lease_key("public", "inbox") == 7190604561121510721
    )  # a hash of the bytes: no per-process seed, as Python's hash() has
    assert (
        len({lease_key("public", "inbox"), lease_key("other", "inbox"), lease_key("public", "inbox2")}) == 3
    )


class CountingTriager:
    """The shared pipeline (one at a time), counting the messages this worker triaged."""

    def __init__(self, shared: OneAtATime):
        self.shared, self.count = shared, 0

    def triage_bytes(self, raw: bytes, source: str = "<bytes>", source_name: str | None = None):
        """Triage through the shared pipeline and count it."""
        self.count += 1
        return self.shared.triage_bytes(raw, source=source, source_name=source_name)


def test_a_watching_worker_keeps_the_lease_through_idle_and_another_takes_over_when_it_stops(
    mailbox, triager, tmp_path
):
    settings = Settings(
        sources=[mailbox.settings(watch=True)],
        store={"url": f"sqlite:///{tmp_path / 'store.db'}"},
        schedule={"poll_every": "1s"},
    )
    shared = OneAtATime(triager)  # two services in one process: spaCy must still run one message at a time
    counters = [CountingTriager(shared), CountingTriager(shared)]
    first, second = (Service(settings, triager=counter) for counter in counters)
    threads = [
        threading.Thread(target=service.watch, args=[service.sources[0], timedelta(seconds=1)])
        for service in (first, second)
    ]
    mailbox.append(sample_messages(1, "idle-first"))
    try:
        threads[0].start()
        wait_for(lambda: first.store.count() == 1, 15, "the first poll")
        threads[1].start()
        time.sleep(1.5)  # the first worker waits in IDLE, holding the lease; the second tries and skips
        mailbox.append(sample_messages(2, "idle-more"))
        wait_for(lambda: first.store.count() == 3, 10, "IDLE to announce the new mail")
        first.stop.set()  # the holder goes away: its lease is released
        threads[0].join(10)
        mailbox.append(sample_messages(2, "idle-taken-over"))
        wait_for(lambda: first.store.count() == 5, 10, "the second worker to take over")
        attempts = {row["attempts"] for row in first.store.rows()}
    finally:
        for service, thread in zip((first, second), threads):
            service.stop.set()
            if thread.is_alive():
                thread.join(10)
            service.close()
    assert [counter.count for counter in counters] == [3, 2]
    assert attempts == {1}


def test_a_lease_lost_mid_poll_ends_the_poll_after_the_batch_in_hand(mailbox, triager, caplog):
    require_postgres()
    mailbox.append(sample_messages(500, "lost"))
    with postgres_schema_url() as url:
        service = Service(
            Settings(sources=[mailbox.settings(fetch_chunk=50)], store={"url": url}), triager=triager
        )
        engine = create_engine(url)
        schema = current_schema(engine)
        outcome: list = []
        poll = threading.Thread(target=lambda: outcome.append(service.poll(service.sources[0])))
        try:
            poll.start()
            wait_for(lambda: service.store.count() >= 100, 30, "the first batch")
            with engine.begin() as connection:  # as an administrator or a server restart would
                connection.execute(
                    text("SELECT pg_terminate_backend(:pid)"),
                    {"pid": lease_session(engine, schema, "inbox")[0]},
                )
            poll.join(60)
            stopped_at = service.store.count()
            rest = service.poll(service.sources[0])
            rows = service.store.rows()
        finally:
            service.stop.set()
            poll.join(10)
            service.close()
            engine.dispose()
    assert outcome[0].error is None and "the lease was lost" in caplog.text
    assert stopped_at < 500, "the poll went on without its lease"
    assert rest.summary.triaged + rest.summary.failed == 500 - stopped_at
    assert len(rows) == 500 and {row["attempts"] for row in rows} == {1}


def _can_take(leases, name: str) -> bool:
    with leases.hold(name) as lease:
        return lease is not None


_HOLD_A_LEASE = """
import sys, time
from sqlalchemy import create_engine
from complaint_triage.store.leases import leases_for
with leases_for(create_engine(sys.argv[1])).hold("box") as lease:
    assert lease is not None
    print("held", flush=True)
    time.sleep(120)
"""
