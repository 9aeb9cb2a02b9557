"""Attached PDF and DOCX letters are read in a sandboxed child process; hostile files end as 'unreadable' records."""

from __future__ import annotations

import io
import json
import os
import signal
import time
import zipfile

import pytest

from complaint_triage.attachments.sandbox import SandboxedReader
from complaint_triage.attachments.sniff import sniff_type
from complaint_triage.pipeline.parse import parse_email
from complaint_triage.pipeline.triage import ATTACHMENT_MARKER, Triager
from complaint_triage.settings import AttachmentSettings, load_settings
from complaint_triage.testing.attachment_files import (
    APEX_AGREEMENT,
    CD_LETTER_DE,
    CD_LETTER_EN,
    billion_laughs_docx,
    document_xml,
    docx_bytes,
    docx_from_document,
    docx_zip_bomb,
    encrypted_pdf,
    mail_with_attachment,
    pdf_bytes,
    pdf_decompression_bomb,
    pdf_reference_loop,
    scanned_pdf,
)
from tests.conftest import require_service

LIMITS = AttachmentSettings()
BOUND_SECONDS = LIMITS.timeout_seconds + 5  # the wall-clock limit plus the cost of replacing the child
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@pytest.fixture(scope="module")
def reader():
    """One sandboxed reader with the default limits, its child re-used across the tests."""
    sandbox = SandboxedReader(LIMITS)
    yield sandbox
    sandbox.close()


@pytest.fixture(scope="module")
def attachment_triager(triager, reader):
    """The shipped pipeline with the module's reader injected."""
    return Triager(triager.nlp, triager.tables, "UTC", reader)


def vm_rss_kib() -> int:
    """This process's resident set size from /proc/self/status."""
    require_service(os.path.exists("/proc/self/status"), "/proc")
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


# -- letters are read --------------------------------------------------------------------------

LETTERS = {
    "en.pdf": (lambda: pdf_bytes([CD_LETTER_EN]), "pdf", "within seven (7) days"),
    "de.pdf": (lambda: pdf_bytes([CD_LETTER_DE]), "pdf", "strafbewehrte Unterlassungserklärung"),
    "en.docx": (lambda: docx_bytes(CD_LETTER_EN), "docx", "within seven (7) days"),
    "de.docx": (lambda: docx_bytes(CD_LETTER_DE), "docx", "Markenrechtsverletzung gemäß Art. 9 UMV"),
    "apex.pdf": (
        lambda: pdf_bytes([APEX_AGREEMENT, "Exhibit 2: Seller-Supplied Information"]),
        "pdf",
        "U.S. Patent No. 11,906,218",
    ),
}


@pytest.mark.parametrize("name", sorted(LETTERS))
def test_letters_are_read(reader, name):
    build, kind, phrase = LETTERS[name]
    extraction = reader.read_one(build())
    assert (extraction.type, extraction.status, extraction.reason) == (kind, "read", None)
    assert phrase in " ".join(extraction.text.split())
    assert extraction.pages == (2 if name == "apex.pdf" else 1 if kind == "pdf" else None)


def test_type_is_sniffed_from_the_bytes_not_the_name(attachment_triager):
    ole = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600
    raw = mail_with_attachment(
        "Please see the attached letters.",
        [
            ("letter.docx", "application/msword", pdf_bytes([CD_LETTER_EN])),
            ("scan.pdf", PDF, b"\x89PNG\r\n\x1a\n" + b"\x00" * 64),
            ("old.doc", "application/msword", ole),
        ],
    )
    entries = attachment_triager.triage_bytes(raw).attachments
    assert [(e.name, e.type, e.status) for e in entries] == [
        ("letter.docx", "pdf", "read"),
        ("scan.pdf", "image", "skipped"),
        ("old.doc", "doc", "skipped"),
    ]
    assert entries[2].reason == "doc attachments are not read"


