"""Kind, urgency (the rubric), deadlines, due dates and checks."""

from __future__ import annotations

from complaint_triage.testing.mail import NOTICE, build_message


def _triage(triager, body, **kwargs):
    return triager.triage_bytes(build_message(body, **kwargs)).to_json_dict()


def test_removed_listing_is_high_and_due_by_playbook(triager):
    record = _triage(triager, NOTICE)
    assert (record["kind"], record["urgency"], record["is_complaint"]) == ("ip_complaint", "high", True)
    assert record["urgency_reasons"][0] == "Listing removed or suppressed"
    assert record["deadline_days"] is None and record["response_due"] == "2026-03-10"


def test_conditional_deactivation_boilerplate_is_not_critical(triager):
    body = (
        NOTICE.replace("We removed some of your listings because we", "We are writing because we")
        + "\nIf we receive more complaints about your listings, we may deactivate your account.\n"
    )
    record = _triage(triager, body)
    assert record["urgency"] == "medium" and record["kind"] == "ip_complaint"


def test_72_hour_notice_is_critical_with_three_days(triager):
    body = (
        "Your account is at risk of deactivation. We received intellectual property complaints from rights owners about your listings.\n"
        "Please submit a plan of action within 72 hours.\nASIN: B0ABCDE123\n"
    )
    record = _triage(triager, body, subject="Your Amazon selling account is at risk")
    assert (record["kind"], record["urgency"], record["deadline_days"]) == (
        "account_deactivation",
        "critical",
        3,
    )
    assert record["response_due"] == "2026-03-06"


def test_deactivated_account_with_funds_held(triager):
    body = "We have removed your selling privileges, canceled your listings, and placed a temporary hold on any funds in your account because of repeated rights owner complaints."
    record = _triage(triager, body, subject="Your Amazon.com selling privileges have been removed")
    assert (record["kind"], record["urgency"]) == ("account_deactivation", "critical")


def test_inauthentic_claim_is_critical(triager):
    body = (
        "We received a report from a rights owner that the products below are inauthentic. Please send invoices from your supplier issued in the last 365 days.\n"
        "ASIN: B0ABCDE123\nComplaint ID: 16509328131\n"
    )
    record = _triage(triager, body)
    assert (record["kind"], record["urgency"]) == ("inauthentic_complaint", "critical")
    assert "counterfeit" in record["claim_types"]
    assert record["deadline_days"] is None, "the 365-day invoice period is not a deadline"


def test_apex_invitation(triager):
    body = (
        "The patent owner has initiated an Amazon Patent Evaluation Express (APEX) procedure asserting U.S. Patent No. 11,234,567 against ASIN B0ABCDE123.\n"
        "You have three weeks to respond, otherwise the listings will be removed. Contact patent-evaluation@amazon.com."
    )
    record = _triage(triager, body, subject="Amazon Patent Evaluation Express")
    assert (record["kind"], record["urgency"], record["deadline_days"]) == ("patent_evaluation", "high", 21)
    assert record["patent_numbers"] == ["US11234567"] and record["claim_types"] == ["patent"]


def test_design_patent_through_apex_is_flagged(triager):
    body = "Amazon Patent Evaluation Express: the patent owner asserts design patent US D987,654 against ASIN B0ABCDE123."
    record = _triage(triager, body, subject="APEX")
    assert "design_patent_apex" in {c["code"] for c in record["checks"]}


def _cease_and_desist(days_clause: str) -> str:
    return (
        "Dear Sir or Madam,\nWe represent Zentro Brands LLC, owner of the registered trademark ZENTRO (U.S. Reg. No. 6,123,456).\n"
        "Your listing ASIN B0ABCDE123 infringes our client's trademark. We demand that you cease and desist from selling these products"
        f"{days_clause}.\nSincerely,\nA. Counsel, Counsel & Partners LLP"
    )


def test_cease_and_desist_with_short_deadline_is_critical(triager):
    record = _triage(
        triager,
        _cease_and_desist(" and confirm in writing within seven (7) days"),
        sender="A. Counsel <ac@counsel-partners.example>",
        subject="Trademark infringement",
    )
    assert (record["kind"], record["urgency"], record["deadline_days"]) == ("cease_and_desist", "critical", 7)
    assert record["rights_owner_emails"] == ["ac@counsel-partners.example"]
    assert record["trademarks"] == ["ZENTRO"] and record["registration_numbers"] == ["6123456"]


def test_cease_and_desist_without_deadline_is_high(triager):
    record = _triage(
        triager, _cease_and_desist(""), sender="ac@counsel-partners.example", subject="Trademark infringement"
    )
    assert (record["kind"], record["urgency"], record["deadline_days"]) == ("cease_and_desist", "high", None)


def test_claimants_ten_days_is_not_the_sellers_deadline(triager):
    body = (
        NOTICE
        + "\nIf you submit a counter-notice, the claimant has 10 days to file a lawsuit; otherwise we reinstate the content within 10 business days.\n"
    )
    assert _triage(triager, body)["deadline_days"] is None


