"""Alerts against a real SMTP server (aiosmtpd, STARTTLS with a private CA, login) and a real local HTTP server."""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from email import message_from_bytes
from email.utils import format_datetime

import pytest

from complaint_triage import alerts
from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.settings import AlertSettings, Settings
from complaint_triage.store.tables import alerts as alerts_table
from tests.conftest import FIXTURES, SMTP_PASSWORD, WEBHOOK_TOKEN, require_module, require_service  # noqa: F401


def _dated(name: str, when: datetime) -> bytes:
    """A shipped fixture re-dated, so that it counts as fresh mail."""
    raw = (FIXTURES / name).read_bytes()
    return re.sub(rb"(?mi)^Date:.*$", b"Date: " + format_datetime(when).encode(), raw, count=1)


CRITICAL = "en-09-counterfeit-policy-warning.eml"
OTHER_CRITICAL = "en-10-inauthentic-invoices-365-test-buy.eml"
HIGH = "en-01-trademark-removal-plain.eml"


def _settings(smtp_port: int | None = None, ca_file=None, **extra) -> AlertSettings:
    data = {"webhook": {"url_env": "ALERT_WEBHOOK_URL"}, **extra}
    if smtp_port is not None:
        data["email"] = {
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "starttls",
            "ca_file": str(ca_file) if ca_file else None,
            "username": "alerts@shop.example",
            "password_env": "ALERT_SMTP_PASSWORD",
            "sender": "alerts@shop.example",
            "to": ["ops@shop.example"],
        }
    return AlertSettings.model_validate(data)


def _store_mail(store, triager, *raws: bytes) -> None:
    ingest(
        [RawMessage(raw=raw, source=f"m{n}", source_name="seller-a") for n, raw in enumerate(raws)],
        triager,
        store,
    )


def _rows(store) -> list:
    with store.engine.connect() as connection:
        return connection.execute(alerts_table.select().order_by(alerts_table.c.channel)).all()


def test_a_new_critical_case_is_announced_once_by_email_and_webhook(
    fresh_store, triager, smtp_server, webhook, certificates, secrets_env
):
    port, received = smtp_server
    now = datetime.now(timezone.utc)
    raw = _dated(CRITICAL, now - timedelta(hours=1))
    _store_mail(fresh_store, triager, raw, _dated(HIGH, now - timedelta(hours=2)))
    settings = _settings(port, certificates / "ca.crt")

    result = alerts.dispatch(fresh_store, settings)
    assert len(result.sent) == 2 and not result.failed
    assert len(received) == 1 and len(webhook.requests) == 1
    mail = message_from_bytes(received[0])
    assert mail["Subject"].startswith("[CRITICAL]") and "B0" in mail["Subject"]
    assert "Next steps:" in mail.get_payload(decode=True).decode()
    path, payload = webhook.requests[0]
    assert (
        path.endswith(WEBHOOK_TOKEN)
        and payload["urgency"] == "critical"
        and payload["text"].startswith("[CRITICAL]")
    )

    alerts.dispatch(fresh_store, settings)
    _store_mail(fresh_store, triager, raw)  # re-processing the same notice
    alerts.dispatch(fresh_store, settings)
    assert len(received) == 1 and len(webhook.requests) == 1
    assert {row.state for row in _rows(fresh_store)} == {"sent"}


def test_high_cases_only_when_configured_and_old_mail_never(fresh_store, triager, webhook, secrets_env):
    now = datetime.now(timezone.utc)
    _store_mail(fresh_store, triager, _dated(HIGH, now), _dated(CRITICAL, now - timedelta(days=30)))
    assert alerts.dispatch(fresh_store, _settings()).sent == []
    sent = alerts.dispatch(fresh_store, _settings(urgencies=["critical", "high"])).sent
    assert len(sent) == 1 and webhook.requests[0][1]["urgency"] == "high"


