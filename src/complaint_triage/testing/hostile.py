"""Generated malformed mail (Hypothesis strategies) and the property every message must keep.

Used by tests/test_hostile_mail.py and benchmarks/hostile_mail.py; needs hypothesis (the test extra).
"""

from __future__ import annotations

import base64
import json
import quopri
from functools import lru_cache

import jsonschema
from hypothesis import strategies as st

from complaint_triage.records import RawMessage, TriageRecord, shipped_schema
from complaint_triage.store import Store
from complaint_triage.testing.mail import NOTICE, build_message

CHARSETS = [
    b"utf-8",
    b"us-ascii",
    b"iso-8859-1",
    b"windows-1252",
    b"utf-16",
    b"utf-16-le",
    b"utf-32",
    b"utf-7",
    b"shift_jis",
    b"iso-2022-jp",
    b"gb2312",
    b"big5",
    b"koi8-r",
    b"x-unknown",
    b"unknown-8bit",
    b"",
    b"zlib",
    b"bz2",
    b"base64",
    b"rot13",
    b"hex",
    b"uu",
    b"idna",
    b"punycode",
    b"undefined",
    b"mbcs",
    b'"utf-8',
    b"utf-8'en'",
    b"\xff\xfe",
    b"utf-8\x00",
    b"x" * 300,
]
TRANSFER_ENCODINGS = [
    b"7bit",
    b"8bit",
    b"binary",
    b"base64",
    b"quoted-printable",
    b"x-uuencode",
    b"uuencode",
    b"x-unknown",
    b"",
    b"BASE64 ",
    b"base64; junk",
]
CONTENT_TYPES = [
    b"text/plain",
    b"text/html",
    b"text/enriched",
    b"text",
    b"application/octet-stream",
    b"application/zip",
    b"application/pdf",
    b"image/png",
    b"message/rfc822",
    b"message/delivery-status",
    b"multipart/alternative",
    b"multipart/mixed",
    b"weird/type",
    b"/",
    b"",
]
HEADER_NAMES = [
    b"From",
    b"To",
    b"Cc",
    b"Reply-To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"In-Reply-To",
    b"References",
    b"Received",
    b"Return-Path",
    b"MIME-Version",
    b"Content-Type",
    b"Content-Transfer-Encoding",
    b"Content-Disposition",
    b"Authentication-Results",
    b"List-Unsubscribe",
    b"X-Mailer",
]
LINE_ENDS = st.sampled_from([b"\r\n", b"\n", b"\r", b"\r\r\n"])


def repeated(unit: st.SearchStrategy[bytes], low: int, high: int) -> st.SearchStrategy[bytes]:
    """UNIT repeated low..high times: long inputs from few hypothesis choices."""
    return st.tuples(unit, st.integers(low, high)).map(lambda pair: pair[0] * pair[1])


def encoded_words() -> st.SearchStrategy[bytes]:
    """RFC 2047 encoded words, valid or not, in known, unknown and bytes-to-bytes charsets."""
    return st.builds(
        lambda charset, encoding, text: b"=?" + charset + b"?" + encoding + b"?" + text + b"?=",
        st.sampled_from(CHARSETS),
        st.sampled_from([b"B", b"Q", b"b", b"q", b"X", b""]),
        st.one_of(
            st.binary(max_size=30), st.sampled_from([b"////", b"QUFB", b"=00", b"=FF=FE", b"AAAA===", b"_=?"])
        ),
    )


def header_values() -> st.SearchStrategy[bytes]:
    """Header values: 8-bit bytes, encoded words, addresses, dates, and over-long runs."""
    return st.one_of(
        st.binary(max_size=60),
        st.text(max_size=60).map(lambda text: text.encode("utf-8", "surrogatepass")),
        st.lists(encoded_words(), max_size=4).map(b" ".join),
        st.sampled_from(
            [
                b"<a@b.example>",
                b"Amazon <seller-notification@amazon.com>",
                b'"\\" <@>',
                b"<<<>>>",
                b"Mon, 99 Foo 9999 99:99:99 +9999",
                b"Tue, 3 Mar 2026 10:00:00 +0100",
            ]
        ),
        repeated(encoded_words(), 200, 4000),  # one line of thousands of encoded words
        repeated(st.binary(min_size=1, max_size=8), 1000, 20000),  # an over-long header line
        repeated(
            st.sampled_from([b"a@b.example, ", b"x\r\n ", b"\r\n\t=?utf-8?q?x?= "]), 500, 20000
        ),  # long lists, deep folding
    )


def header_blocks() -> st.SearchStrategy[bytes]:
    """A header block (no blank line): known and invented names, any values, any line ends."""
    name = st.one_of(st.sampled_from(HEADER_NAMES), st.binary(max_size=20))
    field = st.tuples(name, st.sampled_from([b": ", b":", b" : ", b""]), header_values())
    return st.tuples(st.lists(field, max_size=10), LINE_ENDS).map(
        lambda drawn: b"".join(n + sep + v + drawn[1] for n, sep, v in drawn[0])
    )