def test_retraction_from_rights_owner(triager):
    body = "Hello,\nWe hereby retract our complaint 16509328131 against ASIN B0ABCDE123; it was made in error.\nJane Roe, Zentro Brands"
    record = _triage(
        triager,
        body,
        subject="Retraction",
        sender="legal@zentro-brands.com",
        to="notice-retraction@amazon.com",
    )
    assert (record["kind"], record["is_complaint"], record["urgency"]) == ("retraction", False, "low")
    assert record["complaint_ids"] == ["16509328131"] and record["rights_owner_emails"] == [
        "legal@zentro-brands.com"
    ]
    assert record["claim_types"] == [] and record["trademarks"] == []


def test_reinstatement(triager):
    record = _triage(
        triager,
        "Good news: your listing for ASIN B0ABCDE123 has been reinstated.",
        subject="Your listing has been reinstated",
    )
    assert (record["kind"], record["urgency"], record["is_complaint"]) == ("reinstatement", "low", False)


def test_buyer_question_about_authenticity(triager):
    record = _triage(
        triager,
        "Hi, is this product genuine? I worry it is a counterfeit.",
        sender="Buyer <abc123xyz@marketplace.amazon.com>",
        subject="Question from Amazon customer",
    )
    assert (record["kind"], record["is_complaint"], record["urgency"]) == ("buyer_message", False, "medium")


def test_newsletter_about_trademarks_is_not_a_complaint(triager):
    body = "This week's digest: how to answer a trademark infringement complaint and a cease and desist letter. Read more on our blog. Unsubscribe."
    record = _triage(
        triager,
        body,
        sender="Seller Law Weekly <news@sellerlaw.example>",
        subject="Weekly digest",
        headers={"List-Unsubscribe": "<mailto:u@sellerlaw.example>"},
    )
    assert (record["kind"], record["is_complaint"], record["urgency"]) == ("other", False, "low")


def test_phishing_from_lookalike_domain(triager):
    body = NOTICE + "\nClick here to verify your account within 24 hours."
    record = _triage(
        triager,
        body,
        sender="Amazon Seller Central <alerts@amaz0n-seller.com>",
        headers={"Authentication-Results": "mx.example; dkim=fail; dmarc=fail header.from=amaz0n-seller.com"},
    )
    assert (record["kind"], record["is_complaint"]) == ("other", False)
    codes = {c["code"] for c in record["checks"]}
    assert {"lookalike_sender_domain", "sender_not_authenticated"} <= codes


def test_eu_mark_on_uk_store_is_a_territory_mismatch(triager):
    body = (
        NOTICE.replace("Trademark number: 6,123,456", "EU trade mark No. 018123456")
        + "\nMarketplace: amazon.co.uk\n"
    )
    record = _triage(triager, body, sender="seller-notification@amazon.co.uk")
    assert record["marketplace"] == "amazon.co.uk"
    assert "territory_mismatch" in {c["code"] for c in record["checks"]}
    assert any("does not cover amazon.co.uk" in step for step in record["next_steps"])


def test_clothing_class_against_electronics_is_a_class_signal(triager):
    body = NOTICE.replace("Trademark number: 6,123,456", "Trademark number: 6,123,456 (Class 25)")
    record = _triage(triager, body)
    assert "class_mismatch" in {c["code"] for c in record["checks"]}


def test_response_due_uses_configured_timezone():
    from datetime import datetime, timezone

    from complaint_triage.pipeline.domain import load_domain
    from complaint_triage.pipeline.nlp.build import load_pipeline
    from complaint_triage.pipeline.triage import Triager

    raw = build_message(NOTICE, date=datetime(2026, 3, 3, 23, 30, tzinfo=timezone.utc))
    assert (
        Triager(load_pipeline(), load_domain(), "UTC").triage_bytes(raw).response_due.isoformat()
        == "2026-03-10"
    )
    assert (
        Triager(load_pipeline(), load_domain(), "Asia/Tokyo").triage_bytes(raw).response_due.isoformat()
        == "2026-03-11"
    )


def test_german_owner_s_polite_request_with_seven_days_is_a_critical_cease_and_desist(triager):
    body = (
        "Sehr geehrte Damen und Herren,\n\nin Ihrem Angebot auf Amazon.de (ASIN B0ABCDE123) verwenden Sie mein Bild, "
        "an dem ich die Urheber- und Nutzungsrechte halte.\nIch bitte Sie, das Bild innerhalb von 7 Tagen aus Ihrem "
        "Angebot zu entfernen. Andernfalls übergebe ich die Sache meinem Anwalt.\n\nMit freundlichen Grüßen\n"
        "Eva Muster\nbild@muster-design.example\n"
    )
    record = _triage(triager, body, sender="Eva Muster <bild@muster-design.example>", subject="Mein Bild")
    assert (record["kind"], record["urgency"], record["deadline_days"]) == ("cease_and_desist", "critical", 7)
    assert record["claim_types"] == ["copyright"] and record["rights_owner_emails"] == [
        "bild@muster-design.example"
    ]
