"""Mail as mail clients show it: headers, structure the parsers disagree on, forwards, generic system mail."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import mailparser
import pytest

from complaint_triage.pipeline.headers import guess_charset, with_raw_bytes_decoded
from complaint_triage.pipeline.parse import parse_email
from complaint_triage.pipeline.triage import default_triager

REGRESSIONS = Path(__file__).resolve().parent / "regressions"


def _raw(name: str) -> bytes:
    return (REGRESSIONS / f"{name}.eml").read_bytes()


@pytest.fixture(scope="module")
def triager():
    return default_triager()


@pytest.mark.parametrize(
    ("name", "subject", "sender"),
    [
        (
            "header-raw-latin1-name-and-subject",
            "Lieferung für Köln bestätigt",
            "Jürgen Müller <juergen@brand.example>",
        ),
        (
            "header-raw-8bit-no-declared-charset",
            "Crème brûlée en rupture",
            "Renée Café <renee@brand.example>",
        ),
        ("header-raw-utf8-name-cut-byte", "Заказ получен", "Ольга Смирнова\ufffd <olga@shop.example>"),
        (
            "header-encoded-word-in-quoted-name",
            "Réunion de mardi",
            "Françoise Lévesque <francoise@brand.example>",
        ),
    ],
)
def test_headers_read_as_a_client_shows_them(triager, name, subject, sender):
    record = triager.triage_bytes(_raw(name))
    assert (record.subject, record.from_) == (subject, sender)
    assert not any("\udc80" <= char <= "\udcff" for char in record.subject + record.from_)


def test_python_shows_replacement_characters_for_raw_latin1_where_the_record_has_the_letters():
    raw = _raw("header-raw-latin1-name-and-subject")
    python = str(email.message_from_bytes(raw, policy=email.policy.default)["Subject"])
    assert "\ufffd" in python  # what the record is compared with elsewhere: here Python itself is wrong
    assert parse_email(raw).subject == "Lieferung für Köln bestätigt"


def test_raw_bytes_inside_an_encoded_word_use_the_words_charset():
    parsed = parse_email(_raw("header-raw-utf8-name-cut-byte"))
    assert parsed.subject == "Заказ получен"


def test_encoded_names_in_to_are_decoded_and_addresses_kept():
    parsed = parse_email(_raw("header-encoded-word-in-quoted-name"))
    assert parsed.to_addresses == ["soren@shop.example"]


def test_full_width_subject_is_kept_as_written_and_matched_normalised(triager):
    record = triager.triage_bytes(_raw("header-full-width-subject"))
    assert record.subject == "ＡＳＩＮ：Ｂ０ＣＸ１２３４５Ｋ\u3000のお問い合わせ"
    assert record.asins == ["B0CX12345K"]


def test_null_sender_is_no_address():
    raw = b"From: MAILER DAEMON <>\r\nSubject: failure\r\nDate: Mon, 2 Nov 2026 10:00:00 +0000\r\n\r\nx\r\n"
    parsed = parse_email(raw)
    assert (parsed.from_name, parsed.from_address) == ("MAILER DAEMON", "")


@pytest.mark.parametrize(
    ("runs", "fallback", "expected"),
    [
        ([b"\xfc"], None, "cp1252"),
        ([b"\xd0\x9e\xd0\xbb\xd1\x8c\xd0\xb3\xd0\xb0\xd1"], None, "utf-8"),  # one cut character in ten bytes
        ([b"\xe8"], "iso-8859-2", "iso-8859-2"),
    ],
)
def test_charset_guess(runs, fallback, expected):
    assert guess_charset(b"Cr" + b"".join(runs) + b"me", runs, fallback) == expected


def test_text_without_raw_bytes_is_untouched():
    assert with_raw_bytes_decoded("Grüße ＡＳＩＮ") == "Grüße ＡＳＩＮ"


def test_a_message_mail_parser_raises_on_is_read_with_its_structure_and_text():
    raw = _raw("multipart-boundary-prefix-of-outer")
    with pytest.raises(AttributeError):
        mailparser.parse_from_bytes(raw)  # the reason this fixture exists
    parsed = parse_email(raw)
    assert parsed.subject == "Weekly stock report" and parsed.from_address == "orders@shop.example"
    assert "Stock levels for week 45" in parsed.body_text


def test_bounce_of_a_system_alert_is_the_bounce_and_no_complaint(triager):
    record = triager.triage_bytes(_raw("bounce-of-system-alert"))
    assert record.subject == "Undelivered Mail Returned to Sender"
    assert record.from_ == "Mail Delivery System <mailer-daemon@mx.shop.example>"
    assert (record.is_complaint, record.kind, record.forwarded_by) == (False, "other", None)


def test_system_alert_with_name_lines_and_on_behalf_of_is_no_complaint(triager):
    bounce = email.message_from_bytes(_raw("bounce-of-system-alert"))
    alert = next(part for part in bounce.walk() if part.get_content_type() == "message/rfc822").get_payload(0)
    record = triager.triage_bytes(alert.as_bytes())
    assert record.subject.startswith("ALERT | FILESERVER-2")
    assert (record.is_complaint, record.kind, record.trademarks) == (False, "other", [])


def test_attaching_a_notice_without_forwarding_it_keeps_the_own_headers(triager):
    record = triager.triage_bytes(_raw("attached-message-not-forwarded"))
    assert (record.subject, record.forwarded_by) == ("Archived copy 2026-11-02", None)
    assert record.from_ == "Archive Robot <archive@shop.example>"
    assert not record.is_complaint


def test_a_forward_of_the_same_attachment_is_unwrapped(triager):
    raw = _raw("attached-message-not-forwarded").replace(
        b"Subject: Archived copy 2026-11-02", b"Subject: Fwd: Notice: Policy Warning"
    )
    record = triager.triage_bytes(raw)
    assert (record.subject, record.forwarded_by) == ("Notice: Policy Warning", "archive@shop.example")
    assert record.is_complaint and record.asins == ["B0ABCDE123"]


def test_word_count_between_distant_spans_stops_past_the_limit():
    from complaint_triage.pipeline.nlp.components import words_between

    doc = default_triager().nlp.make_doc("word " * 5000)
    assert words_between(doc, 0, len(doc)) == 5000
    assert words_between(doc, 0, len(doc), cap=12) == 13
    assert words_between(doc, 0, 5, cap=12) == 5


def test_a_failed_record_shows_its_headers_decoded_too():
    from complaint_triage.pipeline.triage import failed_record

    record = failed_record(
        _raw("header-raw-latin1-name-and-subject"), "file", None, "internal error: example"
    )
    assert (record.from_, record.subject) == (
        "Jürgen Müller <juergen@brand.example>",
        "Lieferung für Köln bestätigt",
    )
