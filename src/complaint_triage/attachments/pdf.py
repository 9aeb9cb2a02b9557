"""PDF text with pypdf, under its decompression limits and the page and character caps."""

from __future__ import annotations

import io
import logging

from pypdf import PdfReader, apply_configuration
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError, PdfReadError

from complaint_triage.attachments.extraction import Extraction, Unreadable, cap_text
from complaint_triage.settings import AttachmentSettings

# pypdf logs every repaired cross-reference table at WARNING; a hostile file gives thousands of lines.
logging.getLogger("pypdf").setLevel(logging.ERROR)


def _configuration(limits: AttachmentSettings) -> dict:
    """pypdf's own decompression limits, set to the attachment limits."""
    stream = limits.max_stream_bytes
    return {
        "maximum_declared_stream_length": stream,
        "array_based_stream_maximum_output_length": stream,
        "zlib_maximum_output_length": stream,
        "lzw_maximum_output_length": stream,
        "run_length_maximum_output_length": stream,
        "brotli_maximum_output_length": stream,
        "jbig2_maximum_output_length": stream,
        "image_maximum_buffer_size": stream,
        "stream_decoding_work_maximum_length": 4 * stream,
        "jbig2dec_binary": None,  # never start another program on hostile input
    }


def read_pdf(data: bytes, limits: AttachmentSettings) -> Extraction:
    """The text of the first max_pages pages, at most max_chars characters."""
    try:
        with apply_configuration(**_configuration(limits)):
            return _read(data, limits)
    except LimitReachedError as exc:
        raise Unreadable(f"over a decompression limit: {str(exc)[:200]}") from None
    except (FileNotDecryptedError, DependencyError):
        raise Unreadable("encrypted: a password is needed") from None
    except PdfReadError as exc:
        raise Unreadable(f"corrupt pdf: {str(exc)[:200]}") from None


def _read(data: bytes, limits: AttachmentSettings) -> Extraction:
    reader = PdfReader(io.BytesIO(data), strict=False)
    if reader.is_encrypted and not reader.decrypt(
        ""
    ):  # an owner-password-only PDF opens with an empty password
        raise Unreadable("encrypted: a password is needed")
    total = len(reader.pages)
    if total == 0:
        raise Unreadable("no pages")
    texts, size = [], 0
    for page in reader.pages[: limits.max_pages]:
        texts.append(page.extract_text() or "")
        size += len(texts[-1]) + 1
        if size > limits.max_chars:
            break
    text, cut = cap_text("\n".join(texts).strip(), limits)
    if not text and any(map(_has_images, reader.pages[: limits.max_pages])):
        raise Unreadable("no text layer, only images (a scan?)")
    if not text:
        return Extraction(type="pdf", status="read", pages=total, reason="no text on its pages")
    truncated = cut or total > limits.max_pages
    return Extraction(
        type="pdf",
        status="truncated" if truncated else "read",
        text=text,
        pages=total,
        reason=_truncation(cut, total, limits),
    )


def _has_images(page) -> bool:
    """True when the page draws an image: a letter without a text layer is a scan, to be read by a person."""
    resources = page.get("/Resources")
    objects = resources.get_object().get("/XObject") if resources is not None else None
    if objects is None:
        return False
    return any(objects[name].get_object().get("/Subtype") == "/Image" for name in objects.get_object())


def _truncation(cut: bool, total: int, limits: AttachmentSettings) -> str | None:
    if total > limits.max_pages:
        return f"first {limits.max_pages} of {total} pages read"
    return f"first {limits.max_chars} characters kept" if cut else None
