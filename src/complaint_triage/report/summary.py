"""The daily triage summary: built from stored rows as data, rendered as Markdown, JSON or CSV."""

from __future__ import annotations

from collections import Counter
from datetime import date, datetime, timedelta, timezone
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from complaint_triage.cases import CLOSED_STATUSES, CLOSING_KINDS, Case, bundle
from complaint_triage.records import CLAIM_TYPES, KINDS, URGENCIES, TriageRecord
from complaint_triage.settings import EscalationSettings

DUE_SOON_DAYS = 3
_RANK = {level: index for index, level in enumerate(URGENCIES)}
_SUSPICIOUS_CHECKS = frozenset({"lookalike_sender_domain", "sender_not_authenticated", "not_amazon_sender"})


class SummaryItem(BaseModel):
    """One message as the morning reader sees it."""

    message_id: str
    source_name: str | None
    received_at: datetime | None
    subject: str
    sender: str
    kind: str
    urgency: str
    urgency_reasons: list[str]
    claim_types: list[str]
    asins: list[str]
    trademarks: list[str]
    registration_numbers: list[str]
    patent_numbers: list[str]
    complaint_ids: list[str]
    rights_owner_emails: list[str]
    marketplace: str | None
    response_due: date | None
    checks: list[dict]
    next_steps: list[str]
    needs_review: bool = False
    review_reasons: list[str] = Field(default_factory=list)
    error: str | None = None

    @classmethod
    def from_record(cls, record: TriageRecord) -> "SummaryItem":
        """The key facts of a record."""
        data = record.to_json_dict()
        return cls(
            **{
                k: data[k]
                for k in (
                    "message_id",
                    "source_name",
                    "subject",
                    "kind",
                    "urgency",
                    "urgency_reasons",
                    "claim_types",
                    "asins",
                    "trademarks",
                    "registration_numbers",
                    "patent_numbers",
                    "complaint_ids",
                    "rights_owner_emails",
                    "marketplace",
                    "checks",
                    "next_steps",
                    "needs_review",
                    "review_reasons",
                    "error",
                )
            },
            received_at=record.received_at,
            sender=data["from"],
            response_due=record.response_due,
        )


class Trend(BaseModel):
    """One count of the day against the 7 days before it."""

    day: int
    previous_7_days: int
    daily_average: float


class Escalation(BaseModel):
    """Something that needs more than a routine answer: a repeat complainant, an ASIN under repeated attack, an overdue case."""

    kind: Literal["repeat_complainant", "asin_under_attack", "overdue_case"]
    subject: str
    count: int
    message: str
    case_keys: list[str]


class DailySummary(BaseModel):
    """Everything the daily summary shows, as data (a section per source holds the same, for that source alone)."""

    day: date
    timezone: str
    generated_at: datetime
    source: str | None = None
    messages: int
    by_urgency: dict[str, int]
    by_kind: dict[str, int]
    by_claim_type: dict[str, int]
    previous_7_days: dict[str, int]
    trend: dict[str, dict[str, Trend]] = Field(default_factory=dict)
    urgent_cases: list[Case] = Field(default_factory=list)
    review: list[SummaryItem] = Field(
        default_factory=list, description="the day's mail that needs a person's reading, shown first"
    )
    items: list[SummaryItem]
    due_soon: list[Case]
    overdue: list[Case]
    escalations: list[Escalation] = Field(default_factory=list)
    suspicious: list[SummaryItem]
    failed: list[SummaryItem]
    sources: list[str] = Field(default_factory=list)
    sections: list["DailySummary"] = Field(default_factory=list)
    open_cases: list[Case] = Field(
        default_factory=list
    )  # every case not yet answered at the end of the day, most urgent first
    day_starts_at: str = (
        "00:00"  # the local time the day covered begins (the report time, for the summary the service sends)
    )

    @property
    def repeat_escalations(self) -> list[Escalation]:
        """Repeat complainants and ASINs under attack (overdue cases have their own section)."""
        return [e for e in self.escalations if e.kind != "overdue_case"]


def today_in(zone_name: str) -> date:
    """Today's date in the configured timezone."""
    return datetime.now(ZoneInfo(zone_name)).date()


