"""First IMAP sync of N messages from a local Dovecot, against the floor of a bare imapclient fetch, in one run.

    python benchmarks/imap_sync.py [--messages 5000] [--rounds 5] [--pad-kib 0]

Starts a private Dovecot (tests/dovecot.py; needs dovecot-imapd and root, which it drops),
delivers N generated messages with APPEND, then measures, each from a fresh connection:
  floor      a bare imapclient session: SEARCH, then UID FETCH BODY.PEEK[] of every message in
             batches of the source's fetch chunk, nothing done with the bodies;
  ingestion  the IMAP source and the service's poll with triage switched off: size checks (SEARCH
             LARGER), body fetches, the raw message and a record of its identity stored in SQLite,
             checkpoint, status and case links in the same commits;
  end to end the same poll with the real triage pipeline;
  empty poll a poll that finds nothing new, on the service's open connection (median of 25).
Floor and ingestion alternate for --rounds rounds (each into a fresh store) and the medians are
printed, with this process's CPU time per message (Dovecot runs in its own processes), which
shows where the difference goes on a machine that other work keeps busy.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import tempfile
import time
from pathlib import Path

from imapclient import IMAPClient

from complaint_triage.cli.common import freeze_startup_heap
from complaint_triage.ingest import BATCH_SIZE
from complaint_triage.pipeline.parse import message_identity
from complaint_triage.records import TriageRecord
from complaint_triage.service import Service
from complaint_triage.settings import Settings
from complaint_triage.store import Store
from complaint_triage.testing.dovecot import PASSWORD, Dovecot, dovecot_available
from complaint_triage.testing.generate import generate

PASSWORD_ENV = "COMPLAINT_TRIAGE_BENCH_IMAP_PASSWORD"
CHUNK = 200  # the source's default fetch_chunk, used by both sides
TARGET_RATIO = 0.7  # ingestion throughput over the floor's, as the issue asks


_MESSAGE_ID = re.compile(rb"(?im)^message-id:[ \t]*(<[^>\r\n]{1,900}>)")


class NoTriage:
    """Triage switched off: a minimal record with the store identity (the Message-ID, else a hash of the bytes)."""

    def triage_bytes(
        self, raw: bytes, source: str = "<bytes>", source_name: str | None = None
    ) -> TriageRecord:
        """A record that says nothing but which message it is and where it came from."""
        header_end = raw.find(b"\r\n\r\n")
        found = _MESSAGE_ID.search(raw, 0, header_end if header_end >= 0 else len(raw))
        return TriageRecord(
            message_id=message_identity(raw, found.group(1).decode("ascii", "replace") if found else None),
            source=source,
            source_name=source_name,
        )


def bare_fetch(server: Dovecot, user: str) -> int:
    """The floor: a bare session fetches every body in batches of CHUNK; returns the bytes fetched."""
    client = IMAPClient("127.0.0.1", server.plain_port, ssl=False)
    client.login(user, PASSWORD)
    client.select_folder("INBOX", readonly=True)
    uids = client.search("ALL")
    fetched = 0
    for first in range(0, len(uids), CHUNK):
        fetched += sum(
            len(data[b"BODY[]"])
            for data in client.fetch(uids[first : first + CHUNK], ["BODY.PEEK[]"]).values()
        )
    client.logout()
    return fetched


def service_for(server: Dovecot, user: str, database: Path, triager=None) -> Service:
    """A service with one IMAP source on the mailbox and a fresh SQLite store."""
    source = {
        "name": "bench",
        "type": "imap",
        "host": "127.0.0.1",
        "port": server.plain_port,
        "security": "none",
        "username": user,
        "password_env": PASSWORD_ENV,
        "fetch_chunk": CHUNK,
    }
    settings = Settings(sources=[source], store={"url": f"sqlite:///{database}"})
    service = Service(settings, store=Store(settings.store.url), triager=triager)
    freeze_startup_heap()  # as `complaint-triage run` does once the service is built
    return service


def timed(run, *args) -> tuple[float, float]:
    """Wall-clock and CPU seconds (this process) of RUN(*ARGS)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(*args)
    return time.perf_counter() - wall, time.process_time() - cpu


