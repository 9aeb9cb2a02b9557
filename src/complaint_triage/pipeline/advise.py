"""Verdict -> checks to make, next steps from the playbooks, lookup links, and the due date."""

from __future__ import annotations

import re
import string
from datetime import date, timedelta
from functools import lru_cache

from complaint_triage.pipeline.classify import COMPLAINT_KINDS, Verdict
from complaint_triage.pipeline.domain import DomainTables
from complaint_triage.pipeline.senders import SenderProfile
from complaint_triage.records import AttachmentRecord, Check, Entities, ParsedEmail

_FORMATTER = string.Formatter()
# Cues that make a covering mail look like a legal demand or a notice (design.md: needs_review).
_DEMAND_CUES = (
    "KIND_CEASE_DESIST",
    "KIND_DEMAND",
    "KIND_LAWSUIT",
    "CLAIM_TRADEMARK",
    "CLAIM_COPYRIGHT",
    "CLAIM_PATENT",
    "CLAIM_DESIGN",
    "CLAIM_COUNTERFEIT",
)
# ... unless the seller wrote it (a reply to the brand, its own invoices attached) or it is bulk mail.
_NOT_DEMAND_CUES = ("KIND_REPLY_TO_BRAND", "KIND_NEWSLETTER", "KIND_SOLICITATION")


def registration_office(number: str) -> str | None:
    """The office a registration number's shape points to, when it is unambiguous."""
    if number.startswith("UK"):
        return "UK"
    if number.startswith("TMA"):
        return "CA"
    if re.fullmatch(r"0\d{8}", number):
        return "EU"
    if re.fullmatch(r"30(19|20)\d{8}", number):
        return "DE"
    if re.fullmatch(r"(7\d|8[5-8]|9[0789])\d{6}", number):
        return "US"
    return None


@lru_cache(maxsize=8)
def _office_patterns(office_words: tuple[tuple[str, tuple[str, ...]], ...]) -> dict[str, re.Pattern]:
    return {
        office: re.compile(r"(?<![\w])(?:" + "|".join(map(re.escape, words)) + r")(?![\w])")
        for office, words in office_words
    }


def asserted_offices(text: str, entities: Entities, tables: DomainTables) -> set[str]:
    """Offices named by the notice's words or implied by its registration numbers."""
    lowered = text.lower()
    words = tuple((office, tuple(names)) for office, names in tables.marketplaces.office_words.items())
    offices = {office for office, pattern in _office_patterns(words).items() if pattern.search(lowered)}
    offices.update(filter(None, (registration_office(number) for number in entities.registration_numbers)))
    return offices


def _word_in(word: str, text: str) -> bool:
    return re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", text) is not None


def territory_check(verdict: Verdict, text: str, entities: Entities, tables: DomainTables) -> Check | None:
    """The asserted registration's office does not cover the store the complaint is about."""
    store = tables.marketplaces.stores.get(verdict.marketplace or "")
    if store is None or "trademark" not in verdict.claim_types:
        return None
    offices = asserted_offices(text, entities, tables) - {"WO"}
    if not offices or offices & set(store.offices):
        return None
    named = ", ".join(sorted(offices))
    return Check(
        code="territory_mismatch",
        severity="warning",
        message=f"The asserted registration ({named}) does not cover {verdict.marketplace} ({store.country}).",
    )


def product_category(text: str, tables: DomainTables) -> str | None:
    """The category whose words appear most in the product titles of the notice."""
    titles = " ".join(
        re.findall(r"(?im)^\s*(?:title|titel|titre|título|titolo|商品名)\s*[:|]\s*(.+)$", text)
    ).lower()
    if not titles:
        return None
    scores = {
        name: sum(1 for word in category.words if _word_in(word, titles))
        for name, category in tables.nice.categories.items()
    }
    best = max(scores, key=scores.get)
    return best if scores[best] else None


