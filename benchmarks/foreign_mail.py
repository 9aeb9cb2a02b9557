"""Mail nobody here wrote: triage and store every message found below DIR..., against Python's own reading.

    python benchmarks/foreign_mail.py DIR... [--slowest 5]

Every file below each DIR is read the way `complaint-triage process FILE` reads it (an mbox gives its
messages, any other file is one message), triaged and stored in a scratch SQLite store. Prints:
messages, records, stored failures by reason (fair: not mail to Python's parser either; unfair:
Python's parser reads headers from it), complaints found, every Subject/From that differs from what
Python's `email` package shows with policy=default, the slowest messages and peak RSS.
Exit status 1 when a failure is unfair, a complaint is found, a field differs for no known reason, or
a message took over SLOW_SECONDS of CPU time (wall time is printed too; on a shared machine it is the load's).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import resource
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from complaint_triage.errors import SourceError  # noqa: E402
from complaint_triage.pipeline.parse import MAX_HEADER_CHARS  # noqa: E402
from complaint_triage.pipeline.triage import default_triager  # noqa: E402
from complaint_triage.records import RawMessage, TriageRecord  # noqa: E402
from complaint_triage.sources.files import sources_for_path  # noqa: E402
from complaint_triage.store import Store  # noqa: E402

SLOW_SECONDS = 2.0
_RAW_BYTES = re.compile(r"[\udc80-\udcff]")
_WHY = {
    "python-undecoded": "Python shows raw 8-bit header bytes as U+FFFD or lone surrogates; the record decodes them",
    "bounded": f"bounded: the record keeps the first {MAX_HEADER_CHARS:,} characters of a header's source",
    "other": "other",
}
# Headers whose presence means Python's parser found a header block: a failure on such input is unfair.
_MAIL_HEADERS = (
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "received",
    "content-type",
    "mime-version",
    "return-path",
)


@dataclass
class Tally:
    """What happened to the messages found."""

    messages: int = 0
    unreadable_files: list[str] = field(default_factory=list)
    fair: Counter = field(default_factory=Counter)
    unfair: list[tuple[str, str]] = field(default_factory=list)
    complaints: list[tuple[str, str, str]] = field(default_factory=list)
    differing: list[tuple[str, str, str, str, str]] = field(default_factory=list)
    timings: list[tuple[float, float, str]] = field(default_factory=list)  # CPU seconds, wall seconds, source
    forwards: int = 0
    against_outer: bool = False  # compare a forward's record with the forwarder's own headers too


def _reason(error: str) -> str:
    """The kind of failure, without the message-specific detail."""
    return re.sub(r"\d+", "N", ": ".join(error.split(": ")[:2]))[:100]


def _shown(text: str) -> str:
    """A header as a client lays it out on one line: whitespace runs are one space."""
    return " ".join((text or "").split())


def python_reading(raw: bytes):
    """Python's own parse with policy=default, or None when it raises."""
    try:
        return email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:
        return None


def reads_as_mail(message) -> bool:
    """True when Python's parser found a header block with a mail header in it."""
    if message is None:
        return False
    try:
        return any(name.lower() in _MAIL_HEADERS for name in message)
    except Exception:
        return False


def python_subject(message) -> str | None:
    """The Subject Python shows, or None when Python cannot decode it."""
    try:
        value = message.get("Subject")
        return _shown(str(value)) if value is not None else ""
    except Exception:
        return None


def python_from(message) -> str | None:
    """The From Python shows as 'Name <address>', or None when Python cannot decode it."""
    try:
        value = message.get("From")
        if value is None:
            return ""
        addresses = value.addresses
    except Exception:
        return None
    if not addresses:
        return _shown(str(value))
    name, address = _shown(addresses[0].display_name), addresses[0].addr_spec.strip().lower()
    if address == "<>":
        address = ""
    return f"{name} <{address}>" if name and address else (address or name)


def forwarded_original(message):
    """Python's reading of the message a forward attaches, or None (an inline forward)."""
    try:
        for part in message.walk():
            if part.get_content_type() == "message/rfc822":
                return part.get_payload(0)
    except Exception:
        return None
    return None


def compare_fields(label: str, record: TriageRecord, message, tally: Tally) -> None:
    """Note each of Subject and From that the record shows differently from Python (for a forward: from its original)."""
    if record.forwarded_by:
        tally.forwards += 1
    if record.forwarded_by and not tally.against_outer:
        message = forwarded_original(message)
        if message is None:  # the original is text in the body: there are no headers of it to compare with
            return
    expected_subject, expected_from = python_subject(message), python_from(message)
    raw_8bit = _has_raw_8bit_headers(message)
    if expected_subject is not None and _shown(record.subject) != expected_subject:
        tally.differing.append(
            (
                label,
                "Subject",
                record.subject,
                expected_subject,
                _why(record.subject, expected_subject, raw_8bit),
            )
        )
    if expected_from is not None and _shown(record.from_).lower() != expected_from.lower():
        tally.differing.append(
            (label, "From", record.from_, expected_from, _why(record.from_, expected_from, raw_8bit))
        )


def _has_raw_8bit_headers(message) -> bool:
    """True when a header holds raw 8-bit bytes (Python keeps them as lone surrogates in the source)."""
    try:
        return any(_RAW_BYTES.search(value) for _name, value in message.raw_items())
    except Exception:
        return False


