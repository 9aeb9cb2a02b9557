"""The summary as it leaves the server: a multipart e-mail (plain text and HTML with inline CSS) and a short chat version.

The chat version is what a reader needs first: what is overdue, what is due soon, the new
urgent cases, each on one line with its account and a relative date. It stays under Slack's
40,000-character limit however long the day was.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from email.message import EmailMessage

from complaint_triage.cases import Case
from complaint_triage.report.summary import DailySummary

SLACK_LIMIT = 40_000
_CHAT_BUDGET = SLACK_LIMIT - 1_000  # room for the closing line
_SCRIPT = re.compile(r"<script\b.*?</script>", re.DOTALL | re.IGNORECASE)
_CSP_META = re.compile(r'<meta http-equiv="Content-Security-Policy"[^>]*>', re.IGNORECASE)


def relative_due(due: date | None, reader_day: date) -> str:
    """The response date as the morning reader sees it: "overdue 5 days", "due today", "due in 2 days"."""
    if due is None:
        return "no date"
    days = (due - reader_day).days
    if days < 0:
        return f"overdue {-days} day{'s' if days != -1 else ''}"
    return "due today" if days == 0 else f"due in {days} day{'s' if days != 1 else ''}"


def headline(summary: DailySummary) -> str:
    """One line: the day and what needs doing."""
    counts = (
        ", ".join(
            f"{n} {level}" for level, n in summary.by_urgency.items() if n and level in ("critical", "high")
        )
        or "nothing critical or high"
    )
    return f"Complaint triage for {summary.day.isoformat()}: {summary.messages} message{'s' if summary.messages != 1 else ''} ({counts}), {len(summary.overdue)} overdue, {len(summary.due_soon)} due soon"


def _slack_text(text: str) -> str:
    """Message text inert in Slack: no links, mentions or formatting from a message."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return re.sub(
        r"[*_~`]", lambda m: {"*": "\u2217", "_": "\uff3f", "~": "\u223c", "`": "\u2018"}[m.group()], text
    ).replace("\n", " ")


def _case_line(case: Case, reader_day: date, escape) -> str:
    account = f" · {escape(case.source_name)}" if case.source_name else ""
    return f"• {relative_due(case.response_due, reader_day)} · {case.urgency}{account} · {escape(case.key)} · {escape(case.subject or '(no subject)')[:200]}"


def _sections(summary: DailySummary) -> list[tuple[str, list[Case]]]:
    seen: set[str] = set()
    found = []
    for title, cases in (
        ("Overdue", summary.overdue),
        ("Due soon", summary.due_soon),
        ("New urgent cases", summary.urgent_cases),
    ):
        fresh = [case for case in cases if case.key not in seen]  # each case once, where it matters most
        seen.update(case.key for case in fresh)
        found.append((title, fresh))
    return found


def chat_lines(summary: DailySummary, escape, bold, workspace_url: str | None = None) -> list[str]:
    """The short version as lines, cut to the chat budget with a note of what was left out."""
    reader_day = summary.day + timedelta(days=1)
    lines, used, left_out = [bold(escape(headline(summary)))], 0, 0
    for title, cases in _sections(summary):
        if not cases:
            continue
        lines.append(bold(f"{title} ({len(cases)})"))
        for case in cases:
            line = _case_line(case, reader_day, escape)
            if used + len(line) > _CHAT_BUDGET:
                left_out += 1
                continue
            lines.append(line)
            used += len(line) + 1
    if left_out:
        lines.append(f"… and {left_out} more: see the full summary")
    if workspace_url:
        lines.append(f"Open the queue: {workspace_url.rstrip('/')}/")
    return lines


def slack_payload(summary: DailySummary, workspace_url: str | None = None) -> dict:
    """The Slack incoming-webhook body: mrkdwn text under 40,000 characters."""
    text = "\n".join(chat_lines(summary, _slack_text, lambda s: f"*{s}*", workspace_url))
    return {"text": text[:SLACK_LIMIT], "mrkdwn": True}


def _teams_text(text: str) -> str:
    return re.sub(r"([\\`*_{}\[\]()#+\-.!<>|~])", r"\\\1", text).replace("\n", " ")


def teams_payload(summary: DailySummary, workspace_url: str | None = None) -> dict:
    """The Microsoft Teams incoming-webhook body: one Adaptive Card, a text block per line."""
    lines = chat_lines(summary, _teams_text, lambda s: f"**{s}**", None)
    body = [
        {
            "type": "TextBlock",
            "text": line,
            "wrap": True,
            **({"weight": "Bolder"} if line.startswith("**") else {}),
        }
        for line in lines
    ]
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.4",
        "body": body,
    }
    if workspace_url:
        card["actions"] = [
            {"type": "Action.OpenUrl", "title": "Open the queue", "url": workspace_url.rstrip("/") + "/"}
        ]
    return {
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "content": card}],
    }


def email_html(summary: DailySummary) -> str:
    """The HTML summary for a mail client: CSS inlined on each element (clients drop <style>), no script."""
    import css_inline

    from complaint_triage.report.html import render_html

    html = _CSP_META.sub(
        "", _SCRIPT.sub("", render_html(summary))
    )  # our own filter script: mail clients run none
    inliner = css_inline.CSSInliner(
        keep_at_rules=True, load_remote_stylesheets=False, resolve_css_variables=True
    )
    return inliner.inline(html)


def email_message(summary: DailySummary, sender: str, to: list[str]) -> EmailMessage:
    """The summary as a multipart/alternative mail (Markdown text and inlined HTML), the CSV attached."""
    from complaint_triage.report.formats import render_csv, render_markdown

    message = EmailMessage()
    message["Subject"], message["From"], message["To"] = headline(summary), sender, ", ".join(to)
    message.set_content(render_markdown(summary))
    message.add_alternative(email_html(summary), subtype="html")
    message.add_attachment(
        render_csv(summary).encode("utf-8"),
        maintype="text",
        subtype="csv",
        filename=f"summary-{summary.day.isoformat()}.csv",
    )
    return message