def yesterday_in(zone_name: str) -> date:
    """Yesterday in the configured timezone: the day a morning reader wants summarised."""
    return today_in(zone_name) - timedelta(days=1)


def local_day(row: dict, zone: ZoneInfo, day_starts: timedelta = timedelta(0)) -> date:
    """The day a stored message belongs to: its Date header, else when it was stored; a day begins DAY_STARTS after midnight."""
    moment = row["record"].received_at or row["stored_at"]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return (moment.astimezone(zone) - day_starts).date()


def build_summary(
    rows: list[dict],
    day: date,
    zone_name: str = "UTC",
    cases: list[Case] | None = None,
    rules: EscalationSettings = EscalationSettings(),
    by_source: bool = True,
    day_starts: timedelta = timedelta(0),
) -> DailySummary:
    """Summarise one day from stored rows (each with a parsed `record` and `stored_at`) and the cases they form.

    DAY_STARTS shifts the day: with 7 hours, the summary of 3 March covers 3 March 07:00 to 4 March
    07:00, so the summary sent at 07:00 holds the mail that came in overnight.
    """
    zone = ZoneInfo(zone_name)
    days = {row["record"].message_id: local_day(row, zone, day_starts) for row in rows}
    records = [row["record"] for row in rows if days[row["record"].message_id] <= day]
    today = sorted(
        (r for r in records if days[r.message_id] == day),
        key=lambda r: (_RANK[r.urgency], r.received_at or datetime.min.replace(tzinfo=timezone.utc)),
    )
    week = [r for r in records if day - timedelta(days=7) <= days[r.message_id] < day]
    known = bundle(
        [case for case in cases or [] if all(m in days and days[m] <= day for m in case.message_ids[:1])]
    )
    open_cases = sorted(
        (case for case in known if case.is_open and case.response_due), key=lambda case: case.response_due
    )
    item = SummaryItem.from_record
    sources = sorted({r.source_name for r in records if r.source_name})
    return DailySummary(
        day=day,
        timezone=zone_name,
        generated_at=datetime.now(timezone.utc),
        messages=len(today),
        by_urgency=_count(today, "urgency", URGENCIES),
        by_kind=_count(today, "kind", KINDS),
        by_claim_type=_claim_counts(today),
        previous_7_days=_count(week, "urgency", URGENCIES),
        trend=_trend(today, week),
        urgent_cases=_urgent_cases(known, {r.message_id for r in today}),
        review=[item(r) for r in today if r.needs_review and not r.error],
        items=[item(r) for r in today if not r.error],
        due_soon=[
            case for case in open_cases if day < case.response_due <= day + timedelta(days=DUE_SOON_DAYS)
        ],
        overdue=[case for case in open_cases if case.overdue_on(day)],
        open_cases=sorted(
            (case for case in known if case.is_open),
            key=lambda case: (_RANK[case.urgency], case.response_due or date.max, case.key),
        ),
        escalations=escalations(known, day, rules, lambda message_id: days.get(message_id)),
        suspicious=[item(r) for r in today if any(c.code in _SUSPICIOUS_CHECKS for c in r.checks)],
        failed=[item(r) for r in records if r.error],
        sources=sources,
        sections=_sections(rows, day, zone_name, known, rules, sources, day_starts)
        if by_source and len(sources) > 1
        else [],
        day_starts_at=f"{int(day_starts.total_seconds()) // 3600:02d}:{int(day_starts.total_seconds()) // 60 % 60:02d}",
    )


def _sections(rows, day, zone_name, cases, rules, sources, day_starts) -> list[DailySummary]:
    """One summary per source (one seller account each)."""
    sections = []
    for name in sources:
        own_rows = [row for row in rows if row["record"].source_name == name]
        own_cases = [case for case in cases if case.source_name == name]
        section = build_summary(
            own_rows, day, zone_name, own_cases, rules, by_source=False, day_starts=day_starts
        )
        sections.append(section.model_copy(update={"source": name}))
    return sections


