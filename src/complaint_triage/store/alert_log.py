"""Which alerts were sent, are failing or were given up: one row per case and channel."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Engine

from complaint_triage.clock import utc_now
from complaint_triage.store.dialects import insert_for
from complaint_triage.store.tables import alerts, cases


def new_case_keys(engine: Engine, opened_since: datetime) -> list[str]:
    """Cases still `new` that opened at or after OPENED_SINCE (a case opens at its first message's date)."""
    query = select(cases.c.case_key).where((cases.c.status == "new") & (cases.c.opened_at >= opened_since))
    with engine.connect() as connection:
        return list(connection.execute(query).scalars())


def outcomes(engine: Engine, case_keys: list[str]) -> dict[tuple[str, str], dict]:
    """The recorded outcome of each (case, channel) among CASE_KEYS: the table grows with every alert ever sent."""
    with engine.connect() as connection:
        rows = connection.execute(select(alerts).where(alerts.c.case_key.in_(case_keys))).all()
    return {(row.case_key, row.channel): dict(row._mapping) for row in rows}


def outcomes_with_prefix(engine: Engine, prefix: str) -> dict[tuple[str, str], dict]:
    """The recorded outcome of each (key, channel) whose key starts with PREFIX (source outages are keyed 'source:NAME:...')."""
    with engine.connect() as connection:
        rows = connection.execute(select(alerts).where(alerts.c.case_key.startswith(prefix))).all()
    return {(row.case_key, row.channel): dict(row._mapping) for row in rows}


def record_outcome(
    engine: Engine, case_keys: list[str], channel: str, state: str, attempts: int, error: str | None
) -> None:
    """Note one delivery attempt's outcome for every case the alert covered."""
    now = utc_now()
    values = {
        "state": state,
        "attempts": attempts,
        "last_error": error,
        "last_attempt_at": now,
        "sent_at": now if state == "sent" else None,
    }
    with engine.begin() as connection:
        for key in case_keys:
            statement = insert_for(connection, alerts).values(
                case_key=key, channel=channel, first_attempt_at=now, **values
            )
            connection.execute(
                statement.on_conflict_do_update(index_elements=["case_key", "channel"], set_=values)
            )


def entries(engine: Engine) -> list[dict]:
    """Every recorded alert outcome, newest first."""
    with engine.connect() as connection:
        return [
            dict(row._mapping)
            for row in connection.execute(select(alerts).order_by(alerts.c.last_attempt_at.desc()))
        ]
