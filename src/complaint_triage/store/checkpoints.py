"""Where each source stands: per IMAP folder the UIDVALIDITY and the last committed UID; per source its poll status.

The tables live in the same database as the records, so that a
checkpoint is advanced in the transaction that commits the records it covers and can never run
ahead of them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.engine import Connection, Engine

from complaint_triage.clock import as_utc, utc_now
from complaint_triage.logs import scrub
from complaint_triage.records import FolderCheckpoint, SourceStatus
from complaint_triage.store.tables import folder_checkpoints, source_status, sync_cursors


class Checkpoints:
    """Reads and advances folder checkpoints and source status in the store's database."""

    def __init__(self, engine: Engine):
        self.engine = getattr(
            engine, "engine", engine
        )  # the Store facade or its engine  # the tables exist: opening the Store migrated its database

    def folder(self, source_name: str, folder: str) -> FolderCheckpoint:
        """The folder's checkpoint (a fresh one when it was never polled)."""
        query = select(folder_checkpoints).where(_folder_key(source_name, folder))
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        return FolderCheckpoint(row.uidvalidity, row.last_uid, row.settled_uid) if row else FolderCheckpoint()

    def advance(self, connection: Connection, source_name: str, folder: str, mark: FolderCheckpoint) -> None:
        """Move the folder's checkpoint forward inside the caller's transaction; under the same UIDVALIDITY it never goes back."""
        key = _folder_key(source_name, folder)
        current = connection.execute(select(folder_checkpoints).where(key)).first()
        if current is not None and current.uidvalidity == mark.uidvalidity:
            mark = FolderCheckpoint(
                mark.uidvalidity,
                max(mark.last_uid, current.last_uid),
                max(mark.settled_uid, current.settled_uid),
            )
        values = {
            "uidvalidity": mark.uidvalidity,
            "last_uid": mark.last_uid,
            "settled_uid": mark.settled_uid,
            "updated_at": utc_now(),
        }
        if current is None:
            connection.execute(
                insert(folder_checkpoints).values(source_name=source_name, folder=folder, **values)
            )
        else:
            connection.execute(update(folder_checkpoints).where(key).values(**values))

    def save(self, source_name: str, folder: str, mark: FolderCheckpoint) -> None:
        """Advance a checkpoint in a transaction of its own (nothing to commit with it)."""
        with self.engine.begin() as connection:
            self.advance(connection, source_name, folder, mark)

    def cursor(self, source_name: str, scope: str) -> str | None:
        """The committed resume point of an API source's SCOPE (None: start from the beginning)."""
        query = select(sync_cursors.c.cursor).where(_cursor_key(source_name, scope))
        with self.engine.connect() as connection:
            return connection.execute(query).scalar()

    def advance_cursor(
        self, connection: Connection, source_name: str, scope: str, cursor: str | None
    ) -> None:
        """Store SCOPE's resume point inside the caller's transaction (None clears it: the next poll starts over)."""
        key = _cursor_key(source_name, scope)
        connection.execute(sync_cursors.delete().where(key))
        if cursor is not None:
            connection.execute(
                insert(sync_cursors).values(
                    source_name=source_name, scope=scope, cursor=cursor, updated_at=utc_now()
                )
            )

    def save_cursor(self, source_name: str, scope: str, cursor: str | None) -> None:
        """Store a resume point in a transaction of its own."""
        with self.engine.begin() as connection:
            self.advance_cursor(connection, source_name, scope, cursor)

    def count_triaged(self, connection: Connection, source_name: str, count: int) -> None:
        """Add COUNT committed messages to the source's total, inside the caller's transaction."""
        self._ensure_status(connection, source_name)
        connection.execute(
            update(source_status)
            .where(source_status.c.source_name == source_name)
            .values(messages_triaged=source_status.c.messages_triaged + count)
        )

    def record_poll(
        self,
        source_name: str,
        error: str | None,
        backlog: int,
        auth_failed: bool = False,
        token_expires_at: datetime | None = None,
    ) -> None:
        """Note the end of a poll: when, whether it worked (and since when it has not), and how much is left."""
        now = utc_now()
        values = {"last_poll_at": now, "backlog": backlog, "auth_failed": bool(error) and auth_failed}
        if error:
            values.update(last_error=scrub(error), last_error_at=now)
        else:
            values.update(last_success_at=now, failing_since=None)
        if token_expires_at is not None:
            values["token_expires_at"] = token_expires_at
        with self.engine.begin() as connection:
            self._ensure_status(connection, source_name)
            key = source_status.c.source_name == source_name
            if (
                error
                and connection.execute(select(source_status.c.failing_since).where(key)).scalar() is None
            ):
                values["failing_since"] = now  # the first failure of a run of them: an outage starts here
            connection.execute(update(source_status).where(key).values(**values))

    def statuses(self) -> dict[str, SourceStatus]:
        """Every source's status, by name."""
        with self.engine.connect() as connection:
            rows = connection.execute(select(source_status)).all()
        return {
            row.source_name: SourceStatus(**{key: _aware(value) for key, value in row._mapping.items()})
            for row in rows
        }

    def folders(self, source_name: str) -> dict[str, FolderCheckpoint]:
        """Every folder checkpoint of one source, by folder."""
        query = select(folder_checkpoints).where(folder_checkpoints.c.source_name == source_name)
        with self.engine.connect() as connection:
            return {
                row.folder: FolderCheckpoint(row.uidvalidity, row.last_uid, row.settled_uid)
                for row in connection.execute(query)
            }

    @staticmethod
    def _ensure_status(connection: Connection, source_name: str) -> None:
        exists = connection.execute(
            select(source_status.c.source_name).where(source_status.c.source_name == source_name)
        ).first()
        if exists is None:
            connection.execute(
                insert(source_status).values(
                    source_name=source_name, messages_triaged=0, backlog=0, auth_failed=False
                )
            )


def _aware(value):
    """SQLite hands timestamps back without their zone; every one the store writes is UTC."""
    return as_utc(value) if isinstance(value, datetime) else value


def _cursor_key(source_name: str, scope: str):
    return (sync_cursors.c.source_name == source_name) & (sync_cursors.c.scope == scope)


def _folder_key(source_name: str, folder: str):
    return (folder_checkpoints.c.source_name == source_name) & (folder_checkpoints.c.folder == folder)
