"""Time, the one way: moments are timezone-aware UTC, and naive ones (SQLite hands them back so) are UTC."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """Now, aware, in UTC."""
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """MOMENT as an aware datetime: a naive one (as SQLite returns stored times) is taken as UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
