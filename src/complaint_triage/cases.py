"""Cases: the records about one complaint, grouped so that people can act on them and track what they did.

A case is keyed by its complaint ID; without one, by ASIN and rights owner (a notice naming
several ASINs opens one case per ASIN); a complaint that names neither is a case of its own.
These functions are pure: they decide keys, statuses and what a case looks like from its
records. Storing links and history is case_store's work.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime, timezone
from typing import Literal

from pydantic import BaseModel, Field

from complaint_triage.clock import as_utc
from complaint_triage.records import URGENCIES, Check, TriageRecord

CaseStatus = Literal["new", "acknowledged", "responded", "resolved", "no_response_needed"]
CASE_STATUSES: tuple[str, ...] = CaseStatus.__args__
OPEN_STATUSES = frozenset({"new", "acknowledged"})  # nobody has answered yet
CLOSED_STATUSES = frozenset({"resolved", "no_response_needed"})
CLOSING_KINDS = frozenset({"retraction", "reinstatement"})
_RANK = {level: index for index, level in enumerate(URGENCIES)}
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_OWNER_CHARS = (
    254  # the longest usable e-mail address (RFC 5321 path limit); keeps case keys within their column
)


class CaseKey(BaseModel):
    """Which case a record belongs to, and the facts that name it."""

    model_config = {"frozen": True}

    key: str
    complaint_id: str | None = None
    asin: str | None = None
    rights_owner: str | None = None


class CaseEvent(BaseModel):
    """One change of a case's status, by a message or by a person."""

    at: datetime
    status: CaseStatus
    note: str | None = None
    actor: str
    message_id: str | None = None


class Case(BaseModel):
    """A case as people see it: its status and history, and the key facts of its messages."""

    key: str
    status: CaseStatus
    complaint_id: str | None = None
    asin: str | None = None
    rights_owner: str | None = None
    source_name: str | None = None
    opened_at: datetime
    history: list[CaseEvent] = Field(default_factory=list)
    message_ids: list[str] = Field(default_factory=list)
    also: list[str] = Field(
        default_factory=list
    )  # the other cases the same mail raised (one notice, several complaint IDs)
    # What its messages say, the newest complaint leading:
    urgency: str = "low"
    urgency_reasons: list[str] = Field(default_factory=list)
    needs_review: bool = False  # some message of the case needs a person's reading (see review_reasons)
    review_reasons: list[str] = Field(default_factory=list)
    kind: str = "other"
    subject: str = ""
    sender: str = ""
    first_received_at: datetime | None = None
    last_received_at: datetime | None = None
    claim_types: list[str] = Field(default_factory=list)
    asins: list[str] = Field(default_factory=list)
    trademarks: list[str] = Field(default_factory=list)
    registration_numbers: list[str] = Field(default_factory=list)
    patent_numbers: list[str] = Field(default_factory=list)
    complaint_ids: list[str] = Field(default_factory=list)
    rights_owner_emails: list[str] = Field(default_factory=list)
    marketplace: str | None = None
    response_due: date | None = None
    checks: list[Check] = Field(default_factory=list)
    next_steps: list[str] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)

    @property
    def is_open(self) -> bool:
        """Nobody has answered or closed it yet."""
        return self.status in OPEN_STATUSES

    def key_facts(self) -> list[tuple[str, str]]:
        """The facts every rendering of a case shows (summary, alert, CLI, HTML), in one order; empty ones left out."""
        facts = [
            ("Kind", self.kind),
            ("Claims", ", ".join(self.claim_types)),
            ("ASINs", ", ".join(self.asins)),
            ("Marks", ", ".join(self.trademarks)),
            ("Registrations", ", ".join(self.registration_numbers)),
            ("Patents", ", ".join(self.patent_numbers)),
            ("Complaint IDs", ", ".join(self.complaint_ids)),
            ("Rights owner", ", ".join(self.rights_owner_emails) or (self.rights_owner or "")),
            ("Marketplace", self.marketplace or ""),
            ("Respond by", self.response_due.isoformat() if self.response_due else "no date stated"),
            ("Why", "; ".join(self.urgency_reasons)),
        ]
        return [(name, value) for name, value in facts if value]

    def overdue_on(self, day: date) -> bool:
        """Past its response date at the end of DAY and not answered."""
        return self.is_open and self.response_due is not None and self.response_due <= day


def rights_owner_of(record: TriageRecord) -> str | None:
    """Who complains: the first rights-owner address; for a letter sent directly, its sender."""
    if record.rights_owner_emails:
        return record.rights_owner_emails[0]
    if record.kind == "cease_and_desist":
        return _address(record.from_) or None
    return None


def _address(display: str) -> str:
    text = display.strip()
    if "<" in text and text.endswith(">"):
        text = text[text.rindex("<") + 1 : -1]
    return text.lower()


