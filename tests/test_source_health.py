"""Loud failures: a source that cannot log in or has been failing for a while is announced once, and its recovery once.

Against the real Dovecot (tests/dovecot.py), a real aiosmtpd and a real local HTTP webhook (the
fixtures of tests/test_alerts.py), raw loopback sockets for servers that refuse or never greet,
and `complaint-triage` as a real process for `status`, `run --once` and SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from email import message_from_bytes

import pytest

from complaint_triage import health
from complaint_triage.errors import SourceAuthError, SourceError, SourceInterrupted, TransientSourceError
from complaint_triage.service import Backoff, Service, source_statuses
from complaint_triage.settings import Settings
from complaint_triage.sources.imap import ImapSource
from complaint_triage.sources.imap_session import connect
from complaint_triage.store import Store
from complaint_triage.store.tables import alerts as alerts_table
from complaint_triage.testing.dovecot import PASSWORD
from complaint_triage.testing.mail import PASSWORD_ENV, sample_messages
from tests.conftest import CLI, cli_env, write_config

ONCE = Backoff(attempts=1)
WRONG_ENV = "WRONG_IMAP_PASSWORD"


def _settings(sources: list, smtp_port: int | None = None, ca_file=None, **alert_options) -> Settings:
    channels = {"webhook": {"url_env": "ALERT_WEBHOOK_URL"}}
    if smtp_port is not None:
        channels["email"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "starttls",
            "ca_file": str(ca_file),
            "username": "alerts@shop.example",
            "password_env": "ALERT_SMTP_PASSWORD",
            "sender": "alerts@shop.example",
            "to": ["ops@shop.example"],
        }
    return Settings(sources=sources, alerts={**channels, **alert_options})


def _round(service: Service) -> list:
    """One poll of every source, then the alerts job, as the running service does them."""
    outcomes = service.poll_all()
    service.send_alerts()
    return outcomes


def _subject(raw: bytes) -> str:
    return " ".join(message_from_bytes(raw)["Subject"].split())  # a long subject comes folded


def _events(webhook) -> list[dict]:  # noqa: F811
    return [payload for _path, payload in webhook.requests if "event" in payload]


@pytest.fixture
def silent_server():
    """A loopback port that accepts connections and never says a word; yields (port, accepted sockets)."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    yield listener.getsockname()[1], accepted
    listener.close()
    for connection in accepted:
        connection.close()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # closed again: nothing listens there


def test_refused_credentials_are_announced_at_once_on_every_channel_and_the_recovery_once(
    mailbox, triager, fresh_store, smtp_server, webhook, certificates, secrets_env, monkeypatch
):  # noqa: F811
    port, received = smtp_server
    monkeypatch.setenv(WRONG_ENV, "not-the-Pa55word")
    mailbox.append(sample_messages(2, "health"))
    settings = _settings(
        [mailbox.settings(name="m365", password_env=WRONG_ENV)], port, certificates / "ca.crt"
    )
    service = Service(settings, store=fresh_store, triager=triager, backoff=ONCE)

    _round(service)
    _round(service)  # still refused: nothing more is sent
    assert [event["event"] for event in _events(webhook)] == ["source_down"] and len(received) == 1
    down = _events(webhook)[0]
    assert down["source"] == "m365" and down["auth"] == "failed" and down["last_success_at"] == "never"
    assert "refused the login" in down["last_error"] and "\n" not in down["last_error"]
    assert WRONG_ENV in down["action"] and "complaint-triage run --once" in down["action"]
    mail = message_from_bytes(received[0])
    assert (
        _subject(received[0]).startswith("[SOURCE DOWN] m365")
        and "What to do: check the password" in mail.get_payload(decode=True).decode()
    )
    assert "not-the-Pa55word" not in json.dumps(webhook.requests) + received[0].decode()

    monkeypatch.setenv(WRONG_ENV, PASSWORD)  # the password is put right
    assert _round(service)[0].summary.triaged == 2
    _round(service)
    assert [event["event"] for event in _events(webhook)] == ["source_down", "source_recovered"] and len(
        received
    ) == 2
    assert _subject(received[1]).startswith("[SOURCE RECOVERED] m365")
    with fresh_store.engine.connect() as connection:
        states = {
            (row.case_key.split(":")[2], row.channel, row.state)
            for row in connection.execute(alerts_table.select())
        }
    assert states == {
        (event, channel, "sent") for event in ("down", "up") for channel in ("email", "webhook")
    }
    service.close()


