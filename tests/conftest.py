"""Shared test fixtures: the real pipeline, a fresh SQLite store, and the service rule.

Tests that need a real service (Dovecot, PostgreSQL, Chromium) call `require_service`: on a
laptop without the service they skip; under CI (CI=true, set by .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path

import pytest
from sqlalchemy import event

from complaint_triage.pipeline.triage import default_triager
from complaint_triage.store import Store

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"


def in_ci() -> bool:
    """True when running under CI, where every service must be present."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(available: bool, what: str) -> None:
    """Skip without the service on a laptop; fail in CI."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{what} is required in CI but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def triager():
    """The shipped pipeline and domain tables."""
    return default_triager("UTC")


@pytest.fixture
def fresh_store(tmp_path):
    """A new SQLite store in a temporary directory."""
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    yield store
    store.close()


def require_module(name: str, what: str):
    """Import a test dependency; without it skip on a laptop and fail in CI, like a missing service."""
    try:
        return importlib.import_module(name)
    except ImportError:
        require_service(False, what)


def fixture_files() -> list[Path]:
    """Every annotated fixture message (they ship with the repository: none at all is an error, not a skip)."""
    found = sorted(FIXTURES.glob("*.eml"))
    assert found, f"no fixture mails in {FIXTURES}"
    return found


def sql_statements(store: Store) -> list[str]:
    """Every SQL statement the store's engine sends from now on, in order."""
    sent: list[str] = []
    event.listen(store.engine, "before_cursor_execute", lambda _connection, _cursor, statement, *_rest: sent.append(statement))
    return sent
