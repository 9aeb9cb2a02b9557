"""The data that flows one way through the pipeline (raw message -> parsed email -> record) and its JSON Schema."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Kind = Literal[
    "ip_complaint",
    "suspected_ip_violation",
    "account_deactivation",
    "patent_evaluation",
    "inauthentic_complaint",
    "cease_and_desist",
    "retraction",
    "reinstatement",
    "buyer_message",
    "other",
]
ClaimType = Literal["trademark", "copyright", "patent", "counterfeit", "design"]
Urgency = Literal["critical", "high", "medium", "low"]
Severity = Literal["critical", "warning", "info"]

KINDS: tuple[str, ...] = Kind.__args__
CLAIM_TYPES: tuple[str, ...] = ClaimType.__args__
URGENCIES: tuple[str, ...] = Urgency.__args__


class RawMessage(BaseModel):
    """A message's bytes and where they came from."""

    model_config = ConfigDict(frozen=True)

    raw: bytes
    source: str
    source_name: str | None = None
    unfetched_reason: str | None = (
        None  # set when the source kept only the headers (over its size limit), and why
    )


class Attachment(BaseModel):
    """What is known about an attachment without opening it."""

    filename: str | None
    content_type: str
    size: int
    content: bytes = Field(
        default=b"", repr=False, exclude=True
    )  # the decoded payload, for the attachment reader


AttachmentType = Literal["pdf", "docx", "doc", "zip", "image", "text", "unknown"]
AttachmentStatus = Literal["read", "truncated", "unreadable", "skipped"]


class AttachmentRecord(BaseModel):
    """What reading one attachment gave: the record's `attachments` entry (design.md)."""

    name: str | None = None
    type: AttachmentType = "unknown"  # detected from the bytes, not the name or the declared type
    size: int = 0
    pages: int | None = None
    chars: int = 0
    status: AttachmentStatus = "skipped"
    reason: str | None = None


class ParsedEmail(BaseModel):
    """A message reduced to what triage reads: decoded headers and clean text."""

    message_id: str
    subject: str = ""
    from_name: str = ""
    from_address: str = ""
    to_addresses: list[str] = Field(default_factory=list)
    cc_addresses: list[str] = Field(default_factory=list)
    reply_to: list[str] = Field(default_factory=list)
    date: datetime | None = None
    notice_date: datetime | None = None
    body_text: str = ""
    quoted_text: str = ""
    attachment_text: str = ""  # text read from attached letters, each under an ATTACHMENT_MARKER line
    html_only: bool = False
    attachments: list[Attachment] = Field(default_factory=list)
    authentication_results: list[str] = Field(default_factory=list)
    list_unsubscribe: bool = False
    forwarded_by: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)

    @property
    def full_text(self) -> str:
        """Subject, body, attached letters and quoted copy: everything the extractor reads."""
        return "\n".join(
            part for part in (self.subject, self.body_text, self.attachment_text, self.quoted_text) if part
        )


class Check(BaseModel):
    """One finding that a seller should verify before answering."""

    code: str
    severity: Severity
    message: str


class Entities(BaseModel):
    """What the extractor found, normalised, before classification decides what counts."""

    asins: list[str] = Field(default_factory=list)
    trademarks: list[str] = Field(default_factory=list)
    registration_numbers: list[str] = Field(default_factory=list)
    patent_numbers: list[str] = Field(default_factory=list)
    copyright_registrations: list[str] = Field(default_factory=list)
    complaint_ids: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)
    contact_emails: list[str] = Field(default_factory=list)
    marketplaces: list[str] = Field(default_factory=list)
    deadline_days: list[int] = Field(default_factory=list)
    nice_classes: list[int] = Field(default_factory=list)
    cues: dict[str, int] = Field(default_factory=dict)
    languages: dict[str, int] = Field(default_factory=dict)  # function words of each language pack found
    words: int = 0  # words in the text read (each CJK character counts as one)


class TriageRecord(BaseModel):
    """The triage record, JSON schema_version 1 (see design.md)."""

    model_config = ConfigDict(populate_by_name=True)

    schema_version: Literal[1] = 1
    message_id: str
    source: str
    received_at: datetime | None = None
    from_: str = Field("", alias="from")
    subject: str = ""
    is_complaint: bool = False
    kind: Kind = "other"
    claim_types: list[ClaimType] = Field(default_factory=list)
    asins: list[str] = Field(default_factory=list)
    trademarks: list[str] = Field(default_factory=list)
    registration_numbers: list[str] = Field(default_factory=list)
    patent_numbers: list[str] = Field(default_factory=list)
    copyright_registrations: list[str] = Field(default_factory=list)
    complaint_ids: list[str] = Field(default_factory=list)
    rights_owner_emails: list[str] = Field(default_factory=list)
    marketplace: str | None = None
    urgency: Urgency = "low"
    urgency_reasons: list[str] = Field(default_factory=list)
    deadline_days: int | None = None
    response_due: date | None = None
    next_steps: list[str] = Field(default_factory=list)
    checks: list[Check] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)
    needs_review: bool = False  # looks like a notice or a legal demand the rules cannot decide (design.md)
    review_reasons: list[str] = Field(
        default_factory=list
    )  # why a person should read it, most important first
    attachments: list[AttachmentRecord] = Field(default_factory=list)
    forwarded_by: str | None = None
    in_reply_to: str | None = None
    references: list[str] = Field(default_factory=list)
    source_name: str | None = None
    error: str | None = None

    def to_json_dict(self) -> dict:
        """The record as the JSON object users' scripts read."""
        return self.model_dump(mode="json", by_alias=True)


@dataclass(frozen=True)
class FolderCheckpoint:
    """How far one folder has been committed and settled, under one UIDVALIDITY."""

    uidvalidity: int | None = None  # None: never polled
    last_uid: int = 0
    settled_uid: int = 0

    def under(self, uidvalidity: int) -> "FolderCheckpoint":
        """This checkpoint if it belongs to UIDVALIDITY, else a fresh start (the folder was recreated)."""
        return self if self.uidvalidity == uidvalidity else FolderCheckpoint(uidvalidity)


@dataclass(frozen=True)
class SourceStatus:
    """What `status` shows for one source."""

    source_name: str
    last_poll_at: datetime | None = None
    last_success_at: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    messages_triaged: int = 0
    backlog: int = 0
    failing_since: datetime | None = None  # None: the last poll worked (or none ran)
    auth_failed: bool = False
    token_expires_at: datetime | None = None


# The JSON Schema of the record, shipped as record.schema.json beside this module.
SCHEMA_PATH = Path(__file__).with_name("record.schema.json")


def record_schema() -> dict:
    """The schema generated from the TriageRecord model (serialisation view, JSON key names)."""
    schema = TriageRecord.model_json_schema(by_alias=True, mode="serialization")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://complaint-triage.invalid/record.schema.json"
    schema["required"] = sorted(schema["properties"])
    return schema


def shipped_schema() -> dict:
    """The schema file that ships with the package."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def write_schema() -> Path:
    """Regenerate record.schema.json from the model."""
    SCHEMA_PATH.write_text(json.dumps(record_schema(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return SCHEMA_PATH
