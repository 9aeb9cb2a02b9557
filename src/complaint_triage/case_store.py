"""Cases in the store: links from records to cases, status history, and the commands that change a status.

`attach` runs inside the transaction that commits the records, so a case never points at a
record that is not there, and linking the same message again (re-processing) changes nothing.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import delete, insert, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from complaint_triage.cases import (
    CASE_STATUSES, CLOSED_STATUSES, CLOSING_KINDS, Case, CaseEvent, CaseKey, case_keys, describe, received, rights_owner_of,
    status_change, thread_ids,
)
from complaint_triage.errors import CaseError
from complaint_triage.models import TriageRecord
from complaint_triage.tables import case_asins, case_events, case_messages, cases, messages


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _insert_ignoring_duplicates(connection: Connection, table, values: dict) -> bool:
    """Insert a row unless its key exists (another worker may have made it); True when this call inserted it."""
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[connection.dialect.name]
    result = connection.execute(dialect.insert(table).values(**values).on_conflict_do_nothing())
    return result.rowcount == 1


def attach(connection: Connection, records: Iterable[TriageRecord]) -> None:
    """Link each record to its cases (oldest message first), open new cases and apply the status a message sets."""
    now = _now()
    for record in sorted(records, key=received):
        if record.error:
            continue
        keys = _keys_for(connection, record)
        _unlink_elsewhere(connection, record.message_id, {key.key for key in keys})
        for key in keys:
            _link(connection, key, record, now)


def _keys_for(connection: Connection, record: TriageRecord) -> list[CaseKey]:
    keys = case_keys(record)
    if record.kind in CLOSING_KINDS and not record.complaint_ids:
        keys = _cases_closed_by(connection, record) or keys
    if not keys and (record.in_reply_to or record.references):
        keys = _thread_cases(connection, record)
    return keys


def _cases_closed_by(connection: Connection, record: TriageRecord) -> list[CaseKey]:
    """The cases on the ASINs a retraction or reinstatement names: the same owner's, or any owner's when it names none."""
    if not record.asins:
        return []
    owner = rights_owner_of(record)
    query = select(cases.c.case_key, cases.c.rights_owner).join(case_asins, case_asins.c.case_key == cases.c.case_key)
    found = connection.execute(query.where(case_asins.c.asin.in_(record.asins)).distinct().order_by(cases.c.case_key)).all()
    return [CaseKey(key=row.case_key) for row in found if owner is None or row.rights_owner in (owner, None)]


def _thread_cases(connection: Connection, record: TriageRecord) -> list[CaseKey]:
    """The cases of the messages a reply refers to."""
    query = select(case_messages.c.case_key).where(case_messages.c.message_id.in_(thread_ids(record))).distinct()
    return [CaseKey(key=key) for key in connection.execute(query.order_by(case_messages.c.case_key)).scalars()]


def _unlink_elsewhere(connection: Connection, message_id: str, keep: set[str]) -> None:
    """After re-processing, a message belongs only to the cases it names now."""
    condition = case_messages.c.message_id == message_id
    if keep:
        condition = condition & case_messages.c.case_key.not_in(keep)
    connection.execute(delete(case_messages).where(condition))


def _link(connection: Connection, key: CaseKey, record: TriageRecord, now: datetime) -> None:
    row = connection.execute(select(cases.c.status).where(cases.c.case_key == key.key)).first()
    current = row.status if row else None
    if current is None:
        _insert_ignoring_duplicates(connection, cases, {
            "case_key": key.key, "complaint_id": key.complaint_id, "asin": key.asin, "rights_owner": key.rights_owner,
            "source_name": record.source_name, "status": "new", "opened_at": received(record).astimezone(timezone.utc) if record.received_at else now, "updated_at": now,
        })
    for asin in [key.asin] if key.asin else record.asins:  # an ASIN's case is about that ASIN alone
        _insert_ignoring_duplicates(connection, case_asins, {"case_key": key.key, "asin": asin})
    if not _insert_ignoring_duplicates(connection, case_messages, {"case_key": key.key, "message_id": record.message_id, "linked_at": now}):
        return  # linked before: re-processing sets no status again
    change = status_change(current, record, _closed_after(connection, key.key) if current in CLOSED_STATUSES else None)
    if change is not None:
        _record_event(connection, key.key, change[0], change[1], "mail", record.message_id, now)


def _closed_after(connection: Connection, case_key: str) -> datetime | None:
    """When the case was closed: the date of the message that closed it, or when a person closed it."""
    query = select(case_events).where(case_events.c.case_key == case_key).order_by(case_events.c.id.desc()).limit(1)
    event = connection.execute(query).first()
    if event is None or event.message_id is None:
        return event.at if event is not None else None
    sent = connection.execute(select(messages.c.received_at).where(messages.c.message_id == event.message_id)).scalar()
    return sent or event.at


def _record_event(connection: Connection, case_key: str, status: str, note: str | None, actor: str, message_id: str | None, now: datetime) -> None:
    connection.execute(insert(case_events).values(case_key=case_key, at=now, status=status, note=note, actor=actor, message_id=message_id))
    connection.execute(update(cases).where(cases.c.case_key == case_key).values(status=status, updated_at=now))


def resolve_case_key(engine: Engine, ident: str) -> str:
    """The key of the case IDENT names: a case key, a complaint ID, or an ASIN with exactly one case."""
    ident = ident.strip()
    with engine.connect() as connection:
        for key in (ident, f"complaint:{ident}"):
            if connection.execute(select(cases.c.case_key).where(cases.c.case_key == key)).first():
                return key
        by_asin = list(connection.execute(select(case_asins.c.case_key).where(case_asins.c.asin == ident.upper())).scalars())
    if len(by_asin) == 1:
        return by_asin[0]
    if by_asin:
        raise CaseError(f"{ident} names {len(by_asin)} cases: use one of {', '.join(sorted(by_asin))}")
    raise CaseError(f"no case {ident!r}: give a complaint ID, a case key or an ASIN")


def set_status(engine: Engine, ident: str, status: str, note: str | None = None, actor: str = "cli", with_siblings: bool = True) -> list[str]:
    """Set a case's status with a note, keeping the history; with_siblings, also the cases raised by exactly the same mail.

    Returns the keys changed, the named case first.
    """
    if status not in CASE_STATUSES:
        raise CaseError(f"unknown status {status!r}: use one of {', '.join(CASE_STATUSES)}")
    key = resolve_case_key(engine, ident)
    now = _now()
    with engine.begin() as connection:
        keys = [key] + (_siblings(connection, key) if with_siblings else [])
        for each in keys:
            _record_event(connection, each, status, note, actor, None, now)
    return keys


def _siblings(connection: Connection, key: str) -> list[str]:
    """The other cases whose messages are exactly this case's (one notice naming several complaint IDs)."""
    own = set(connection.execute(select(case_messages.c.message_id).where(case_messages.c.case_key == key)).scalars())
    if not own:
        return []
    links = connection.execute(select(case_messages.c.case_key, case_messages.c.message_id).where(
        case_messages.c.case_key.in_(select(case_messages.c.case_key).where(case_messages.c.message_id.in_(own)))
    )).all()
    members: dict[str, set[str]] = {}
    for link in links:
        members.setdefault(link.case_key, set()).add(link.message_id)
    return sorted(other for other, messages_of in members.items() if other != key and messages_of == own)


