"""The INSERT of the store's database (SQLite or PostgreSQL), for ON CONFLICT clauses."""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite

from complaint_triage.errors import StoreError

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_for(bind, table):
    """An INSERT into TABLE that knows ON CONFLICT, for the dialect of BIND (an engine or a connection)."""
    insert = _INSERTS.get(bind.dialect.name)
    if insert is None:
        raise StoreError(f"unsupported database: {bind.dialect.name}")
    return insert(table)
