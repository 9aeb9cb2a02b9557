"""Records and raw messages through SQLAlchemy: SQLite by default, PostgreSQL by URL."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator

from pydantic_core import PydanticSerializationError
from sqlalchemy import create_engine, event, func, select, true
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import SQLAlchemyError

from complaint_triage.clock import utc_now
from complaint_triage.errors import StoreError
from complaint_triage.records import RawMessage, TriageRecord
from complaint_triage.store.case_links import attach
from complaint_triage.store.dialects import insert_for
from complaint_triage.store.identity import holds_message, resolve_identities
from complaint_triage.store.migrate import upgrade
from complaint_triage.store.tables import decode_record, messages

log = logging.getLogger("complaint_triage.store")


# SQLite copies its write-ahead log into the database file (a checkpoint, with an fsync) when the
# log passes wal_autocheckpoint pages, inside the commit that passed it; at the default 1,000 pages
# (4 MiB) that fell every ~1,300 stored messages and cost the writer more than its inserts. A store
# checkpoints in a thread of its own after commits instead (JournalKeeper); the automatic
# checkpoint stays as a backstop at 64 MiB.
WAL_AUTOCHECKPOINT_PAGES = 16384
SQLITE_BUSY_SECONDS = 30  # how long a statement waits for another connection's lock


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """WAL lets report, export and status read while the worker writes."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_SECONDS * 1000}")
    _into_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
    cursor.close()


def _into_wal(cursor) -> None:
    """Switch the file to WAL (it stays so); retried, since SQLite answers "locked" at once, without its busy timeout, when workers open a new file together."""
    deadline = time.monotonic() + SQLITE_BUSY_SECONDS
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def _json_text(value) -> str:
    """JSON for the record column: a TriageRecord straight from pydantic's serialiser, anything else through json."""
    if isinstance(value, TriageRecord):
        try:
            return value.model_dump_json(by_alias=True)
        except PydanticSerializationError:  # a lone surrogate from hostile mail: json escapes it
            value = value.to_json_dict()
    return json.dumps(value)


# TCP keepalives on every PostgreSQL connection, both ways: the server ends the session of a worker
# whose machine vanished (releasing its lease and any row locks of an unfinished batch) after
# idle + interval x count = 30 s of silence instead of the kernel's two hours, and a worker waiting on
# a vanished server gets an error instead of waiting for ever. A session left idle inside a
# transaction (a worker hung between statements of a batch) is ended after 10 minutes; a batch
# takes well under a second.
KEEPALIVE_SECONDS = {"idle": 15, "interval": 5, "count": 3}
IDLE_IN_TRANSACTION_TIMEOUT = "10min"


def postgres_connect_args(url: str | URL) -> dict:
    """libpq parameters for the URL: client and server keepalives, and the idle-in-transaction limit; the URL's own `options` are kept and win."""
    server = [f"-c tcp_keepalives_{name}={value}" for name, value in KEEPALIVE_SECONDS.items()]
    server.append(f"-c idle_in_transaction_session_timeout={IDLE_IN_TRANSACTION_TIMEOUT}")
    query = make_url(url).query
    own = query.get("options", ())
    wanted = {"keepalives": 1, **{f"keepalives_{name}": value for name, value in KEEPALIVE_SECONDS.items()}}
    wanted["options"] = " ".join([*server, *([own] if isinstance(own, str) else own)])
    return {name: value for name, value in wanted.items() if name == "options" or name not in query}