def test_a_zip_that_is_not_a_word_document_is_skipped(reader):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("invoice.csv", "a,b\n1,2\n")
    extraction = reader.read_one(out.getvalue())
    assert (extraction.type, extraction.status) == ("zip", "skipped")


# -- hostile files -----------------------------------------------------------------------------

HOSTILE = {
    "docx zip bomb (300 MB of XML)": (lambda: docx_zip_bomb(300), "docx", "over a zip limit"),
    "billion laughs": (billion_laughs_docx, "docx", "DTD"),
    "pdf decompression bomb (300 MB stream)": (
        lambda: pdf_decompression_bomb(300),
        "pdf",
        "decompression limit",
    ),
    "pdf reference loop": (pdf_reference_loop, "pdf", "cyclic"),
    "encrypted pdf": (lambda: encrypted_pdf(CD_LETTER_EN), "pdf", "encrypted"),
    "truncated pdf": (lambda: pdf_bytes([CD_LETTER_EN])[:400], "pdf", "corrupt"),
    "truncated docx": (lambda: docx_bytes(CD_LETTER_EN)[:500], "zip", "corrupt zip"),
    "scanned pdf": (scanned_pdf, "pdf", "no text layer"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_attachment_is_unreadable_in_bounded_time_and_memory(reader, name):
    build, kind, reason = HOSTILE[name]
    data = build()
    started = time.monotonic()
    extraction = reader.read_one(data)
    assert time.monotonic() - started < BOUND_SECONDS
    assert (extraction.type, extraction.status) == (kind, "unreadable")
    assert reason in extraction.reason
    assert reader.last_reply["peak_kib"] < LIMITS.memory_mb * 1024


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_attachment_gets_a_record_with_a_check(attachment_triager, name):
    build, kind, _reason = HOSTILE[name]
    raw = mail_with_attachment(
        "Please see the attached letter.", [("letter.bin", "application/octet-stream", build())]
    )
    record = attachment_triager.triage_bytes(raw)
    assert record.error is None
    assert [(e.type, e.status) for e in record.attachments] == [(kind, "unreadable")]
    assert [c.code for c in record.checks if c.severity == "warning"] == ["attachment_unreadable"]
    assert any(step.startswith("Open the attachment") for step in record.next_steps)


def test_zip_limits_are_checked_before_inflating(reader):
    many = io.BytesIO()
    with zipfile.ZipFile(many, "w") as archive:
        for number in range(LIMITS.max_zip_members + 1):
            archive.writestr(f"word/media/{number}.txt", "x")
    assert "zip members" in reader.read_one(many.getvalue()).reason
    ratio = reader.read_one(docx_zip_bomb(40))  # 40 MB: under the declared-size limits, over the ratio
    assert "compresses" in ratio.reason and ratio.status == "unreadable"


def test_declared_document_size_limit():
    small = SandboxedReader(AttachmentSettings(max_document_bytes=2048, max_compression_ratio=10_000))
    try:
        extraction = small.read_one(docx_bytes(CD_LETTER_EN * 5))
    finally:
        small.close()
    assert extraction.status == "unreadable" and "word/document.xml declares" in extraction.reason


def test_unsafe_zip_compression_is_not_inflated(reader):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_BZIP2) as archive:
        archive.writestr("word/document.xml", document_xml(CD_LETTER_EN))
    extraction = reader.read_one(out.getvalue())
    assert extraction.status == "unreadable" and "compression method 12" in extraction.reason


def test_a_blank_pdf_is_read_with_no_text(reader):
    extraction = reader.read_one(pdf_bytes([""]))
    assert (extraction.status, extraction.chars, extraction.reason) == ("read", 0, "no text on its pages")


def test_an_owner_password_only_pdf_is_read(reader):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([CD_LETTER_EN]))))
    writer.encrypt(user_password="", owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    assert reader.read_one(out.getvalue()).status == "read"


# -- page and character caps -------------------------------------------------------------------


def test_pages_past_the_cap_are_not_read(reader):
    pages = [f"Page {number} of the letter." for number in range(1, LIMITS.max_pages + 11)]
    extraction = reader.read_one(pdf_bytes(pages))
    assert (extraction.status, extraction.pages) == ("truncated", LIMITS.max_pages + 10)
    assert (
        f"Page {LIMITS.max_pages} of" in extraction.text
        and f"Page {LIMITS.max_pages + 1} of" not in extraction.text
    )
    assert extraction.reason == f"first {LIMITS.max_pages} of {LIMITS.max_pages + 10} pages read"


@pytest.mark.parametrize("build", [lambda text: pdf_bytes([text]), docx_bytes], ids=["pdf", "docx"])
def test_characters_past_the_cap_are_cut(build):
    capped = SandboxedReader(AttachmentSettings(max_chars=300))
    try:
        extraction = capped.read_one(build(CD_LETTER_EN))
    finally:
        capped.close()
    assert (extraction.status, extraction.chars) == ("truncated", 300)
    assert extraction.reason == "first 300 characters kept"


# -- the child process -------------------------------------------------------------------------


def test_a_timed_out_extraction_is_unreadable_and_the_next_one_is_read():
    # pypdf's stream limit raised: inflating and parsing 300 MB of operators takes seconds, a short letter milliseconds.
    hasty = SandboxedReader(AttachmentSettings(timeout_seconds=0.5, max_stream_bytes=1 << 30, memory_mb=4096))
    try:
        started = time.monotonic()
        slow = hasty.read_one(pdf_decompression_bomb(300))
        assert time.monotonic() - started < 5
        pid = hasty._child.process.pid if hasty._child else None
        assert (slow.status, slow.reason) == ("unreadable", "timed out after 0.5 s")
        assert pid is None  # the child that overran was killed
        letter = hasty.read_one(pdf_bytes(["Short."]))  # a fresh child reads within the limit
    finally:
        hasty.close()
    assert letter.status == "read"


def test_the_cpu_limit_stops_an_extraction():
    # The wall clock is generous here: RLIMIT_CPU (SIGXCPU to the child) is what ends the bomb's parse.
    bounded = SandboxedReader(
        AttachmentSettings(cpu_seconds=1, timeout_seconds=300, max_stream_bytes=1 << 30, memory_mb=4096)
    )
    try:
        extraction = bounded.read_one(pdf_decompression_bomb(300))
        after = bounded.read_one(pdf_bytes(["Next."]))
    finally:
        bounded.close()
    assert (extraction.status, extraction.reason) == ("unreadable", "over the CPU limit")
    assert after.text == "Next."


def test_a_child_killed_while_idle_is_replaced(reader):
    reader.read_one(pdf_bytes(["Before."]))
    os.kill(reader._child.process.pid, signal.SIGKILL)
    reader._child.process.wait()
    assert reader.read_one(pdf_bytes(["After."])).text == "After."


def test_the_memory_limit_stops_an_extraction():
    # pypdf's own limit raised past the address-space limit: RLIMIT_AS is what stops the inflation.
    tight = SandboxedReader(AttachmentSettings(memory_mb=200, max_stream_bytes=1 << 30))
    try:
        extraction = tight.read_one(pdf_decompression_bomb(300))
        after = tight.read_one(pdf_bytes(["Still reading."]))
    finally:
        tight.close()
    assert extraction.status == "unreadable"
    assert "memory" in extraction.reason
    assert after.status == "read"


def test_rss_stays_flat_over_many_extractions(reader):
    files = [build() for build, _kind, _phrase in LETTERS.values()] + [
        build() for build, _kind, _reason in HOSTILE.values()
    ]
    for data in files:  # warm up: the child started, the parser's caches filled
        reader.read_one(data)
    before = vm_rss_kib()
    child_rss = []
    for _round in range(15):
        for data in files:
            reader.read_one(data)
            child_rss.append(reader.last_reply["rss_kib"])
    grown = vm_rss_kib() - before
    assert grown < 4096, f"this process grew {grown} KiB over {15 * len(files)} extractions"
    assert max(child_rss) < LIMITS.recycle_rss_mb * 1024


def test_a_child_that_grew_past_the_recycle_size_is_replaced():
    recycling = SandboxedReader(
        AttachmentSettings(recycle_rss_mb=32)
    )  # below an idle child's ~40 MB: replaced every time
    try:
        pids = []
        for _ in range(3):
            assert recycling.read_one(pdf_bytes(["Again."])).status == "read"
            pids.append(recycling._child)
    finally:
        recycling.close()
    assert pids == [None, None, None] and recycling.last_reply["rss_kib"] > 32 * 1024


# -- triage: the letter's text decides -----------------------------------------------------------

COVERING = "Dear Sir or Madam,\n\nplease see the attached letter.\n\nHarriet Vance"


@pytest.mark.parametrize(
    "attachment",
    [
        ("Brightfern CD Letter.pdf", PDF, lambda: pdf_bytes([CD_LETTER_EN])),
        ("Brightfern CD Letter.docx", DOCX, lambda: docx_bytes(CD_LETTER_EN)),
    ],
    ids=["pdf", "docx"],
)
def test_cease_and_desist_in_an_attached_letter(attachment_triager, attachment):
    name, content_type, build = attachment
    record = attachment_triager.triage_bytes(
        mail_with_attachment(
            COVERING, [(name, content_type, build())], subject="Our client Brightfern Outdoors"
        )
    )
    assert (record.kind, record.urgency, record.deadline_days) == ("cease_and_desist", "critical", 7)
    assert record.is_complaint and "trademark" in record.claim_types
    assert "B0CL4T7Q2N" in record.asins
    assert record.attachments[0].model_dump() == {
        "name": name,
        "type": name.rsplit(".", 1)[1],
        "size": len(build()),
        "pages": 1 if name.endswith(".pdf") else None,
        "chars": record.attachments[0].chars,
        "status": "read",
        "reason": None,
    }
    assert record.attachments[0].chars > 500
    assert not record.needs_review


def test_german_abmahnung_in_an_attached_docx(attachment_triager):
    raw = mail_with_attachment(
        "Sehr geehrte Damen und Herren,\n\nanbei unser Schreiben.",
        [("Abmahnung.docx", DOCX, docx_bytes(CD_LETTER_DE))],
        sender="Dr. Katrin Seidel <kanzlei@brandt-seidel-recht.de>",
        subject="FJELLHUS",
    )
    record = attachment_triager.triage_bytes(raw)
    assert (record.kind, record.deadline_days, record.urgency) == ("cease_and_desist", 7, "critical")
    assert record.marketplace == "amazon.de"


def test_the_same_mail_without_reading_is_not_a_complaint(triager):
    unread = Triager(triager.nlp, triager.tables, "UTC", SandboxedReader(AttachmentSettings(read=False)))
    record = unread.triage_bytes(
        mail_with_attachment(COVERING, [("letter.pdf", PDF, pdf_bytes([CD_LETTER_EN]))])
    )
    assert (record.kind, record.urgency) == ("other", "low")
    assert (record.attachments[0].status, record.attachments[0].reason) == (
        "skipped",
        "attachment reading is off",
    )


def test_apex_agreement_attached_to_amazons_mail(attachment_triager):
    body = "Hello,\n\nA patent owner has started an Amazon Patent Evaluation Express (APEX) evaluation. Please find the agreement attached.\n\nAmazon"
    raw = mail_with_attachment(
        body,
        [("APEX Agreement.pdf", PDF, pdf_bytes([APEX_AGREEMENT]))],
        sender="Amazon Patent Evaluation Express <patent-evaluation@amazon.com>",
        subject="APEX",
        message_id="<apex-1@amazon.com>",
    )
    record = attachment_triager.triage_bytes(raw)
    assert record.kind == "patent_evaluation"
    assert record.patent_numbers == ["US11906218"]
    assert record.attachments[0].status == "read"


def test_unreadable_letter_to_a_legal_demand_needs_review(attachment_triager):
    body = "Dear Sir or Madam,\n\nplease see the attached letter on behalf of our client Brightfern Outdoors.\n\nHarriet Vance"
    record = attachment_triager.triage_bytes(
        mail_with_attachment(body, [("CD Letter.pdf", PDF, encrypted_pdf(CD_LETTER_EN))])
    )
    assert record.needs_review
    assert record.review_reasons == [
        "The mail looks like a legal demand or a notice, but its attachment CD Letter.pdf (encrypted: a password is needed) could not be read: open it by hand."
    ]
    assert record.urgency in ("medium", "high", "critical")
    assert record.checks[-1].model_dump() == {
        "code": "attachment_unreadable",
        "severity": "warning",
        "message": "Could not read the attachment CD Letter.pdf (encrypted: a password is needed).",
    }


def test_unreadable_attachment_to_a_plain_mail_is_checked_but_not_reviewed(attachment_triager):
    record = attachment_triager.triage_bytes(
        mail_with_attachment("Hi, the photos from Sunday.", [("photos.pdf", PDF, pdf_reference_loop())])
    )
    assert [c.code for c in record.checks] == ["attachment_unreadable"]
    assert not record.needs_review and record.review_reasons == []
    assert record.urgency == "low"


def test_attachment_text_sits_between_own_and_quoted_text(reader):
    body = "See the attached letter.\n\nOn Mon, 2 Mar 2026 at 10:00, Buyer <b@example.com> wrote:\n> Where is my order?"
    parsed = parse_email(mail_with_attachment(body, [("letter.pdf", PDF, pdf_bytes([CD_LETTER_EN]))]))
    from complaint_triage.pipeline.triage import with_attachment_text

    merged = with_attachment_text(parsed, reader(parsed.attachments))
    assert merged.body_text == "See the attached letter." and "Where is my order?" in merged.quoted_text
    assert merged.attachment_text.startswith(
        ATTACHMENT_MARKER.format(index=1, type="pdf") + "\nVANCE & WHITLOCK LLP"
    )
    full = merged.full_text
    assert full.index("See the attached") < full.index("VANCE & WHITLOCK") < full.index("Where is my order?")


def test_an_inline_forward_with_an_attached_letter_is_still_unwrapped(attachment_triager):
    body = (
        "FYI, see below.\n\n---------- Forwarded message ---------\nFrom: Harriet Vance <hvance@vancewhitlock-law.com>\n"
        "Date: Tue, Feb 24, 2026 at 3:02 PM\nSubject: Brightfern\n\nplease see the attached letter on behalf of our client."
    )
    raw = mail_with_attachment(
        body,
        [("letter.pdf", PDF, pdf_bytes([CD_LETTER_EN]))],
        sender="ops@crestline-goods.com",
        subject="Fwd: Brightfern",
    )
    record = attachment_triager.triage_bytes(raw)
    assert record.forwarded_by == "ops@crestline-goods.com"
    assert (record.kind, record.deadline_days) == ("cease_and_desist", 7)
    assert "hvance@vancewhitlock-law.com" in record.rights_owner_emails


def test_more_attachments_than_the_cap_are_skipped(triager):
    capped = Triager(
        triager.nlp, triager.tables, "UTC", SandboxedReader(AttachmentSettings(max_per_message=1))
    )
    letters = [(f"{n}.pdf", PDF, pdf_bytes([f"Letter {n}"])) for n in (1, 2)]
    entries = capped.triage_bytes(mail_with_attachment("Two letters.", letters)).attachments
    capped.read_attachments.close()
    assert [(e.status, e.reason) for e in entries] == [
        ("read", None),
        ("skipped", "more than 1 attachments to read"),
    ]


# -- settings and sniffing ---------------------------------------------------------------------


def test_attachment_limits_are_settings(tmp_path):
    config = tmp_path / "c.toml"
    config.write_text("[attachments]\nmax_pages = 5\ntimeout_seconds = 2.5\n", encoding="utf-8")
    settings = load_settings(config, environ={"COMPLAINT_TRIAGE__ATTACHMENTS__MAX_CHARS": "1234"})
    assert (
        settings.attachments.max_pages,
        settings.attachments.timeout_seconds,
        settings.attachments.max_chars,
    ) == (5, 2.5, 1234)
    assert settings.attachments.memory_mb == LIMITS.memory_mb


def test_shipped_config_states_the_defaults():
    from complaint_triage.resources import config_dir

    assert (
        load_settings(config_dir() / "complaint-triage.toml", environ={}).attachments == AttachmentSettings()
    )


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"%PDF-1.7\n", "pdf"),
        (b"junk before\n%PDF-1.4", "pdf"),
        (b"PK\x03\x04rest", "zip"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "doc"),
        (b"\xff\xd8\xff\xe0", "image"),
        (b"plain words", "text"),
        (b"\x00\x01\x02", "unknown"),
    ],
)
def test_sniff_type(head, kind):
    assert sniff_type(head) == kind


