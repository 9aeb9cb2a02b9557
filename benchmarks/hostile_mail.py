"""Hostile mail at volume: the test suite's strategies over 10,000+ generated messages, in one run.

    python benchmarks/hostile_mail.py [--messages 10000] [--attachments 300] [--seed 1] [--postgres URL]

Every message is triaged and stored (SQLite, and PostgreSQL with --postgres). Prints the counts:
messages, records, failures by reason, crashes (anything escaping triage or the store, or a
record that breaks the contract), internal errors, hangs, the slowest message, and peak RSS.
Then --attachments covering mails, each with one generated attachment (letters, bombs, broken and
encrypted files, in turn), are triaged and stored the same way: per attachment type, the statuses,
the extraction time (median, 95th percentile, worst), the reading process's peak RSS, and this
process's RSS before and after. Exit status 1 when anything crashed or hung.
"""

from __future__ import annotations

import argparse
import re
import resource
import signal
import sys
import tempfile
import time
import traceback
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings

from complaint_triage.attachments.reading import read_all
from complaint_triage.pipeline.triage import Triager, default_triager
from complaint_triage.store import Store
from complaint_triage.testing.attachment_files import (
    GENERATED_KINDS,
    generated_attachment,
    mail_with_attachment,
)
from complaint_triage.testing.hostile import hostile_messages, triage_and_store

HANG_SECONDS = 60
ROUND = 500
SLOW_SECONDS = 5


class Hang(BaseException):
    """Raised by the alarm; a BaseException so that the pipeline's own `except Exception` cannot swallow it."""


@dataclass
class Tally:
    """What happened to the generated messages."""

    messages: int = 0
    records: int = 0
    failures: Counter = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    hangs: int = 0
    slow: int = 0
    slowest: tuple[float, int] = (0.0, 0)
    rss_after_warm_up_mb: float = 0.0
    rss_samples: list[float] = field(default_factory=list)


def _reason(error: str) -> str:
    """The kind of failure, without the message-specific detail."""
    return re.sub(r"\d+", "N", ": ".join(error.split(": ")[:2]))[:100]


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _on_alarm(_signum, _frame):
    raise Hang(f"no outcome within {HANG_SECONDS} s")


def _keep(directory: Path | None, name: str, raw: bytes) -> None:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{name}.eml").write_bytes(raw)


def run(
    count: int,
    seed_value: int,
    stores: list[Store],
    keep: Path | None = None,
    slow_seconds: float = SLOW_SECONDS,
) -> Tally:
    """Triage and store COUNT generated messages, in rounds of ROUND; with KEEP, write the crashing, hanging and slow ones there.

    Hypothesis keeps a record of every example it generates within one run (its data tree), which
    grows with the size of the messages; separate rounds with their own seeds keep that out of
    the memory figures, which are meant to show the pipeline's.
    """
    tally = Tally()
    triager = default_triager("UTC")
    started_run = time.perf_counter()
    signal.signal(signal.SIGALRM, _on_alarm)
    for round_number in range(0, count, ROUND):
        _round(
            min(ROUND, count - round_number),
            seed_value * 100_003 + round_number,
            triager,
            stores,
            tally,
            keep,
            slow_seconds,
            started_run,
        )
    return tally


def _current_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:")) / 1024


