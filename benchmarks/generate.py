"""Generate N varied messages from the fixture corpus: new identifiers, bodies and encodings."""

from __future__ import annotations

import random
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_ASIN = re.compile(r"B0[0-9A-Z]{8}")
_COMPLAINT = re.compile(r"\b16\d{9}\b")
_ALPHABET = "0123456789ABCDEFGHJKLMNPQRSTUVWXYZ"
VARIANTS = ("plain", "quoted-printable", "base64", "html-only", "multipart")


def _templates() -> list[tuple[EmailMessage, str, bool]]:
    templates = []
    for path in sorted((ROOT / "fixtures").glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=policy.default)
        body = message.get_body(("plain", "html"))
        if body is None:
            continue
        try:
            text = body.get_content()
        except (LookupError, UnicodeDecodeError):
            continue
        templates.append((message, text, body.get_content_type() == "text/html"))
    return templates


def _vary(text: str, rng: random.Random) -> str:
    text = _ASIN.sub(lambda _m: "B0" + "".join(rng.choice(_ALPHABET) for _ in range(8)), text)
    return _COMPLAINT.sub(lambda _m: "16" + "".join(rng.choice("0123456789") for _ in range(9)), text)


def _as_html(text: str) -> str:
    rows = "".join(f"<tr><td>{line}</td></tr>" for line in text.splitlines())
    return f"<html><body><table>{rows}</table></body></html>"


def build(template: EmailMessage, text: str, is_html: bool, variant: str, rng: random.Random) -> bytes:
    """One message from a template in one of the encodings."""
    message = EmailMessage()
    for name in ("From", "To", "Cc", "Subject", "Date", "Authentication-Results", "List-Unsubscribe"):
        if template[name] is not None:
            message[name] = str(template[name])
    message["Message-ID"] = make_msgid(domain="bench.example")
    body = _vary(text, rng)
    html = body if is_html else _as_html(body)
    if variant == "html-only":
        message.set_content(html, subtype="html", charset="utf-8")
    elif variant == "multipart":
        message.set_content(body if not is_html else "see the HTML part", charset="utf-8")
        message.add_alternative(html, subtype="html", charset="utf-8")
    else:
        cte = None if variant == "plain" else variant
        message.set_content(body, subtype="html" if is_html else "plain", charset="utf-8", cte=cte)
    return message.as_bytes()


def generate(count: int, directory: Path, seed: int = 7) -> list[Path]:
    """Write COUNT messages as .eml files into DIRECTORY."""
    rng = random.Random(seed)
    templates = _templates()
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        template, text, is_html = templates[index % len(templates)]
        path = directory / f"{index:06d}.eml"
        path.write_bytes(build(template, text, is_html, VARIANTS[index % len(VARIANTS)], rng))
        paths.append(path)
    return paths