def _urgent_cases(cases: list[Case], today_ids: set[str]) -> list[Case]:
    """Critical and high cases that got mail today and are not closed, most urgent first."""
    urgent = [
        case
        for case in cases
        if case.urgency in ("critical", "high")
        and case.status not in CLOSED_STATUSES
        and today_ids.intersection(case.message_ids)
    ]
    return sorted(urgent, key=lambda case: (_RANK[case.urgency], case.response_due or date.max))


def _claim_counts(records: list[TriageRecord]) -> dict[str, int]:
    return {claim: sum(claim in r.claim_types for r in records) for claim in CLAIM_TYPES}


def _trend(today: list[TriageRecord], week: list[TriageRecord]) -> dict[str, dict[str, Trend]]:
    """Counts by urgency, kind and claim type: the day, the 7 days before, and their daily average."""
    pairs = {
        "urgency": (_count(today, "urgency", URGENCIES), _count(week, "urgency", URGENCIES)),
        "kind": (_count(today, "kind", KINDS), _count(week, "kind", KINDS)),
        "claim_type": (_claim_counts(today), _claim_counts(week)),
    }
    return {
        name: {
            key: Trend(day=now[key], previous_7_days=before[key], daily_average=round(before[key] / 7, 2))
            for key in now
        }
        for name, (now, before) in pairs.items()
    }


def escalations(cases: list[Case], day: date, rules: EscalationSettings, day_of) -> list[Escalation]:
    """Repeat complainants and ASINs under repeated attack within the window ending DAY, and overdue cases."""
    start, days = day - timedelta(days=rules.window_days - 1), rules.window_days
    recent = [
        case for case in cases if case.kind not in CLOSING_KINDS and _opened_within(case, start, day, day_of)
    ]
    found = _repeats(
        recent,
        lambda case: [case.rights_owner or next(iter(case.rights_owner_emails), None)],
        rules.complaints_per_owner,
        "repeat_complainant",
        lambda owner, n: f"{owner} filed {n} complaints in {days} days",
    )
    found += _repeats(
        recent,
        lambda case: case.asins,
        rules.cases_per_asin,
        "asin_under_attack",
        lambda asin, n: f"ASIN {asin} is named in {n} complaints in {days} days",
    )
    found += [
        Escalation(
            kind="overdue_case",
            subject=case.key,
            count=1,
            case_keys=[case.key],
            message=f"{case.key}: response was due {case.response_due.isoformat()} and the case is still {case.status}",
        )
        for case in cases
        if case.overdue_on(day)
    ]
    return found


def _opened_within(case: Case, start: date, end: date, day_of) -> bool:
    first = day_of(case.message_ids[0]) if case.message_ids else None
    return first is not None and start <= first <= end


def _repeats(cases: list[Case], keys_of, threshold: int, kind: str, wording) -> list[Escalation]:
    groups: dict[str, list[str]] = {}
    for case in cases:
        for key in keys_of(case):
            if key:
                groups.setdefault(key, []).append(case.key)
    ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        Escalation(kind=kind, subject=key, count=len(keys), case_keys=keys, message=wording(key, len(keys)))
        for key, keys in ranked
        if len(keys) >= threshold
    ]


def _count(records: list[TriageRecord], field: str, order: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(getattr(r, field) for r in records)
    return {name: counts.get(name, 0) for name in order}


def summary_for_day(
    store,
    day: date,
    zone_name: str,
    rules: EscalationSettings = EscalationSettings(),
    day_starts: timedelta = timedelta(0),
) -> DailySummary:
    """The summary of DAY (beginning DAY_STARTS after midnight) from what the store holds: records, and the cases they form."""
    rows = summary_rows(store.rows())
    cases = store.cases({row["record"].message_id: row["record"] for row in rows})
    return build_summary(rows, day, zone_name, cases, rules, day_starts=day_starts)


def summary_rows(stored: list[dict]) -> list[dict]:
    """Stored rows with their record parsed, as build_summary takes them."""
    return [
        {"record": TriageRecord.model_validate(row["record"]), "stored_at": row["stored_at"]}
        for row in stored
    ]


def latest_day(rows: list[dict], zone_name: str) -> date | None:
    """The most recent day that has mail."""
    zone = ZoneInfo(zone_name)
    return max((local_day(row, zone) for row in rows), default=None)
