"""A fresh schema on the test PostgreSQL for each test or benchmark (COMPLAINT_TRIAGE_TEST_POSTGRES_URL picks another server)."""

from __future__ import annotations

import contextlib
import os
import uuid
from functools import lru_cache
from typing import Iterator

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

POSTGRES_URL = os.environ.get(
    "COMPLAINT_TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@lru_cache(maxsize=1)
def postgres_available() -> bool:
    """True when the test server answers."""
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
        return True
    except Exception:  # any failure to connect means "not available"
        return False
    finally:
        engine.dispose()


def postgres_description() -> str:
    """The test server's address, without a password."""
    return f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string(hide_password=True)}"


@contextlib.contextmanager
def postgres_schema_url(password: str | None = None) -> Iterator[str]:
    """A store URL whose tables live in a new schema, dropped on exit; PASSWORD is put in the URL."""
    schema = f"ct_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as connection:
        connection.execute(text(f'create schema "{schema}"'))
    url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    if password is not None:
        url = url.set(password=password)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'drop schema "{schema}" cascade'))
        admin.dispose()
