"""Cases in the store: links from records to cases, status history, and the commands that change a status.

`attach` runs inside the transaction that commits the records, so a case never points at a
record that is not there, and linking the same message again (re-processing) changes nothing.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Iterable

from sqlalchemy import bindparam, delete, insert, select, true, update
from sqlalchemy.engine import Connection, Engine

from complaint_triage.cases import (
    CASE_STATUSES,
    CLOSED_STATUSES,
    CLOSING_KINDS,
    Case,
    CaseEvent,
    CaseKey,
    case_keys,
    describe,
    received,
    rights_owner_of,
    status_change,
    thread_ids,
)
from complaint_triage.clock import utc_now
from complaint_triage.errors import CaseError
from complaint_triage.records import TriageRecord
from complaint_triage.store.dialects import accepts_store, insert_for
from complaint_triage.store.tables import (
    case_asins,
    case_events,
    case_messages,
    cases,
    decode_record,
    messages,
)


def attach(connection: Connection, records: Iterable[TriageRecord]) -> None:
    """Link each record to its cases (oldest message first), open new cases and apply the status a message sets.

    The batch is written with a handful of set-based statements; only mail that must look up
    earlier cases (a retraction naming ASINs, a reply without identifiers) makes it write first.
    """
    batch = _Linking(connection, [record for record in records if not record.error])
    for record in sorted(batch.records, key=received):
        if _needs_lookup(record):
            batch.flush()
        keys = _keys_for(connection, record)
        batch.unlink_elsewhere(record.message_id, {key.key for key in keys})
        for key in keys:
            batch.link(key, record)
    batch.flush()


def _needs_lookup(record: TriageRecord) -> bool:
    return (record.kind in CLOSING_KINDS and not record.complaint_ids) or (
        not case_keys(record) and bool(record.in_reply_to or record.references)
    )


class _Linking:
    """The writes of one attach, collected and then executed together."""

    def __init__(self, connection: Connection, records: list[TriageRecord]):
        self.connection, self.records, self.now = connection, records, utc_now()
        self.insert = lambda table: insert_for(connection, table)
        ids = list({record.message_id for record in records})
        keys = list({key.key for record in records for key in case_keys(record)})
        self.status = (
            dict(
                connection.execute(
                    select(cases.c.case_key, cases.c.status).where(cases.c.case_key.in_(keys))
                ).all()
            )
            if keys
            else {}
        )
        found = (
            connection.execute(
                select(case_messages.c.case_key, case_messages.c.message_id).where(
                    case_messages.c.message_id.in_(ids)
                )
            ).all()
            if ids
            else []
        )
        self.linked = {(row.case_key, row.message_id) for row in found}
        self._clear()

    def _clear(self) -> None:
        self.new_cases: dict[str, dict] = {}
        self.links: list[dict] = []
        self.asins: dict[tuple[str, str], dict] = {}
        self.events: list[dict] = []
        self.unlinks: list[tuple[str, set[str]]] = []

    def unlink_elsewhere(self, message_id: str, keep: set[str]) -> None:
        """After re-processing, a message belongs only to the cases it names now."""
        stale = {key for key, linked_id in self.linked if linked_id == message_id and key not in keep}
        if stale:
            self.unlinks.append((message_id, stale))
            self.linked -= {(key, message_id) for key in stale}

    def link(self, key: CaseKey, record: TriageRecord) -> None:
        """Link one record to one case and note the status it sets."""
        if key.key not in self.status:
            self.status[key.key] = self._stored_status(key.key)
        current = self.status[key.key]
        if current is None and key.key not in self.new_cases:
            opened = received(record).astimezone(timezone.utc) if record.received_at else self.now
            self.new_cases[key.key] = {
                "case_key": key.key,
                "complaint_id": key.complaint_id,
                "asin": key.asin,
                "rights_owner": key.rights_owner,
                "source_name": record.source_name,
                "status": "new",
                "opened_at": opened,
                "updated_at": self.now,
            }
        for asin in [key.asin] if key.asin else record.asins:  # an ASIN's case is about that ASIN alone
            self.asins[(key.key, asin)] = {"case_key": key.key, "asin": asin}
        if (key.key, record.message_id) in self.linked:
            return  # linked before: re-processing sets no status again
        self.linked.add((key.key, record.message_id))
        self.links.append({"case_key": key.key, "message_id": record.message_id, "linked_at": self.now})
        closed_after = _closed_after(self.connection, key.key) if current in CLOSED_STATUSES else None
        change = status_change(current, record, closed_after)
        if change is not None:
            self.status[key.key] = change[0]
            self.events.append(
                {
                    "case_key": key.key,
                    "at": self.now,
                    "status": change[0],
                    "note": change[1],
                    "actor": "mail",
                    "message_id": record.message_id,
                }
            )

    def _stored_status(self, key: str) -> str | None:
        return self.connection.execute(select(cases.c.status).where(cases.c.case_key == key)).scalar()

    def flush(self) -> None:
        """Write what was collected."""
        execute = self.connection.execute
        for message_id, stale in self.unlinks:
            execute(
                delete(case_messages).where(
                    (case_messages.c.message_id == message_id) & case_messages.c.case_key.in_(stale)
                )
            )
        for table, rows in (
            (cases, list(self.new_cases.values())),
            (case_asins, list(self.asins.values())),
            (case_messages, self.links),
        ):
            if rows:
                execute(
                    self.insert(table).on_conflict_do_nothing(), rows
                )  # another worker may have made some
        if self.events:
            execute(insert(case_events), self.events)
            latest = {event["case_key"]: event["status"] for event in self.events}
            execute(
                update(cases)
                .where(cases.c.case_key == bindparam("key"))
                .values(status=bindparam("new_status"), updated_at=self.now),
                [{"key": key, "new_status": status} for key, status in latest.items()],
            )
        self._clear()


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
    query = select(cases.c.case_key, cases.c.rights_owner).join(
        case_asins, case_asins.c.case_key == cases.c.case_key
    )
    found = connection.execute(
        query.where(case_asins.c.asin.in_(record.asins)).distinct().order_by(cases.c.case_key)
    ).all()
    return [CaseKey(key=row.case_key) for row in found if owner is None or row.rights_owner in (owner, None)]


def _thread_cases(connection: Connection, record: TriageRecord) -> list[CaseKey]:
    """The cases of the messages a reply refers to."""
    query = (
        select(case_messages.c.case_key).where(case_messages.c.message_id.in_(thread_ids(record))).distinct()
    )
    return [
        CaseKey(key=key) for key in connection.execute(query.order_by(case_messages.c.case_key)).scalars()
    ]


def _closed_after(connection: Connection, case_key: str) -> datetime | None:
    """When the case was closed: the date of the message that closed it, or when a person closed it."""
    query = (
        select(case_events)
        .where(case_events.c.case_key == case_key)
        .order_by(case_events.c.id.desc())
        .limit(1)
    )
    event = connection.execute(query).first()
    if event is None or event.message_id is None:
        return event.at if event is not None else None
    sent = connection.execute(
        select(messages.c.received_at).where(messages.c.message_id == event.message_id)
    ).scalar()
    return sent or event.at


def _record_event(
    connection: Connection,
    case_key: str,
    status: str,
    note: str | None,
    actor: str,
    message_id: str | None,
    now: datetime,
) -> None:
    connection.execute(
        insert(case_events).values(
            case_key=case_key, at=now, status=status, note=note, actor=actor, message_id=message_id
        )
    )
    connection.execute(
        update(cases).where(cases.c.case_key == case_key).values(status=status, updated_at=now)
    )


@accepts_store
def resolve_case_key(engine: Engine, ident: str) -> str:
    """The key of the case IDENT names: a case key, a complaint ID, or an ASIN with exactly one case."""
    ident = ident.strip()
    with engine.connect() as connection:
        for key in (ident, f"complaint:{ident}"):
            if connection.execute(select(cases.c.case_key).where(cases.c.case_key == key)).first():
                return key
        by_asin = list(
            connection.execute(
                select(case_asins.c.case_key).where(case_asins.c.asin == ident.upper())
            ).scalars()
        )
    if len(by_asin) == 1:
        return by_asin[0]
    if by_asin:
        raise CaseError(f"{ident} names {len(by_asin)} cases: use one of {', '.join(sorted(by_asin))}")
    raise CaseError(f"no case {ident!r}: give a complaint ID, a case key or an ASIN")


@accepts_store
def set_status(
    engine: Engine,
    ident: str,
    status: str,
    note: str | None = None,
    actor: str = "cli",
    with_siblings: bool = True,
) -> list[str]:
    """Set a case's status with a note, keeping the history; with_siblings, also the cases raised by exactly the same mail.

    Returns the keys changed, the named case first.
    """
    if status not in CASE_STATUSES:
        raise CaseError(f"unknown status {status!r}: use one of {', '.join(CASE_STATUSES)}")
    key = resolve_case_key(engine, ident)
    now = utc_now()
    with engine.begin() as connection:
        keys = [key] + (_siblings(connection, key) if with_siblings else [])
        for each in keys:
            _record_event(connection, each, status, note, actor, None, now)
    return keys


def _siblings(connection: Connection, key: str) -> list[str]:
    """The other cases whose messages are exactly this case's (one notice naming several complaint IDs)."""
    own = set(
        connection.execute(
            select(case_messages.c.message_id).where(case_messages.c.case_key == key)
        ).scalars()
    )
    if not own:
        return []
    links = connection.execute(
        select(case_messages.c.case_key, case_messages.c.message_id).where(
            case_messages.c.case_key.in_(
                select(case_messages.c.case_key).where(case_messages.c.message_id.in_(own))
            )
        )
    ).all()
    members: dict[str, set[str]] = {}
    for link in links:
        members.setdefault(link.case_key, set()).add(link.message_id)
    return sorted(other for other, messages_of in members.items() if other != key and messages_of == own)


