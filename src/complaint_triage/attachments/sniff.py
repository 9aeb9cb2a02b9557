"""An attachment's type from its first bytes: the name and the declared type are the sender's word."""

from __future__ import annotations

# PDF readers accept the header anywhere in the first kilobyte (junk before it is common).
_PDF_WINDOW = 1024
_PREFIXES = (
    (b"PK\x03\x04", "zip"),  # DOCX is a zip; whether it holds a Word document is decided when opened
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "doc"),  # OLE2 compound file: legacy .doc (and .xls, .msg)
    (b"\x89PNG\r\n\x1a\n", "image"),
    (b"\xff\xd8\xff", "image"),
    (b"GIF87a", "image"),
    (b"GIF89a", "image"),
    (b"II*\x00", "image"),
    (b"MM\x00*", "image"),
)
READABLE = ("pdf", "zip")


def sniff_type(data: bytes) -> str:
    """'pdf', 'zip', 'doc', 'image', 'text' or 'unknown', from the magic bytes."""
    if b"%PDF-" in data[:_PDF_WINDOW]:
        return "pdf"
    for prefix, kind in _PREFIXES:
        if data.startswith(prefix):
            return kind
    return "text" if _looks_like_text(data[:4096]) else "unknown"


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 4  # a character cut by the 4 kB window
    return True
