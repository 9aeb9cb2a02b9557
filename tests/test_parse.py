"""Parsing raw bytes into ParsedEmail."""

from __future__ import annotations

import base64

import pytest

from complaint_triage.errors import ParseError
from complaint_triage.pipeline.parse import MAX_FORWARD_DEPTH, parse_email, split_quoted
from complaint_triage.testing.mail import NOTICE, build_message


def test_rfc2047_headers_and_aware_date():
    raw = build_message("hi", subject="Réclamation: Marke geprüft", sender="Jürgen Müller <j@brand.example>")
    parsed = parse_email(raw)
    assert parsed.subject == "Réclamation: Marke geprüft"
    assert parsed.from_name == "Jürgen Müller"
    assert parsed.date.tzinfo is not None and parsed.date.isoformat() == "2026-03-03T10:00:00+00:00"


def test_html_only_table_becomes_readable_rows():
    html = "<table><tr><td>ASIN:</td><td>B0ABCDE123</td></tr><tr><td>Complaint ID:</td><td>16509328131</td></tr></table>"
    parsed = parse_email(build_message(html=html))
    assert parsed.html_only
    lines = [line.split() for line in parsed.body_text.splitlines() if line.strip()]
    assert ["ASIN:", "B0ABCDE123"] in lines and ["Complaint", "ID:", "16509328131"] in lines


@pytest.mark.parametrize("cte", ["quoted-printable", "base64"])
def test_transfer_encodings_decode(cte):
    parsed = parse_email(build_message(NOTICE + "\nGrüße – ñ\n", cte=cte))
    assert "Complaint ID: 16509328131" in parsed.body_text and "Grüße – ñ" in parsed.body_text


def test_latin1_body_and_non_utf8_header_bytes():
    raw = (
        b"From: shop@example.com\r\nSubject: Beschwerde \xfcber Marke\r\nDate: Tue, 3 Mar 2026 10:00:00 +0100\r\n"
        b"Content-Type: text/plain; charset=iso-8859-1\r\n\r\nMarkenrechtsverletzung f\xfcr ASIN B0ABCDE123\r\n"
    )
    parsed = parse_email(raw)
    assert "für ASIN B0ABCDE123" in parsed.body_text
    assert parsed.subject.startswith("Beschwerde")


def test_full_width_text_is_normalised():
    parsed = parse_email(build_message("ＡＳＩＮ：Ｂ０ＣＸ１２３４５Ｋ"))
    assert "ASIN:B0CX12345K" in parsed.body_text


def test_inline_forward_is_triaged_as_the_original():
    body = (
        "FYI see below\n\n---------- Forwarded message ---------\nFrom: Amazon <notice-dispute@amazon.com>\n"
        "Date: Mon, Mar 2, 2026 at 10:14 AM\nSubject: Notice: Policy Warning\nTo: <ops@shop.example>\n\n"
        + NOTICE
    )
    parsed = parse_email(
        build_message(body, subject="Fwd: Notice: Policy Warning", sender="Kim <kim@shop.example>")
    )
    assert parsed.from_address == "notice-dispute@amazon.com"
    assert parsed.subject == "Notice: Policy Warning"
    assert parsed.forwarded_by == "kim@shop.example"
    assert parsed.notice_date.date().isoformat() == "2026-03-02"
    assert "FYI" not in parsed.body_text and "Complaint ID" in parsed.body_text


def test_attached_rfc822_notice_is_triaged_as_the_original():
    from email import message_from_bytes
    from email.message import EmailMessage

    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "kim@shop.example", "ops@shop.example", "Fwd: notice"
    outer["Date"] = "Tue, 3 Mar 2026 10:00:00 +0000"
    outer.set_content("see attached")
    outer.add_attachment(message_from_bytes(build_message(NOTICE, sender="seller-notification@amazon.com")))
    parsed = parse_email(outer.as_bytes())
    assert parsed.from_address == "seller-notification@amazon.com"
    assert parsed.forwarded_by == "kim@shop.example"
    assert "B0ABCDE123" in parsed.body_text


def _attached_forward(inner: bytes, level: int) -> bytes:
    from email import message_from_bytes
    from email.message import EmailMessage

    outer = EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = (
        f"level{level}@shop.example",
        "ops@shop.example",
        f"Fwd: level {level}",
    )
    outer["Date"] = "Tue, 3 Mar 2026 10:00:00 +0000"
    outer.set_content("see attached")
    outer.add_attachment(message_from_bytes(inner))
    return outer.as_bytes()


def test_a_notice_forwarded_as_an_attachment_of_a_forward_is_unwrapped_but_hostile_nesting_is_cut_off():
    notice = build_message(NOTICE, sender="seller-notification@amazon.com", subject="Notice: Policy Warning")
    twice = _attached_forward(_attached_forward(notice, 2), 1)
    parsed = parse_email(twice)
    assert (parsed.from_address, parsed.subject, parsed.forwarded_by) == (
        "seller-notification@amazon.com",
        "Notice: Policy Warning",
        "level1@shop.example",
    )
    nested = notice
    for level in range(MAX_FORWARD_DEPTH + 3, 0, -1):
        nested = _attached_forward(nested, level)
    parsed = parse_email(nested)  # each unwrapped level is parsed again from its bytes: the depth is bounded
    assert parsed.from_address == f"level{MAX_FORWARD_DEPTH + 1}@shop.example"
    assert parsed.forwarded_by == "level1@shop.example"


def test_attachments_are_metadata_only():
    from email.message import EmailMessage

    message = EmailMessage()
    message["From"], message["Subject"] = "a@b.example", "invoice"
    message.set_content("see attached")
    message.add_attachment(
        b"PK\x03\x04" + b"\x00" * 100, maintype="application", subtype="zip", filename="bomb.zip"
    )
    parsed = parse_email(message.as_bytes())
    assert [(a.filename, a.content_type) for a in parsed.attachments] == [("bomb.zip", "application/zip")]
    assert parsed.attachments[0].size > 0


@pytest.mark.parametrize(
    "raw, reason",
    [(b"", "empty"), (b"   \r\n", "empty"), (b"\x89PNG\r\n\x1a\n" + bytes(range(256)), "not an email")],
)
def test_unreadable_input_raises_parse_error(raw, reason):
    with pytest.raises(ParseError, match=reason):
        parse_email(raw)


def test_quoted_lines_are_kept_apart():
    own, quoted = split_quoted(
        "We object.\n\nOn Mon, Mar 2, 2026 Amazon <x@amazon.com> wrote:\n> ASIN: B0ABCDE123\n>> deeper"
    )
    assert own == "We object."
    assert quoted.splitlines() == [
        "On Mon, Mar 2, 2026 Amazon <x@amazon.com> wrote:",
        "ASIN: B0ABCDE123",
        "deeper",
    ]


def test_message_without_message_id_gets_a_stable_hash():
    raw = build_message("x", message_id=None)
    assert parse_email(raw).message_id == parse_email(raw).message_id
    assert parse_email(raw).message_id.startswith("sha256:")


def test_base64_garbage_does_not_crash():
    raw = (
        b"From: a@b.example\r\nSubject: x\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.b64encode(b"hello")[:-3]
        + b"!!"
    )
    parse_email(raw)
