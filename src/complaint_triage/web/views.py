"""What the pages and the API show: the queue with its filters and order, a case with its mail, as data.

Every function here takes the signed-in user and returns only what that user may see: a member
limited to some accounts (sources) never gets a case or a message from another.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from complaint_triage.cases import CASE_STATUSES, OPEN_STATUSES, Case
from complaint_triage.errors import CaseError
from complaint_triage.pipeline.parse import html_to_text, message_from_bytes, text_parts
from complaint_triage.records import KINDS, URGENCIES, TriageRecord
from complaint_triage.report.summary import DUE_SOON_DAYS
from complaint_triage.store import Store
from complaint_triage.store.case_links import load_cases, load_cases_by_key, resolve_case_key
from complaint_triage.store.case_work import assignees, raw_mail, records_of
from complaint_triage.store.users import User

_RANK = {level: index for index, level in enumerate(URGENCIES)}
STATUS_CHOICES = ("open", "all", *CASE_STATUSES)
MAX_TEXT_CHARS = 200_000  # a case page shows this much of one message's text


class FilterError(ValueError):
    """A filter value the queue does not know."""


@dataclass(frozen=True)
class Filters:
    """The queue's filters, as they stand in the URL."""

    urgency: str = ""
    status: str = "open"
    kind: str = ""
    account: str = ""
    marketplace: str = ""
    overdue: bool = False
    needs_review: bool = False

    @classmethod
    def from_query(cls, params) -> Filters:
        """Filters from query parameters; an unknown urgency, status or kind is an error, not an empty list."""
        values = {
            name: (params.get(name) or "").strip()
            for name in ("urgency", "status", "kind", "account", "marketplace")
        }
        values["status"] = values["status"] or "open"
        for name, allowed in (("urgency", URGENCIES), ("status", STATUS_CHOICES), ("kind", KINDS)):
            if values[name] and values[name] not in allowed:
                raise FilterError(f"unknown {name} {values[name]!r}: use one of {', '.join(allowed)}")
        flags = {
            name: (params.get(name) or "").lower() in ("1", "true", "yes", "on")
            for name in ("overdue", "needs_review")
        }
        return cls(**values, **flags)

    def query(self) -> str:
        """The filters as a query string (defaults left out)."""
        pairs = [
            (name, getattr(self, name))
            for name in ("urgency", "kind", "account", "marketplace")
            if getattr(self, name)
        ]
        pairs += [("status", self.status)] if self.status != "open" else []
        pairs += [(name, "1") for name in ("overdue", "needs_review") if getattr(self, name)]
        return urlencode(pairs)

    def admits(self, entry: QueueEntry) -> bool:
        """True when the entry passes every filter."""
        case = entry.case
        status_ok = (
            self.status == "all"
            or case.status == self.status
            or (self.status == "open" and case.status in OPEN_STATUSES)
        )
        return (
            status_ok
            and (not self.urgency or case.urgency == self.urgency)
            and (not self.kind or case.kind == self.kind)
            and (not self.account or case.source_name == self.account)
            and (not self.marketplace or case.marketplace == self.marketplace)
            and (not self.overdue or entry.overdue)
            and (not self.needs_review or entry.needs_review)
        )


@dataclass
class QueueEntry:
    """A case in the queue, with what the queue decides about it today."""

    case: Case
    today: date
    assignee: str | None = None
    needs_review: bool = False

    @property
    def overdue(self) -> bool:
        """Open and past (or on) its response date."""
        return self.case.overdue_on(self.today)

    @property
    def due_soon(self) -> bool:
        """Open and due within the next few days."""
        due = self.case.response_due
        return (
            self.case.is_open
            and due is not None
            and not self.overdue
            and (due - self.today).days <= DUE_SOON_DAYS
        )

    @property
    def due_text(self) -> str:
        """The response date relative to today: "overdue 5 days", "due today", "due in 2 days"."""
        due = self.case.response_due
        if due is None:
            return "no date"
        days = (due - self.today).days
        if not self.case.is_open:
            return f"was due {due.isoformat()}"
        if days < 0:
            return f"overdue {-days} day{'s' if days != -1 else ''}"
        return "due today" if days == 0 else f"due in {days} day{'s' if days != 1 else ''}"

    def sort_key(self) -> tuple:
        """Overdue first (longest overdue leading), then due soon (soonest first), then by urgency rank and date."""
        band = 0 if self.overdue else 1 if self.due_soon else 2
        return (
            band,
            self.case.response_due or date.max if band < 2 else date.min,
            _RANK[self.case.urgency],
            self.case.response_due or date.max,
            self.case.key,
        )

    def to_json(self) -> dict:
        """The case as the API lists it."""
        data = self.case.model_dump(mode="json", exclude={"history"})
        data.update(
            account=self.case.source_name,
            overdue=self.overdue,
            due_soon=self.due_soon,
            due=self.due_text,
            needs_review=self.needs_review,
            assignee=self.assignee,
            url=case_url(self.case.key),
        )
        return data