def _truncated(data: bytes, cut: float) -> bytes:
    return data[: int(len(data) * cut)]


def payloads() -> st.SearchStrategy[bytes]:
    """Bodies: text, HTML, truncated or poisoned base64, broken quoted-printable, raw binary."""
    cut = st.floats(0, 1)
    text = st.text(max_size=300).map(lambda body: body.encode("utf-8", "surrogatepass"))
    return st.one_of(
        text,
        st.binary(max_size=500),
        st.builds(lambda raw, at: _truncated(base64.encodebytes(raw), at), st.binary(max_size=300), cut),
        st.builds(
            lambda raw, junk: base64.b64encode(raw)[:-1] + junk,
            st.binary(max_size=300),
            st.binary(max_size=10),
        ),
        st.builds(lambda raw, at: _truncated(quopri.encodestring(raw), at), st.binary(max_size=300), cut),
        st.sampled_from(
            [
                b"=ZZ=\r\n=",
                b"begin 644 x\r\nM9&%T80\r\n",
                b"begin 644 x\r\n`\r\n",
                b"=?utf-8?b?",
                b"\x00" * 64,
            ]
        ),
        html_bodies(),
        st.builds(lambda body, at: _truncated(body, at), st.just(NOTICE.encode()), cut),
    )


def html_bodies() -> st.SearchStrategy[bytes]:
    """Broken and hostile HTML: unclosed tags, deep nesting, entities, scripts, long attribute runs."""
    tag = st.sampled_from(
        [
            b"<div>",
            b"<table><tr><td>",
            b"<p>",
            b"</td></tr>",
            b"<b>",
            b"<br>",
            b"<script>",
            b"<style>",
            b"<!--",
            b"]]>",
            b"<![CDATA[",
            b"&#0;",
            b"&#x110000;",
            b"&amp",
            b"<td colspan=99999>",
            b"<a href='",
            b"<?xml version='1.0'?>",
            b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]>&e;",
        ]
    )
    return st.one_of(
        st.lists(st.one_of(tag, st.binary(max_size=20)), max_size=30).map(b"".join),
        repeated(tag, 100, 5000),
        st.builds(
            lambda open_tag, depth: open_tag * depth + b"ASIN B0ABCDE123", tag, st.integers(100, 20000)
        ),
    )


def leaf_parts() -> st.SearchStrategy[bytes]:
    """One MIME part: content type, charset and transfer encoding (often lying), then a payload."""
    headers = st.builds(
        lambda ctype, charset, cte, disposition, end: (
            b"Content-Type: "
            + ctype
            + (b"; charset=" + charset if charset is not None else b"")
            + end
            + (b"Content-Transfer-Encoding: " + cte + end if cte is not None else b"")
            + (b"Content-Disposition: " + disposition + end if disposition is not None else b"")
        ),
        st.sampled_from(CONTENT_TYPES),
        st.none() | st.sampled_from(CHARSETS),
        st.none() | st.sampled_from(TRANSFER_ENCODINGS),
        st.none()
        | st.sampled_from(
            [
                b'attachment; filename="=?utf-8?b?w6Q=?=.pdf"',
                b"inline",
                b"attachment; filename*=utf-8''%FF%FE",
                b"attachment; filename=" + b"x" * 5000,
            ]
        ),
        LINE_ENDS,
    )
    return st.tuples(headers, st.booleans(), payloads()).map(
        lambda drawn: drawn[0] + (b"\r\n" if drawn[1] else b"") + drawn[2]
    )


def boundaries() -> st.SearchStrategy[bytes]:
    """MIME boundaries, legal or not."""
    return st.one_of(
        st.text(alphabet="abcXYZ019'()+_,-./:=? ", min_size=1, max_size=20).map(str.encode),
        st.sampled_from([b"", b'""', b"-", b"--", b"b" * 200, b"a\r\nb", b"=_"]),
        st.binary(max_size=10),
    )


def multipart(children: st.SearchStrategy[list[bytes]]) -> st.SearchStrategy[bytes]:
    """A multipart body whose boundary may be missing, wrong, unclosed or a prefix of another."""

    def assemble(subtype, declared, used, parts, closed, preamble, epilogue, end):
        head = (
            b"Content-Type: multipart/"
            + subtype
            + (b'; boundary="' + declared + b'"' if declared is not None else b"")
            + end
            + end
        )
        body = b"".join(b"--" + used + end + part + end for part in parts)
        return head + preamble + body + (b"--" + used + b"--" + end if closed else b"") + epilogue

    return st.builds(
        assemble,
        st.sampled_from([b"mixed", b"alternative", b"related", b"digest", b"report", b"x-weird"]),
        st.none() | boundaries(),
        boundaries(),
        children,
        st.booleans(),
        st.binary(max_size=30),
        st.binary(max_size=30),
        LINE_ENDS,
    ).flatmap(
        lambda body: st.one_of(
            st.just(body),
            st.builds(lambda declared: body.replace(b"boundary=", b"boundary=" + declared[:4]), boundaries()),
        )
    )


