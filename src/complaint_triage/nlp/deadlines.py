"""Stated response windows: 'within seven (7) days' -> 7, '72 hours' -> 3, 'by 15 March 2026' -> a date."""

from __future__ import annotations

import math
import re

from spacy.tokens import Span

NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
    "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "twenty": 20, "thirty": 30,
    "forty-five": 45, "sixty": 60, "ninety": 90,
    "ein": 1, "einem": 1, "einer": 1, "zwei": 2, "drei": 3, "vier": 4, "fünf": 5, "sieben": 7, "zehn": 10, "vierzehn": 14, "dreißig": 30,
    "un": 1, "une": 1, "deux": 2, "trois": 3, "quatre": 4, "cinq": 5, "sept": 7, "dix": 10, "quinze": 15, "trente": 30,
    "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "siete": 7, "diez": 10, "catorce": 14, "quince": 15, "treinta": 30,
    "due": 2, "tre": 3, "quattro": 4, "cinque": 5, "sette": 7, "dieci": 10, "quattordici": 14, "quindici": 15, "trenta": 30,
}
_HOURS = {"hour", "hours", "stunde", "stunden", "heure", "heures", "hora", "horas", "ora", "ore", "時"}
_WEEKS = {"week", "weeks", "woche", "wochen", "semaine", "semaines", "semana", "semanas", "settimana", "settimane", "週"}


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


def stated_date(span: Span) -> str | None:
    """A calendar date written in any of the notice languages, as ISO text; None when unreadable."""
    import dateparser  # slow to import; only a few notices state a date

    text = re.sub(r"^(by|before|until|bis|spätestens|avant|jusqu'au|antes|hasta|entro|later|d'ici)\b", "", span.text, flags=re.I)
    text = re.sub(r"(?i)\b(zum|le|del|el|il|than|no|not|on|or|am|au|de|the|close|of|business|cob|end)\b", " ", text)
    text = text.replace("年", "-").replace("月", "-").replace("日", "").rstrip("まで迄 ")
    moment = dateparser.parse(text.strip(" ,"), settings={"PREFER_DAY_OF_MONTH": "first", "DATE_ORDER": "DMY"})
    return moment.date().isoformat() if moment else None


def deadline_value(span: Span) -> dict | None:
    """{'days': N} for a window, {'date': 'YYYY-MM-DD'} for a calendar date."""
    if span.label_ == "DEADLINE_WINDOW":
        days = window_days(span)
        return {"days": days} if days else None
    date = stated_date(span)
    return {"date": date} if date else None