def make_engine(url: str | URL, **options) -> Engine:
    """An engine for the URL (with OPTIONS for create_engine); a SQLite file's directory is created."""
    if (
        isinstance(url, str)
        and url.startswith("sqlite:///")
        and not url.startswith(("sqlite:///:memory:", "sqlite:///file:"))
    ):
        directory = Path(url.removeprefix("sqlite:///").split("?")[0]).expanduser().parent
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"cannot open store {redact_url(url)}: cannot create {directory}: {exc.strerror or exc}"
            ) from None
    try:
        if make_url(url).get_backend_name() == "postgresql":
            options["connect_args"] = postgres_connect_args(url)
        engine = create_engine(url, future=True, pool_pre_ping=True, json_serializer=_json_text, **options)
    except ImportError as exc:
        hint = (
            " (install the PostgreSQL driver: pip install 'complaint-triage[postgres]')"
            if "postgres" in str(url)
            else ""
        )
        raise StoreError(f"cannot open store {redact_url(url)}: {exc}{hint}") from None
    except (SQLAlchemyError, ValueError) as exc:
        raise StoreError(f"cannot open store {redact_url(url)}: {exc}") from exc
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def redact_url(url: str) -> str:
    """The URL with any password replaced, safe for logs and errors."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<store url>"


def _row_values(message: RawMessage, record: TriageRecord) -> dict:
    now = utc_now()
    return {
        "message_id": record.message_id,
        "source": message.source,
        "source_name": message.source_name,
        "raw": message.raw,
        "raw_size": len(message.raw),
        "received_at": record.received_at.astimezone(timezone.utc)
        if record.received_at
        else None,  # SQLite keeps no offset: store UTC
        "stored_at": now,
        "triaged_at": now,
        "record": record,  # written by _json_text: the same JSON as to_json_dict(), without the detour through a dict
        "error": record.error,
        "kind": record.kind,
        "urgency": record.urgency,
        "is_complaint": record.is_complaint,
        "response_due": record.response_due,
        "attempts": 1,
    }


class JournalKeeper:
    """Checkpoints a SQLite store's write-ahead log in a thread of its own, woken after commits.

    SQLite releases the interpreter lock while it copies and syncs, so the copy runs beside the
    worker instead of inside one of its commits. A PASSIVE checkpoint never waits for readers or
    the writer; what it cannot copy yet is copied the next time.
    """

    def __init__(self, engine: Engine):
        self.engine = engine
        self._wake, self._stopping = threading.Event(), False
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()  # sources poll in threads of their own: one keeper for all

    def wake(self) -> None:
        """Ask for a checkpoint soon (the thread starts with the first commit)."""
        with self._starting:
            if self._thread is None:
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoints", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while self._wake.wait() and not self._stopping:
            self._wake.clear()
            try:
                with self.engine.connect() as connection:
                    connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
            except (
                SQLAlchemyError
            ) as exc:  # the log only stays longer; the automatic checkpoint still bounds it
                log.warning("could not checkpoint the SQLite log: %s", exc.__class__.__name__)

    def stop(self) -> None:
        """Finish a checkpoint in progress and end the thread."""
        with self._starting:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._wake.set()
        if thread is not None:
            thread.join()


class Store:
    """The record store. Saving the same message twice keeps one row (identity: Message-ID or raw hash, see store.identity)."""

    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self._journal = JournalKeeper(self.engine) if self.engine.dialect.name == "sqlite" else None
        self._checkpoints = None
        try:
            before = upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot prepare store {redact_url(url)}: {exc.__class__.__name__}") from exc
        if before in (None, "0001"):  # cases came with revision 0002: group what was stored before
            self.link_cases()

    # The facade: everything outside store/ goes through these, never through .engine.

    def cases(self, records: dict[str, TriageRecord] | None = None, keys: list[str] | None = None) -> list:
        """The cases of RECORDS (default: every stored record), or only those named by KEYS."""
        from complaint_triage.store.case_links import load_cases

        if records is None:
            records = {record.message_id: record for record in self.records()}
        return load_cases(self.engine, records, keys)

    def cases_by_key(self, keys: list[str]) -> list:
        """The named cases, reading only their own records."""
        from complaint_triage.store.case_links import load_cases_by_key

        return load_cases_by_key(self.engine, keys)

    def resolve_case(self, ident: str) -> str:
        """The case key for a complaint ID, case key or ASIN."""
        from complaint_triage.store.case_links import resolve_case_key

        return resolve_case_key(self.engine, ident)

    def set_case_status(
        self, ident: str, status: str, note: str | None = None, actor: str = "cli", with_siblings: bool = True
    ) -> list[str]:
        """Set a case's status (and its siblings' raised by the same mail), keeping the history."""
        from complaint_triage.store.case_links import set_status

        return set_status(self.engine, ident, status, note, actor, with_siblings)

    @property
    def checkpoints(self):
        """Per-source checkpoints and poll status, in this store's database."""
        from complaint_triage.store.checkpoints import Checkpoints

        if self._checkpoints is None:
            self._checkpoints = Checkpoints(self.engine)
        return self._checkpoints

    def leases(self):
        """A lease backend that fits this store's database (one worker per source at a time)."""
        from complaint_triage.store.leases import leases_for

        return leases_for(self.engine)

    @property
    def alert_log(self) -> "AlertLog":
        """Which alerts were sent, are failing or were given up."""
        return AlertLog(self.engine)

    def link_cases(self) -> None:
        """Group every stored record into cases (after an upgrade from a store without them)."""
        with self.engine.connect() as connection:
            ids = list(
                connection.execute(
                    select(messages.c.id).where(messages.c.error.is_(None)).order_by(messages.c.id)
                ).scalars()
            )
        for start in range(0, len(ids), 500):
            with self.engine.begin() as connection:
                rows = connection.execute(
                    select(messages.c.record).where(messages.c.id.in_(ids[start : start + 500]))
                ).scalars()
                attach(connection, [decode_record(row) for row in rows])

    def _insert(self):
        return insert_for(self.engine, messages)

    def save_many(
        self,
        pairs: Iterable[tuple[RawMessage, TriageRecord]],
        in_transaction: Callable[[Connection], None] | None = None,
        durable: bool = False,
    ) -> int:
        """Insert or refresh records in one transaction, with IN_TRANSACTION's own writes (a source's checkpoint); returns how many were written.

        SQLite commits in WAL mode with synchronous=NORMAL: a crash of the process loses nothing
        committed, a power loss may lose the last commits, and with them the checkpoint that
        pointed past them, so that mail is fetched again. That no longer holds once the mailbox
        was changed after the commit (moved mail is not fetched again): DURABLE commits wait for
        the disk (synchronous=FULL) for a source that flags or moves. PostgreSQL commits are
        durable as they are.
        """
        pairs = list(pairs)
        if not pairs:
            return 0
        statement = self._insert()
        kept = {
            name: getattr(statement.excluded, name)
            for name in (
                "record",
                "error",
                "kind",
                "urgency",
                "is_complaint",
                "response_due",
                "triaged_at",
                "received_at",
            )
        }
        kept["attempts"] = messages.c.attempts + 1
        statement = statement.on_conflict_do_update(index_elements=["message_id"], set_=kept)
        try:
            with self.engine.begin() as connection:
                if self.engine.dialect.name == "sqlite":
                    connection.exec_driver_sql(
                        f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}"
                    )  # read when this transaction commits
                pairs = resolve_identities(
                    connection, pairs
                )  # a Message-ID held by other bytes: this one gets its digest
                rows = [_row_values(message, record) for message, record in pairs]
                connection.execute(statement, _deduplicated(rows))  # one executemany
                attach(
                    connection, [record for _, record in pairs]
                )  # cases follow their records in the same commit
                if in_transaction is not None:  # so a checkpoint never runs ahead of the records
                    in_transaction(connection)
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot write to store: {exc.__class__.__name__}: {str(exc.orig) if hasattr(exc, 'orig') else exc}".splitlines()[
                    0
                ]
            ) from exc
        if self._journal is not None:
            self._journal.wake()
        return len(rows)

    def save(self, message: RawMessage, record: TriageRecord) -> None:
        """Insert or refresh one record."""
        self.save_many([(message, record)])

    def records(self, where=None) -> Iterator[TriageRecord]:
        """Stored records, oldest stored first."""
        query = select(messages.c.record).order_by(messages.c.id)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as connection:
            for (record,) in connection.execute(query):
                yield decode_record(record)

    def rows(self, where=None) -> list[dict]:
        """Stored rows without the raw bytes (for reports)."""
        columns = [c for c in messages.c if c.name != "raw"]
        query = select(*columns).order_by(messages.c.id)
        if where is not None:
            query = query.where(where)
        with self.engine.connect() as connection:
            return [dict(row._mapping) for row in connection.execute(query)]

    def raw_messages(self, failed_only: bool = False) -> Iterator[RawMessage]:
        """The kept raw messages, for reprocessing after a pattern change or replaying failures."""
        condition = messages.c.error.is_not(None) if failed_only else true()
        with self.engine.connect() as connection:
            ids = list(
                connection.execute(select(messages.c.id).where(condition).order_by(messages.c.id)).scalars()
            )
        columns = (messages.c.raw, messages.c.source, messages.c.source_name)
        for start in range(0, len(ids), 200):
            chunk = ids[start : start + 200]
            with self.engine.connect() as connection:
                for row in connection.execute(
                    select(*columns).where(messages.c.id.in_(chunk)).order_by(messages.c.id)
                ):
                    yield RawMessage(raw=row.raw, source=row.source, source_name=row.source_name)

    def count(self, failed_only: bool = False) -> int:
        """How many messages are stored (or failed)."""
        query = select(func.count()).select_from(messages)
        if failed_only:
            query = query.where(messages.c.error.is_not(None))
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()

    def has_message(self, message_id: str) -> bool:
        """True when a record with this identity is stored."""
        with self.engine.connect() as connection:
            return (
                connection.execute(select(messages.c.id).where(messages.c.message_id == message_id)).first()
                is not None
            )

    def holds(self, identity: str, raw: bytes) -> bool:
        """True when exactly these bytes are stored (under IDENTITY, or under the distinct identity they got)."""
        with self.engine.connect() as connection:
            return holds_message(connection, identity, raw)

    def close(self) -> None:
        """End the checkpoint thread and release the connection pool."""
        if self._journal is not None:
            self._journal.stop()
        self.engine.dispose()


