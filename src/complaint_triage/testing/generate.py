"""Generate N varied messages from the fixture corpus: new identifiers, bodies and encodings."""

from __future__ import annotations

import random
import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]  # the checkout, whose fixtures/ the notices are made from
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


# Everyday mail of a seller's inbox: what surrounds the notices (orders, shipments, payouts, FBA,
# advertising, buyers, newsletters, notifications, bounces, mail with attachments).
_PRODUCTS = (
    "Bamboo Cutting Board Set",
    "Stainless Steel Water Bottle 750ml",
    "LED Desk Lamp with USB Port",
    "Yoga Mat Non-Slip 6mm",
    "Silicone Baking Mats (2 Pack)",
    "Wireless Charging Pad",
    "Kids Watercolor Paint Kit",
    "Cast Iron Skillet 10 inch",
)
_NAMES = (
    "Maria Lopez",
    "James Carter",
    "Anna Schmidt",
    "Kenji Sato",
    "Priya Natarajan",
    "Luc Moreau",
    "Giulia Rossi",
    "Tom Becker",
)
_CITIES = (
    "Columbus, OH 43215",
    "Austin, TX 78701",
    "Leeds LS1 4AP",
    "Köln 50667",
    "Lyon 69002",
    "Madrid 28013",
)


def _order_id(rng: random.Random) -> str:
    return f"{rng.randint(111, 114)}-{rng.randint(1000000, 9999999)}-{rng.randint(1000000, 9999999)}"


def _money(rng: random.Random) -> str:
    return f"${rng.randint(5, 240)}.{rng.randint(0, 99):02d}"


def _sold(rng: random.Random) -> tuple[str, str, str]:
    product, order = rng.choice(_PRODUCTS), _order_id(rng)
    body = (
        f"Dear Seller,\n\nCongratulations, you have sold an item. Ship it now.\n\nOrder ID: {order}\nItem: {product}\n"
        f"Quantity: {rng.randint(1, 4)}\nOrder date: {rng.randint(1, 28)} Nov 2026\nPrice: {_money(rng)}\nShipping: Standard\n"
        f"Ship by: {rng.randint(1, 28)} Dec 2026\n\nShip to:\n  {rng.choice(_NAMES)}\n  {rng.choice(_CITIES)}\n\n"
        "Please confirm shipment in Seller Central once the package is on its way.\n\nSincerely,\nSelling on Amazon"
    )
    return '"Sold, ship now" <auto-confirm@amazon.com>', f"Sold, ship now: {product}", body


def _shipped(rng: random.Random) -> tuple[str, str, str]:
    tracking = "1Z" + "".join(rng.choice(_ALPHABET) for _ in range(16))
    body = (
        f"Hello,\n\nYour package with {rng.choice(_PRODUCTS)} was handed to the carrier today.\n\nCarrier: UPS\n"
        f"Tracking number: {tracking}\nEstimated delivery: {rng.randint(1, 28)} December\n\n"
        "You can follow the delivery on the carrier's website. Thank you for shopping with us.\n"
    )
    return "Shipping Updates <shipment-tracking@amazon.com>", "Your order has shipped", body


def _disbursement(rng: random.Random) -> tuple[str, str, str]:
    body = (
        f"Hello,\n\nWe have initiated a disbursement of {_money(rng)} to your bank account ending in {rng.randint(1000, 9999)}.\n"
        f"Settlement period: {rng.randint(1, 14)} Nov 2026 - {rng.randint(15, 28)} Nov 2026\n"
        "Depending on your bank, it can take up to 5 business days for the funds to appear in your account.\n\n"
        "To see the details, go to Payments > Statement View in Seller Central.\n\nThank you,\nSeller Payments"
    )
    return "Amazon Payments <payments-messages@amazon.com>", "Your disbursement has been initiated", body


def _fba(rng: random.Random) -> tuple[str, str, str]:
    shipment = "FBA" + "".join(rng.choice(_ALPHABET) for _ in range(9))
    body = (
        f"Hello,\n\nShipment {shipment} was checked in at the fulfillment center PHX{rng.randint(3, 7)}.\n"
        f"Units expected: {rng.randint(20, 400)}\nUnits received: {rng.randint(20, 400)}\n\n"
        "Reconciliation may take a few days. Inventory becomes available for sale once it is received.\n"
        "For the current status, open Shipping Queue in Seller Central.\n\nFulfillment by Amazon"
    )
    return "Fulfillment by Amazon <fba-noreply@amazon.com>", f"Inbound shipment {shipment} checked in", body


def _ads_report(rng: random.Random) -> tuple[str, str, str]:
    rows = "\n".join(
        f"{rng.choice(_PRODUCTS)[:28]:<30} impressions {rng.randint(200, 90000):>6}  clicks {rng.randint(0, 900):>4}  "
        f"spend {_money(rng):>8}  sales {_money(rng):>8}"
        for _ in range(rng.randint(3, 8))
    )
    body = (
        f"Your weekly Sponsored Products report is ready.\n\nCampaign: Holiday {rng.randint(1, 9)}\n{rows}\n\n"
        f"Average cost per click: $0.{rng.randint(20, 99)}\nReturn on ad spend: {rng.randint(1, 9)}.{rng.randint(0, 9)}\n\n"
        "Download the full report from the Campaign Manager."
    )
    return "Amazon Ads <no-reply@advertising.amazon.com>", "Weekly performance report", body