def test_a_connection_failure_is_announced_only_after_source_down_after(
    triager, fresh_store, webhook, secrets_env, imap_password
):  # noqa: F811
    port = _closed_port()
    source = {
        "name": "shop",
        "type": "imap",
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "username": "u",
        "password_env": PASSWORD_ENV,
        "timeout_seconds": 5,
    }
    service = Service(
        _settings([source], source_down_after="2s"), store=fresh_store, triager=triager, backoff=ONCE
    )
    first = _round(service)[0]
    assert f"127.0.0.1:{port}: connection refused" in first.error and "check host and port" in first.error
    judged = health.assess_all(service.settings, source_statuses(service.settings, fresh_store))[0]
    assert (judged.state, judged.auth, judged.failing) == ("failing", "unknown", True) and not _events(
        webhook
    )
    since = judged.outage_since
    time.sleep(2.1)
    _round(service)
    _round(service)
    assert [event["event"] for event in _events(webhook)] == ["source_down"]
    assert _events(webhook)[0]["since"] == since.isoformat(
        timespec="seconds"
    )  # since the first failure, not the last
    assert "connection refused" in _events(webhook)[0]["last_error"]
    service.close()


def test_a_recovery_before_the_outage_was_announced_sends_nothing(
    mailbox, triager, fresh_store, webhook, secrets_env, monkeypatch
):  # noqa: F811
    monkeypatch.setenv(WRONG_ENV, "wrong")
    settings = _settings([mailbox.settings(name="late", password_env=WRONG_ENV)])
    service = Service(settings, store=fresh_store, triager=triager, backoff=ONCE)
    service.poll_all()  # refused, but the alerts job has not run yet
    monkeypatch.setenv(WRONG_ENV, PASSWORD)
    _round(service)
    assert _events(webhook) == []
    service.close()