def class_check(verdict: Verdict, text: str, entities: Entities, tables: DomainTables) -> Check | None:
    """The stated Nice class does not normally cover the product's category."""
    if not entities.nice_classes or "trademark" not in verdict.claim_types:
        return None
    category = product_category(text, tables)
    if category is None:
        return None
    usual = tables.nice.categories[category].classes
    if set(entities.nice_classes) & set(usual):
        return None
    stated = ", ".join(f"{n} ({tables.nice.headings.get(n, '?')})" for n in entities.nice_classes)
    return Check(
        code="class_mismatch",
        severity="info",
        message=f"Class {stated} does not normally cover {category} products (usual: {', '.join(map(str, usual))}).",
    )


def sender_checks(sender: SenderProfile) -> list[Check]:
    """Look-alike domains, failed authentication, Amazon names on non-Amazon domains."""
    checks = []
    if sender.lookalike:
        checks.append(
            Check(
                code="lookalike_sender_domain",
                severity="critical",
                message=f"Sender domain {sender.domain} imitates Amazon; likely phishing.",
            )
        )
    if sender.claims_amazon and sender.auth_failed:
        checks.append(
            Check(
                code="sender_not_authenticated",
                severity="critical",
                message="The message claims to be from Amazon but failed DKIM/DMARC at the receiving server.",
            )
        )
    if sender.claims_amazon and not sender.amazon_domain and not sender.lookalike:
        checks.append(
            Check(
                code="not_amazon_sender",
                severity="warning",
                message=f"Signed as Amazon but sent from {sender.domain or 'an unknown domain'}.",
            )
        )
    return checks


def design_apex_check(verdict: Verdict, entities: Entities) -> Check | None:
    """APEX covers utility patents only."""
    if verdict.kind == "patent_evaluation" and "design" in verdict.claim_types:
        designs = [n for n in entities.patent_numbers if n.startswith("USD")] or ["a design right"]
        return Check(
            code="design_patent_apex",
            severity="warning",
            message=f"APEX covers US utility patents only, but {', '.join(designs)} is a design patent.",
        )
    return None


def make_checks(
    verdict: Verdict, parsed: ParsedEmail, entities: Entities, sender: SenderProfile, tables: DomainTables
) -> list[Check]:
    """Every check that applies to this message."""
    text = parsed.full_text
    found = sender_checks(sender)
    for check in (
        territory_check(verdict, text, entities, tables),
        class_check(verdict, text, entities, tables),
        design_apex_check(verdict, entities),
    ):
        if check is not None:
            found.append(check)
    return found


def _describe(attachment: AttachmentRecord) -> str:
    return f"{attachment.name or 'an unnamed ' + attachment.type + ' attachment'} ({attachment.reason or 'unreadable'})"


def attachment_check(attachments: list[AttachmentRecord]) -> Check | None:
    """One warning naming every attached PDF or DOCX that could not be read (encrypted, corrupt, over a limit, timed out)."""
    unreadable = [attachment for attachment in attachments if attachment.status == "unreadable"]
    if not unreadable:
        return None
    return Check(
        code="attachment_unreadable",
        severity="warning",
        message="Could not read the attachment " + "; ".join(map(_describe, unreadable)) + ".",
    )


def looks_like_demand(verdict: Verdict, parsed: ParsedEmail, entities: Entities) -> bool:
    """A complaint, or a mail with a demand's or a claim's words that neither the seller nor a mailing list wrote."""
    if verdict.is_complaint:
        return True
    cues = entities.cues
    if parsed.list_unsubscribe or any(cues.get(cue, 0) for cue in _NOT_DEMAND_CUES):
        return False
    return any(cues.get(cue, 0) for cue in _DEMAND_CUES)


def review_reasons(
    verdict: Verdict, parsed: ParsedEmail, entities: Entities, attachments: list[AttachmentRecord]
) -> list[str]:
    """Why a person should read the message: an unreadable attachment to a mail that looks like a notice or a legal demand."""
    unreadable = [attachment for attachment in attachments if attachment.status == "unreadable"]
    if not unreadable or not looks_like_demand(verdict, parsed, entities):
        return []
    return [
        f"The mail looks like a legal demand or a notice, but its attachment {_describe(attachment)} could not be read: open it by hand."
        for attachment in unreadable
    ]