def load_cases_by_key(engine: Engine, keys: list[str]) -> list[Case]:
    """Only the named cases, reading only their records."""
    if not keys:
        return []
    with engine.connect() as connection:
        ids = select(case_messages.c.message_id).where(case_messages.c.case_key.in_(keys))
        found = connection.execute(select(messages.c.record).where(messages.c.message_id.in_(ids))).scalars()
        records = [TriageRecord.model_validate(record if isinstance(record, dict) else json.loads(record)) for record in found]
    return load_cases(engine, {record.message_id: record for record in records}, keys)


def load_cases(engine: Engine, records: dict[str, TriageRecord], keys: list[str] | None = None) -> list[Case]:
    """Every case (or the KEYS given) with its history and the key facts of its records (given by message ID); cases without records are skipped."""
    only = (lambda column: column.in_(keys)) if keys is not None else (lambda column: true())
    with engine.connect() as connection:
        rows = connection.execute(select(cases).where(only(cases.c.case_key)).order_by(cases.c.opened_at, cases.c.case_key)).all()
        links = connection.execute(select(case_messages.c.case_key, case_messages.c.message_id).where(only(case_messages.c.case_key))).all()
        events = connection.execute(select(case_events).where(only(case_events.c.case_key)).order_by(case_events.c.id)).all()
    members: dict[str, list[str]] = {}
    for link in links:
        members.setdefault(link.case_key, []).append(link.message_id)
    history: dict[str, list[CaseEvent]] = {}
    for event in events:
        history.setdefault(event.case_key, []).append(CaseEvent(at=event.at, status=event.status, note=event.note, actor=event.actor, message_id=event.message_id))
    found = []
    for row in rows:
        linked = [records[m] for m in members.get(row.case_key, []) if m in records]
        if not linked:
            continue
        linked.sort(key=received)
        case = Case(key=row.case_key, status=row.status, complaint_id=row.complaint_id, asin=row.asin, rights_owner=row.rights_owner,
                    source_name=row.source_name, opened_at=row.opened_at, history=history.get(row.case_key, []), message_ids=[r.message_id for r in linked])
        found.append(describe(case, linked))
    return found
