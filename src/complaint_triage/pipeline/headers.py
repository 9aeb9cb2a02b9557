"""Headers as mail clients show them: Python's `email` policy=default decoding, raw 8-bit bytes given a charset."""

from __future__ import annotations

import email.policy
import re
from email.headerregistry import Address
from email.message import Message

from charset_normalizer import from_bytes

# Undecodable header bytes come out of Python's parser as lone surrogates U+DC80-U+DCFF (surrogateescape).
_RAW_BYTES = re.compile(r"[\udc80-\udcff]+")
# Raw bytes inside an encoded word are decoded by Python with the word's own charset: leave those to it.
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?]*\?=")
_POLICY = email.policy.default
# Enough text to tell a charset by; hostile mail has hundreds of 64 KiB headers of raw bytes.
MAX_DETECTION_SAMPLE = 65_536
# The headers a record shows; the others (Message-ID, Date, Authentication-Results) are read as they are.
CLIENT_FIELDS = {"subject", "from", "to", "cc", "reply-to"}


def client_headers(message: Message, fallback_charset: str | None = None) -> Message:
    """MESSAGE's CLIENT_FIELDS again, for policy=default to decode as clients do; raw 8-bit text given a charset first.

    One charset is guessed for all the raw header text of a message, as a client applies one fallback.
    """
    fields = [(name, value) for name, value in message.raw_items() if name.lower() in CLIENT_FIELDS]
    raw_values = [value for _name, value in fields if _RAW_BYTES.search(value)]
    charset = _raw_header_charset(raw_values, fallback_charset) if raw_values else None
    headers = Message(policy=_POLICY)
    for name, value in fields:
        headers.set_raw(
            name, _raw_text_decoded(value, charset) if charset and _RAW_BYTES.search(value) else value
        )
    return headers


def _raw_header_charset(values: list[str], fallback_charset: str | None) -> str:
    sample = "\n".join(values)
    runs = [run.encode("utf-8", "surrogateescape") for run in _RAW_BYTES.findall(sample)]
    return guess_charset(
        sample.encode("utf-8", "surrogateescape")[:MAX_DETECTION_SAMPLE], runs, fallback_charset
    )


def _raw_text_decoded(value: str, charset: str) -> str:
    """VALUE with its raw 8-bit runs outside encoded words decoded (Python would show U+FFFD or surrogates)."""
    pieces, start = [], 0
    for word in _ENCODED_WORD.finditer(value):
        pieces.append(_decoded_runs(value[start : word.start()], charset))
        pieces.append(word.group())
        start = word.end()
    pieces.append(_decoded_runs(value[start:], charset))
    return "".join(pieces)


def _decoded_runs(text: str, charset: str) -> str:
    return _RAW_BYTES.sub(
        lambda run: run.group().encode("utf-8", "surrogateescape").decode(charset, "replace"), text
    )


def header_text(headers: Message, name: str, fallback_charset: str | None = None) -> str:
    """The first NAME header as a client shows it: encoded words decoded, raw 8-bit bytes in a guessed charset."""
    try:
        value = headers.get(name)
    except Exception:  # a header Python's header classes choke on: decode its source text as unstructured
        value = _unstructured(headers, name)
    if value is None:
        return ""
    return with_raw_bytes_decoded(str(value), fallback_charset)


def header_addresses(
    headers: Message, name: str, fallback_charset: str | None = None
) -> list[tuple[str, str]]:
    """(display name, address) of every mailbox in the NAME headers, names decoded as header_text does."""
    found = []
    for value in _all_values(headers, name):
        for address in _addresses_of(value):
            display = with_raw_bytes_decoded(address.display_name or "", fallback_charset)
            spec = with_raw_bytes_decoded(address.addr_spec or "", fallback_charset)
            found.append(
                (" ".join(display.split()), "" if spec == "<>" else spec)
            )  # <> is the null sender of bounces
    return found


def with_raw_bytes_decoded(text: str, fallback_charset: str | None = None) -> str:
    """TEXT with each run of undecodable bytes decoded: UTF-8 when valid, else the message's or a guessed charset."""
    runs = _RAW_BYTES.findall(text)
    if not runs:
        return text
    octets = [run.encode("utf-8", "surrogateescape") for run in runs]
    return _decoded_runs(
        text, guess_charset(text.encode("utf-8", "surrogateescape"), octets, fallback_charset)
    )


def guess_charset(sample: bytes, runs: list[bytes], fallback_charset: str | None) -> str:
    """UTF-8 when the runs are (mostly) UTF-8, else FALLBACK_CHARSET when it decodes them, else charset-normalizer's guess."""
    if _mostly_utf8(runs):
        return "utf-8"
    if fallback_charset and _decodes(runs, fallback_charset):
        return fallback_charset
    guessed = _detected(sample)
    if guessed and _decodes(runs, guessed):
        return guessed
    return "cp1252" if _decodes(runs, "cp1252") else "latin-1"


def _detected(sample: bytes) -> str | None:
    """charset-normalizer's guess; among equally clean readings windows-1252, what clients fall back to."""
    matches = list(from_bytes(sample))
    if not matches:
        return None
    cleanest = min(match.chaos for match in matches)
    for match in matches:
        if match.chaos == cleanest and "cp1252" in match.could_be_from_charset:
            return "cp1252"
    return matches[0].encoding


def _mostly_utf8(runs: list[bytes]) -> bool:
    """Valid UTF-8 but for a damaged byte or two: a cut multi-byte character at the end of a name."""
    octets = b"".join(runs)
    damaged = octets.decode("utf-8", "replace").count("\ufffd") - octets.decode("utf-8", "ignore").count(
        "\ufffd"
    )
    return damaged == 0 or (len(octets) >= 8 and damaged * 8 <= len(octets))


def _decodes(runs: list[bytes], charset: str) -> bool:
    try:
        for run in runs:
            run.decode(charset)
    except (LookupError, UnicodeDecodeError):
        return False
    return True


def _all_values(headers: Message, name: str) -> list:
    try:
        return headers.get_all(name) or []
    except Exception:  # unparseable address header: read its source as an address list of its own
        return [_unstructured(headers, name)]


def _addresses_of(value) -> tuple[Address, ...]:
    try:
        return value.addresses
    except Exception:  # not an address header object (see _all_values): nothing Python could read
        return ()


def _unstructured(headers: Message, name: str):
    for field, source in headers.raw_items():
        if field.lower() == name.lower():
            return _POLICY.header_factory("x-unparsed", "".join(source.splitlines()))
    return None
