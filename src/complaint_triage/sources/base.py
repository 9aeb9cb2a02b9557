"""The interface every mail source implements."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Iterator, Protocol

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


class MailSource:
    """Every source of mail: saved files, IMAP, Microsoft Graph, Gmail.

    The service calls only these, and the defaults fit saved mail, which is read and never changed:
    a source overrides what it does differently.
    """

    name: str = ""
    scope: str = ""  # the part of the mailbox a cursor belongs to (uses_cursor)
    touches_mailbox: bool = False  # settle() flags or moves mail, so its commits wait for the disk
    watches: bool = False  # wait_for_mail() can wait for new mail (IMAP IDLE)
    uses_cursor: bool = False  # resumes from a cursor the store commits with the records (the API sources)
    keeps_place: bool = (
        False  # fetches only what is new by itself (IMAP UIDs); otherwise what the store holds is skipped
    )
    backlog: int = 0  # messages known to be waiting after the last poll
    token_expires_at: datetime | None = None  # when the access token in use expires, where known

    def fetch_messages(self, cursor: str | None = None) -> Iterator[RawMessage]:
        """Yield the messages not yet seen, oldest first (from CURSOR, for a source that uses one)."""
        raise NotImplementedError

    def settle(self, messages: list[RawMessage]) -> None:
        """Act on messages whose records are committed (flag, move); saved mail is left as it is."""

    def record_progress(self, transaction: Any, messages: list[RawMessage]) -> None:
        """Advance the source's own checkpoint inside the transaction that commits MESSAGES."""

    def cursor_after(self, messages: list[RawMessage]) -> str | None:
        """The cursor to resume from once MESSAGES are committed."""
        return None

    def completed_cursor(self) -> str | None:
        """The cursor of the next round, once this round was read to its end."""
        return None

    def wait_for_mail(self, seconds: float) -> bool:
        """Wait up to SECONDS for new mail; False when the source cannot wait (poll instead)."""
        return False

    def close(self) -> None:
        """Release connections and tokens."""