def case_url(key: str) -> str:
    """The case page's path (the key escaped: it holds ':' and an e-mail address)."""
    return "/cases/" + quote(key, safe="")


def today_in(zone: str) -> date:
    """Today's date in the configured timezone."""
    return datetime.now(ZoneInfo(zone)).date()


def queue(store: Store, user: User, filters: Filters, zone: str) -> list[QueueEntry]:
    """The cases USER may see that pass FILTERS, in queue order."""
    records = {record.message_id: record for record in store.records() if user.may_see(record.source_name)}
    given = assignees(store)
    today = today_in(zone)
    entries = [
        _entry(case, records, given, today)
        for case in load_cases(store, records)
        if user.may_see(case.source_name)
    ]
    return sorted((entry for entry in entries if filters.admits(entry)), key=QueueEntry.sort_key)


def _entry(case: Case, records: dict[str, TriageRecord], given: dict[str, str], today: date) -> QueueEntry:
    review = any(
        getattr(records.get(m), "needs_review", False) for m in case.message_ids
    )  # records before the needs_review key carry none
    return QueueEntry(case, today, given.get(case.key), review)


def accounts_of(store: Store, user: User) -> list[str]:
    """The accounts (sources) the user may filter by."""
    names = {record.source_name for record in store.records() if record.source_name}
    return sorted(name for name in names if user.may_see(name))


@dataclass
class MailView:
    """One message of a case as its page shows it: the record's facts, the text, whether it has HTML."""

    index: int
    record: TriageRecord
    text: str
    has_html: bool


@dataclass
class CaseView:
    """A case page: the case, its place in the queue and its messages."""

    entry: QueueEntry
    mails: list[MailView] = field(default_factory=list)

    def to_json(self) -> dict:
        """The case as `GET /api/cases/{key}` returns it: the list entry, its history and its messages' records."""
        data = self.entry.to_json()
        data["history"] = [event.model_dump(mode="json") for event in self.entry.case.history]
        data["messages"] = [mail.record.to_json_dict() for mail in self.mails]
        return data


def visible_case(store: Store, user: User, ident: str, zone: str) -> CaseView | None:
    """The case IDENT names (key, complaint ID or ASIN) if USER may see it, with its messages; None otherwise."""
    try:
        key = resolve_case_key(store, ident)
    except CaseError:
        return None
    found = next(iter(load_cases_by_key(store, [key])), None)
    if found is None or not user.may_see(found.source_name):
        return None
    records = records_of(store, found.message_ids)
    shown = [records[m] for m in found.message_ids if m in records and user.may_see(records[m].source_name)]
    entry = _entry(found, records, assignees(store), today_in(zone))
    return CaseView(entry, [_mail_view(store, index, record) for index, record in enumerate(shown)])


def _mail_view(store: Store, index: int, record: TriageRecord) -> MailView:
    plain, html = _bodies(raw_mail(store, record.message_id))
    text = "\n\n".join(plain) if plain else "\n\n".join(html_to_text(part) for part in html)
    return MailView(index, record, text[:MAX_TEXT_CHARS], bool(html))


def _bodies(raw: bytes | None) -> tuple[list[str], list[str]]:
    if not raw:
        return [], []
    try:
        return text_parts(message_from_bytes(raw))
    except (
        ValueError,
        LookupError,
        TypeError,
        AttributeError,
        IndexError,
    ):  # hostile structure: the page still shows the record's facts
        return ["(the stored message could not be read as mail)"], []


def mail_html(store: Store, view: CaseView, index: int) -> str | None:
    """The HTML body of the case's INDEX-th message, sanitised (nh3): no script, no event handlers, no forms."""
    import nh3

    if not 0 <= index < len(view.mails) or not view.mails[index].has_html:
        return None
    _plain, html = _bodies(raw_mail(store, view.mails[index].record.message_id))
    return nh3.clean(
        "\n<hr>\n".join(html),
        url_schemes={"http", "https", "mailto", "data"},
        link_rel="noopener noreferrer nofollow",
        attribute_filter=_no_outside_images,
    )


def _no_outside_images(tag: str, attribute: str, value: str) -> str | None:
    """Images only from data: URLs: a remote image would tell the sender the mail was read (and the frame's CSP blocks it anyway)."""
    if attribute == "src" and not value.lower().startswith("data:image/"):
        return None
    if attribute == "href" and value.lower().startswith("data:"):
        return None  # data: is for images only
    return value
