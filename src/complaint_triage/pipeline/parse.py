"""Raw bytes -> ParsedEmail: decoded headers, an aware Date, clean text, attachment metadata."""

from __future__ import annotations

import email.utils
import hashlib
import re
import unicodedata
from datetime import datetime, timezone
from email.message import Message
from email.parser import BytesFeedParser

from dateutil import parser as date_parser
from inscriptis import get_text

from complaint_triage.errors import ParseError
from complaint_triage.pipeline.headers import client_headers, header_addresses, header_text
from complaint_triage.records import Attachment, ParsedEmail

MAX_MESSAGE_ID_OCTETS = 998
# The standard library decodes a line of encoded words in quadratic time: a 10 MB Subject took an hour.
# Real headers stay far below (RFC 5322 lines are at most 998 octets; long To lists a few kB).
MAX_HEADER_CHARS = 65_536
# Laying out HTML costs about 1 s and 45 MB per MB of table markup; extraction reads only the first
# 200,000 characters of text anyway, and a notice's HTML is well under 200 kB.
MAX_HTML_CHARS = 2_000_000
# A forward of a forward of a notice is 2 levels; hostile mail nests message/rfc822 parts hundreds
# deep, and every unwrapped level is parsed again (154 levels took 4.7 s).
MAX_FORWARD_DEPTH = 4
# Attachments are decoded for the attachment reader up to this encoded size (base64 of about 27 MB, past
# the reader's default 25 MiB limit); a larger one stays metadata and is not held twice in memory.
MAX_DECODED_ATTACHMENT_CHARS = 36 * 1024 * 1024
_FEED_CHUNK = 65_536
_HEADER_NAMES = re.compile(
    rb"^(from|to|subject|date|message-id|received|return-path|mime-version|content-type|delivered-to|reply-to|cc)\s*:",
    re.I | re.M,
)
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_FOLDING = re.compile(r"[ \t\r\n]+")
_NOT_FORWARDS = ("multipart/report", "multipart/digest")
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|wg|tr|rv|i|enc|転送)\s*[:：]", re.I)
_QUOTE_INTRO = re.compile(
    r"^\s*(on .{4,200} wrote:|am .{4,200} schrieb .{1,200}:|le .{4,200} a écrit\s*:|el .{4,200} escribió:|il .{4,200} ha scritto:)\s*$",
    re.I,
)
_BLOCK_FIELD = re.compile(
    r"^[ \t>*]*(from|von|de|da|van|od|från|kimden|差出人|sent|date|datum|data|fecha|tarih|gesendet|envoyé|enviado el|enviada em|enviado em|enviado|inviato|verzonden|"
    r"wysłano|skickat|gönderildi|送信日時|subject|betreff|objet|asunto|oggetto|onderwerp|temat|ämne|konu|件名|assunto|"
    r"to|an|à|para|a|aan|do|till|kime|宛先|cc)\*?\s*[:：]\*?\s*(.*)$",
    re.I,
)
_BLOCK_ROLE = {
    **dict.fromkeys(("from", "von", "de", "da", "van", "od", "från", "kimden", "差出人"), "from"),
    **dict.fromkeys(
        (
            "sent",
            "date",
            "datum",
            "data",
            "fecha",
            "tarih",
            "gesendet",
            "envoyé",
            "enviado el",
            "enviada em",
            "enviado em",
            "enviado",
            "inviato",
            "verzonden",
            "wysłano",
            "skickat",
            "gönderildi",
            "送信日時",
        ),
        "date",
    ),
    **dict.fromkeys(
        (
            "subject",
            "betreff",
            "objet",
            "asunto",
            "oggetto",
            "onderwerp",
            "temat",
            "ämne",
            "konu",
            "件名",
            "assunto",
        ),
        "subject",
    ),
    **dict.fromkeys(("to", "an", "à", "para", "a", "aan", "do", "till", "kime", "宛先"), "to"),
    "cc": "cc",
}
# An Amazon sender in a forwarded or pasted header block (the senders table is classify's; this only picks the block).
_AMAZON_ADDRESS = re.compile(r"(?i)@(?:[\w-]+\.)*amazon\.(?:com\.[a-z]{2}|co\.[a-z]{2}|[a-z]{2,3})\b")


