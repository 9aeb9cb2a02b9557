"""Drive messages from a source through triage into the store, in committed batches."""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass, field
from itertools import islice
from typing import Callable, Iterable, Iterator

from complaint_triage.models import RawMessage, TriageRecord
from complaint_triage.pipeline import Triager
from complaint_triage.store import Store

BATCH_SIZE = 100
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


def _triage_in_worker(message: RawMessage) -> TriageRecord:
    return _worker_triager.triage_bytes(message.raw, source=message.source, source_name=message.source_name)


def _batches(messages: Iterable[RawMessage], size: int) -> Iterator[list[RawMessage]]:
    iterator = iter(messages)
    while batch := list(islice(iterator, size)):
        yield batch


def triage_stream(messages: Iterable[RawMessage], triager: Triager, workers: int = 1, batch_size: int = BATCH_SIZE) -> Iterator[tuple[RawMessage, TriageRecord]]:
    """Triage messages in input order; with workers > 1, forked processes triage one batch while the next is read."""
    if workers <= 1:
        for message in messages:
            yield message, triager.triage_bytes(message.raw, source=message.source, source_name=message.source_name)
        return
    global _worker_triager
    _worker_triager = triager
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        pending = None
        for batch in _batches(messages, batch_size):
            submitted = (batch, pool.map_async(_triage_in_worker, batch, chunksize=max(1, len(batch) // (workers * 4))))
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
) -> IngestSummary:
    """Triage every message; commit each batch, then let the source settle what was committed."""
    summary = IngestSummary()
    batch: list[tuple[RawMessage, TriageRecord]] = []
    for message, record in triage_stream(messages, triager, workers, batch_size):
        summary.add(record)
        if on_record is not None:
            on_record(record)
        batch.append((message, record))
        if len(batch) >= batch_size:
            _commit(batch, store, settle, summary)
            batch = []
    _commit(batch, store, settle, summary)
    return summary


def _commit(batch, store: Store | None, settle, summary: IngestSummary) -> None:
    if not batch:
        return
    if store is not None:
        summary.stored += store.save_many(batch)
    if settle is not None and store is not None:  # a mailbox is touched only after its records are committed
        settle([message for message, _ in batch])
