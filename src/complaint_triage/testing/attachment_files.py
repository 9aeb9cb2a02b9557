"""Attachments built in code for the tests and the hostile-mail benchmark: letters, bombs and broken files."""

from __future__ import annotations

import io
import textwrap
import zipfile
import zlib
from email.message import EmailMessage
from functools import lru_cache

W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"

CD_LETTER_EN = """VANCE & WHITLOCK LLP
1200 Congress Avenue, Suite 800, Austin, TX 78701

Re: Infringement of the BRIGHTFERN trademark

Dear Crestline Goods:

This firm represents Brightfern Outdoors, Inc., the owner of the federally registered trademark BRIGHTFERN, U.S. Reg. No. 6,402,118, for camping lanterns in Class 11.

You are offering for sale on Amazon.com products bearing the BRIGHTFERN mark under ASIN B0CL4T7Q2N. Your unauthorized use of the BRIGHTFERN mark constitutes trademark infringement.

Accordingly, we demand that you, within seven (7) days of the date of this letter, remove the listing and cease all use of the BRIGHTFERN mark.

If we do not receive a satisfactory response within that time, our client has authorized us to pursue all available remedies without further notice.

Very truly yours,
Harriet Vance
hvance@vancewhitlock-law.com
"""

CD_LETTER_DE = """Brandt & Seidel Rechtsanwälte PartG mbB, Neuer Wall 18, 20354 Hamburg

Abmahnung wegen Markenrechtsverletzung – FJELLHUS

Sehr geehrte Damen und Herren,

hiermit zeigen wir an, dass wir die Fjellhus Living GmbH anwaltlich vertreten. Unsere Mandantin ist Inhaberin der Unionsmarke FJELLHUS (Nr. 018449031), unter anderem für Heimtextilien in Klasse 24.

Sie bieten auf amazon.de unter der ASIN B0DB6R3K8T eine Tagesdecke unter der Bezeichnung "Fjellhus Tagesdecke" an. Es handelt sich um eine Markenrechtsverletzung gemäß Art. 9 UMV und § 14 MarkenG.

Wir fordern Sie auf, die Benutzung der Bezeichnung FJELLHUS unverzüglich einzustellen und die strafbewehrte Unterlassungserklärung innerhalb von 7 Tagen abzugeben.

Mit freundlichen Grüßen
Dr. Katrin Seidel, Rechtsanwältin
kanzlei@brandt-seidel-recht.de
"""

APEX_AGREEMENT = """AMAZON PATENT EVALUATION EXPRESS (APEX) AGREEMENT

This agreement governs the Amazon Patent Evaluation Express (APEX) evaluation of U.S. Patent No. 11,906,218 asserted against ASIN B0CD2WM8RT and ASIN B0CD2XQ1FV.

The patent owner claims that the listed products infringe claim 1 of the patent. The neutral evaluator decides whether the products likely infringe.

Each party pays a deposit of US$4,000 to the neutral evaluator. Return the signed agreement with Exhibit 2 to patent-evaluation@amazon.com within three weeks.
"""


# -- PDF ---------------------------------------------------------------------------------------


def _pdf_string(line: str) -> bytes:
    data = line.encode("cp1252", errors="replace")
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def page_content(text: str) -> bytes:
    """A content stream that shows TEXT in Helvetica, one wrapped line per row."""
    rows = [row for paragraph in text.split("\n") for row in (textwrap.wrap(paragraph, 90) or [""])]
    shown = b" T*\n".join(_pdf_string(row) + b" Tj" for row in rows)
    return b"BT /F1 10 Tf 12 TL 50 800 Td\n" + shown + b"\nET"


def pdf_from_objects(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF file of numbered objects (1..n) with a correct cross-reference table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    out.write(b"".join(b"%010d 00000 n \n" % offset for offset in offsets))
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    )
    return out.getvalue()