def _buyer(rng: random.Random) -> tuple[str, str, str]:
    name = rng.choice(_NAMES)
    body = (
        f"Hi,\n\nI bought the {rng.choice(_PRODUCTS)} last week. Could you tell me if it fits in a standard dishwasher, "
        "and whether you ship to Canada? I want to buy two more as presents.\n\nThanks a lot,\n"
        + name.split()[0]
    )
    address = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(14))
    return f"{name} - Amazon Marketplace <{address}@marketplace.amazon.com>", "Question from a customer", body


def _newsletter(rng: random.Random) -> tuple[str, str, str]:
    body = (
        f"This week on the Seller Growth blog\n\n1. Five ways to cut your shipping costs before the holidays\n"
        f"2. How {rng.randint(3, 12)} sellers doubled their repeat buyers with follow-up coupons\n"
        "3. Product photography on a budget: lights, backdrops and a phone\n\n"
        "Read more on our website. You receive this newsletter because you signed up at a trade fair.\n"
    )
    return (
        "Seller Growth Weekly <news@sellergrowth.example>",
        f"Issue {rng.randint(100, 300)}: holiday shipping",
        body,
    )


def _notification(rng: random.Random) -> tuple[str, str, str]:
    kind = rng.choice(
        (
            "a new sign-in to your account from Chrome on Windows",
            "your monthly invoice is available",
            "the shared folder 'Product photos' changed",
            "a payment of " + _money(rng) + " was received",
        )
    )
    body = f"Hello,\n\nWe are letting you know that {kind}.\n\nIf this was you, there is nothing to do.\n\nThe Team\n"
    return "Notifications <notify@service.example>", "Account notification", body


def _with_attachment(rng: random.Random) -> tuple[str, str, str]:
    body = (
        f"Hi,\n\nplease find attached our invoice {rng.randint(10000, 99999)} for the packaging delivered on "
        f"{rng.randint(1, 28)} November, and the packing list.\n\nPayment terms: 30 days net.\n\nKind regards,\n{rng.choice(_NAMES)}\nBoxMakers Ltd."
    )
    return f"{rng.choice(_NAMES)} <accounts@boxmakers.example>", "Invoice and packing list", body


EVERYDAY = (
    _sold,
    _shipped,
    _disbursement,
    _fba,
    _ads_report,
    _buyer,
    _newsletter,
    _notification,
    _with_attachment,
)


def _bounce(rng: random.Random) -> bytes:
    """A delivery status notification (multipart/report) for a message the seller sent."""
    message = EmailMessage()
    message["From"] = "Mail Delivery System <MAILER-DAEMON@mail.example>"
    message["To"] = "ops@seller.example"
    message["Subject"] = "Undelivered Mail Returned to Sender"
    message["Message-ID"] = make_msgid(domain="bench.example")
    message["Date"] = "Tue, 24 Nov 2026 09:12:00 +0000"
    message.set_content(
        "This is the mail system. Your message could not be delivered to one or more recipients.\n\n"
        f"<{rng.choice(_NAMES).split()[0].lower()}@old-supplier.example>: host not found\n"
    )
    status = (
        f"Reporting-MTA: dns; mail.example\nFinal-Recipient: rfc822; x{rng.randint(1, 999)}@old-supplier.example\n"
        "Action: failed\nStatus: 5.1.2\n"
    )
    message.add_attachment(status, filename="status.txt")
    message.set_type("multipart/report")
    message.set_param("report-type", "delivery-status")
    return message.as_bytes()


def everyday(rng: random.Random, index: int) -> bytes:
    """One everyday message; every 10th is a bounce, and the invoice mail carries a PDF and a CSV."""
    if index % 10 == 9:
        return _bounce(rng)
    sender, subject, body = EVERYDAY[index % len(EVERYDAY)](rng)
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, "ops@seller.example", subject
    message["Date"] = (
        f"Tue, {rng.randint(1, 28)} Nov 2026 {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00 +0000"
    )
    message["Message-ID"] = make_msgid(domain="bench.example")
    if sender.startswith("Seller Growth"):
        message["List-Unsubscribe"] = "<https://sellergrowth.example/unsubscribe>"
    variant = VARIANTS[index % len(VARIANTS)]
    if variant in ("html-only", "multipart"):
        message.set_content(body, charset="utf-8")
        message.add_alternative(_as_html(body), subtype="html", charset="utf-8")
    else:
        message.set_content(body, charset="utf-8", cte=None if variant == "plain" else variant)
    if EVERYDAY[index % len(EVERYDAY)] is _with_attachment:
        message.add_attachment(
            b"%PDF-1.4\n" + bytes(rng.randrange(256) for _ in range(6000)),
            maintype="application",
            subtype="pdf",
            filename="invoice.pdf",
        )
        message.add_attachment(
            "item,quantity\nbox 30x20,500\nbox 40x30,250\n", subtype="csv", filename="packing-list.csv"
        )
    return message.as_bytes()


def generate_inbox(count: int, directory: Path, seed: int = 7, notice_share: float = 0.1) -> list[Path]:
    """Write COUNT messages of a seller's inbox: NOTICE_SHARE notices from the fixtures, the rest everyday mail."""
    rng = random.Random(seed)
    templates = _templates()
    directory.mkdir(parents=True, exist_ok=True)
    every = round(1 / notice_share)
    paths = []
    for index in range(count):
        if index % every == 0:
            number = index // every
            template, text, is_html = templates[number % len(templates)]
            raw = build(template, text, is_html, VARIANTS[number % len(VARIANTS)], rng)
        else:
            raw = everyday(rng, index)
        path = directory / f"{index:06d}.eml"
        path.write_bytes(raw)
        paths.append(path)
    return paths