def case_keys(record: TriageRecord) -> list[CaseKey]:
    """The cases a record opens or joins by its own identifiers (a reply without any joins through its thread instead)."""
    if record.error or not (record.is_complaint or record.needs_review or record.kind in CLOSING_KINDS):
        return []
    owner = _bounded(rights_owner_of(record))
    if record.complaint_ids:
        return [
            CaseKey(key=f"complaint:{cid}", complaint_id=cid, rights_owner=owner)
            for cid in record.complaint_ids
        ]
    if record.asins:
        return [
            CaseKey(key=f"asin:{asin}:{owner or 'unknown'}", asin=asin, rights_owner=owner)
            for asin in record.asins
        ]
    if record.is_complaint or record.needs_review:
        return [
            CaseKey(
                key="mail:" + hashlib.sha256(record.message_id.encode("utf-8", "replace")).hexdigest()[:20],
                rights_owner=owner,
            )
        ]
    return []


def _bounded(owner: str | None) -> str | None:
    """An owner short enough for a case key; an absurdly long address is replaced by its hash."""
    if owner is None or len(owner) <= MAX_OWNER_CHARS:
        return owner
    return "sha256:" + hashlib.sha256(owner.encode("utf-8", "replace")).hexdigest()


def thread_ids(record: TriageRecord) -> list[str]:
    """The Message-IDs a reply refers to, in the bracketed and the bare form."""
    ids = ([record.in_reply_to] if record.in_reply_to else []) + record.references
    return sorted(
        {
            form
            for ref in ids
            for form in (ref.strip(), "<" + ref.strip().strip("<>") + ">", ref.strip().strip("<>"))
        }
    )


def status_change(
    current: str | None, record: TriageRecord, closed_after: datetime | None
) -> tuple[str, str] | None:
    """The (status, note) a newly linked message sets, if any.

    A retraction or reinstatement closes the case. New complaint mail reopens a closed case, but
    only when it is newer than what closed it (a backfill may store an old notice after its
    retraction).
    """
    when = record.received_at.date().isoformat() if record.received_at else "an undated message"
    if current is None:
        if record.kind in CLOSING_KINDS:
            return "resolved", f"opened and closed by the {record.kind} of {when}"
        return "new", f"opened by the {record.kind.replace('_', ' ')} of {when}"
    if record.kind in CLOSING_KINDS and current not in CLOSED_STATUSES:
        return "resolved", f"closed by the {record.kind} of {when}"
    if record.is_complaint and current in CLOSED_STATUSES and _newer(record.received_at, closed_after):
        return "new", f"reopened by the {record.kind.replace('_', ' ')} of {when}"
    return None


def _newer(moment: datetime | None, than: datetime | None) -> bool:
    if than is None:
        return True
    return moment is not None and _aware(moment) > _aware(than)


def _aware(moment: datetime) -> datetime:
    return as_utc(moment)


def received(record: TriageRecord) -> datetime:
    """When a record's message was sent (the epoch for undated mail, so that it sorts first)."""
    return _aware(record.received_at) if record.received_at else _EPOCH


def describe(case: Case, records: list[TriageRecord]) -> Case:
    """The case with the key facts of its records: the union of identifiers, the highest urgency, the newest complaint's advice."""
    ordered = sorted((r for r in records if not r.error), key=received)
    if not ordered:
        return case
    complaints = [r for r in ordered if r.is_complaint or r.needs_review] or ordered
    lead = complaints[-1]
    highest = min(complaints, key=lambda r: _RANK[r.urgency])
    return case.model_copy(
        update={
            "urgency": highest.urgency,
            "urgency_reasons": highest.urgency_reasons,
            "needs_review": any(r.needs_review for r in ordered),
            "review_reasons": _union(r.review_reasons for r in ordered),
            "kind": lead.kind,
            "subject": lead.subject,
            "sender": lead.from_,
            "first_received_at": ordered[0].received_at,
            "last_received_at": ordered[-1].received_at,
            "claim_types": _union(r.claim_types for r in complaints),
            "asins": _union(r.asins for r in ordered),
            "trademarks": _union(r.trademarks for r in complaints),
            "registration_numbers": _union(r.registration_numbers for r in complaints),
            "patent_numbers": _union(r.patent_numbers for r in complaints),
            "complaint_ids": _union(r.complaint_ids for r in ordered),
            "rights_owner_emails": _union(r.rights_owner_emails for r in ordered),
            "marketplace": next((r.marketplace for r in reversed(complaints) if r.marketplace), None),
            "response_due": next((r.response_due for r in reversed(complaints) if r.response_due), None),
            "checks": _unique_checks(r.checks for r in complaints),
            "next_steps": lead.next_steps,
            "links": _union(r.links for r in complaints),
        }
    )


def bundle(cases: list[Case]) -> list[Case]:
    """Cases raised by exactly the same mail and in the same status shown as one, the others' keys in `also`.

    One notice that lists three complaint IDs is one thing to answer, not three.
    """
    groups: dict[tuple, list[Case]] = {}
    for case in cases:
        groups.setdefault((tuple(case.message_ids), case.status), []).append(case)
    return [group[0].model_copy(update={"also": [c.key for c in group[1:]]}) for group in groups.values()]


def _union(lists) -> list[str]:
    seen: dict[str, None] = {}
    for items in lists:
        seen.update(dict.fromkeys(items))
    return list(seen)


def _unique_checks(lists) -> list[Check]:
    found: dict[tuple[str, str], Check] = {}
    for checks in lists:
        for check in checks:
            found.setdefault((check.code, check.message), check)
    return list(found.values())
