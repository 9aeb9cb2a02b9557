"""Canonical identifier forms and stated-date reading, as pure functions."""

from __future__ import annotations

import pytest

from complaint_triage.pipeline import normalise
from complaint_triage.pipeline.nlp.build import load_pipeline
from complaint_triage.pipeline.nlp.deadlines import stated_date, window_days


@pytest.mark.parametrize(
    "text, expected",
    [
        ("B0ABCDE123", "B0ABCDE123"),
        ("b0abcde123", "B0ABCDE123"),
        ("https://www.amazon.de/dp/B0ABCDE123?th=1", "B0ABCDE123"),
        ("0306406152", "0306406152"),
        ("0306406153", None),
        ("BACKGROUND", None),
    ],
)
def test_asin(text, expected):
    assert normalise.asin(text) == expected


@pytest.mark.parametrize(
    "label, text, expected",
    [
        ("VAL_COMMA_NUMBER", "6,123,456", "6123456"),
        ("VAL_US_SERIAL", "97/123,456", "97123456"),
        ("VAL_DPMA", "30 2019 123 456.7", "302019123456"),
        ("VAL_JP_TM", "登録第1234567号", "1234567"),
        ("VAL_UK_TM", "UK00003123456", "UK00003123456"),
    ],
)
def test_registration_number(label, text, expected):
    assert normalise.registration_number(label, text) == expected


@pytest.mark.parametrize(
    "label, text, expected",
    [
        ("VAL_US_PATENT", "U.S. 11,234,567 B2", "US11234567"),
        ("VAL_US_DESIGN", "US D987,654 S", "USD987654"),
        ("VAL_US_DESIGN", "Des. 987,654", "USD987654"),
        ("VAL_US_REISSUE", "RE12,345", "USRE12345"),
        ("VAL_US_PUBLICATION", "US 2023/0123456 A1", "US20230123456"),
        ("VAL_EP_PATENT", "EP 3 456 789 B1", "EP3456789"),
    ],
)
def test_patent_number(label, text, expected):
    assert normalise.patent_number(label, text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("VA 1-234-567", "VA0001234567"),
        ("VAu 598-764", "VAU000598764"),
        ("TX0009876543", "TX0009876543"),
        ("SR-320-918", "SR0000320918"),
    ],
)
def test_copyright_registration(text, expected):
    assert normalise.copyright_registration(text) == expected


def test_mark_name_strips_quotes_and_symbols():
    assert normalise.mark_name("“ZENTRO®”") == "ZENTRO"


@pytest.mark.parametrize(
    "phrase, days",
    [
        ("within seven (7) days", 7),
        ("within 72 hours", 3),
        ("within three weeks", 21),
        ("innerhalb von 14 Tagen", 14),
        ("dans un délai de 10 jours", 10),
        ("en un plazo de 72 horas", 3),
        ("entro 5 giorni", 5),
        ("7日以内", 7),
    ],
)
def test_stated_windows(phrase, days):
    doc = load_pipeline()(f"Please respond {phrase}.")
    windows = [window_days(s) for s in doc.spans["candidates"] if s.label_ == "DEADLINE_WINDOW"]
    assert days in windows


@pytest.mark.parametrize(
    "phrase, iso",
    [
        ("by May 25, 2026", "2026-05-25"),
        ("no later than 25 May 2026", "2026-05-25"),
        ("bis zum 15. Mai 2026", "2026-05-15"),
        ("avant le 3 juin 2026", "2026-06-03"),
        ("antes del 3 de junio de 2026", "2026-06-03"),
        ("by 05/15/2026", "2026-05-15"),
        ("bis 15.05.2026", "2026-05-15"),
    ],
)
def test_stated_dates(phrase, iso):
    doc = load_pipeline()(f"Please respond {phrase}.")
    assert iso in {stated_date(s) for s in doc.spans["candidates"] if s.label_ == "DEADLINE_DATE"}
