"""The screen before the spaCy pipeline loses no complaint, and everyday mail skips extraction."""

from __future__ import annotations

import json
import random
import shutil

import pytest

from complaint_triage.pipeline.extract import extraction_text
from complaint_triage.pipeline.nlp.build import build_pipeline
from complaint_triage.pipeline.parse import parse_email
from complaint_triage.pipeline.screen import SCREENED_REASON, ComplaintScreen, token_pattern_words
from complaint_triage.pipeline.senders import profile_sender
from complaint_triage.pipeline.triage import Triager
from complaint_triage.testing.generate import EVERYDAY, everyday
from tests.conftest import ROOT, fixture_files


def _check(triager, raw: bytes):
    parsed = parse_email(raw)
    return triager.screen.check(extraction_text(parsed), profile_sender(parsed, triager.tables.senders))


def _is_complaint_fixture(path) -> bool:
    expected = json.loads(path.with_suffix("").with_suffix(".expected.json").read_text(encoding="utf-8"))
    return expected.get("is_complaint") is True or expected.get("kind", "other") != "other"


@pytest.fixture(scope="module")
def unscreened(triager):
    return Triager(triager.nlp, triager.tables, screen=False)


def test_fixture_corpus_has_complaints():
    assert sum(_is_complaint_fixture(path) for path in fixture_files()) >= 50


@pytest.mark.parametrize(
    "path", [p for p in fixture_files() if _is_complaint_fixture(p)], ids=lambda p: p.name
)
def test_every_fixture_complaint_goes_through_the_pipeline(triager, path):
    result = _check(triager, path.read_bytes())
    assert result.full, f"{path.name} would skip extraction"


def _everyday_mail(count: int) -> list[bytes]:
    rng = random.Random(3)
    return [everyday(rng, index) for index in range(count)]


def test_everyday_mail_of_several_kinds_skips_extraction(triager):
    mails = _everyday_mail(60)
    skipped = [raw for raw in mails if not _check(triager, raw).full]
    subjects = {parse_email(raw).subject.split(":")[0] for raw in skipped}
    assert len(skipped) >= 30
    assert {
        "Your order has shipped",
        "Your disbursement has been initiated",
        "Weekly performance report",
        "Undelivered Mail Returned to Sender",
    } <= subjects


def test_a_screened_record_is_complete_and_matches_the_full_pipeline(triager, unscreened):
    """Screened or not, every record is the same, except the reason that says it was screened."""
    compared = 0
    for index, raw in enumerate(
        _everyday_mail(len(EVERYDAY) * 10) + [p.read_bytes() for p in fixture_files()]
    ):
        screened = triager.triage_bytes(raw, source=f"m{index}").to_json_dict()
        full = unscreened.triage_bytes(raw, source=f"m{index}").to_json_dict()
        if screened["urgency_reasons"][-1:] == [SCREENED_REASON]:
            compared += 1
            assert (
                screened["kind"] == "other" and screened["urgency"] == "low" and not screened["is_complaint"]
            )
            screened["urgency_reasons"].pop()
        assert screened == full
    assert compared >= 40


def test_sender_signals_send_mail_through_the_pipeline(triager):
    buyer = _everyday_mail(len(EVERYDAY))[EVERYDAY.index(next(f for f in EVERYDAY if f.__name__ == "_buyer"))]
    assert _check(triager, buyer).reason == "a buyer writing through Amazon's relay"
    lookalike = (
        b"From: Seller Performance <alerts@amaz0n-seller.com>\r\nTo: ops@seller.example\r\nSubject: Your account\r\n"
        b"Message-ID: <x1@example>\r\n\r\nPlease log in to keep selling.\r\n"
    )
    assert _check(triager, lookalike).full


def test_a_cue_word_of_any_pack_triggers_whatever_its_spacing(triager):
    mail = (
        b"From: Someone <a@shop.example>\r\nTo: ops@seller.example\r\nSubject: hello\r\nMessage-ID: <x2@example>\r\n\r\n"
        b"Wir haben  einige Ihrer\r\nAngebote entfernt.\r\n"
    )
    assert not _check(triager, mail.replace(b"einige Ihrer\r\nAngebote entfernt", b"Ihnen geschrieben")).full
    result = _check(triager, mail)
    assert result.full, result.reason


def test_a_self_identifying_value_triggers(triager):
    mail = (
        b"From: A <a@shop.example>\r\nTo: ops@seller.example\r\nSubject: list\r\nMessage-ID: <x3@example>\r\n\r\n"
        b"Items: B0ABCDEF12 and more.\r\n"
    )
    assert _check(triager, mail).reason == "identifier 'B0ABCDEF12'"


def test_the_screen_is_built_from_the_patterns_present_at_load_time(tmp_path):
    """A new language pack's cue reaches the screen without any list in the code."""
    patterns = tmp_path / "patterns"
    shutil.copytree(ROOT / "config" / "patterns", patterns)  # the shared files and the language packs
    with (patterns / "kinds.jsonl").open("a", encoding="utf-8") as extra:
        extra.write(json.dumps({"label": "KIND_REMOVAL", "pattern": "usunęliśmy twoje oferty"}) + "\n")
        extra.write(
            json.dumps({"label": "KIND_REMOVAL", "pattern": [{"LOWER": "zdjęliśmy"}, {"LOWER": "oferty"}]})
            + "\n"
        )
    screen = ComplaintScreen(build_pipeline(patterns))
    plain = profile_sender(parse_email(b"From: a@shop.example\r\n\r\nx"), _tables())
    assert screen.check("Usunęliśmy Twoje  oferty z Amazon.", plain).full
    assert screen.check("Wczoraj zdjęliśmy ogłoszenie.", plain).full
    assert not screen.check("Dziękujemy za zamówienie.", plain).full


def test_a_token_pattern_without_words_makes_the_screen_read_everything(tmp_path):
    patterns = tmp_path / "patterns"
    shutil.copytree(ROOT / "config" / "patterns", patterns)  # the shared files and the language packs
    with (patterns / "kinds.jsonl").open("a", encoding="utf-8") as extra:
        extra.write(
            json.dumps({"label": "KIND_REMOVAL", "pattern": [{"LOWER": {"REGEX": "^entfern"}}]}) + "\n"
        )
    screen = ComplaintScreen(build_pipeline(patterns))
    assert screen.check(
        "Danke für Ihre Bestellung.", profile_sender(parse_email(b"From: a@shop.example\r\n\r\nx"), _tables())
    ).full


def test_token_pattern_words_take_the_first_required_literal():
    assert token_pattern_words([{"LOWER": "within", "OP": "?"}, {"LOWER": {"IN": ["Days", "weeks"]}}]) == [
        "days",
        "weeks",
    ]
    assert token_pattern_words([{"LOWER": {"REGEX": "^\\d+$"}}, {"ORTH": "Tage"}]) == ["tage"]
    assert token_pattern_words([{"LIKE_EMAIL": True}]) is None


def _tables():
    from complaint_triage.pipeline.domain import load_domain

    return load_domain().senders
