"""Shared test fixtures: the real pipeline, a fresh SQLite store, and the service rule.

Tests that need a real service (Dovecot, PostgreSQL, Chromium) call `require_service`: on a
laptop without the service they skip; under CI (CI=true, set by .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import event

from complaint_triage.pipeline.triage import default_triager
from complaint_triage.store import Store
from complaint_triage.store.checkpoints import Checkpoints
from complaint_triage.testing.dovecot import PASSWORD, Dovecot, Mailbox, dovecot_available
from complaint_triage.testing.mail import PASSWORD_ENV
from complaint_triage.testing.postgres import postgres_available, postgres_description, postgres_schema_url

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


def require_postgres() -> None:
    """Skip without the test PostgreSQL on a laptop; fail in CI."""
    require_service(postgres_available(), postgres_description())


def run_cli(*args, cwd=None, env=None):
    """`complaint-triage ARGS` in a subprocess, as a user or a script calls it."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "complaint_triage.cli", *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> Iterator[str]:
    """The URL of an empty store on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    require_postgres()
    with postgres_schema_url() as url:
        yield url


# The IMAP tests' fixtures: one Dovecot for the whole session, a fresh mailbox per test.


@pytest.fixture(scope="session")
def dovecot():
    """One Dovecot for the session (every test uses its own user, hence its own mailbox)."""
    require_service(dovecot_available(), "Dovecot (dovecot-imapd, run as root)")
    server = Dovecot()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def imap_password(monkeypatch):
    """The right password in the environment variable the sources name."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD


@pytest.fixture
def mailbox(dovecot, imap_password) -> Mailbox:
    """An empty mailbox of its own."""
    return Mailbox(dovecot, dovecot.new_user())


@pytest.fixture
def checkpoints(fresh_store) -> Checkpoints:
    """Checkpoints in the fresh store's database."""
    return Checkpoints(fresh_store.engine)


# The fast lane is `pytest -m "not service"`: these need a real server, a browser, a wheel build or
# many processes, and make up most of the suite's time.
_SERVICE_MODULES = {"test_imap", "test_service", "test_workers", "test_crash", "test_store_postgres", "test_html_report",
                    "test_hostile_mail", "test_wheel", "test_migrations", "test_secrets"}
_SERVICE_FIXTURES = {"dovecot", "mailbox", "store_url"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a real service (or many processes) as `service`."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in _SERVICE_MODULES or _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.service)