def normalise_text(text: str) -> str:
    """NFKC (full-width letters, digits, colons become ASCII), LF line ends, no invisible characters."""
    text = unicodedata.normalize("NFKC", text.replace("\r\n", "\n").replace("\r", "\n"))
    return text.translate(_INVISIBLE)


def message_identity(raw: bytes, message_id: str | None) -> str:
    """The Message-ID, else (absent or unusable) a stable hash of the raw bytes."""
    cleaned = (message_id or "").strip()
    return cleaned if usable_identity(cleaned) else "sha256:" + hashlib.sha256(raw).hexdigest()


def usable_identity(message_id: str) -> bool:
    """True when a Message-ID can serve as a store key (also checked for In-Reply-To and References)."""
    # A NUL, a lone surrogate or more than a header line's 998 octets is hostile, and the database would refuse the whole batch.
    try:
        octets = len(message_id.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    return 0 < octets <= MAX_MESSAGE_ID_OCTETS and "\x00" not in message_id


def parse_email(raw: bytes, depth: int = 0) -> ParsedEmail:
    """Parse raw RFC 5322 bytes; a forwarded notice is returned as the notice, with forwarded_by set.

    A notice attached to a forward is unwrapped MAX_FORWARD_DEPTH levels deep at most: each level is
    parsed again from its bytes, and hostile mail nests hundreds (a quadratic cost without a limit).
    """
    _check_looks_like_mail(raw)
    # The standard library's parse, as mail-parser made it, but read directly: mail-parser's own pass over
    # it raised on real mail (an AttributeError on nested multiparts) and decoded headers unlike clients do.
    try:
        message = bound_headers(message_from_bytes(raw))
    except Exception as exc:  # the feed parser records defects instead of raising; this is a last guard
        raise ParseError(f"cannot parse message: {type(exc).__name__}: {exc}") from exc
    parsed = _parsed_from_message(message, raw)
    inner = _attached_notice(message, parsed.subject) if depth < MAX_FORWARD_DEPTH else None
    if inner is not None:
        return _as_forward(inner, parsed, depth + 1)
    return _unwrap_inline_forward(parsed)


def message_from_bytes(raw: bytes) -> Message:
    """The standard library's parse (as mail-parser does it), fed in chunks: a third of the peak memory."""
    # Fed whole, the parser holds the decoded text and a list of all its lines at once: 7.8x a 67 MB message.
    parser = BytesFeedParser()
    for start in range(0, len(raw), _FEED_CHUNK):
        parser.feed(raw[start : start + _FEED_CHUNK])
    return parser.close()


def bound_headers(message: Message) -> Message:
    """Cut every header value of every part to MAX_HEADER_CHARS, in place; normal mail is untouched."""
    for part in message.walk():
        fields = list(part.raw_items())
        if all(len(value) <= MAX_HEADER_CHARS for _name, value in fields):
            continue
        for name in {name for name, _value in fields}:
            del part[name]
        for name, value in fields:
            part.set_raw(name, _cut_header(value))
    return message


def _cut_header(value: str) -> str:
    """The first MAX_HEADER_CHARS of a header value, cut at white space so that no encoded word is left half."""
    if len(value) <= MAX_HEADER_CHARS:
        return value
    cut = value[:MAX_HEADER_CHARS]
    space = max(cut.rfind(" "), cut.rfind("\t"), cut.rfind("\n"))
    return cut[:space].rstrip() if space > MAX_HEADER_CHARS - 1000 else cut


def _check_looks_like_mail(raw: bytes) -> None:
    if not raw or not raw.strip():
        raise ParseError("empty message")
    if not has_mail_headers(raw):
        raise ParseError("not an email message: no mail headers found")


def has_mail_headers(raw: bytes) -> bool:
    """True when the header block (in the first 64 KiB) has a mail header such as From, Subject or Received."""
    head = raw[:65536].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    return _HEADER_NAMES.search(head) is not None


def _declared_charset(message: Message) -> str | None:
    """The first charset the message declares: what a client assumes for raw 8-bit header bytes."""
    for part in message.walk():
        charset = part.get_content_charset()
        if charset and charset not in ("us-ascii", "ascii"):
            return charset
    return None


def _parsed_from_message(message: Message, raw: bytes) -> ParsedEmail:
    charset = _declared_charset(message)
    headers = client_headers(message, charset)
    plain_parts, html_parts = text_parts(message)
    plain, html = "\n".join(plain_parts), "\n".join(html_parts)
    body = plain if plain.strip() else html_to_text(html)
    body_text, quoted_text = split_quoted(normalise_text(body))
    name, address = _first_address(header_addresses(headers, "From", charset))
    return ParsedEmail(
        message_id=message_identity(raw, _header(message, "Message-ID")),
        subject=_FOLDING.sub(
            " ", header_text(headers, "Subject", charset)
        ).strip(),  # as shown: NFKC is for matching only
        from_name=name,
        from_address=address,
        to_addresses=_addresses(header_addresses(headers, "To", charset)),
        cc_addresses=_addresses(header_addresses(headers, "Cc", charset)),
        reply_to=_addresses(header_addresses(headers, "Reply-To", charset)),
        date=parse_date_header(_header(message, "Date")),
        body_text=body_text,
        quoted_text=quoted_text,
        html_only=not plain.strip() and bool(html.strip()),
        attachments=_attachments(message),
        authentication_results=[str(value) for value in message.get_all("Authentication-Results", [])],
        list_unsubscribe=message.get("List-Unsubscribe") is not None,
        in_reply_to=_header(message, "In-Reply-To"),
        references=(_header(message, "References") or "").split(),
    )


def _own_parts(message: Message):
    """The message's leaf parts, not descending into attached messages (those are triaged on their own)."""
    if message.get_content_maintype() == "message":
        return
    if message.is_multipart():
        for part in message.get_payload() or []:
            if isinstance(part, Message):
                yield from _own_parts(part)
    else:
        yield message


def decode_part(part: Message) -> str:
    """A text part's payload as str: transfer encoding undone, declared charset tried, never raising."""
    payload = part.get_payload(decode=True) or b""
    for charset in (part.get_content_charset(), "utf-8", "cp1252"):
        if not charset:
            continue
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    return payload.decode("utf-8", errors="replace")


def text_parts(message: Message) -> tuple[list[str], list[str]]:
    """The inline text/plain and text/html bodies of a message, decoded."""
    plain, html = [], []
    for part in _own_parts(message):
        if "attachment" in (_header(part, "Content-Disposition") or "").lower():
            continue
        if part.get_content_type() == "text/plain":
            plain.append(decode_part(part))
        elif part.get_content_type() == "text/html":
            html.append(decode_part(part))
    return plain, html


def _header(message: Message, name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    try:
        return str(value).strip()
    except Exception:  # undecodable header bytes
        return None


def _first_address(pairs) -> tuple[str, str]:
    for name, address in pairs or []:
        if address or name:
            return (name or "").strip(), (address or "").strip().lower()
    return "", ""


def _addresses(pairs) -> list[str]:
    return [address.strip().lower() for _name, address in pairs or [] if address and "@" in address]


def parse_date_header(value: str | None) -> datetime | None:
    """RFC 5322 Date -> aware datetime (a zone-less date is taken as UTC); None when absent or broken."""
    if not value:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        moment = _loose_date(value)
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _loose_date(value: str) -> datetime | None:
    """Dates written by mail clients in forwarded headers ('Mon, Mar 2, 2026 at 10:14 AM')."""
    try:
        return date_parser.parse(value.replace(" at ", " "), fuzzy=True)
    except (ValueError, OverflowError):
        return None


def html_to_text(html: str) -> str:
    """HTML to readable text, tables laid out as rows (inscriptis); only the first MAX_HTML_CHARS of markup."""
    if not html.strip():
        return ""
    html = html[:MAX_HTML_CHARS]
    try:
        return get_text(html)
    except Exception:  # inscriptis or lxml choking on hostile markup
        return re.sub(r"<[^>]+>", " ", html)


def split_quoted(text: str) -> tuple[str, str]:
    """Separate the author's own lines from '>'-quoted lines (quote marks removed, intro line kept with the quote)."""
    own, quoted = [], []
    for line in text.split("\n"):
        stripped = line.lstrip()
        if stripped.startswith(">"):
            quoted.append(re.sub(r"^(\s*>)+ ?", "", line))
        elif _QUOTE_INTRO.match(line):
            quoted.append(
                line.strip()
            )  # 'On ... <notice-dispute@amazon.com> wrote:' tells whose notice is quoted
        else:
            own.append(line)
    return "\n".join(own).strip(), "\n".join(quoted).strip()


def _attachments(message: Message) -> list[Attachment]:
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        disposition = (_header(part, "Content-Disposition") or "").lower()
        filename = _safe_filename(part)
        if (
            "attachment" not in disposition
            and not filename
            and part.get_content_maintype() in ("text", "message")
        ):
            continue
        payload = part.get_payload(decode=False)
        size = len(payload) if isinstance(payload, (str, bytes)) else 0
        content = _decoded_payload(part) if size <= MAX_DECODED_ATTACHMENT_CHARS else b""
        found.append(
            Attachment(filename=filename, content_type=part.get_content_type(), size=size, content=content)
        )
    return found


def _decoded_payload(part: Message) -> bytes:
    """The attachment's bytes with the transfer encoding undone; empty when they cannot be had."""
    try:
        payload = part.get_payload(decode=True)
    except Exception:  # a broken transfer encoding: the attachment stays metadata
        return b""
    return payload if isinstance(payload, bytes) else b""


def _safe_filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except Exception:
        return None
    return normalise_text(str(name)) if name else None


def _attached_notice(message: Message, subject: str) -> bytes | None:
    """The bytes of the message a person forwarded as an attachment ('Fwd:' subject), else None.

    Bounces (multipart/report), feedback reports, digests and mail that merely attaches a message
    are triaged as themselves: a bounce of a notice is not the notice.
    """
    if not _FORWARD_SUBJECT.match(subject) or message.get_content_type() in _NOT_FORWARDS:
        return None
    for part in _forward_candidates(message):
        payload = part.get_payload()
        inner = payload[0] if isinstance(payload, list) and payload else None
        if isinstance(inner, Message):
            try:
                return inner.as_bytes()
            except Exception:
                return None
    return None


def _forward_candidates(message: Message):
    """The message/rfc822 parts at the top of a forward: the message itself or a direct part of its multipart."""
    if message.get_content_type() == "message/rfc822":
        yield message
    elif message.get_content_type() == "multipart/mixed":
        for part in message.get_payload() or []:
            if isinstance(part, Message) and part.get_content_type() == "message/rfc822":
                yield part


def _as_forward(inner_raw: bytes, outer: ParsedEmail, depth: int) -> ParsedEmail:
    try:
        inner = parse_email(inner_raw, depth)
    except ParseError:
        return outer
    return inner.model_copy(update=_forward_update(outer, inner.date))


def _forward_update(outer: ParsedEmail, notice_date: datetime | None) -> dict:
    return {
        "message_id": outer.message_id,
        "date": outer.date,
        "notice_date": notice_date or outer.date,
        "forwarded_by": outer.from_address or outer.from_name or None,
        "to_addresses": outer.to_addresses,
        "authentication_results": [],
        "in_reply_to": outer.in_reply_to,
        "references": outer.references,
    }


def _unwrap_inline_forward(parsed: ParsedEmail) -> ParsedEmail:
    """A forward (any client's header block, with or without a separator line), or a pasted Amazon notice, is triaged as the notice.

    The innermost header block is the original. Without a forward subject, only a block sent by Amazon
    is unwrapped: a reply to a rights owner's letter stays the seller's reply.
    """
    text = parsed.body_text
    blocks = header_blocks(text)
    if not blocks:
        return parsed
    block = blocks[-1]
    sender = block.fields.get("from", "")
    if not (_FORWARD_SUBJECT.match(parsed.subject) or _AMAZON_ADDRESS.search(sender)):
        return parsed
    name, address = next(iter(_address_pairs(sender)), ("", ""))
    update = _forward_update(parsed, _loose_date(block.fields["date"]) if block.fields.get("date") else None)
    envelope = (
        [a for earlier in blocks[:-1] for a in earlier.addresses] + block.recipients + [parsed.from_address]
    )
    update.update(
        subject=block.fields.get("subject") or _FORWARD_SUBJECT.sub("", parsed.subject).strip(),
        from_name=name or parsed.from_name,
        from_address=(address or "").lower() or parsed.from_address,
        body_text=text[block.end :].strip(),
        quoted_text="\n".join(filter(None, [parsed.quoted_text, text[: blocks[0].start].strip()])),
        to_addresses=list(dict.fromkeys(block.recipients + parsed.to_addresses)),
        cc_addresses=list(
            dict.fromkeys(parsed.cc_addresses + [a for a in envelope if a and a != (address or "").lower()])
        ),
    )
    if update["notice_date"] and update["notice_date"].tzinfo is None:
        update["notice_date"] = update["notice_date"].replace(
            tzinfo=(parsed.date.tzinfo if parsed.date else timezone.utc)
        )
    return parsed.model_copy(update=update)


class HeaderBlock:
    """One 'From: / Sent: / To: / Subject:' block a mail client wrote above a forwarded or quoted message."""

    def __init__(self, start: int):
        self.start, self.end = start, start
        self.fields: dict[str, str] = {}
        self.recipients: list[str] = []

    @property
    def addresses(self) -> list[str]:
        """Every address the block names (sender and recipients)."""
        return [
            a.lower() for _, a in _address_pairs(self.fields.get("from", "")) if "@" in a
        ] + self.recipients

    def add(self, role: str, value: str) -> None:
        if role in ("to", "cc"):
            self.recipients += [a.lower() for _, a in _address_pairs(value) if "@" in a]
        elif role not in self.fields:
            self.fields[role] = value.strip()

    @property
    def complete(self) -> bool:
        """A sender and at least one more field: a real header block, not a 'From:' in prose."""
        return (
            bool(self.fields.get("from"))
            and len(set(self.fields) | ({"to"} if self.recipients else set())) >= 2
        )


def header_blocks(text: str) -> list[HeaderBlock]:
    """The forwarded or quoted header blocks of a body, top to bottom (a separator line before one is skipped)."""
    blocks: list[HeaderBlock] = []
    current: HeaderBlock | None = None
    last_role = None
    offset = 0
    for line in text.split("\n"):
        match = _BLOCK_FIELD.match(line)
        role = _BLOCK_ROLE.get(match.group(1).lower()) if match else None
        if role:
            if current is None or (role in current.fields and role != "to"):
                current = _close(blocks, current, offset)
                current = HeaderBlock(offset)
            current.add(role, match.group(2))
            last_role = role
        elif (
            current is not None
            and line.strip()
            and last_role in ("subject", "to", "cc")
            and len(line) < 120
            and not current.complete
        ):
            current.fields[last_role] = (
                current.fields.get(last_role, "") + " " + line.strip()
            )  # a wrapped header line
        elif current is not None:
            current = _close(blocks, current, offset)
            last_role = None
        offset += len(line) + 1
    _close(blocks, current, offset)
    return blocks


def _close(blocks: list[HeaderBlock], block: HeaderBlock | None, offset: int) -> None:
    if block is not None and block.complete:
        block.end = offset
        blocks.append(block)
    return None


_ADDR_SPEC = re.compile(r"[\w.+'-]+@[\w-]+(?:\.[\w-]+)+")


def _address_pairs(value: str) -> list[tuple[str, str]]:
    """(name, address) pairs of a header-like line of text; hostile nesting gives the bare addresses.

    The standard library's address parser recurses once per nested comment: a pasted line of a
    thousand "(" would end the whole message's triage with a RecursionError.
    """
    try:
        return email.utils.getaddresses([value])
    except RecursionError:
        return [("", address) for address in _ADDR_SPEC.findall(value)]
