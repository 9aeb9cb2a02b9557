"""The summary as text: JSON, Markdown (message text escaped), CSV (formula cells neutralised)."""

from __future__ import annotations

import csv
import io
import json

from complaint_triage.cases import Case
from complaint_triage.report.summary import DUE_SOON_DAYS, DailySummary, SummaryItem


def render_json(summary: DailySummary) -> str:
    """The summary as one JSON document."""
    return json.dumps(summary.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n"


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]()!#|"})


def _md_escape(text: str) -> str:
    """Message text as inert Markdown: no links, emphasis, tables or HTML from a message."""
    return (
        str(text)
        .translate(_MD_SPECIAL)
        .replace("\r", " ")
        .replace("\n", " ")
        .replace("<", "&lt;")
        .replace(">", "&gt;")
    )


def _md_case(case: Case) -> list[str]:
    messages = len(case.message_ids)
    facts = [
        (
            "Case",
            f"{', '.join([case.key, *case.also])} ({case.status}, {messages} message{'s' if messages != 1 else ''})",
        ),
        *case.key_facts(),
    ]
    lines = [
        f"### [{case.urgency.upper()}] {_md_escape(case.subject or '(no subject)')}",
        f"From {_md_escape(case.sender)}",
        "",
    ]
    lines += [f"- **{name}:** {_md_escape(value)}" for name, value in facts if value]
    lines += [f"- **Check ({check.severity}):** {_md_escape(check.message)}" for check in case.checks]
    if case.next_steps:
        lines += ["", "Next steps:"] + [
            f"{n}. {_md_escape(step)}" for n, step in enumerate(case.next_steps, 1)
        ]
    return lines + [""]


def _md_cases(cases: list[Case]) -> list[str]:
    if not cases:
        return ["Nothing.", ""]
    lines = [
        "| Respond by | Status | Urgency | Kind | ASINs | Case | Subject |",
        "|---|---|---|---|---|---|---|",
    ]
    for c in cases:
        lines.append(
            f"| {c.response_due} | {c.status} | {c.urgency} | {c.kind} | {_md_escape(', '.join(c.asins))} | {_md_escape(c.key)} | {_md_escape(c.subject)} |"
        )
    return lines + [""]


def _md_items(items: list[SummaryItem]) -> list[str]:
    if not items:
        return ["Nothing.", ""]
    lines = ["| Urgency | Kind | ASINs | Complaint IDs | From | Subject |", "|---|---|---|---|---|---|"]
    for i in items:
        lines.append(
            f"| {i.urgency} | {i.kind} | {_md_escape(', '.join(i.asins))} | {_md_escape(', '.join(i.complaint_ids))} | {_md_escape(i.sender)} | {_md_escape(i.subject)} |"
        )
    return lines + [""]


def _md_review(item: SummaryItem) -> list[str]:
    lines = [
        f"- **[{item.urgency.upper()}] {_md_escape(item.subject or '(no subject)')}** from {_md_escape(item.sender)}"
    ]
    return lines + [f"  - {_md_escape(reason)}" for reason in item.review_reasons]


def _md_trend(summary: DailySummary) -> list[str]:
    lines = ["| | Day | Previous 7 days | Daily average before |", "|---|---|---|---|"]
    for group, entries in summary.trend.items():
        lines += [
            f"| {group}: {name} | {t.day} | {t.previous_7_days} | {t.daily_average:g} |"
            for name, t in entries.items()
            if t.day or t.previous_7_days
        ]
    return lines + [""]


def _md_body(summary: DailySummary, level: str) -> list[str]:
    counts = " · ".join(f"{name}: {n}" for name, n in summary.by_urgency.items())
    lines = [f"{summary.messages} messages. {counts}", ""]
    lines += (
        [f"{level} Needs review", ""]
        + ([line for i in summary.review for line in _md_review(i)] or ["Nothing."])
        + [""]
    )
    lines += [f"{level} Critical and high cases", ""] + (
        [line for case in summary.urgent_cases for line in _md_case(case)]
        or ["Nothing critical or high.", ""]
    )
    lines += [f"{level} Due in the next {DUE_SOON_DAYS} days", ""] + _md_cases(summary.due_soon)
    lines += [f"{level} Overdue", ""] + _md_cases(summary.overdue)
    lines += [f"{level} Escalations", ""] + (
        [f"- **{e.kind.replace('_', ' ')}:** {_md_escape(e.message)}" for e in summary.repeat_escalations]
        or ["None."]
    )
    lines += (
        [
            f"- **overdue:** {len(summary.overdue)} case(s) past their response date and not answered (see Overdue)"
        ]
        if summary.overdue
        else []
    )
    lines += [""]
    lines += [f"{level} Suspicious senders", ""] + _md_items(summary.suspicious)
    lines += [f"{level} Counts against the previous 7 days", ""] + _md_trend(summary)
    lines += [f"{level} Other messages of the day", ""] + _md_items(
        [i for i in summary.items if i.urgency not in ("critical", "high")]
    )
    lines += [f"{level} Failed, waiting for replay", ""]
    lines += [f"- {_md_escape(i.message_id)}: {_md_escape(i.error or '')}" for i in summary.failed] or [
        "None."
    ]
    return lines + [""]


def render_markdown(summary: DailySummary) -> str:
    """The summary as Markdown, then a section per source; message text is escaped so it cannot inject markup."""
    lines = [f"# Triage summary for {summary.day.isoformat()} ({summary.timezone})", ""] + _md_body(
        summary, "##"
    )
    for section in summary.sections:
        lines += [f"## Source: {_md_escape(section.source or '')}", ""] + _md_body(section, "###")
    return "\n".join(lines) + "\n"


def render_csv(summary: DailySummary) -> str:
    """One row per open case (key, account, urgency, status, kind, due, next step, link), UTF-8 with a BOM so that spreadsheets read it as such."""
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(["key", "account", "urgency", "status", "kind", "due", "next_step", "link"])
    for case in summary.open_cases:
        writer.writerow(
            [
                _csv_safe(case.key),
                _csv_safe(case.source_name or ""),
                case.urgency,
                case.status,
                case.kind,
                case.response_due.isoformat() if case.response_due else "",
                _csv_safe(case.next_steps[0] if case.next_steps else ""),
                _csv_safe(case.links[0] if case.links else ""),
            ]
        )
    return buffer.getvalue()


def _csv_safe(text: str) -> str:
    """Cells that a spreadsheet would run as formulas get a leading apostrophe."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


RENDERERS = {"json": render_json, "markdown": render_markdown, "csv": render_csv}