def response_due(verdict: Verdict, notice_day: date | None, tables: DomainTables) -> date | None:
    """The stated deadline, else the playbook's default window for the kind, counted from the notice day."""
    if notice_day is None:
        return None
    days = verdict.deadline_days
    if days is None:
        playbook = tables.playbooks.kinds.get(verdict.kind)
        days = (
            playbook.default_days
            if playbook and (verdict.is_complaint or verdict.kind == "buyer_message")
            else None
        )
    return notice_day + timedelta(days=days) if days is not None else None


def _fill(step: str, values: dict[str, str]) -> str | None:
    """Fill placeholders; a step that needs a value the message lacks is dropped."""
    names = [field for _, field, _, _ in _FORMATTER.parse(step) if field]
    if any(not values.get(name) for name in names) and not _partially_filled(names, values):
        return None
    return step.format_map({name: values.get(name) or "" for name in names})


def _partially_filled(names: list[str], values: dict[str, str]) -> bool:
    """Steps naming several identifier lists keep going when at least one is known."""
    lists = [n for n in names if n in {"registration_numbers", "patent_numbers", "trademarks"}]
    others = [n for n in names if n not in lists]
    return bool(lists) and any(values.get(n) for n in lists) and all(values.get(n) for n in others)


def next_steps(
    verdict: Verdict,
    entities: Entities,
    checks: list[Check],
    due: date | None,
    tables: DomainTables,
    seller_central: str,
) -> list[str]:
    """Ordered actions: the kind's playbook, then each claim type's, then each check's."""
    values = {
        "asins": ", ".join(entities.asins),
        "complaint_ids": ", ".join(entities.complaint_ids),
        "rights_owner_emails": ", ".join(verdict.rights_owner_emails),
        "trademarks": ", ".join(entities.trademarks) if verdict.is_complaint else "",
        "registration_numbers": ", ".join(entities.registration_numbers) if verdict.is_complaint else "",
        "patent_numbers": ", ".join(entities.patent_numbers) if verdict.is_complaint else "",
        "marketplace": verdict.marketplace or "",
        "seller_central": seller_central,
        "response_due": due.isoformat() if due else "",
    }
    playbooks = tables.playbooks
    templates = list(playbooks.kinds.get(verdict.kind, playbooks.kinds["other"]).steps)
    if verdict.kind in COMPLAINT_KINDS:
        for claim in verdict.claim_types:
            templates += playbooks.claims[claim].steps if claim in playbooks.claims else []
    templates += [playbooks.checks[check.code].step for check in checks if check.code in playbooks.checks]
    filled = (_fill(template, values) for template in templates)
    return [step for step in filled if step]


def lookup_links(verdict: Verdict, entities: Entities, tables: DomainTables) -> list[str]:
    """Product pages per ASIN, registry records for registrations, Google Patents for patents."""
    store = verdict.marketplace or "amazon.com"
    links = [f"https://www.{store}/dp/{asin}" for asin in entities.asins]
    if verdict.is_complaint:
        links += [
            link
            for number in entities.registration_numbers
            if (link := registry_link(number, verdict.marketplace))
        ]
        links += [f"https://patents.google.com/patent/{number}/en" for number in entities.patent_numbers]
        links.append(seller_central_url(verdict, tables) + "/performance/dashboard")
    return links


def registry_link(number: str, marketplace: str | None = None) -> str | None:
    """TSDR, EUIPO or UKIPO record for a registration number whose office is clear."""
    office = registration_office(number)
    if number.startswith("UK"):
        return f"https://trademarks.ipo.gov.uk/ipo-tmcase/page/Results/1/{number}"
    if office == "EU":
        return f"https://euipo.europa.eu/eSearch/#details/trademarks/{number}"
    if office == "US":
        return f"https://tsdr.uspto.gov/#caseNumber={number}&caseType=SERIAL_NO&searchType=statusSearch"
    if re.fullmatch(r"\d{7}", number) and marketplace in (None, "amazon.com"):
        return (
            f"https://tsdr.uspto.gov/#caseNumber={number}&caseType=US_REGISTRATION_NO&searchType=statusSearch"
        )
    return None


def seller_central_url(verdict: Verdict, tables: DomainTables) -> str:
    """The Seller Central host for the notice's store."""
    store = tables.marketplaces.stores.get(verdict.marketplace or "amazon.com")
    return store.seller_central if store else "https://sellercentral.amazon.com"