def test_docx_paragraph_runs_are_joined(reader):
    document = document_xml("Within seven (7) days")
    assert document.count(b"<w:r>") == 2
    assert reader.read_one(docx_from_document(document)).text == "Within seven (7) days"


def test_fixture_letters_with_broken_pdfs_need_review_but_the_sellers_own_reply_does_not(attachment_triager):
    from tests.conftest import FIXTURES

    demand = attachment_triager.triage_bytes((FIXTURES / "misc-01-cnd-lawfirm-seven-days.eml").read_bytes())
    reply = attachment_triager.triage_bytes((FIXTURES / "misc-15-seller-reply-to-brand.eml").read_bytes())
    assert demand.needs_review and demand.attachments[0].reason == "corrupt pdf: startxref not found"
    assert (demand.kind, demand.urgency, demand.deadline_days) == ("cease_and_desist", "critical", 7)
    assert [c.code for c in reply.checks] == ["attachment_unreadable"]
    assert (reply.needs_review, reply.urgency) == (False, "low")


def test_an_attachment_over_the_size_limit_is_skipped_unread(triager):
    small = Triager(triager.nlp, triager.tables, "UTC", SandboxedReader(AttachmentSettings(max_bytes=1000)))
    letter = pdf_bytes([CD_LETTER_EN])
    entry = small.triage_bytes(mail_with_attachment(COVERING, [("letter.pdf", PDF, letter)])).attachments[0]
    assert small.read_attachments._child is None  # nothing was sent to a reading process
    assert (entry.type, entry.status, entry.reason) == ("pdf", "skipped", f"{len(letter)} bytes (limit 1000)")


def test_reprocess_reads_the_stored_attachment_again_after_a_limit_changes(tmp_path):
    from tests.conftest import run_cli

    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "letter.eml").write_bytes(
        mail_with_attachment(COVERING, [("letter.pdf", PDF, pdf_bytes([CD_LETTER_EN]))])
    )
    config = tmp_path / "ct.toml"
    store = f'[store]\nurl = "sqlite:///{tmp_path / "ct.db"}"\n'
    config.write_text(store + "[attachments]\nmax_bytes = 100\n", encoding="utf-8")
    assert run_cli("process", str(tmp_path / "mail"), "--config", str(config)).returncode == 0
    before = json.loads(run_cli("export", "--config", str(config)).stdout)
    config.write_text(store, encoding="utf-8")
    assert run_cli("reprocess", "--config", str(config)).returncode == 0
    after = json.loads(run_cli("export", "--config", str(config)).stdout)
    assert (before["kind"], before["attachments"][0]["status"]) == ("other", "skipped")
    assert (after["kind"], after["deadline_days"], after["attachments"][0]["status"]) == (
        "cease_and_desist",
        7,
        "read",
    )
