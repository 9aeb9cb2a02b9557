"""DOCX text: the zip checked before anything is inflated, word/document.xml parsed without DTDs or entities."""

from __future__ import annotations

import io
import zipfile
from xml.etree.ElementTree import ParseError as XmlParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from complaint_triage.attachments.extraction import Extraction, Unreadable, cap_text
from complaint_triage.settings import AttachmentSettings

DOCUMENT = "word/document.xml"
_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BREAKS = {_W + "tab": "\t", _W + "br": "\n", _W + "cr": "\n"}
_SAFE_METHODS = (
    zipfile.ZIP_STORED,
    zipfile.ZIP_DEFLATED,
)  # Word writes deflate; bzip2/lzma inflate unbounded per chunk


class NotWordZip(Unreadable):
    """A zip that is not a Word document."""


def read_docx(data: bytes, limits: AttachmentSettings) -> Extraction:
    """The document's paragraphs as lines, at most max_chars characters."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Unreadable(f"corrupt zip: {exc}") from None
    with archive:
        member = check_archive(archive, limits)
        if member is None:
            return Extraction(type="zip", status="skipped", reason="a zip archive, not a Word document")
        xml = _inflate(archive, member, limits)
    text, cut = cap_text(document_text(xml, limits.max_chars + 1), limits)
    return Extraction(
        type="docx",
        status="truncated" if cut else "read",
        text=text,
        reason=f"first {limits.max_chars} characters kept" if cut else None,
    )


def check_archive(archive: zipfile.ZipFile, limits: AttachmentSettings) -> zipfile.ZipInfo | None:
    """The document member, after the member count, declared sizes and compression ratios pass."""
    members = archive.infolist()
    if len(members) > limits.max_zip_members:
        raise _unreadable(f"{len(members)} zip members (limit {limits.max_zip_members})")
    declared = sum(info.file_size for info in members)
    if declared > limits.max_zip_total_bytes:
        raise _unreadable(f"declares {declared} bytes uncompressed (limit {limits.max_zip_total_bytes})")
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if ratio > limits.max_compression_ratio:
            raise _unreadable(
                f"member {info.filename[:80]!r} compresses {ratio:.0f}:1 (limit {limits.max_compression_ratio}:1)"
            )
    document = next((info for info in members if info.filename == DOCUMENT), None)
    if document is not None and document.file_size > limits.max_document_bytes:
        raise _unreadable(
            f"{DOCUMENT} declares {document.file_size} bytes (limit {limits.max_document_bytes})"
        )
    return document


def _unreadable(reason: str) -> Unreadable:
    error = Unreadable(f"over a zip limit: {reason}")
    error.type = "docx"
    return error


def _inflate(archive: zipfile.ZipFile, member: zipfile.ZipInfo, limits: AttachmentSettings) -> bytes:
    """The member's bytes, never more than max_document_bytes whatever its header declares."""
    if member.flag_bits & 0x1:
        raise _typed(Unreadable("encrypted: a password is needed"))
    if member.compress_type not in _SAFE_METHODS:
        raise _typed(Unreadable(f"zip compression method {member.compress_type} is not read"))
    try:
        with archive.open(member) as stream:
            xml = stream.read(limits.max_document_bytes + 1)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _typed(Unreadable(f"corrupt docx: {exc}")) from None
    if len(xml) > limits.max_document_bytes:
        raise _unreadable(f"{DOCUMENT} inflates past {limits.max_document_bytes} bytes")
    return xml


def _typed(error: Unreadable) -> Unreadable:
    error.type = "docx"
    return error


def document_text(xml: bytes, max_chars: int) -> str:
    """Paragraph texts of WordprocessingML, parsed incrementally; DTDs, entities and external references refused."""
    lines, size = [], 0
    try:
        for _event, element in iterparse(
            io.BytesIO(xml), events=("end",), forbid_dtd=True, forbid_entities=True, forbid_external=True
        ):
            if element.tag != _W + "p":
                continue
            lines.append(_paragraph(element))
            size += len(lines[-1]) + 1
            element.clear()  # what is read is let go: memory follows a paragraph, not the document
            if size > max_chars:
                break
    except DefusedXmlException as exc:
        raise _typed(Unreadable(f"refused XML: {type(exc).__name__} (DTD or entity declarations)")) from None
    except XmlParseError as exc:
        raise _typed(Unreadable(f"corrupt docx XML: {exc}")) from None
    return "\n".join(lines).strip()


def _paragraph(element) -> str:
    parts = []
    for node in element.iter():
        if node.tag == _W + "t" and node.text:
            parts.append(node.text)
        elif node.tag in _BREAKS:
            parts.append(_BREAKS[node.tag])
    return "".join(parts)
