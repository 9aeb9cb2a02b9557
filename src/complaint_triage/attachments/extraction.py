"""One attachment's bytes -> its text and what reading it gave; runs inside the sandbox's child process."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from complaint_triage.attachments.sniff import sniff_type
from complaint_triage.settings import AttachmentSettings


class Unreadable(Exception):
    """The attachment cannot be read; the message is the record's reason."""


@dataclass
class Extraction:
    """The text of one attachment and the fields of its record entry."""

    type: str
    status: str  # read | truncated | unreadable | skipped
    text: str = ""
    pages: int | None = None
    reason: str | None = None

    @property
    def chars(self) -> int:
        """Characters of text read."""
        return len(self.text)

    def to_dict(self) -> dict:
        """Plain values for the pipe between the processes."""
        return asdict(self)


def cap_text(text: str, limits: AttachmentSettings) -> tuple[str, bool]:
    """The text cut to max_chars, and whether it was cut."""
    return (text[: limits.max_chars], True) if len(text) > limits.max_chars else (text, False)


def extract_attachment(data: bytes, limits: AttachmentSettings) -> Extraction:
    """Read a PDF or DOCX attachment; other types are skipped, failures are unreadable with the reason."""
    kind = sniff_type(data)
    if kind == "pdf":
        from complaint_triage.attachments.pdf import read_pdf

        return _guarded(kind, read_pdf, data, limits)
    if kind == "zip":
        from complaint_triage.attachments.docx import read_docx

        return _guarded(kind, read_docx, data, limits)
    return Extraction(type=kind, status="skipped", reason=f"{kind} attachments are not read")


def _guarded(kind: str, reader, data: bytes, limits: AttachmentSettings) -> Extraction:
    try:
        return reader(data, limits)
    except Unreadable as exc:
        return Extraction(type=getattr(exc, "type", kind), status="unreadable", reason=str(exc))
    except MemoryError:
        return Extraction(
            type=kind, status="unreadable", reason=f"over the memory limit ({limits.memory_mb} MB)"
        )
    except RecursionError:
        return Extraction(type=kind, status="unreadable", reason="nested too deeply (a reference loop?)")
    except Exception as exc:  # noqa: BLE001  the parsers raise many kinds on corrupt files
        return Extraction(
            type=kind, status="unreadable", reason=f"corrupt {kind}: {type(exc).__name__}: {str(exc)[:200]}"
        )
