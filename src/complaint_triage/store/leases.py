"""Per-source leases: any number of workers share one store, and each source is polled by one of them at a time.

A worker polls a source only while it holds the source's lease, and reads the source's checkpoint
after taking it; a worker that finds the lease taken skips that poll, and tries again at its next
one. Nothing is written to claim a lease, so a worker that dies holding one leaves nothing behind:

- PostgreSQL (workers on one or several machines): a session-level advisory lock
  (`pg_try_advisory_lock`) on a connection of its own, opened for one poll and closed after it.
  When a worker dies its connection closes and the server releases the lock, so another worker
  takes the source over at its next poll. Server-side TCP keepalives on that connection bound how
  long a machine that vanished from the network keeps a lease (about half a minute, not the
  kernel's two hours). The key is a 64-bit hash of the schema and the source name: the same in
  every process and on every machine, and stores in separate schemas do not contend. Once a
  batch the poll checks that this connection still answers; if it does not (the session was
  ended, the server restarted), the poll stops after the batch in hand rather than go on beside
  a worker that may have taken the source over.
- SQLite (workers on one machine): an exclusive `flock` on a file beside the database,
  `<database>.lease-<hash>`; the kernel releases it when the process exits or is killed.
  An in-memory database belongs to one process, whose scheduler already runs one poll of a
  source at a time: there the lease is always granted.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from complaint_triage.errors import StoreError
from complaint_triage.store.engine import make_engine

log = logging.getLogger("complaint_triage.store.leases")


def lease_key(namespace: str, source_name: str) -> int:
    """The signed 64-bit key of a source's lease: a hash of the namespace (schema) and the name, stable across processes."""
    digest = hashlib.blake2b(
        f"complaint-triage lease\0{namespace}\0{source_name}".encode(), digest_size=8
    ).digest()
    return int.from_bytes(digest, "big", signed=True)


def _always() -> bool:
    return True


@dataclass
class Lease:
    """The right to poll one source, held until the `hold` block that granted it ends."""

    source_name: str
    alive: Callable[[], bool] = field(default=_always, repr=False)
    lost: bool = False

    def confirm(self) -> bool:
        """True while the lease is still held; once it is found lost it stays lost (and is logged once)."""
        if not self.lost and not self.alive():
            self.lost = True
            log.warning(
                "%s: the lease was lost (its database connection closed): stopping after the messages in hand",
                self.source_name,
                extra={"source": self.source_name},
            )
        return not self.lost


@contextlib.contextmanager
def _announced(lease: Lease) -> Iterator[Lease]:
    """Log (debug) when the lease is taken and, before it is given back, that it is released."""
    log.debug("%s: lease taken", lease.source_name, extra={"source": lease.source_name})
    try:
        yield lease
    finally:
        log.debug("%s: lease released", lease.source_name, extra={"source": lease.source_name})


class LeaseBackend(Protocol):
    """How leases are taken on one kind of database."""

    def hold(self, source_name: str) -> contextlib.AbstractContextManager[Lease | None]:
        """The source's lease for the block, or None when another worker holds it."""

    def close(self) -> None:
        """Release what the backend keeps open."""


class PostgresLeases:
    """Session-level advisory locks, each on a connection opened for the lease and closed with it."""

    def __init__(self, url):
        self.engine = make_engine(
            url, poolclass=NullPool
        )  # closing a lease's connection always ends its session

    @contextlib.contextmanager
    def hold(self, source_name: str) -> Iterator[Lease | None]:
        """The source's advisory lock for the block, or None when another session holds it."""
        connection, key = self._try_lock(source_name)
        if connection is None:
            yield None
            return
        try:
            with _announced(Lease(source_name, alive=lambda: _answers(connection))) as lease:
                yield lease
        finally:
            _unlock(connection, key)

    def _try_lock(self, source_name: str) -> tuple[Connection | None, int]:
        """A new connection holding the source's lock, or None (and the key) when the lock is taken."""
        try:
            connection = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        except SQLAlchemyError as exc:
            raise _unreachable(source_name, exc) from exc
        try:
            key = lease_key(self._namespace(connection), source_name)
            if connection.execute(
                text("SELECT pg_try_advisory_lock(CAST(:key AS bigint))"), {"key": key}
            ).scalar_one():
                return connection, key
        except SQLAlchemyError as exc:
            connection.close()
            raise _unreachable(source_name, exc) from exc
        connection.close()
        return None, key

    @staticmethod
    def _namespace(connection: Connection) -> str:
        """The schema the store's tables live in."""
        return connection.execute(text("SELECT current_schema()")).scalar_one() or ""

    def close(self) -> None:
        """Dispose of the lease engine (no connection is pooled)."""
        self.engine.dispose()


def _unreachable(source_name: str, exc: SQLAlchemyError) -> StoreError:
    detail = str(getattr(exc, "orig", None) or exc).splitlines()[0] if str(exc) else ""
    return StoreError(f"{source_name}: cannot ask for the lease: {exc.__class__.__name__}: {detail}")


def _answers(connection: Connection) -> bool:
    """True when the lease's session is still there (its lock with it)."""
    try:
        connection.execute(text("SELECT 1"))
        return True
    except SQLAlchemyError:
        return False


def _unlock(connection: Connection, key: int) -> None:
    """Release the lock and close its connection; if the session is gone, so is the lock."""
    try:
        connection.execute(text("SELECT pg_advisory_unlock(CAST(:key AS bigint))"), {"key": key})
    except SQLAlchemyError as exc:
        log.debug("lease unlock failed (%s): closing its connection releases it", exc.__class__.__name__)
    finally:
        connection.close()


class FileLeases:
    """An exclusive flock on a file per source beside a SQLite database."""

    def __init__(self, database: str):
        self.database = database

    def path(self, source_name: str) -> str:
        """The lock file of a source's lease."""
        return f"{self.database}.lease-{lease_key('', source_name) & 0xFFFFFFFFFFFFFFFF:016x}"

    @contextlib.contextmanager
    def hold(self, source_name: str) -> Iterator[Lease | None]:
        """The lock for the block, or None when another process (or another open file in this one) holds it."""
        try:
            handle = open(self.path(source_name), "a+b")
        except OSError as exc:
            raise StoreError(f"{source_name}: cannot open the lease file: {exc.strerror}") from exc
        with handle:
            if not _try_flock(handle):
                yield None
                return
            try:
                with _announced(Lease(source_name)) as lease:
                    yield lease
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def close(self) -> None:
        """Nothing stays open between leases."""


def _try_flock(handle) -> bool:
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


class ProcessLeases:
    """For a database only this process sees (in-memory SQLite): every lease is granted."""

    @contextlib.contextmanager
    def hold(self, source_name: str) -> Iterator[Lease | None]:
        """Always the lease."""
        yield Lease(source_name)

    def close(self) -> None:
        """Nothing to release."""


def leases_for(engine: Engine) -> LeaseBackend:
    """The lease backend that fits the store's database."""
    if engine.dialect.name == "postgresql":
        return PostgresLeases(engine.url)
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if database and database != ":memory:" and not database.startswith("file::memory:"):
        return FileLeases(database)
    return ProcessLeases()
