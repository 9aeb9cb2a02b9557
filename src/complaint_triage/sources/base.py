"""The interface every mail source implements."""

from __future__ import annotations

from typing import Iterator, Protocol, runtime_checkable

from complaint_triage.records import RawMessage


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
