"""Small builders for test messages (real RFC 5322 bytes through the standard library)."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

FIXTURES = (
    Path(__file__).resolve().parents[3] / "fixtures"
)  # the checkout's annotated mail (absent from a wheel)


def build_message(
    body: str = "",
    subject: str = "Notice: Policy Warning",
    sender: str = "Amazon <seller-notification@amazon.com>",
    to: str = "ops@shop.example",
    date: datetime | None = datetime(2026, 3, 3, 10, 0, tzinfo=timezone.utc),
    html: str | None = None,
    message_id: str | None = "<test-1@example.com>",
    headers: dict[str, str] | None = None,
    cte: str | None = None,
) -> bytes:
    """A message with a plain and/or HTML body."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, to, subject
    if date is not None:
        message["Date"] = format_datetime(date)
    if message_id:
        message["Message-ID"] = message_id
    for name, value in (headers or {}).items():
        message[name] = value
    if body:
        message.set_content(body, cte=cte) if cte else message.set_content(body)
    if html is not None:
        if body:
            message.add_alternative(html, subtype="html")
        else:
            message.set_content(html, subtype="html", cte=cte) if cte else message.set_content(
                html, subtype="html"
            )
    return message.as_bytes()


NOTICE = """Hello,

We removed some of your listings because we received a report from a rights owner that they may infringe the rights owner's trademark.

The rights owner is asserting that the products infringe the following trademark: ZENTRO
Trademark number: 6,123,456

These are the rights owner's contact details:
Jane Roe
legal@zentro-brands.com

ASIN: B0ABCDE123
Title: Wireless Charger Pad
Infringement type: Trademark
Complaint ID: 16509328131
"""


PASSWORD_ENV = "COMPLAINT_TRIAGE_TEST_IMAP_PASSWORD"
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*")


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The message with its Message-ID replaced (or added), so copies of a fixture stay distinct."""
    return f"Message-ID: {message_id}\r\n".encode() + _MESSAGE_ID.sub(b"", raw, count=1)


def sample_messages(count: int, tag: str | None = None) -> list[bytes]:
    """COUNT distinct messages: the shipped fixture mails in turn, or generated notices when there are none."""
    tag = tag or uuid.uuid4().hex[:8]
    bodies = [path.read_bytes() for path in sorted(FIXTURES.glob("*.eml"))] or [
        build_message(NOTICE, message_id=None)
    ]
    return [with_message_id(bodies[n % len(bodies)], f"<{tag}-{n}@test.example>") for n in range(count)]


def message_of_size(size: int, message_id: str) -> bytes:
    """A plain notice padded to about SIZE bytes."""
    raw = build_message(NOTICE, message_id=message_id)
    padding = b"\r\n".join([b"x" * 76] * max(0, (size - len(raw)) // 78))
    return raw + padding + b"\r\n"
