"""Which attachments of a message are read, and the record entry of each; the reading itself is passed in."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from complaint_triage.attachments.extraction import Extraction
from complaint_triage.attachments.sniff import READABLE, sniff_type
from complaint_triage.records import Attachment, AttachmentRecord
from complaint_triage.settings import AttachmentSettings

ReadOne = Callable[[bytes], Extraction]


class ReadAttachment(NamedTuple):
    """One attachment's record entry and the text read from it (empty unless read or truncated)."""

    record: AttachmentRecord
    text: str


def read_all(
    attachments: list[Attachment], read_one: ReadOne, limits: AttachmentSettings
) -> list[ReadAttachment]:
    """Every attachment's entry: PDF and zip ones within the limits are read with read_one, the rest skipped."""
    results, budget = [], limits.max_per_message
    for attachment in attachments:
        kind = sniff_type(attachment.content)
        reason = _skip_reason(attachment, kind, budget, limits)
        if reason is None:
            budget -= 1
            extraction = read_one(attachment.content)
        else:
            extraction = Extraction(type=kind, status="skipped", reason=reason)
        results.append(
            ReadAttachment(
                entry(attachment, extraction),
                extraction.text if extraction.status in ("read", "truncated") else "",
            )
        )
    return results


def _skip_reason(attachment: Attachment, kind: str, budget: int, limits: AttachmentSettings) -> str | None:
    if not limits.read:
        return "attachment reading is off"
    if not attachment.content and attachment.size > limits.max_bytes:
        return f"{attachment.size} bytes encoded (limit {limits.max_bytes} decoded)"
    if not attachment.content:
        return "no content"
    if kind not in READABLE:
        return f"{kind} attachments are not read"
    if len(attachment.content) > limits.max_bytes:
        return f"{len(attachment.content)} bytes (limit {limits.max_bytes})"
    if budget <= 0:
        return f"more than {limits.max_per_message} attachments to read"
    return None


def entry(attachment: Attachment, extraction: Extraction) -> AttachmentRecord:
    """The record's entry for one attachment."""
    return AttachmentRecord(
        name=attachment.filename,
        type=extraction.type
        if extraction.type in AttachmentRecord.model_fields["type"].annotation.__args__
        else "unknown",
        size=len(attachment.content) or attachment.size,
        pages=extraction.pages,
        chars=extraction.chars,
        status=extraction.status,
        reason=extraction.reason,
    )
