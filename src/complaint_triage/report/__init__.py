"""The daily triage summary and its formats.

summary   what a day's summary holds, built from stored records and cases
formats   JSON, Markdown and CSV renderings
html      the HTML rendering (Jinja2 template in templates/)
"""

from __future__ import annotations

from complaint_triage.report.formats import RENDERERS
from complaint_triage.report.summary import (
    DailySummary,
    latest_day,
    summary_for_day,
    summary_rows,
    today_in,
    yesterday_in,
)

EXTENSIONS = {"json": "json", "markdown": "md", "csv": "csv", "html": "html"}
FORMATS = tuple(EXTENSIONS)

__all__ = [
    "DailySummary",
    "EXTENSIONS",
    "FORMATS",
    "latest_day",
    "render",
    "summary_for_day",
    "summary_rows",
    "today_in",
    "yesterday_in",
]


def render(summary: DailySummary, output_format: str) -> str:
    """Render the summary in one of html, markdown, json, csv."""
    if output_format == "html":
        from complaint_triage.report.html import render_html

        return render_html(summary)
    return RENDERERS[output_format](summary)