def _deduplicated(rows: list[dict]) -> list[dict]:
    """Within one batch the last copy of a message wins (the database would reject two in one statement)."""
    latest: dict[str, dict] = {}
    for row in rows:
        latest[row["message_id"]] = row
    return list(latest.values())


class AlertLog:
    """The alert log of one store (store/alert_log.py bound to its engine)."""

    def __init__(self, engine: Engine):
        self._engine = engine

    def new_case_keys(self, opened_since: datetime) -> list[str]:
        """Cases still `new` opened at or after OPENED_SINCE."""
        from complaint_triage.store import alert_log

        return alert_log.new_case_keys(self._engine, opened_since)

    def outcomes(self, case_keys: list[str]) -> dict[tuple[str, str], dict]:
        """The recorded outcome of each (case, channel)."""
        from complaint_triage.store import alert_log

        return alert_log.outcomes(self._engine, case_keys)

    def outcomes_with_prefix(self, prefix: str) -> dict[tuple[str, str], dict]:
        """The recorded outcome of each (key, channel) whose key starts with PREFIX."""
        from complaint_triage.store import alert_log

        return alert_log.outcomes_with_prefix(self._engine, prefix)

    def record_outcome(
        self, case_keys: list[str], channel: str, state: str, attempts: int, error: str | None
    ) -> None:
        """Note one delivery attempt's outcome."""
        from complaint_triage.store import alert_log

        alert_log.record_outcome(self._engine, case_keys, channel, state, attempts, error)

    def entries(self) -> list[dict]:
        """Every recorded outcome, newest first."""
        from complaint_triage.store import alert_log

        return alert_log.entries(self._engine)
