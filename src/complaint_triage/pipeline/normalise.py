"""Canonical forms of identifiers, as the record schema spells them."""

from __future__ import annotations

import re

_ASIN_IN_URL = re.compile(r"(?i)/(?:dp|gp/product|o/asin)/([A-Z0-9]{10})")
_COPYRIGHT = re.compile(r"(?i)^(TXU|VAU|PAU|SRU|TX|VA|PA|SR|SE|RE)[\s-]*([\d-]+)$")
_JP_NUMBER = re.compile(r"(\d{7})")


def isbn10_ok(value: str) -> bool:
    """ISBN-10 checksum: weights 10..1, sum divisible by 11 (a book's ASIN is its ISBN-10)."""
    if not re.fullmatch(r"\d{9}[\dX]", value):
        return False
    digits = [10 if char == "X" else int(char) for char in value]
    return sum(weight * digit for weight, digit in zip(range(10, 0, -1), digits)) % 11 == 0


def asin(text: str) -> str | None:
    """An ASIN from a token or a product URL, upper-case; None when it does not look like one."""
    match = _ASIN_IN_URL.search(text)
    value = (match.group(1) if match else text).upper()
    if re.fullmatch(r"B[0-9A-Z]{9}", value) and re.search(r"\d", value[1:]):
        return value
    return value if isbn10_ok(value) else None


def digits_only(text: str) -> str:
    """Keep the digits: '#16509328131' -> '16509328131'."""
    return re.sub(r"\D", "", text)


def registration_number(label: str, text: str) -> str:
    """Trademark numbers as letters and digits only: '6,123,456' -> '6123456', 'UK00003123456'."""
    if label == "VAL_JP_TM":
        match = _JP_NUMBER.search(text)
        return match.group(1) if match else digits_only(text)
    if label == "VAL_DPMA":
        return digits_only(text.split(".")[0]) if re.search(r"\.\d$", text) else digits_only(text)
    return re.sub(r"[^0-9A-Za-z]", "", text).upper()


def patent_number(label: str, text: str) -> str | None:
    """Patents as 'US11234567', 'USD987654', 'USRE12345', 'US20230123456', 'EP3456789'."""
    compact = re.sub(r"[\s,./]", "", text).upper()
    compact = re.sub(r"^U\.?S\.?", "US", compact)
    if label == "VAL_EP_PATENT":
        match = re.match(r"EP(\d{7})", compact)
        return f"EP{match.group(1)}" if match else None
    if label == "VAL_JP_PATENT":
        match = _JP_NUMBER.search(text)
        return f"JP{match.group(1)}" if match else None
    if label in {"VAL_US_DESIGN", "VAL_DESIGN_BARE"}:
        match = re.search(r"D(?:ES)?(\d{6,7})", compact)
        return f"USD{match.group(1)}" if match else None
    if label == "VAL_US_REISSUE":
        match = re.search(r"RE(\d{5,6})", compact)
        return f"USRE{match.group(1)}" if match else None
    if label == "VAL_US_PUBLICATION":
        match = re.search(r"(20\d{2})(\d{7})", compact)
        return f"US{match.group(1)}{match.group(2)}" if match else None
    match = re.search(r"(\d{7,8})", compact)
    return f"US{match.group(1)}" if match else None


def copyright_registration(text: str) -> str | None:
    """US copyright registrations in 12-character canonical form: 'VA 1-234-567' -> 'VA0001234567'."""
    match = _COPYRIGHT.match(text.strip())
    if not match:
        return None
    prefix, digits = match.group(1).upper(), digits_only(match.group(2))
    width = 12 - len(prefix)
    return prefix + digits.zfill(width) if len(digits) <= width else None


def marketplace(text: str) -> str | None:
    """'https://www.Amazon.de/dp/...' -> 'amazon.de'."""
    match = re.search(
        r"(?i)amazon\.(com\.mx|com\.br|com\.be|com\.tr|com\.au|co\.uk|co\.jp|co\.za|com|ca|de|fr|it|es|nl|se|pl|ae|sa|in|sg|eg|ie)\b",
        text,
    )
    return f"amazon.{match.group(1).lower()}" if match else None


def mark_name(text: str) -> str:
    """A trademark as written, without quotes, ® or ™ and surrounding punctuation."""
    cleaned = re.sub(r"[®™℠\"“”„«»‚‘’「」『』]", "", text)
    return re.sub(r"\s+", " ", cleaned).strip(" \t'.,;:-–—()[]")
