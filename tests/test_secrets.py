"""No secret reaches a log, the store, an export, a report or an error message.

Each test plants a unique password (in the environment variable a source's password_env names,
and in the PostgreSQL URL's password; trust authentication lets the test server accept it) and
searches every output for it.
"""

from __future__ import annotations

import logging
import traceback
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from complaint_triage.errors import ConfigError, SourceError, StoreError
from complaint_triage.logs import configure_logging, register_secret
from complaint_triage.settings import load_settings
from complaint_triage.store import Store
from complaint_triage.testing.mail import NOTICE, build_message
from complaint_triage.testing.postgres import postgres_schema_url
from tests.conftest import require_postgres, run_cli

PASSWORD_ENV = "SELLER_INBOX_PASSWORD"


@pytest.fixture
def password() -> str:
    """A password no output could contain by chance (hex: it reads the same URL-quoted or JSON-escaped)."""
    return f"S3cr3t{uuid.uuid4().hex}"


@pytest.fixture
def package_logger():
    """The package logger, put back as it was after the test reconfigures it."""
    logger = logging.getLogger("complaint_triage")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield logger
    logger.handlers[:], logger.level, logger.propagate = saved


def shows(output: str, secret: str) -> bool:
    """True when SECRET is in OUTPUT, even split by the line wrapping of a terminal renderer."""
    return secret in output or secret in "".join(output.split())


def _everything_an_exception_shows(exc: BaseException) -> str:
    """Its message, its repr and the whole printed chain (causes and contexts, as a traceback shows them)."""
    return "\n".join([str(exc), repr(exc), "".join(traceback.format_exception(exc))])


def _config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "ct.toml"
    path.write_text(
        '[schedule]\ntimezone = "UTC"\n'
        '[[sources]]\nname = "seller-inbox"\ntype = "imap"\nhost = "imap.example.com"\n'
        f'username = "ops@shop.example"\npassword_env = "{PASSWORD_ENV}"\n{extra}',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_log_lines_never_carry_the_password(monkeypatch, capsys, package_logger, password, log_format):
    monkeypatch.setenv(PASSWORD_ENV, password)
    token = f"tok-{uuid.uuid4().hex}"
    register_secret(token)  # what a source does with an OAuth2 token it was handed
    configure_logging(log_format, logging.DEBUG)
    package_logger.info("LOGIN ops@shop.example %s", password)
    package_logger.warning(f"cannot reach postgresql+psycopg://ops:{password}@db.example/triage")
    package_logger.info("AUTHENTICATE XOAUTH2 %s", token)
    try:
        raise SourceError(f"server said: BAD [b'LOGIN ops {password}']")
    except SourceError:
        package_logger.exception("poll failed")
    written = capsys.readouterr().err
    assert "LOGIN ops@shop.example ***" in written and "poll failed" in written
    assert not shows(written, password) and not shows(written, token)


def test_the_whole_flow_on_postgresql_never_shows_the_password(tmp_path, password):
    require_postgres()
    mail = tmp_path / "mail"
    mail.mkdir()
    (mail / "notice.eml").write_bytes(build_message(NOTICE, message_id="<notice@x>"))
    (mail / "broken.eml").write_bytes(b"\x00\x01 not mail")
    config = _config(tmp_path)
    with postgres_schema_url(password=password) as url:
        assert password in url
        env = {"COMPLAINT_TRIAGE__STORE__URL": url, PASSWORD_ENV: password}
        runs = [
            run_cli(
                "--log-format",
                "json",
                "-v",
                "process",
                str(mail),
                "--format",
                "jsonl",
                "--config",
                str(config),
                env=env,
            ),
            run_cli(
                "--log-format",
                "text",
                "-v",
                "process",
                str(mail),
                "--format",
                "table",
                "--config",
                str(config),
                env=env,
            ),
            run_cli("export", "--config", str(config), env=env),
            run_cli("status", "--format", "json", "--config", str(config), env=env),
            *(
                run_cli("report", "--date", "latest", "--format", form, "--config", str(config), env=env)
                for form in ("markdown", "json", "csv", "html")
            ),
        ]
        stored = _every_stored_value(url)
    assert runs[0].returncode == 1 and runs[2].returncode == 0 and len(runs[2].stdout.splitlines()) == 2
    for result in runs:
        assert not shows(result.stdout + result.stderr, password), result.args
    assert not shows(stored, password)


def _every_stored_value(url: str) -> str:
    """Every column of every row of every table in the store, as text (raw bytes decoded)."""
    engine = create_engine(url)
    with engine.connect() as connection:
        tables = (
            connection.execute(text("select tablename from pg_tables where schemaname = current_schema()"))
            .scalars()
            .all()
        )
        values = [
            value
            for table in tables
            for row in connection.execute(text(f'select * from "{table}"'))
            for value in row
        ]
    engine.dispose()
    return "\n".join(
        value.decode("utf-8", "replace") if isinstance(value, (bytes, memoryview)) else str(value)
        for value in map(_plain, values)
    )


def _plain(value):
    return bytes(value) if isinstance(value, memoryview) else value


def test_a_failing_store_connection_never_shows_the_password(tmp_path, password):
    closed_port = f"postgresql+psycopg://postgres:{password}@127.0.0.1:1/test?connect_timeout=2"  # nothing listens on port 1
    for url in (
        closed_port,
        f"postgresql+psycopg://postgres:{password}@127.0.0.1:notaport/test",
        f"postgresql+nosuchdriver://postgres:{password}@127.0.0.1/test",
        f"postgresql+psycopg//postgres:{password}@127.0.0.1/test",
    ):
        with pytest.raises(StoreError) as caught:
            Store(url)
        assert not shows(_everything_an_exception_shows(caught.value), password), url
    result = run_cli(
        "export",
        "--config",
        str(_config(tmp_path)),
        env={"COMPLAINT_TRIAGE__STORE__URL": closed_port, PASSWORD_ENV: password},
    )
    assert (
        result.returncode == 1 and "error" in result.stderr
    )  # a store that cannot be reached is a runtime failure, not a usage error
    assert not shows(result.stdout + result.stderr, password)


def test_config_errors_never_show_the_password(tmp_path, monkeypatch, password):
    monkeypatch.setenv(PASSWORD_ENV, password)
    store_line = f'[store]\nurl = "postgresql+psycopg://ops:{password}@db.example/triage"\n'
    broken = {
        "inline password": _config(tmp_path, f'password = "{password}"\n'),
        "bad value beside the url": _write(
            tmp_path / "bad-value.toml", store_line + '[schedule]\npoll_every = "soon"\n'
        ),
        "not TOML": _write(tmp_path / "not-toml.toml", store_line + f"oops = {password}\n"),
    }
    for what, path in broken.items():
        with pytest.raises(ConfigError) as caught:
            load_settings(path)
        assert not shows(_everything_an_exception_shows(caught.value), password), what
        result = run_cli("report", "--config", str(path))
        assert result.returncode == 2 and not shows(result.stdout + result.stderr, password), what


def _write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8")
    return path