def stream_object(data: bytes, flate: bool = False) -> bytes:
    """A stream object, FlateDecode-compressed when asked."""
    if flate:
        data = zlib.compress(data)
    return (
        b"<< /Length %d%s >>\nstream\n" % (len(data), b" /Filter /FlateDecode" if flate else b"")
        + data
        + b"\nendstream"
    )


def pdf_bytes(pages: list[str], flate: bool = True) -> bytes:
    """A valid PDF showing each string on its own page."""
    kids = b" ".join(b"%d 0 R" % (4 + 2 * index) for index in range(len(pages)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, len(pages)),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    for index, text in enumerate(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>"
            % (5 + 2 * index)
        )
        objects.append(stream_object(page_content(text), flate))
    return pdf_from_objects(objects)


@lru_cache(maxsize=2)
def pdf_decompression_bomb(inflated_mb: int = 300) -> bytes:
    """A one-page PDF whose FlateDecode content stream inflates to INFLATED_MB megabytes."""
    compressor, chunk = zlib.compressobj(9), b"0 0 m " * (1 << 17)
    compressed = (
        b"".join(compressor.compress(chunk) for _ in range(inflated_mb * (1 << 20) // len(chunk)))
        + compressor.flush()
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [4 0 R] /Count 1 >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 3 0 R >> >> /Contents 5 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(compressed) + compressed + b"\nendstream",
    ]
    return pdf_from_objects(objects)


def pdf_reference_loop() -> bytes:
    """A page tree whose Pages node lists itself as its own kid, and a page whose contents array holds itself."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [2 0 R 3 0 R] /Count 2 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R >>",
        b"[4 0 R 4 0 R]",
    ]
    return pdf_from_objects(objects)


def encrypted_pdf(text: str, password: str = "s3cret") -> bytes:
    """The letter PDF encrypted with a user password (RC4-128, which pypdf handles without extra packages)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf_bytes([text]))))
    writer.encrypt(user_password=password, owner_password="owner-" + password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


# -- DOCX --------------------------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
    "</Relationships>"
)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def document_xml(text: str) -> bytes:
    """WordprocessingML with one paragraph per line of TEXT (each split over two runs, as Word does)."""
    paragraphs = []
    for line in text.split("\n"):
        half = len(line) // 2
        runs = "".join(
            f'<w:r><w:t xml:space="preserve">{_escape(part)}</w:t></w:r>'
            for part in (line[:half], line[half:])
            if part
        )
        paragraphs.append(f"<w:p>{runs}</w:p>")
    body = "".join(paragraphs)
    return f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="{W_NS}"><w:body>{body}</w:body></w:document>'.encode()


def docx_from_document(document: bytes) -> bytes:
    """A DOCX package around a word/document.xml."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", document)
    return out.getvalue()


def docx_bytes(text: str) -> bytes:
    """A valid DOCX whose document holds TEXT."""
    return docx_from_document(document_xml(text))


@lru_cache(maxsize=2)
def docx_zip_bomb(inflated_mb: int = 300) -> bytes:
    """A DOCX whose word/document.xml is INFLATED_MB megabytes of XML, deflated to well under 1 MB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        with archive.open("word/document.xml", "w", force_zip64=True) as member:
            member.write(
                f'<?xml version="1.0"?><w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>'.encode()
            )
            chunk = b"A" * (1 << 20)
            for _ in range(inflated_mb):
                member.write(chunk)
            member.write(b"</w:t></w:r></w:p></w:body></w:document>")
    return out.getvalue()


