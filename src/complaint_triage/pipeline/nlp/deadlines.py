"""Stated response windows: 'within seven (7) days' -> 7, '72 hours' -> 3, 'by 15 March 2026' -> a date."""

from __future__ import annotations

import math
import re
from datetime import date

from spacy.tokens import Span

NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty-five": 45,
    "sixty": 60,
    "ninety": 90,
    "ein": 1,
    "einem": 1,
    "einer": 1,
    "zwei": 2,
    "drei": 3,
    "vier": 4,
    "fünf": 5,
    "sieben": 7,
    "zehn": 10,
    "vierzehn": 14,
    "dreißig": 30,
    "un": 1,
    "une": 1,
    "deux": 2,
    "trois": 3,
    "quatre": 4,
    "cinq": 5,
    "sept": 7,
    "dix": 10,
    "quinze": 15,
    "trente": 30,
    "uno": 1,
    "una": 1,
    "dos": 2,
    "tres": 3,
    "cuatro": 4,
    "cinco": 5,
    "siete": 7,
    "diez": 10,
    "catorce": 14,
    "quince": 15,
    "treinta": 30,
    "due": 2,
    "tre": 3,
    "quattro": 4,
    "cinque": 5,
    "sette": 7,
    "dieci": 10,
    "quattordici": 14,
    "quindici": 15,
    "trenta": 30,
}
_HOURS = {"hour", "hours", "stunde", "stunden", "heure", "heures", "hora", "horas", "ora", "ore", "時"}
_WEEKS = {
    "week",
    "weeks",
    "woche",
    "wochen",
    "semaine",
    "semaines",
    "semana",
    "semanas",
    "settimana",
    "settimane",
    "週",
}


def _amount(span: Span) -> int | None:
    """The number in the window; a figure in brackets ('seven (7)') wins over the word."""
    digits = [int(t.text) for t in span if t.text.isdigit()]
    if digits:
        return digits[-1]
    for token in span:
        if token.lower_ in NUMBER_WORDS:
            return NUMBER_WORDS[token.lower_]
    return None


def window_days(span: Span) -> int | None:
    """Days in a stated window, hours rounded up to whole days."""
    amount = _amount(span)
    if amount is None or amount <= 0:
        return None
    words = {t.lower_ for t in span}
    if words & _HOURS:
        return max(1, math.ceil(amount / 24))
    if words & _WEEKS:
        return amount * 7
    return amount


MONTHS = {
    **dict.fromkeys(["january", "jan", "januar", "janvier", "enero", "gennaio"], 1),
    **dict.fromkeys(["february", "feb", "februar", "février", "fevrier", "febrero", "febbraio"], 2),
    **dict.fromkeys(["march", "mar", "märz", "maerz", "mars", "marzo"], 3),
    **dict.fromkeys(["april", "apr", "avril", "abril", "aprile"], 4),
    **dict.fromkeys(["may", "mai", "mayo", "maggio"], 5),
    **dict.fromkeys(["june", "jun", "juni", "juin", "junio", "giugno"], 6),
    **dict.fromkeys(["july", "jul", "juli", "juillet", "julio", "luglio"], 7),
    **dict.fromkeys(["august", "aug", "août", "aout", "agosto"], 8),
    **dict.fromkeys(["september", "sep", "sept", "septembre", "septiembre", "settembre"], 9),
    **dict.fromkeys(["october", "oct", "oktober", "octobre", "octubre", "ottobre"], 10),
    **dict.fromkeys(["november", "nov", "novembre", "noviembre"], 11),
    **dict.fromkeys(["december", "dec", "dezember", "décembre", "decembre", "diciembre", "dicembre"], 12),
}
_MONTH = "(" + "|".join(sorted(map(re.escape, MONTHS), key=len, reverse=True)) + ")"
_DATE_FORMS = (
    ("ymd", re.compile(r"(20\d\d)-(\d{1,2})-(\d{1,2})")),
    ("ymd", re.compile(r"(20\d\d)\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日")),
    (
        "dmy_name",
        re.compile(r"(\d{1,2})\.?\s*(?:de\s+|di\s+)?" + _MONTH + r"\.?,?\s*(?:de\s+)?(20\d\d)", re.I),
    ),
    ("mdy_name", re.compile(_MONTH + r"\.?\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(20\d\d)", re.I)),
    ("numeric", re.compile(r"(\d{1,2})[./](\d{1,2})[./](20\d\d)")),
)
_ENGLISH = re.compile(r"(?i)\b(by|before|until|no later than|through)\b")


def _ymd(form: str, groups: tuple[str, ...], english: bool) -> tuple[int, int, int]:
    if form == "ymd":
        return int(groups[0]), int(groups[1]), int(groups[2])
    if form == "dmy_name":
        return int(groups[2]), MONTHS[groups[1].lower()], int(groups[0])
    if form == "mdy_name":
        return int(groups[2]), MONTHS[groups[0].lower()], int(groups[1])
    first, second, year = int(groups[0]), int(groups[1]), int(groups[2])
    month_first = second > 12 or (english and first <= 12)  # 05/15/2026 in English mail; 15.05.2026 elsewhere
    return (year, first, second) if month_first else (year, second, first)


def stated_date(span: Span) -> str | None:
    """A calendar date written in any of the notice languages, as ISO text; None when unreadable."""
    text = span.text
    for form, pattern in _DATE_FORMS:
        match = pattern.search(text)
        if match:
            try:
                return date(*_ymd(form, match.groups(), bool(_ENGLISH.search(text)))).isoformat()
            except ValueError:
                return None
    return None


def deadline_value(span: Span) -> dict | None:
    """{'days': N} for a window, {'date': 'YYYY-MM-DD'} for a calendar date."""
    if span.label_ == "DEADLINE_WINDOW":
        days = window_days(span)
        return {"days": days} if days else None
    date = stated_date(span)
    return {"date": date} if date else None