def test_a_failed_delivery_is_recorded_retried_later_and_then_given_up(
    fresh_store, triager, webhook, secrets_env
):
    _store_mail(fresh_store, triager, _dated(CRITICAL, datetime.now(timezone.utc)))
    webhook.statuses = [500, 503]
    settings = _settings(attempts_per_run=2, max_attempts=3)
    first = alerts.dispatch(fresh_store, settings)
    assert first.failed and len(webhook.requests) == 2
    row = _rows(fresh_store)[0]
    assert (row.state, row.attempts, row.last_error) == ("failed", 1, "alerts.webhook: HTTP 503")
    assert alerts.dispatch(fresh_store, settings).sent  # the endpoint is back
    assert _rows(fresh_store)[0].state == "sent"

    _store_mail(fresh_store, triager, _dated(OTHER_CRITICAL, datetime.now(timezone.utc)))
    webhook.statuses = [500] * 10
    for _ in range(4):
        alerts.dispatch(fresh_store, settings)
    states = sorted(row.state for row in _rows(fresh_store))
    assert states == ["gave_up", "sent"]
    assert len(webhook.requests) == 3 + 3 * 2  # 3 runs of 2 tries, then no more


def test_tls_is_verified_and_no_secret_reaches_the_store_or_the_log(
    fresh_store, triager, smtp_server, secrets_env, caplog
):
    port, received = smtp_server
    _store_mail(fresh_store, triager, _dated(CRITICAL, datetime.now(timezone.utc)))
    result = alerts.dispatch(fresh_store, _settings(port, ca_file=None).model_copy(update={"webhook": None}))
    assert result.failed and not received
    row = _rows(fresh_store)[0]
    assert "CERTIFICATE_VERIFY_FAILED" in row.last_error or "certificate" in row.last_error.lower()
    everything = caplog.text + json.dumps([dict(r._mapping) for r in _rows(fresh_store)], default=str)
    assert SMTP_PASSWORD not in everything and WEBHOOK_TOKEN not in everything


def test_a_missing_secret_is_one_clear_error(fresh_store, triager, monkeypatch, webhook):
    monkeypatch.delenv("ALERT_WEBHOOK_URL", raising=False)
    _store_mail(fresh_store, triager, _dated(CRITICAL, datetime.now(timezone.utc)))
    alerts.dispatch(fresh_store, _settings())
    assert (
        _rows(fresh_store)[0].last_error
        == "alerts.webhook: environment variable ALERT_WEBHOOK_URL is not set"
    )


def test_the_running_service_announces_after_a_poll(tmp_path, triager, webhook, secrets_env):
    from complaint_triage.service import Service

    mail_dir = tmp_path / "mail"
    mail_dir.mkdir()
    (mail_dir / "critical.eml").write_bytes(_dated(CRITICAL, datetime.now(timezone.utc)))
    settings = Settings.model_validate(
        {
            "store": {"url": f"sqlite:///{tmp_path / 's.db'}"},
            "sources": [{"name": "saved", "type": "directory", "path": str(mail_dir)}],
            "schedule": {"poll_every": "1h"},
            "alerts": {"webhook": {"url_env": "ALERT_WEBHOOK_URL"}},
        }
    )
    service = Service(settings, triager=triager)
    runner = threading.Thread(target=service.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 30
        while not webhook.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(webhook.requests) == 1
        assert webhook.requests[0][1]["urgency"] == "critical"
    finally:
        service.stop.set()
        runner.join(30)
    assert not runner.is_alive()


@pytest.mark.parametrize(
    "section",
    [
        {"webhook": {"url": "https://hooks.example/T0/B0/x"}},
        {"email": {"host": "smtp.example.com", "sender": "a@x", "to": ["b@x"], "password": "p"}},
        {"email": {"host": "smtp.example.com", "sender": "a@x", "to": ["b@x"], "security": "none"}},
    ],
)
def test_a_config_with_a_secret_or_cleartext_to_a_remote_host_is_refused(section):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="secrets never live in the config file|loopback"):
        AlertSettings.model_validate(section)
