"""Drive messages from a source through triage into the store, in committed batches."""

from __future__ import annotations

import multiprocessing
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Iterator, TypeVar

from complaint_triage.pipeline.triage import Triager, failed_record
from complaint_triage.records import RawMessage, TriageRecord
from complaint_triage.store import Store

# A batch is committed at BATCH_SIZE messages, BATCH_BYTES of raw mail or BATCH_SECONDS after its
# first message (`[store] commit_seconds`), whichever comes first. Without triage (a first sync that only stores, a
# benchmark) the count bounds it and a commit's fixed cost (statement set-up, checkpoint and status
# rows, case look-ups) is spread thin; with triage at a few ms a message, the time bounds it, so
# records reach the store and the checkpoint advances every second, and a crash repeats at most
# that much work. The byte bound keeps a batch of large messages a few MiB in memory.
BATCH_SIZE = 500
BATCH_BYTES = 16 * 1024 * 1024
BATCH_SECONDS = 1.0
T = TypeVar("T")
_worker_triager: Triager | None = None  # set in the parent before forking, inherited by workers


@dataclass
class IngestSummary:
    """What one run of ingestion did."""

    triaged: int = 0
    failed: int = 0
    stored: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, record: TriageRecord) -> None:
        """Count one record."""
        if record.error:
            self.failed += 1
            self.failures.append(f"{record.source}: {record.error}")
        else:
            self.triaged += 1

    def merge(self, other: "IngestSummary") -> "IngestSummary":
        """Add another run's counts to this one."""
        self.triaged += other.triaged
        self.failed += other.failed
        self.stored += other.stored
        self.failures += other.failures
        return self


def triage_message(triager: Triager, message: RawMessage) -> TriageRecord:
    """Triage one message; one its source could not fetch whole (over the size limit) is recorded with the reason."""
    if message.unfetched_reason:
        return failed_record(message.raw, message.source, message.source_name, message.unfetched_reason)
    return triager.triage_bytes(message.raw, source=message.source, source_name=message.source_name)


def _triage_in_worker(message: RawMessage) -> TriageRecord:
    return triage_message(_worker_triager, message)


def _batches(
    items: Iterable[T], size: int, raw_of: Callable[[T], bytes], seconds: float | None = None
) -> Iterator[list[T]]:
    """ITEMS in lists of at most SIZE items or BATCH_BYTES of raw mail; with SECONDS, also cut once a list has been open that long."""
    batch: list[T] = []
    held, opened = 0, 0.0
    for item in items:
        if not batch:
            opened = time.monotonic()
        batch.append(item)
        held += len(raw_of(item))
        if (
            len(batch) >= size
            or held >= BATCH_BYTES
            or (seconds is not None and time.monotonic() - opened >= seconds)
        ):
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def _raw(message: RawMessage) -> bytes:
    return message.raw


def triage_stream(
    messages: Iterable[RawMessage], triager: Triager, workers: int = 1, batch_size: int = BATCH_SIZE
) -> Iterator[tuple[RawMessage, TriageRecord]]:
    """Triage messages in input order; with workers > 1, forked processes triage one batch while the next is read."""
    if workers <= 1:
        for message in messages:
            yield message, triage_message(triager, message)
        return
    global _worker_triager
    _worker_triager = triager
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pending = None
        for batch in _batches(messages, batch_size, _raw):
            submitted = (
                batch,
                pool.map_async(_triage_in_worker, batch, chunksize=max(1, len(batch) // (workers * 4))),
            )
            if pending is not None:
                yield from zip(pending[0], pending[1].get())
            pending = submitted
        if pending is not None:
            yield from zip(pending[0], pending[1].get())


def ingest(
    messages: Iterable[RawMessage],
    triager: Triager,
    store: Store | None,
    on_record: Callable[[TriageRecord], None] | None = None,
    settle: Callable[[list[RawMessage]], None] | None = None,
    batch_size: int = BATCH_SIZE,
    workers: int = 1,
    on_commit: Callable[[Any, list[RawMessage]], None] | None = None,
    durable: bool = False,
    batch_seconds: float = BATCH_SECONDS,
) -> IngestSummary:
    """Triage every message; commit each batch (with ON_COMMIT's writes, e.g. a checkpoint), then let the source settle it.

    DURABLE: the source flags or moves mail once it is committed, so each commit must survive a
    power loss before that happens (see Store.save_many). BATCH_SECONDS: how long a batch may
    stay open before it is committed.
    """
    summary = IngestSummary()

    def counted(
        pairs: Iterator[tuple[RawMessage, TriageRecord]],
    ) -> Iterator[tuple[RawMessage, TriageRecord]]:
        for message, record in pairs:
            summary.add(record)
            if on_record is not None:
                on_record(record)
            yield message, record

    for batch in _batches(
        counted(triage_stream(messages, triager, workers, batch_size)),
        batch_size,
        lambda pair: pair[0].raw,
        batch_seconds,
    ):
        _commit(batch, store, settle, summary, on_commit, durable)
    return summary


def _commit(
    batch, store: Store | None, settle, summary: IngestSummary, on_commit=None, durable: bool = False
) -> None:
    if not batch:
        return
    committed = [message for message, _ in batch]
    if store is not None:
        summary.stored += store.save_many(
            batch,
            None if on_commit is None else lambda connection: on_commit(connection, committed),
            durable=durable,
        )
    if settle is not None and store is not None:  # a mailbox is touched only after its records are committed
        settle(committed)
