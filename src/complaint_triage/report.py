"""The daily triage summary: built from stored rows as data, rendered as Markdown, JSON or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field

from complaint_triage.models import CLAIM_TYPES, KINDS, URGENCIES, TriageRecord

DUE_SOON_DAYS = 3
_RANK = {level: index for index, level in enumerate(URGENCIES)}
_CLOSED_KINDS = {"retraction", "reinstatement"}


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
    error: str | None = None

    @classmethod
    def from_record(cls, record: TriageRecord) -> "SummaryItem":
        """The key facts of a record."""
        data = record.to_json_dict()
        return cls(
            **{k: data[k] for k in ("message_id", "source_name", "subject", "kind", "urgency", "urgency_reasons", "claim_types", "asins", "trademarks", "registration_numbers", "patent_numbers", "complaint_ids", "rights_owner_emails", "marketplace", "checks", "next_steps", "error")},
            received_at=record.received_at,
            sender=data["from"],
            response_due=record.response_due,
        )


class DailySummary(BaseModel):
    """Everything the daily summary shows, as data."""

    day: date
    timezone: str
    generated_at: datetime
    messages: int
    by_urgency: dict[str, int]
    by_kind: dict[str, int]
    by_claim_type: dict[str, int]
    previous_7_days: dict[str, int]
    items: list[SummaryItem]
    due_soon: list[SummaryItem]
    overdue: list[SummaryItem]
    suspicious: list[SummaryItem]
    failed: list[SummaryItem]
    sources: list[str] = Field(default_factory=list)


def local_day(row: dict, zone: ZoneInfo) -> date:
    """The day a stored message belongs to: its Date header, else when it was stored."""
    moment = row["record"].received_at or row["stored_at"]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(zone).date()


def _closed_keys(records: list[TriageRecord], until: date, day_of) -> set[str]:
    """Complaint IDs and ASINs that a retraction or reinstatement closed on or before `until`."""
    keys: set[str] = set()
    for record in records:
        if record.kind in _CLOSED_KINDS and day_of(record) <= until:
            keys.update(record.complaint_ids)
            keys.update(record.asins if not record.complaint_ids else [])
    return keys


def _is_open(record: TriageRecord, closed: set[str]) -> bool:
    if not record.is_complaint or record.error:
        return False
    keys = set(record.complaint_ids) or set(record.asins)
    return not keys or not keys <= closed


def build_summary(rows: list[dict], day: date, zone_name: str = "UTC") -> DailySummary:
    """Summarise one day from stored rows (each with a parsed `record` and `stored_at`)."""
    zone = ZoneInfo(zone_name)
    days = {row["record"].message_id: local_day(row, zone) for row in rows}
    records = [row["record"] for row in rows if days[row["record"].message_id] <= day]
    today = sorted((r for r in records if days[r.message_id] == day), key=lambda r: (_RANK[r.urgency], r.received_at or datetime.min.replace(tzinfo=timezone.utc)))
    week = [r for r in records if day - timedelta(days=7) <= days[r.message_id] < day]
    closed = _closed_keys(records, day, lambda r: days[r.message_id])
    open_records = [r for r in records if _is_open(r, closed) and r.response_due]
    item = SummaryItem.from_record
    return DailySummary(
        day=day,
        timezone=zone_name,
        generated_at=datetime.now(timezone.utc),
        messages=len(today),
        by_urgency=_count(today, "urgency", URGENCIES),
        by_kind=_count(today, "kind", KINDS),
        by_claim_type={claim: sum(claim in r.claim_types for r in today) for claim in CLAIM_TYPES},
        previous_7_days=_count(week, "urgency", URGENCIES),
        items=[item(r) for r in today if not r.error],
        due_soon=[item(r) for r in sorted(open_records, key=lambda r: r.response_due) if day < r.response_due <= day + timedelta(days=DUE_SOON_DAYS)],
        overdue=[item(r) for r in sorted(open_records, key=lambda r: r.response_due) if r.response_due <= day],
        suspicious=[item(r) for r in today if any(c.code in {"lookalike_sender_domain", "sender_not_authenticated", "not_amazon_sender"} for c in r.checks)],
        failed=[item(r) for r in records if r.error],
        sources=sorted({r.source_name for r in today if r.source_name}),
    )


def _count(records: list[TriageRecord], field: str, order: tuple[str, ...]) -> dict[str, int]:
    counts = Counter(getattr(r, field) for r in records)
    return {name: counts.get(name, 0) for name in order}


def render_json(summary: DailySummary) -> str:
    """The summary as one JSON document."""
    return json.dumps(summary.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


def _md_escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").replace("<", "&lt;").replace(">", "&gt;")


def _md_item(item: SummaryItem) -> list[str]:
    facts = [
        ("Kind", item.kind), ("Claims", ", ".join(item.claim_types)), ("ASINs", ", ".join(item.asins)),
        ("Marks", ", ".join(item.trademarks)), ("Registrations", ", ".join(item.registration_numbers)),
        ("Patents", ", ".join(item.patent_numbers)), ("Complaint IDs", ", ".join(item.complaint_ids)),
        ("Rights owner", ", ".join(item.rights_owner_emails)), ("Marketplace", item.marketplace or ""),
        ("Respond by", item.response_due.isoformat() if item.response_due else ""), ("Why", "; ".join(item.urgency_reasons)),
    ]
    lines = [f"### [{item.urgency.upper()}] {_md_escape(item.subject or '(no subject)')}", f"From {_md_escape(item.sender)}", ""]
    lines += [f"- **{name}:** {_md_escape(value)}" for name, value in facts if value]
    lines += [f"- **Check ({c['severity']}):** {_md_escape(c['message'])}" for c in item.checks]
    if item.next_steps:
        lines += ["", "Next steps:"] + [f"{n}. {_md_escape(step)}" for n, step in enumerate(item.next_steps, 1)]
    return lines + [""]


def _md_table(items: list[SummaryItem]) -> list[str]:
    if not items:
        return ["Nothing.", ""]
    lines = ["| Respond by | Urgency | Kind | ASINs | Complaint IDs | Subject |", "|---|---|---|---|---|---|"]
    for i in items:
        lines.append(f"| {i.response_due} | {i.urgency} | {i.kind} | {_md_escape(', '.join(i.asins))} | {_md_escape(', '.join(i.complaint_ids))} | {_md_escape(i.subject)} |")
    return lines + [""]


def render_markdown(summary: DailySummary) -> str:
    """The summary as Markdown; message text is escaped so it cannot inject markup."""
    urgent = [i for i in summary.items if i.urgency in ("critical", "high")]
    counts = " · ".join(f"{name}: {n} (7 days before: {summary.previous_7_days[name]})" for name, n in summary.by_urgency.items())
    lines = [f"# Triage summary for {summary.day.isoformat()} ({summary.timezone})", "", f"{summary.messages} messages. {counts}", ""]
    lines += ["## Critical and high", ""] + ([line for i in urgent for line in _md_item(i)] or ["Nothing critical or high.", ""])
    lines += [f"## Due in the next {DUE_SOON_DAYS} days", ""] + _md_table(summary.due_soon)
    lines += ["## Overdue", ""] + _md_table(summary.overdue)
    lines += ["## Suspicious senders", ""] + _md_table(summary.suspicious)
    lines += ["## Other messages of the day", ""] + _md_table([i for i in summary.items if i.urgency not in ("critical", "high")])
    lines += ["## Failed, waiting for replay", ""]
    lines += [f"- {_md_escape(i.message_id)}: {_md_escape(i.error or '')}" for i in summary.failed] or ["None."]
    return "\n".join(lines) + "\n"


def render_csv(summary: DailySummary) -> str:
    """One row per message of the day, one ASIN per line of the cell list joined by spaces."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["received_at", "urgency", "kind", "claim_types", "asins", "complaint_ids", "rights_owner_emails", "marketplace", "response_due", "subject", "from"])
    for i in summary.items:
        writer.writerow([i.received_at.isoformat() if i.received_at else "", i.urgency, i.kind, " ".join(i.claim_types), " ".join(i.asins), " ".join(i.complaint_ids), " ".join(i.rights_owner_emails), i.marketplace or "", i.response_due or "", _csv_safe(i.subject), _csv_safe(i.sender)])
    return buffer.getvalue()


def _csv_safe(text: str) -> str:
    """Cells that a spreadsheet would run as formulas get a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


RENDERERS = {"json": render_json, "markdown": render_markdown, "csv": render_csv}
EXTENSIONS = {"json": "json", "markdown": "md", "csv": "csv", "html": "html"}


def summary_rows(stored: list[dict]) -> list[dict]:
    """Stored rows with their record parsed, as build_summary takes them."""
    return [{"record": TriageRecord.model_validate(row["record"]), "stored_at": row["stored_at"]} for row in stored]


def latest_day(rows: list[dict], zone_name: str) -> date | None:
    """The most recent day that has mail."""
    zone = ZoneInfo(zone_name)
    return max((local_day(row, zone) for row in rows), default=None)


def render(summary: DailySummary, output_format: str) -> str:
    """Render the summary in one of html, markdown, json, csv."""
    if output_format == "html":
        from complaint_triage.html_report import render_html

        return render_html(summary)
    return RENDERERS[output_format](summary)
