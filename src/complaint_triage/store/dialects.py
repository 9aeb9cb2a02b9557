"""What the store's modules share: the INSERT of its database (SQLite or PostgreSQL) and the facade's hand-over."""

from __future__ import annotations

import functools

from sqlalchemy.dialects import postgresql, sqlite

from complaint_triage.errors import StoreError

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def insert_for(bind, table):
    """An INSERT into TABLE that knows ON CONFLICT, for the dialect of BIND (an engine or a connection)."""
    insert = _INSERTS.get(bind.dialect.name)
    if insert is None:
        raise StoreError(f"unsupported database: {bind.dialect.name}")
    return insert(table)


def accepts_store(function):
    """Let a store function be called with the Store facade: outside store/ nobody handles the engine."""

    @functools.wraps(function)
    def with_engine(target, *args, **kwargs):
        return function(getattr(target, "engine", target), *args, **kwargs)

    return with_engine