def mime_bodies() -> st.SearchStrategy[bytes]:
    """Trees of leaf parts and broken multiparts."""
    return st.recursive(
        leaf_parts(), lambda children: multipart(st.lists(children, max_size=5)), max_leaves=12
    )


def deep_nesting() -> st.SearchStrategy[bytes]:
    """Multiparts or attached messages nested up to thousands deep."""

    def nest(kind: str, depth: int) -> bytes:
        if kind == "multipart":
            opening = b"".join(
                b'Content-Type: multipart/mixed; boundary="n%d"\r\n\r\n--n%d\r\n' % (level, level)
                for level in range(depth)
            )
            return (
                opening
                + b"Content-Type: text/plain\r\n\r\nASIN B0ABCDE123\r\n"
                + b"".join(b"--n%d--\r\n" % level for level in reversed(range(depth)))
            )
        return b"Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n" * depth + b"\r\nASIN B0ABCDE123"

    return st.builds(nest, st.sampled_from(["multipart", "rfc822"]), st.integers(1, 3000))


def many_parts() -> st.SearchStrategy[bytes]:
    """Hundreds to thousands of sibling parts, with or without the closing boundary."""
    part = st.sampled_from(
        [
            b"--B\r\nContent-Type: text/plain\r\n\r\npart\r\n",
            b'--B\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename="f.bin"\r\nContent-Transfer-Encoding: base64\r\n\r\nAAAA\r\n',
            b"--B\r\n\r\n",
            b"--B\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ny\r\n",
        ]
    )
    return st.builds(
        lambda unit, count, closed: (
            b'Content-Type: multipart/mixed; boundary="B"\r\n\r\n'
            + unit * count
            + (b"--B--\r\n" if closed else b"")
        ),
        part,
        st.integers(200, 5000),
        st.booleans(),
    )


def mutated_notices() -> st.SearchStrategy[bytes]:
    """A real notice with bytes deleted, inserted, flipped or the message cut short."""
    base = st.sampled_from(
        [
            build_message(NOTICE),
            build_message(NOTICE, html=f"<p>{NOTICE}</p>"),
            build_message(NOTICE, cte="base64"),
        ]
    )

    def mutate(raw: bytes, edits: list[tuple[float, int, bytes]]) -> bytes:
        for at, width, inserted in edits:
            where = int(len(raw) * at)
            raw = raw[:where] + inserted + raw[where + width :]
        return raw

    edit = st.tuples(st.floats(0, 1), st.integers(0, 200), st.binary(max_size=12))
    return st.builds(mutate, base, st.lists(edit, min_size=1, max_size=6))


# Most generated mail starts like mail, so that it gets past the first look and into the parser.
PLAUSIBLE_STARTS = st.sampled_from(
    [
        b"From: Amazon <seller-notification@amazon.com>\r\nSubject: Notice: Policy Warning\r\nMIME-Version: 1.0\r\n",
        b"From: legal@brand.example\nTo: ops@shop.example\nMessage-ID: <fixed@example.com>\n",
        b"Subject: x\r\n",
        b"",
    ]
)


def hostile_messages() -> st.SearchStrategy[bytes]:
    """Every kind of hostile or broken message the worker must survive."""
    blank = st.sampled_from([b"\r\n", b"\n", b"", b"\r"])
    message = st.builds(
        lambda start, headers, gap, body: start + headers + gap + body,
        PLAUSIBLE_STARTS,
        header_blocks(),
        blank,
        st.one_of(mime_bodies(), payloads()),
    )
    structure = st.builds(
        lambda start, headers, body: start + headers + body,
        PLAUSIBLE_STARTS,
        header_blocks(),
        st.one_of(deep_nesting(), many_parts()),
    )
    kinds = [
        message,
        message,
        message,
        structure,
        mutated_notices(),
        payloads(),
        st.binary(max_size=2000),
    ]  # payloads: no headers at all
    return st.sampled_from(kinds).flatmap(lambda kind: kind)


# ---------------------------------------------------------------------------------------------
# The property every message must satisfy, shared with the benchmark.
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _schema_validator():
    return jsonschema.Draft202012Validator(shipped_schema())


def check_outcome(record: TriageRecord) -> None:
    """A record or a failure with a one-line reason; valid against the schema; printable as UTF-8 JSON."""
    assert isinstance(record, TriageRecord)
    if record.error is not None:
        assert record.error.strip() and "\n" not in record.error
        assert not record.error.startswith("internal error"), (
            f"a bug, not a hostile-mail failure: {record.error}"
        )
    document = record.to_json_dict()
    json.dumps(document, ensure_ascii=False).encode("utf-8")  # `process --format jsonl` writes exactly this
    _schema_validator().validate(document)


def triage_and_store(raw: bytes, triager, stores: list[Store], source: str = "hostile") -> TriageRecord:
    """Triage RAW, check the outcome and store it in every store; the record that was kept."""
    record = triager.triage_bytes(raw, source=source, source_name="hostile")
    check_outcome(record)
    for store in stores:
        store.save(RawMessage(raw=raw, source=source, source_name="hostile"), record)
        assert store.has_message(record.message_id)
    return record