def poll_checked(service: Service, expected: int) -> None:
    """One poll of the service's only source, checked to leave EXPECTED messages stored."""
    outcome = service.poll(service.sources[0])
    if outcome.error or service.store.count() != expected:
        raise SystemExit(f"poll failed: {outcome.error or service.store.count()}")


def poll_seconds(service: Service, expected: int) -> float:
    """Seconds for one checked poll."""
    return timed(poll_checked, service, expected)[0]


def empty_poll_ms(service: Service, expected: int, repeat: int = 25) -> float:
    """Median milliseconds of a poll that finds nothing new."""
    return statistics.median(poll_seconds(service, expected) * 1000 for _ in range(repeat))


def deliver(server: Dovecot, user: str, count: int, scratch: Path, pad_kib: int = 0) -> int:
    """Append COUNT generated messages (each with PAD_KIB KiB of trailing filler); returns their total size in bytes."""
    filler = b"".join(b"%-76s\r\n" % b"-- filler" for _ in range(pad_kib * 1024 // 78))
    raws = [path.read_bytes() + filler for path in generate(count, scratch / "mail")]
    server.append(user, raws)
    return sum(len(raw) for raw in raws)


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000, help="How many messages to deliver and sync.")
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="Rounds of floor and ingestion, alternating; medians are printed.",
    )
    parser.add_argument(
        "--pad-kib",
        type=int,
        default=0,
        help="Append this much filler to every message (the generated ones average 2 KiB; real notices with HTML are tens of KiB).",
    )
    args = parser.parse_args()
    if not dovecot_available():
        raise SystemExit("needs dovecot-imapd, openssl and root (Dovecot drops to its own users)")
    os.environ[PASSWORD_ENV] = PASSWORD
    server = Dovecot()
    server.start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            run(server, args.messages, args.rounds, Path(scratch), args.pad_kib)
    finally:
        server.destroy()


def machine() -> str:
    """Cores, CPU model, Python and the load average, so that a figure can be read in context."""
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f}"


def run(server: Dovecot, count: int, rounds: int, scratch: Path, pad_kib: int = 0) -> None:
    """Deliver, measure, print."""
    user = server.new_user()
    size = deliver(server, user, count, scratch, pad_kib)
    print(f"machine: {machine()}")
    print(
        f"mail: {count} messages, {size / count / 1024:.1f} KiB average; fetch chunk {CHUNK}, commit batch {BATCH_SIZE}; medians of {rounds} rounds"
    )
    bare_fetch(server, user)  # warm Dovecot's index and cache and the page cache for everyone
    floors, ingestions = [], []
    for index in range(rounds):
        floors.append(timed(bare_fetch, server, user))
        service = service_for(server, user, scratch / f"ingest{index}.db", NoTriage())
        ingestions.append(timed(poll_checked, service, count))
        service.close()
    floor_rate, ingest_rate = (
        show_rate("floor: bare imapclient UID FETCH BODY.PEEK[]", floors, count),
        show_rate("ingestion only (triage off)", ingestions, count),
    )
    verdict = "met" if ingest_rate / floor_rate >= TARGET_RATIO else "NOT met"
    print(f"ingestion / floor: {ingest_rate / floor_rate:.2f}  (target {TARGET_RATIO}: {verdict})")
    service = service_for(server, user, scratch / "end-to-end.db", None if not pad_kib else NoTriage())
    end_to_end = timed(poll_checked, service, count)
    if not pad_kib:  # the filler would be triaged as text: no figure for real mail
        show_rate("end to end (with triage)", [end_to_end], count)
    print(f"empty poll (nothing new, open connection): {empty_poll_ms(service, count):.1f} ms median of 25")
    service.close()


def show_rate(label: str, timings: list[tuple[float, float]], count: int) -> float:
    """Print one figure (median msg/s, microseconds and CPU microseconds per message, every round); return the msg/s."""
    wall, cpu = statistics.median(t[0] for t in timings), statistics.median(t[1] for t in timings)
    rounds = " ".join(f"{count / t[0]:.0f}" for t in timings)
    print(
        f"{label:46s} {count / wall:7.0f} msg/s  {wall / count * 1e6:6.0f} us/msg  CPU {cpu / count * 1e6:5.0f} us/msg   rounds: {rounds}"
    )
    return count / wall


if __name__ == "__main__":
    main()
