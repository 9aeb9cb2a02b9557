"""Shared test fixtures: the real pipeline, a fresh SQLite store, and the service rule.

Tests that need a real service (Dovecot, PostgreSQL, Chromium) call `require_service`: on a
laptop without the service they skip; under CI (CI=true, set by .ci/run) they fail instead.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import event, func, select

from complaint_triage.ingest import ingest
from complaint_triage.pipeline.triage import default_triager
from complaint_triage.sources.imap import ImapSource
from complaint_triage.store import Store
from complaint_triage.store.checkpoints import Checkpoints
from complaint_triage.store.tables import messages as messages_table
from complaint_triage.testing.dovecot import PASSWORD, Dovecot, Mailbox, dovecot_available, make_certificates
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
    event.listen(
        store.engine,
        "before_cursor_execute",
        lambda _connection, _cursor, statement, *_rest: sent.append(statement),
    )
    return sent


def require_postgres() -> None:
    """Skip without the test PostgreSQL on a laptop; fail in CI."""
    require_service(postgres_available(), postgres_description())


def run_cli(*args, cwd=None, env=None):
    """`complaint-triage ARGS` in a subprocess, as a user or a script calls it."""
    environment = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "complaint_triage.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=120,
    )


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
_SERVICE_MODULES = {
    # real servers, a browser, a wheel build
    "test_imap",
    "test_service",
    "test_workers",
    "test_crash",
    "test_store_postgres",
    "test_html_report",
    "test_wheel",
    "test_migrations",
    "test_secrets",
    "test_alerts",
    "test_delivery",
    "test_web",
    "test_graph",
    "test_gmail",
    "test_auth_command",
    "test_source_health",
    "test_imap_oauth",
    # many processes: the command line run as users run it, attachment readers, fuzzing
    "test_hostile_mail",
    "test_cli",
    "test_config",
    "test_cases",
    "test_summary_readability",
    "test_startup",
    "test_attachments",
}
_SERVICE_FIXTURES = {"dovecot", "mailbox", "store_url"}


def pytest_collection_modifyitems(config, items):
    """Mark every test that needs a real service (or many processes) as `service`."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in _SERVICE_MODULES or _SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.service)


# Alert and delivery receivers: a real SMTP server (aiosmtpd, STARTTLS with a private CA, login)
# and a real local HTTP server standing in for a webhook.

SMTP_PASSWORD = "smtp-pw-5c1f0e77a9"
WEBHOOK_TOKEN = "T000/B000/hook-token-e93a41"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    require_service(shutil.which("openssl") is not None, "openssl")
    directory = tmp_path_factory.mktemp("certs")
    make_certificates(directory)
    return directory


@pytest.fixture
def smtp_server(certificates):
    """aiosmtpd on loopback that insists on STARTTLS before AUTH, and keeps what it receives."""
    controller_module = require_module("aiosmtpd.controller", "aiosmtpd (the test SMTP server)")
    import ssl

    from aiosmtpd.smtp import AuthResult, LoginPassword

    received: list[bytes] = []

    class Keep:
        async def handle_DATA(self, server, session, envelope):
            received.append(envelope.content)
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == b"alerts@shop.example"
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        return AuthResult(success=ok)

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
    port = _free_port()
    controller = controller_module.Controller(
        Keep(),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_require_tls=True,
        auth_exclude_mechanism=["CRAM-MD5"],
    )
    controller.start()
    yield port, received
    controller.stop()


class Hook(BaseHTTPRequestHandler):
    """Answers POSTs with the status the test sets; keeps the JSON bodies."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server = self.server
        server.requests.append((self.path, json.loads(body)))
        status = server.statuses.pop(0) if server.statuses else 200
        self.send_response(status)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    server.requests, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


@pytest.fixture
def secrets_env(monkeypatch, webhook):
    monkeypatch.setenv("ALERT_SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv(
        "ALERT_WEBHOOK_URL", f"http://127.0.0.1:{webhook.server_port}/services/{WEBHOOK_TOKEN}"
    )


# Shared by several test modules (no test module imports another).

CHROMIUM = Path("/usr/bin/chromium")
HOSTILE = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


CLI = [sys.executable, "-m", "complaint_triage.cli"]


def write_config(path: Path, mailbox, poll_every: str = "1h", **source) -> Path:
    """A config file with one IMAP source on the test mailbox and a store beside it."""
    source = {
        "name": "inbox",
        "type": "imap",
        "host": "127.0.0.1",
        "port": mailbox.server.plain_port,
        "security": "none",
        "username": mailbox.user,
        "password_env": PASSWORD_ENV,
        **source,
    }
    options = "\n".join(f"{key} = {json.dumps(value)}" for key, value in source.items())
    path.write_text(f"""
[store]
url = "sqlite:///{path.parent / "store.db"}"

[[sources]]
{options}

[schedule]
poll_every = "{poll_every}"

[reports]
dir = "{path.parent / "reports"}"
formats = ["markdown", "json"]
""")
    return path


def cli_env() -> dict[str, str]:
    return {**os.environ, PASSWORD_ENV: PASSWORD}


def count_records(engine) -> int:
    """How many records the store holds (0 before its tables exist)."""
    try:
        with engine.connect() as connection:
            return connection.execute(select(func.count()).select_from(messages_table)).scalar()
    except Exception:  # noqa: BLE001 (the child has not created the store yet)
        return 0


def poll(source: ImapSource, triager, store: Store, **options):
    """One poll the way the service drives it: checkpoint in the commit, settle after it."""
    return ingest(
        source.fetch_messages(),
        triager,
        store,
        settle=source.settle,
        on_commit=source.record_progress,
        **options,
    )
