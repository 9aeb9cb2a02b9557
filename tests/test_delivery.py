"""The morning summary delivered: a real SMTP server (STARTTLS, login) and a real local HTTP server for Slack and Teams."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import UTC, date, datetime, timedelta

from complaint_triage.ingest import ingest
from complaint_triage.records import RawMessage
from complaint_triage.report import summary_for_day
from complaint_triage.report.delivery import deliver_summary
from complaint_triage.report.outbound import SLACK_LIMIT, relative_due, slack_payload
from complaint_triage.service import Service
from complaint_triage.settings import Settings
from complaint_triage.testing.mail import NOTICE, build_message
from tests.conftest import HOSTILE

DAY = date(2026, 3, 3)


def _settings(smtp_port: int, ca_file, webhook_server, **reports) -> Settings:
    base = f"http://127.0.0.1:{webhook_server.server_port}"
    return Settings.model_validate(
        {
            "alerts": {
                "email": {
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "starttls",
                    "ca_file": str(ca_file),
                    "username": "alerts@shop.example",
                    "password_env": "ALERT_SMTP_PASSWORD",
                    "sender": "alerts@shop.example",
                    "to": ["ops@shop.example"],
                }
            },
            "reports": {
                "email_to": ["morning@shop.example"],
                "chat": [
                    {"type": "slack", "url_env": "SLACK_URL"},
                    {"type": "teams", "url_env": "TEAMS_URL"},
                ],
                "workspace_url": "https://cases.shop.example",
                **reports,
            },
            "schedule": {"timezone": "UTC"},
        }
    ), base


def _notice(
    message_id: str, when: datetime, complaint_id: str, subject: str = "Notice: Policy Warning"
) -> RawMessage:
    body = NOTICE.replace("removed some", "removed all").replace("16509328131", complaint_id)
    return RawMessage(
        raw=build_message(body, subject=subject, date=when, message_id=message_id),
        source=message_id,
        source_name="seller-a",
    )


def test_the_day_sent_at_report_time_holds_the_mail_that_came_in_overnight(fresh_store, triager):
    evening = _notice("<evening@x>", datetime(2026, 3, 3, 20, 0, tzinfo=UTC), "17000000001")
    overnight = _notice("<night@x>", datetime(2026, 3, 4, 5, 30, tzinfo=UTC), "17000000002")
    early = _notice("<early@x>", datetime(2026, 3, 3, 6, 0, tzinfo=UTC), "17000000003")
    ingest([evening, overnight, early], triager, fresh_store)
    shifted = summary_for_day(fresh_store, DAY, "UTC", day_starts=timedelta(hours=7))
    assert {item.message_id for item in shifted.items} == {
        "<evening@x>",
        "<night@x>",
    } and shifted.day_starts_at == "07:00"
    calendar = summary_for_day(fresh_store, DAY, "UTC")
    assert {item.message_id for item in calendar.items} == {"<evening@x>", "<early@x>"}


def test_the_summary_is_mailed_as_html_and_text_and_posted_to_slack_and_teams(
    fresh_store, triager, smtp_server, webhook, certificates, secrets_env, monkeypatch
):  # noqa: F811
    port, received = smtp_server
    settings, base = _settings(port, certificates / "ca.crt", webhook)
    monkeypatch.setenv("SLACK_URL", base + "/slack/hook-token")
    monkeypatch.setenv("TEAMS_URL", base + "/teams/hook-token")
    ingest(
        [_notice("<a@x>", datetime(2026, 3, 3, 9, 0, tzinfo=UTC), "17000000011", subject=HOSTILE)],
        triager,
        fresh_store,
    )
    summary = summary_for_day(fresh_store, DAY, "UTC")
    outcome = deliver_summary(summary, settings)
    assert outcome == {"email": None, "slack:0": None, "teams:1": None}

    mail = email.message_from_bytes(received[0], policy=email.policy.default)
    assert mail["To"] == "morning@shop.example" and str(mail["Subject"]).strip().startswith(
        "Complaint triage for 2026-03-03: 1 message (1 high)"
    )
    html = next(part for part in mail.walk() if part.get_content_type() == "text/html").get_content()
    text = next(part for part in mail.walk() if part.get_content_type() == "text/plain").get_content()
    assert (
        "<script" not in html.lower().replace("&lt;script", "") and 'style="' in html
    )  # CSS inlined, no script of ours
    assert "&lt;script&gt;" in html and "17000000011" in text
    assert any(part.get_filename() == "summary-2026-03-03.csv" for part in mail.walk())

    posts = dict(webhook.requests)
    slack = posts["/slack/hook-token"]["text"]
    assert (
        "*Complaint triage for 2026-03-03" in slack
        and "seller-a" in slack
        and "complaint:17000000011" in slack
    )
    assert "<script>" not in slack and "&lt;script&gt;" in slack and "https://cases.shop.example/" in slack
    card = posts["/teams/hook-token"]["attachments"][0]["content"]
    assert card["type"] == "AdaptiveCard" and any("17000000011" in block["text"] for block in card["body"])
    assert card["actions"][0]["url"] == "https://cases.shop.example/"


def test_a_failed_channel_is_reported_and_the_others_still_get_it(
    fresh_store, triager, webhook, monkeypatch, smtp_server, certificates, secrets_env
):  # noqa: F811
    port, _received = smtp_server
    settings, base = _settings(port, certificates / "ca.crt", webhook)
    monkeypatch.setenv("SLACK_URL", base + "/slack/hook-token")
    monkeypatch.delenv("TEAMS_URL", raising=False)
    webhook.statuses = [500]
    outcome = deliver_summary(summary_for_day(fresh_store, DAY, "UTC"), settings)
    assert outcome["email"] is None and outcome["slack:0"] == "reports.chat slack: HTTP 500"
    assert "TEAMS_URL" in outcome["teams:1"] and "hook-token" not in str(outcome)


def test_the_service_delivers_at_report_time(
    fresh_store, triager, smtp_server, webhook, certificates, secrets_env, monkeypatch, tmp_path
):  # noqa: F811
    port, received = smtp_server
    now = datetime.now(UTC)
    settings, base = _settings(
        port, certificates / "ca.crt", webhook, dir=str(tmp_path / "reports"), formats=["markdown"]
    )
    settings.schedule.daily_report_at = now.strftime("%H:%M")
    monkeypatch.setenv("SLACK_URL", base + "/slack/t")
    monkeypatch.setenv("TEAMS_URL", base + "/teams/t")
    ingest([_notice("<recent@x>", now - timedelta(minutes=30), "17000000021")], triager, fresh_store)
    service = Service(settings, store=fresh_store, triager=triager)
    service._daily_report_job()
    assert len(received) == 1 and "17000000021" in received[0].decode("utf-8", "replace")
    assert {path for path, _body in webhook.requests} == {"/slack/t", "/teams/t"}


def test_the_slack_version_stays_under_the_limit_and_says_what_it_left_out(fresh_store, triager):
    base = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    ingest(
        [_notice(f"<n{n}@x>", base, f"18{n:09d}", subject="S" * 300) for n in range(400)],
        triager,
        fresh_store,
    )
    text = slack_payload(summary_for_day(fresh_store, DAY, "UTC"))["text"]
    assert len(text) < SLACK_LIMIT and re.search(r"… and \d+ more", text)


def test_relative_dates():
    assert relative_due(date(2026, 3, 1), date(2026, 3, 6)) == "overdue 5 days"
    assert relative_due(date(2026, 3, 5), date(2026, 3, 6)) == "overdue 1 day"
    assert relative_due(date(2026, 3, 6), date(2026, 3, 6)) == "due today"
    assert relative_due(date(2026, 3, 8), date(2026, 3, 6)) == "due in 2 days"
