"""The daily summary as one self-contained HTML file: inline CSS and SVG, works offline and without JavaScript."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, select_autoescape

from complaint_triage.report.outbound import relative_due
from complaint_triage.report.summary import DUE_SOON_DAYS, DailySummary

_COLOURS = {"critical": "#b3261e", "high": "#c25e00", "medium": "#8a6d00", "low": "#4a6b4a"}


@lru_cache(maxsize=1)
def _environment() -> Environment:
    # Autoescape everything: subjects, senders and identifiers come from untrusted mail.
    return Environment(
        loader=PackageLoader("complaint_triage.report", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def urgency_bars(summary: DailySummary) -> list[dict]:
    """Bar geometry for the inline SVG chart: the day against the previous 7 days' daily average."""
    widest = max([*summary.by_urgency.values(), *(n / 7 for n in summary.previous_7_days.values()), 1])
    bars = []
    for row, (level, count) in enumerate(summary.by_urgency.items()):
        average = summary.previous_7_days[level] / 7
        bars.append(
            {
                "level": level,
                "count": count,
                "average": round(average, 1),
                "y": row * 28,
                "width": round(220 * count / widest),
                "avg_x": round(90 + 220 * average / widest),
                "colour": _COLOURS[level],
            }
        )
    return bars


def render_html(summary: DailySummary) -> str:
    """Render the summary (and its section per source) as a standalone HTML page."""
    template = _environment().get_template("summary.html.j2")
    zone = ZoneInfo(summary.timezone)
    reader_day = summary.day + timedelta(days=1)  # the morning it is read

    def due_text(due: date | None) -> str:
        return relative_due(due, reader_day) if due else "no date"

    def local_time(moment: datetime | None) -> str:
        if moment is None:
            return ""
        aware = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        return aware.astimezone(zone).strftime("%Y-%m-%d %H:%M")

    return template.render(
        summary=summary,
        urgency_bars=urgency_bars,
        due_soon_days=DUE_SOON_DAYS,
        colours=_COLOURS,
        due_text=due_text,
        local_time=local_time,
        is_web_link=lambda url: url.startswith(("https://", "http://")),
    )
