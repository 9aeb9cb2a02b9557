"""What people do on a case besides changing its status (notes, assignment), and the stored mail the workspace shows."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from sqlalchemy import delete, insert, select
from sqlalchemy.engine import Engine

from complaint_triage.errors import CaseError
from complaint_triage.records import TriageRecord
from complaint_triage.store.dialects import accepts_store
from complaint_triage.store.tables import case_assignments, case_events, cases, messages


def _now() -> datetime:
    return datetime.now(UTC)


@accepts_store
def add_note(engine: Engine, case_key: str, note: str, actor: str) -> None:
    """Keep a note in the case's history without changing its status."""
    if not note.strip():
        raise CaseError("an empty note says nothing: write what was done")
    with engine.begin() as connection:
        status = connection.execute(select(cases.c.status).where(cases.c.case_key == case_key)).scalar()
        if status is None:
            raise CaseError(f"no case {case_key!r}")
        connection.execute(
            insert(case_events).values(
                case_key=case_key, at=_now(), status=status, note=note.strip(), actor=actor, message_id=None
            )
        )


@accepts_store
def assign(engine: Engine, case_key: str, username: str | None, actor: str) -> None:
    """Give the case to USERNAME (None: to nobody), noted in its history."""
    now = _now()
    with engine.begin() as connection:
        status = connection.execute(select(cases.c.status).where(cases.c.case_key == case_key)).scalar()
        if status is None:
            raise CaseError(f"no case {case_key!r}")
        connection.execute(delete(case_assignments).where(case_assignments.c.case_key == case_key))
        if username:
            connection.execute(
                insert(case_assignments).values(
                    case_key=case_key, username=username, assigned_by=actor, assigned_at=now
                )
            )
        note = f"assigned to {username}" if username else "unassigned"
        connection.execute(
            insert(case_events).values(
                case_key=case_key, at=now, status=status, note=note, actor=actor, message_id=None
            )
        )


@accepts_store
def assignees(engine: Engine) -> dict[str, str]:
    """Who each assigned case is given to, by case key."""
    with engine.connect() as connection:
        return dict(
            connection.execute(select(case_assignments.c.case_key, case_assignments.c.username)).all()
        )


@accepts_store
def records_of(engine: Engine, message_ids: list[str]) -> dict[str, TriageRecord]:
    """The stored records of these messages, by message ID."""
    if not message_ids:
        return {}
    with engine.connect() as connection:
        found = connection.execute(
            select(messages.c.record).where(messages.c.message_id.in_(message_ids))
        ).scalars()
        records = [
            TriageRecord.model_validate(row if isinstance(row, dict) else json.loads(row)) for row in found
        ]
    return {record.message_id: record for record in records}


@accepts_store
def raw_mail(engine: Engine, message_id: str) -> bytes | None:
    """The kept raw bytes of one message."""
    with engine.connect() as connection:
        return connection.execute(select(messages.c.raw).where(messages.c.message_id == message_id)).scalar()


@accepts_store
def failed_mail(engine: Engine) -> list[dict]:
    """The stored messages whose triage failed, newest first: what the sources page offers to replay."""
    columns = (
        messages.c.message_id,
        messages.c.source_name,
        messages.c.error,
        messages.c.stored_at,
        messages.c.attempts,
    )
    with engine.connect() as connection:
        return [
            dict(row._mapping)
            for row in connection.execute(
                select(*columns).where(messages.c.error.is_not(None)).order_by(messages.c.id.desc())
            )
        ]