def test_status_exits_1_with_one_json_document_naming_the_failing_source(mailbox, tmp_path, monkeypatch):  # noqa: F811
    config = write_config(tmp_path / "config.toml", mailbox, password_env=WRONG_ENV)
    env = {**cli_env(), WRONG_ENV: "wrong"}
    subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    status = subprocess.run(
        [*CLI, "status", "--format", "json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 1
    document = json.loads(status.stdout)
    assert (document["ok"], document["failing"]) == (False, ["inbox"])
    entry = document["sources"][0]
    assert (entry["state"], entry["auth"], entry["auth_failed"]) == ("down", "failed", True)
    assert (
        entry["failing_since"]
        and entry["last_success_at"] is None
        and "refused the login" in entry["last_error"]
    )
    table = subprocess.run(
        [*CLI, "status", "--config", str(config)], capture_output=True, text=True, timeout=60, check=False
    )
    assert table.returncode == 1 and "down" in table.stdout and "failed" in table.stdout


def test_status_calls_a_source_stale_when_no_poll_has_reached_it(mailbox, triager, fresh_store):  # noqa: F811
    settings = Settings(
        sources=[mailbox.settings()], schedule={"poll_every": "1m"}, alerts={"source_down_after": "1h"}
    )
    service = Service(settings, store=fresh_store, triager=triager)
    service.poll_all()
    service.close()
    status = source_statuses(settings, fresh_store)[0]
    assert health.assess(status, settings).state == "ok"
    later = status.last_poll_at + health.stale_after(settings)
    judged = health.assess(status, settings, now=later)
    assert (judged.state, judged.failing, judged.outage_since) == ("stale", True, status.last_poll_at)
    assert "complaint-triage run" in health.remedy(settings.sources[0], judged, settings)


def test_run_once_sends_the_alert_that_is_due_before_it_exits(mailbox, tmp_path, webhook, secrets_env):  # noqa: F811
    config = write_config(tmp_path / "config.toml", mailbox, password_env=WRONG_ENV)
    config.write_text(config.read_text() + '\n[alerts.webhook]\nurl_env = "ALERT_WEBHOOK_URL"\n')
    env = {**cli_env(), WRONG_ENV: "wrong", "ALERT_WEBHOOK_URL": os.environ["ALERT_WEBHOOK_URL"]}
    done = subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    assert [event["event"] for event in _events(webhook)] == ["source_down"]
    again = subprocess.run(
        [*CLI, "run", "--once", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 1 and len(_events(webhook)) == 1  # announced once, whatever the number of runs


def test_an_unset_password_variable_is_reported_before_any_connection(
    silent_server, mailbox, checkpoints, monkeypatch
):  # noqa: F811
    port, accepted = silent_server
    monkeypatch.delenv(PASSWORD_ENV)
    source = ImapSource(mailbox.settings(port=port, timeout_seconds=1), checkpoints)
    with pytest.raises(SourceAuthError, match=f"environment variable {PASSWORD_ENV} is not set"):
        list(source.fetch_messages())
    time.sleep(0.2)
    assert accepted == []


def test_a_server_that_never_greets_is_given_up_after_the_timeout(silent_server, mailbox):  # noqa: F811
    port, accepted = silent_server
    started = time.monotonic()
    with pytest.raises(TransientSourceError) as failure:
        connect(mailbox.settings(port=port, timeout_seconds=1))
    elapsed = time.monotonic() - started
    assert 0.9 < elapsed < 3 and len(accepted) == 1
    assert f"127.0.0.1:{port}: the server accepted the connection but sent no greeting within 1 s" in str(
        failure.value
    )


def test_a_stop_ends_the_wait_for_a_silent_server_at_once(silent_server, mailbox):  # noqa: F811
    port, _accepted = silent_server
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    started = time.monotonic()
    with pytest.raises(SourceInterrupted):
        connect(mailbox.settings(port=port, timeout_seconds=30), stop)
    assert time.monotonic() - started < 1.0


def test_tls_on_a_port_that_expects_starttls_says_so(mailbox):  # noqa: F811
    server = mailbox.server
    settings = mailbox.settings(
        host="localhost", port=server.plain_port, security="ssl", ca_file=str(server.ca_file)
    )
    with pytest.raises(SourceError) as failure:
        connect(settings)
    message = str(failure.value)
    assert not isinstance(
        failure.value, TransientSourceError
    )  # a configuration problem: retrying will not help
    assert (
        f"localhost:{server.plain_port}: TLS handshake failed" in message
        and 'security = "starttls"' in message
    )


def test_starttls_on_an_implicit_tls_port_says_to_use_ssl(mailbox):  # noqa: F811
    server = mailbox.server
    settings = mailbox.settings(
        host="localhost",
        port=server.tls_port,
        security="starttls",
        ca_file=str(server.ca_file),
        timeout_seconds=1,
    )
    with pytest.raises(
        TransientSourceError,
        match='sent no greeting within 1 s; if this port expects TLS at once .993., set security = "ssl"',
    ):
        connect(settings)


def test_a_host_name_that_does_not_resolve_says_check_the_name_and_dns(mailbox, monkeypatch):  # noqa: F811
    def no_such_name(*_args, **_kwargs):  # the resolver's answer, without asking a DNS server outside
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    with pytest.raises(
        TransientSourceError,
        match="cannot resolve the host name 'imap.shop.invalid' .Name or service not known.: check the name and DNS",
    ):
        connect(mailbox.settings(host="imap.shop.invalid", security="ssl", port=993))


@pytest.mark.parametrize("command", [["run", "--once"], ["run"]])
def test_sigterm_while_a_server_never_greets_is_honoured_within_a_second(
    command, silent_server, mailbox, tmp_path
):  # noqa: F811
    port, accepted = silent_server
    config = write_config(tmp_path / "config.toml", mailbox, port=port, timeout_seconds=30)
    process = subprocess.Popen(
        [*CLI, *command, "--config", str(config)],
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while not accepted:
            assert time.monotonic() < deadline and process.poll() is None, "the service never connected"
            time.sleep(0.05)
        time.sleep(0.3)
        sent = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        took = time.monotonic() - sent
    finally:
        if process.poll() is None:
            process.kill()
    stderr = process.stderr.read()
    assert took < 1.0, f"exit took {took:.2f} s"
    assert process.returncode == 0, stderr
    assert "stopped while waiting for the server" in stderr and "Traceback" not in stderr
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    assert store.count() == 0
    store.close()