def billion_laughs_docx(levels: int = 10) -> bytes:
    """A DOCX whose document declares nested entities that would expand to 10**LEVELS copies of 'lol'."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, levels)
    ]
    document = (
        f'<?xml version="1.0"?><!DOCTYPE w:document [{"".join(entities)}]>'
        f'<w:document xmlns:w="{W_NS}"><w:body><w:p><w:r><w:t>&lol{levels - 1};</w:t></w:r></w:p></w:body></w:document>'
    )
    return docx_from_document(document.encode())


# -- mail --------------------------------------------------------------------------------------


def mail_with_attachment(
    body: str,
    attachments: list[tuple[str, str, bytes]],
    sender: str = "Harriet Vance <hvance@vancewhitlock-law.com>",
    subject: str = "Our letter",
    message_id: str = "<letter-1@vancewhitlock-law.com>",
) -> bytes:
    """A covering mail with (filename, content type, bytes) attachments."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "legal@crestline-goods.com", subject
    message["Date"], message["Message-ID"] = "Tue, 24 Feb 2026 15:02:11 -0600", message_id
    message.set_content(body)
    for filename, content_type, data in attachments:
        maintype, subtype = content_type.split("/", 1)
        message.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes()


def scanned_pdf() -> bytes:
    """A one-page PDF that only draws an image (a scanned letter: no text layer)."""
    pixels = stream_object(b"\x80" * 64).replace(
        b"<< /Length",
        b"<< /Type /XObject /Subtype /Image /Width 8 /Height 8 /ColorSpace /DeviceGray /BitsPerComponent 8 /Length",
    )
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /XObject << /Im1 4 0 R >> >> /Contents 5 0 R >>",
        pixels,
        stream_object(b"q 595 0 0 842 0 0 cm /Im1 Do Q"),
    ]
    return pdf_from_objects(objects)


# -- generated at volume (benchmarks/hostile_mail.py) ------------------------------------------

_WORDS = [
    "the",
    "trademark",
    "infringement",
    "letter",
    "Markenrechtsverletzung",
    "Unterlassungserklärung",
    "within",
    "days",
    "ASIN",
    "B0CL4T7Q2N",
    "demand",
    "cease",
    "Frist",
    "Tage",
    "client",
    "Mandantin",
]
GENERATED_KINDS = (
    "pdf letter",
    "docx letter",
    "encrypted pdf",
    "truncated pdf",
    "truncated docx",
    "pdf reference loop",
    "pdf decompression bomb",
    "docx zip bomb",
    "billion laughs",
    "garbage after a pdf header",
)


def _prose(rng, words: int) -> str:
    lines, line = [], []
    for _ in range(words):
        line.append(rng.choice(_WORDS))
        if len(line) > rng.randint(6, 14):
            lines.append(" ".join(line))
            line = []
    return "\n".join(lines + [" ".join(line)])


def generated_attachment(rng, kind: str) -> bytes:
    """One attachment of KIND with random content and size (bombs in a few cached sizes: they take seconds to build)."""
    if kind == "pdf letter":
        return pdf_bytes(
            [_prose(rng, rng.randint(50, 600)) for _ in range(rng.randint(1, 60))], flate=rng.random() < 0.7
        )
    if kind == "docx letter":
        return docx_bytes(_prose(rng, rng.randint(50, 20_000)))
    if kind == "encrypted pdf":
        return encrypted_pdf(_prose(rng, 200), password=str(rng.random()))
    if kind == "truncated pdf":
        whole = pdf_bytes([_prose(rng, 300) for _ in range(rng.randint(1, 5))])
        return whole[: rng.randint(10, len(whole) - 1)]
    if kind == "truncated docx":
        whole = docx_bytes(_prose(rng, 2000))
        return whole[: rng.randint(10, len(whole) - 1)]
    if kind == "pdf reference loop":
        return pdf_reference_loop()
    if kind == "pdf decompression bomb":
        return pdf_decompression_bomb(rng.choice((100, 300)))
    if kind == "docx zip bomb":
        return docx_zip_bomb(rng.choice((40, 300)))
    if kind == "billion laughs":
        return billion_laughs_docx(rng.randint(3, 12))
    return b"%PDF-1.4\n" + rng.randbytes(rng.randint(100, 200_000))
