"""The interface every mail source implements."""

from __future__ import annotations

from typing import Any, Iterator, Protocol, runtime_checkable

from complaint_triage.records import FolderCheckpoint, RawMessage


class CheckpointLedger(Protocol):
    """How far each folder of a source is committed: kept by the store, handed to a source by the service.

    `advance` runs inside the transaction that commits the records it covers (`transaction` is the
    store's open connection), so a checkpoint can never run ahead of its records.
    """

    def folder(self, source_name: str, folder: str) -> FolderCheckpoint:
        """The folder's checkpoint (a fresh one when it was never polled)."""
        ...

    def advance(self, transaction: Any, source_name: str, folder: str, mark: FolderCheckpoint) -> None:
        """Move the checkpoint forward inside the caller's transaction."""
        ...

    def save(self, source_name: str, folder: str, mark: FolderCheckpoint) -> None:
        """Move the checkpoint forward in a transaction of its own."""
        ...


@runtime_checkable
class MailSource(Protocol):
    """Yields raw messages; settles them (flag, move) only once their records are committed."""

    name: str

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield the messages not yet seen, oldest first."""
        ...

    def settle(self, messages: list[RawMessage]) -> None:
        """Act on messages whose records are committed (no-op for read-only sources)."""
        ...
