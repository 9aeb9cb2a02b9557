"""needs_review: mail that looks like a notice or a legal demand but that the rules cannot decide is never silently low."""

from __future__ import annotations

from datetime import UTC, date, datetime

from complaint_triage.alerts import alerting
from complaint_triage.cases import Case, case_keys, describe
from complaint_triage.report.formats import render_markdown
from complaint_triage.report.summary import build_summary
from complaint_triage.testing.mail import build_message

# A Czech notice: Amazon has no Czech store, so no pack reads it; its identifiers and sender still show what it is.
CZECH_NOTICE = """Dobrý den,

odstranili jsme některé vaše nabídky, protože jsme od vlastníka práv obdrželi oznámení, že tyto nabídky
mohou porušovat jeho ochrannou známku. Odstraněné nabídky najdete na konci této zprávy. Pokud se
domníváte, že jde o omyl, kontaktujte prosím vlastníka práv a požádejte jej o stažení oznámení.

ASIN: B0CZ7Q4XK2
Identifikátor stížnosti: 17345550912
"""


def test_a_notice_in_a_language_without_a_pack_needs_review_and_is_at_least_medium(triager):
    record = triager.triage_bytes(build_message(CZECH_NOTICE, subject="Oznámení: upozornění na zásady"))
    assert record.needs_review
    assert record.urgency in ("medium", "high", "critical")
    assert "language without a pattern pack" in record.review_reasons[0]
    assert record.next_steps[0].startswith("Read this message yourself")
    assert "Not an IP complaint" not in record.urgency_reasons


def test_identifiers_side_by_side_from_an_unknown_sender_need_review(triager):
    body = "Hi,\n\nPlease look at complaint ID 17345550912 about ASIN B0CZ7Q4XK2 and tell us what you think.\n\nRegards,\nPat\n"
    record = triager.triage_bytes(build_message(body, subject="question", sender="Pat <pat@consult.example>"))
    assert record.needs_review and record.urgency == "medium"


def test_everyday_mail_and_decided_notices_do_not_need_review(triager):
    ordinary = triager.triage_bytes(
        build_message(
            "Your order has shipped. Thank you for shopping with us, we hope you enjoy it.",
            subject="Shipped",
            sender="shop@store.example",
        )
    )
    assert not ordinary.needs_review and ordinary.urgency == "low"
    english = "Hello,\n\nWe removed some of your listings because we received a report from a rights owner that they may infringe the rights owner's trademark.\n\nASIN: B0CZ7Q4XK2\nComplaint ID: 17345550912\n"
    decided = triager.triage_bytes(build_message(english))
    assert decided.is_complaint and not decided.needs_review


def _review_record(triager):
    return triager.triage_bytes(
        build_message(CZECH_NOTICE, subject="Oznámení", message_id="<review-1@example.com>")
    )


def test_a_record_that_needs_review_opens_a_case_that_says_so(triager):
    record = _review_record(triager)
    keys = case_keys(record)
    assert keys, "a record needing review must be tracked as a case"
    case = describe(Case(key=keys[0].key, status="new", opened_at=datetime.now(UTC)), [record])
    assert case.needs_review and case.review_reasons == record.review_reasons


def test_a_case_that_needs_review_alerts_like_a_high_one():
    case = Case(key="mail:x", status="new", opened_at=datetime.now(UTC), urgency="medium", needs_review=True)
    assert alerting(case, ["critical", "high"])
    assert not alerting(case, ["critical"])
    assert not alerting(case.model_copy(update={"needs_review": False}), ["critical", "high"])


def test_the_summary_lists_review_first(triager):
    record = _review_record(triager)
    other = triager.triage_bytes(
        build_message(
            "Your order has shipped.",
            subject="Shipped",
            sender="shop@store.example",
            message_id="<o@example.com>",
        )
    )
    rows = [{"record": r, "stored_at": datetime(2026, 3, 3, tzinfo=UTC)} for r in (record, other)]
    summary = build_summary(rows, date(2026, 3, 3))
    assert [item.message_id for item in summary.review] == [record.message_id]
    text = render_markdown(summary)
    assert text.index("Needs review") < text.index("Critical and high cases")
    assert "language without a pattern pack" in text