@accepts_store
def load_cases_by_key(engine: Engine, keys: list[str]) -> list[Case]:
    """Only the named cases, reading only their records."""
    if not keys:
        return []
    with engine.connect() as connection:
        ids = select(case_messages.c.message_id).where(case_messages.c.case_key.in_(keys))
        found = connection.execute(select(messages.c.record).where(messages.c.message_id.in_(ids))).scalars()
        records = [decode_record(record) for record in found]
    return load_cases(engine, {record.message_id: record for record in records}, keys)


@accepts_store
def load_cases(engine: Engine, records: dict[str, TriageRecord], keys: list[str] | None = None) -> list[Case]:
    """Every case (or the KEYS given) with its history and the key facts of its records (given by message ID); cases without records are skipped."""
    only = (lambda column: column.in_(keys)) if keys is not None else (lambda column: true())
    with engine.connect() as connection:
        rows = connection.execute(
            select(cases).where(only(cases.c.case_key)).order_by(cases.c.opened_at, cases.c.case_key)
        ).all()
        links = connection.execute(
            select(case_messages.c.case_key, case_messages.c.message_id).where(only(case_messages.c.case_key))
        ).all()
        events = connection.execute(
            select(case_events).where(only(case_events.c.case_key)).order_by(case_events.c.id)
        ).all()
    members: dict[str, list[str]] = {}
    for link in links:
        members.setdefault(link.case_key, []).append(link.message_id)
    history: dict[str, list[CaseEvent]] = {}
    for event in events:
        history.setdefault(event.case_key, []).append(
            CaseEvent(
                at=event.at,
                status=event.status,
                note=event.note,
                actor=event.actor,
                message_id=event.message_id,
            )
        )
    found = []
    for row in rows:
        linked = [records[m] for m in members.get(row.case_key, []) if m in records]
        if not linked:
            continue
        linked.sort(key=received)
        case = Case(
            key=row.case_key,
            status=row.status,
            complaint_id=row.complaint_id,
            asin=row.asin,
            rights_owner=row.rights_owner,
            source_name=row.source_name,
            opened_at=row.opened_at,
            history=history.get(row.case_key, []),
            message_ids=[r.message_id for r in linked],
        )
        found.append(describe(case, linked))
    return found
