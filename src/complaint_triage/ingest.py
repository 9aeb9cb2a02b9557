"""Drive messages from a source through triage into the store, in committed batches."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable

from complaint_triage.models import RawMessage, TriageRecord
from complaint_triage.pipeline import Triager
from complaint_triage.store import Store

BATCH_SIZE = 100


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


def ingest(
    messages: Iterable[RawMessage],
    triager: Triager,
    store: Store | None,
    on_record: Callable[[TriageRecord], None] | None = None,
    settle: Callable[[list[RawMessage]], None] | None = None,
    batch_size: int = BATCH_SIZE,
) -> IngestSummary:
    """Triage every message; commit each batch, then let the source settle what was committed."""
    summary = IngestSummary()
    batch: list[tuple[RawMessage, TriageRecord]] = []
    for message in messages:
        record = triager.triage_bytes(message.raw, source=message.source, source_name=message.source_name)
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