def _why(ours: str, python: str, raw_8bit: bool) -> str:
    """Why a field differs: Python shows raw bytes as U+FFFD or surrogates, the record bounds a header, or other."""
    if raw_8bit and (_RAW_BYTES.search(python) or "\ufffd" in python):
        return "python-undecoded"
    if len(python) > MAX_HEADER_CHARS and python.startswith(_shown(ours)):
        return "bounded"
    return "other"


def messages_of(path: Path, tally: Tally):
    """The messages of one file, read as `process` reads a path."""
    try:
        yield from sources_for_path(path).fetch_messages()
    except (SourceError, OSError, ValueError) as exc:
        tally.unreadable_files.append(f"{path}: {exc}")


def triage_one(message: RawMessage, triager, store: Store, tally: Tally) -> None:
    """Triage, store and judge one message."""
    tally.messages += 1
    started, cpu_started = time.perf_counter(), time.process_time()
    record = triager.triage_bytes(message.raw, source=message.source, source_name="foreign")
    store.save(message, record)
    tally.timings.append((time.process_time() - cpu_started, time.perf_counter() - started, message.source))
    reading = python_reading(message.raw)
    if record.error:
        if reads_as_mail(reading):
            tally.unfair.append((message.source, record.error))
        else:
            tally.fair[_reason(record.error)] += 1
        return
    if record.is_complaint:
        tally.complaints.append((message.source, record.kind, record.subject))
    if reading is not None:
        compare_fields(message.source, record, reading, tally)


def run(directories: list[Path], against_outer: bool = False) -> tuple[Tally, int]:
    """Triage every message below DIRECTORIES into a scratch store; the tally and the stored record count."""
    triager, tally = default_triager(), Tally(against_outer=against_outer)
    with tempfile.TemporaryDirectory() as scratch:
        store = Store(f"sqlite:///{Path(scratch) / 'foreign.db'}")
        try:
            for directory in directories:
                files = (
                    [directory]
                    if directory.is_file()
                    else sorted(p for p in directory.rglob("*") if p.is_file())
                )
                for path in files:
                    for message in messages_of(path, tally):
                        triage_one(message, triager, store, tally)
            return tally, store.count()
        finally:
            store.close()


def report(tally: Tally, records: int, slowest: int) -> None:
    """Print the figures."""
    unfair_reasons = Counter(_reason(error) for _source, error in tally.unfair)
    print(f"messages            {tally.messages}")
    print(f"records stored      {records}")
    print(f"failures, fair      {sum(tally.fair.values())}  {dict(tally.fair)}")
    print(f"failures, unfair    {len(tally.unfair)}  {dict(unfair_reasons)}")
    for source, error in tally.unfair:
        print(f"  unfair  {source}: {error}")
    print(f"unreadable files    {len(tally.unreadable_files)}")
    for line in tally.unreadable_files:
        print(f"  {line}")
    print(f"complaints          {len(tally.complaints)}")
    for source, kind, subject in tally.complaints:
        print(f"  {kind:<22} {source}: {subject[:80]!r}")
    compared = "the forwarder's headers" if tally.against_outer else "the original they attach"
    print(f"unwrapped forwards  {tally.forwards} (compared with {compared})")
    print(
        f"differing fields    {len(tally.differing)} (Subject {sum(d[1] == 'Subject' for d in tally.differing)}, "
        f"From {sum(d[1] == 'From' for d in tally.differing)})"
    )
    verdicts = Counter(why for *_fields, why in tally.differing)
    print("  " + ", ".join(f"{count} {_WHY[why]}" for why, count in verdicts.most_common()))
    for source, name, ours, python, why in tally.differing:
        print(
            f"  {name:<7} {source}  ({_WHY[why]})\n      ours   {ours[:120]!r}\n      python {python[:120]!r}"
        )
    timings = sorted(tally.timings, reverse=True)
    over_cpu = sum(cpu > SLOW_SECONDS for cpu, _wall, _ in timings)
    over_wall = sum(wall > SLOW_SECONDS for _cpu, wall, _ in timings)
    print(
        f"over {SLOW_SECONDS:g} s           {over_cpu} in CPU time, {over_wall} in wall time (the machine's load adds to the wall)"
    )
    print("slowest (CPU s, wall s)")
    for cpu, wall, source in timings[:slowest]:
        print(f"  {cpu:7.3f} {wall:7.3f}  {source}")
    print(f"peak RSS            {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


def main(argv: list[str] | None = None) -> int:
    """Run over the directories given; exit 1 on an unfair failure or a slow message."""
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("directories", nargs="+", type=Path)
    options.add_argument("--slowest", type=int, default=5)
    options.add_argument(
        "--against-outer",
        action="store_true",
        help="set forwards against the forwarder's headers, not the original's",
    )
    args = options.parse_args(argv)
    tally, records = run(args.directories, args.against_outer)
    report(tally, records, args.slowest)
    slow = any(cpu > SLOW_SECONDS for cpu, _wall, _ in tally.timings)
    unexplained = any(why == "other" for *_fields, why in tally.differing)
    return 1 if tally.unfair or slow or tally.complaints or unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
