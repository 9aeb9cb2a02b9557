"""complaint-triage: read Amazon sellers' IP-complaint mail and say what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from complaint_triage.errors import TriageError

if TYPE_CHECKING:
    from complaint_triage.records import ParsedEmail, RawMessage, TriageRecord

__version__ = "0.1.0"
SCHEMA_VERSION = 1

__all__ = ["ParsedEmail", "RawMessage", "TriageError", "TriageRecord", "SCHEMA_VERSION", "triage"]


def triage(raw: bytes, source: str = "<bytes>", **kwargs) -> TriageRecord:
    """Triage one message's raw bytes with the default pipeline and config."""
    from complaint_triage.pipeline.triage import default_triager

    return default_triager().triage_bytes(raw, source=source, **kwargs)


def __getattr__(name: str):
    """The record models load on first use, so the command line starts without pydantic's model building."""
    if name in ("ParsedEmail", "RawMessage", "TriageRecord"):
        from complaint_triage import records

        return getattr(records, name)
    raise AttributeError(f"module 'complaint_triage' has no attribute {name!r}")