def _round(
    count: int,
    seed_value: int,
    triager,
    stores: list[Store],
    tally: Tally,
    keep: Path | None,
    slow_seconds: float,
    started_run: float,
) -> None:
    @seed(seed_value)
    @settings(
        max_examples=count,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(raw=hostile_messages())
    def one(raw: bytes) -> None:
        tally.messages += 1
        started = time.perf_counter()
        signal.alarm(HANG_SECONDS)
        try:
            record = triage_and_store(raw, triager, stores, source=f"generated#{tally.messages}")
        except Hang:
            tally.hangs += 1
            _keep(keep, f"hang-{tally.messages}", raw)
            return
        except BaseException as exc:  # noqa: BLE001 - counting, not handling: every escape is a crash
            tally.crashes.append(
                f"#{tally.messages} ({len(raw)} bytes): {type(exc).__name__}: {str(exc)[:200]}\n{traceback.format_exc(limit=-3)}"
            )
            _keep(keep, f"crash-{tally.messages}", raw)
            return
        finally:
            signal.alarm(0)
        elapsed = time.perf_counter() - started
        if elapsed > slow_seconds:
            tally.slow += 1
            _keep(keep, f"slow-{tally.messages}-{elapsed:.0f}s", raw)
        tally.slowest = max(tally.slowest, (elapsed, len(raw)))
        if record.error:
            tally.failures[_reason(record.error)] += 1
        else:
            tally.records += 1
        if tally.messages == ROUND:
            tally.rss_after_warm_up_mb = _current_rss_mb()
        if tally.messages % 1000 == 0:
            tally.rss_samples.append(_current_rss_mb())
            print(
                f"  ... {tally.messages} messages, {time.perf_counter() - started_run:.0f} s, RSS now {tally.rss_samples[-1]:.0f} MB, peak {_peak_rss_mb():.0f} MB",
                file=sys.stderr,
                flush=True,
            )

    one()


def report(tally: Tally, seconds: float, backends: list[str], slow_seconds: float) -> None:
    """Print the figures."""
    print(f"backends:            {', '.join(backends)}")
    print(f"messages:            {tally.messages}  ({seconds:.0f} s, {tally.messages / seconds:.0f} msg/s)")
    print(f"records:             {tally.records}")
    print(f"stored failures:     {sum(tally.failures.values())}")
    for reason, number in tally.failures.most_common():
        print(f"  {number:7d}  {reason}")
    print(f"crashes:             {len(tally.crashes)}")
    for crash in tally.crashes[:10]:
        print("  " + crash.replace("\n", "\n    "))
    print(f"hangs (> {HANG_SECONDS} s):     {tally.hangs}")
    print(f"slower than {slow_seconds:g} s:     {tally.slow}")
    print(f"slowest message:     {tally.slowest[0]:.2f} s ({tally.slowest[1]} bytes)")
    print(f"peak RSS:            {_peak_rss_mb():.0f} MB (the largest single message sets it)")
    print(
        f"RSS after {ROUND} messages: {tally.rss_after_warm_up_mb:.0f} MB; every 1,000: {' '.join(f'{mb:.0f}' for mb in tally.rss_samples)} MB"
    )


@dataclass
class AttachmentTally:
    """Per attachment type: statuses, extraction seconds, the reading process's peak KiB."""

    statuses: dict[str, Counter] = field(default_factory=dict)
    seconds: dict[str, list[float]] = field(default_factory=dict)
    peaks: dict[str, list[int]] = field(default_factory=dict)
    worst: tuple[float, str, str] = (0.0, "", "")
    crashes: list[str] = field(default_factory=list)
    rss_mb: tuple[float, float] = (0.0, 0.0)


def _timed_reader(reader, timings: list):
    """The sandboxed reader's read_one, timed from this side, with the child's own figures."""

    def read_one(data: bytes):
        reader.last_reply = {}
        started = time.perf_counter()
        extraction = reader.read_one(data)
        timings.append((time.perf_counter() - started, reader.last_reply.get("peak_kib"), extraction))
        return extraction

    return lambda attachments: read_all(attachments, read_one, reader.limits)


def run_attachments(count: int, seed_value: int, stores: list[Store]) -> AttachmentTally:
    """Triage and store COUNT covering mails, each with one generated attachment, the types in turn."""
    import random

    base = default_triager("UTC")
    reader = base.read_attachments
    timings: list = []
    triager = Triager(base.nlp, base.tables, "UTC", _timed_reader(reader, timings))
    rng, tally = random.Random(seed_value), AttachmentTally()
    for number in range(count):
        kind = GENERATED_KINDS[number % len(GENERATED_KINDS)]
        raw = mail_with_attachment(
            "Please see the attached letter on behalf of our client.",
            [(f"{number}.bin", "application/octet-stream", generated_attachment(rng, kind))],
            message_id=f"<attachment-{seed_value}-{number}@bench.invalid>",
        )
        if number == len(GENERATED_KINDS):  # every type once: the child started, bombs built
            tally.rss_mb = (_current_rss_mb(), 0.0)
        try:
            triage_and_store(raw, triager, stores, source=f"attachment#{number}")
        except Exception as exc:  # noqa: BLE001 - counting, not handling
            tally.crashes.append(f"#{number} {kind}: {type(exc).__name__}: {exc}")
            continue
        seconds, peak, extraction = timings[-1]
        tally.statuses.setdefault(kind, Counter())[extraction.status] += 1
        tally.seconds.setdefault(kind, []).append(seconds)
        if peak:
            tally.peaks.setdefault(kind, []).append(peak)
        tally.worst = max(
            tally.worst,
            (seconds, kind, extraction.status + (f": {extraction.reason}" if extraction.reason else "")),
        )
    tally.rss_mb = (tally.rss_mb[0], _current_rss_mb())
    return tally


def report_attachments(tally: AttachmentTally, seconds: float) -> None:
    """Print the figures per attachment type."""
    total = sum(len(values) for values in tally.seconds.values())
    print(f"attachments:         {total} ({seconds:.0f} s), crashes {len(tally.crashes)}")
    print(f"  {'type':28} {'n':>4} {'median s':>9} {'p95 s':>7} {'max s':>7} {'peak MB':>8}  statuses")
    for kind, values in tally.seconds.items():
        ordered = sorted(values)
        peak = max(tally.peaks.get(kind, [0])) / 1024
        statuses = ", ".join(f"{status} {n}" for status, n in tally.statuses[kind].most_common())
        print(
            f"  {kind:28} {len(values):4d} {ordered[len(ordered) // 2]:9.3f} {ordered[int(len(ordered) * 0.95)]:7.3f} {ordered[-1]:7.3f} {peak:8.0f}  {statuses}"
        )
    print(f"  worst case: {tally.worst[0]:.2f} s, {tally.worst[1]} ({tally.worst[2]})")
    print(
        f"  this process's RSS: {tally.rss_mb[0]:.0f} MB after one of each type, {tally.rss_mb[1]:.0f} MB at the end"
    )
    for crash in tally.crashes[:10]:
        print("  crash " + crash)


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument(
        "--attachments",
        type=int,
        default=300,
        help="covering mails with one generated attachment each (0: none)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also store into this PostgreSQL database (its `messages` table is used)",
    )
    parser.add_argument(
        "--slow-seconds", type=float, default=SLOW_SECONDS, help="count (and keep) messages slower than this"
    )
    parser.add_argument(
        "--keep",
        type=Path,
        metavar="DIR",
        help="write crashing, hanging and slow messages to DIR as .eml files",
    )
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        stores = [Store(f"sqlite:///{Path(scratch) / 'hostile.db'}")]
        if options.postgres:
            stores.append(Store(options.postgres))
        started = time.perf_counter()
        tally = run(options.messages, options.seed, stores, options.keep, options.slow_seconds)
        report(
            tally,
            time.perf_counter() - started,
            [store.engine.dialect.name for store in stores],
            options.slow_seconds,
        )
        started = time.perf_counter()
        attachments = run_attachments(options.attachments, options.seed, stores)
        if options.attachments:
            report_attachments(attachments, time.perf_counter() - started)
        for store in stores:
            store.close()
    raise SystemExit(1 if tally.crashes or tally.hangs or attachments.crashes else 0)


if __name__ == "__main__":
    main()
