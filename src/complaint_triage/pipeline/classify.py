"""Entities + sender -> is it a complaint, what kind, which claims, how urgent, by when."""

from __future__ import annotations

from collections import Counter

from pydantic import BaseModel, Field

from complaint_triage.pipeline.domain import DomainTables
from complaint_triage.pipeline.senders import SenderProfile, domain_of, is_amazon_domain
from complaint_triage.records import URGENCIES, Entities, ParsedEmail

COMPLAINT_KINDS = {
    "ip_complaint",
    "suspected_ip_violation",
    "account_deactivation",
    "patent_evaluation",
    "inauthentic_complaint",
    "cease_and_desist",
}
AMAZON_ENFORCEMENT_KINDS = COMPLAINT_KINDS - {"cease_and_desist"}
_CLAIM_CUES = ("CLAIM_TRADEMARK", "CLAIM_COPYRIGHT", "CLAIM_PATENT", "CLAIM_DESIGN", "CLAIM_COUNTERFEIT")
_CLAIM_WORDS = ("CLAIM_TRADEMARK_WORD", "CLAIM_COPYRIGHT_WORD", "CLAIM_PATENT_WORD")


class Verdict(BaseModel):
    """What classification decides about one message."""

    is_complaint: bool
    kind: str
    claim_types: list[str] = Field(default_factory=list)
    urgency: str = "low"
    urgency_reasons: list[str] = Field(default_factory=list)
    deadline_days: int | None = None
    marketplace: str | None = None
    rights_owner_emails: list[str] = Field(default_factory=list)


def _has(cues: Counter, *labels: str) -> bool:
    return any(cues.get(label, 0) for label in labels)


def _has_claim(cues: Counter, entities: Entities) -> bool:
    return _has(cues, *_CLAIM_CUES) or bool(
        entities.trademarks
        or entities.registration_numbers
        or entities.patent_numbers
        or entities.copyright_registrations
    )


def _is_retraction(parsed: ParsedEmail, cues: Counter, sender: SenderProfile) -> bool:
    """A withdrawal written by the rights owner (not Amazon, not the seller asking for one)."""
    if sender.amazon_domain or not _has(cues, "KIND_RETRACTION"):
        return False
    to_retraction_desk = any(
        address.startswith("notice-retraction@") or address.startswith("patent-evaluation@")
        for address in parsed.to_addresses + parsed.cc_addresses
    )
    if sender.quoted_amazon_notice and not to_retraction_desk:
        return False  # a reply quoting Amazon's notice takes the notice's kind
    return to_retraction_desk or not _has(cues, "KIND_REPLY_TO_BRAND")


def _amazon_kind(cues: Counter, entities: Entities) -> str | None:
    """The kind of a notice Amazon sent (or that a reply quotes), by the design's precedence."""
    if _has(cues, "KIND_REINSTATEMENT"):
        return "reinstatement"
    if _has(cues, "KIND_DEACTIVATION", "KIND_AT_RISK"):
        return "account_deactivation"
    if _has(cues, "KIND_APEX"):
        return "patent_evaluation"
    if cues.get("KIND_INAUTHENTIC", 0) >= 2 or (
        _has(cues, "KIND_INAUTHENTIC") and _has(cues, "KIND_DOCUMENTS_REQUESTED")
    ):
        return "inauthentic_complaint"
    relayed = _has(cues, "KIND_RELAYED") or bool(entities.contact_emails)
    if (
        relayed
        and not _has(cues, "KIND_SUSPECTED_STRONG")
        and (_has_claim(cues, entities) or entities.complaint_ids or entities.asins)
    ):
        return "ip_complaint"
    claimed = _has_claim(cues, entities) or _has(cues, "KIND_SUSPECTED_STRONG")
    if claimed and (_has(cues, "KIND_SUSPECTED", "KIND_SUSPECTED_STRONG", "KIND_REMOVAL") or entities.asins):
        return "suspected_ip_violation"
    if _has(cues, "KIND_BUYER"):
        return "buyer_message"
    return None


def _is_amazon_information(parsed: ParsedEmail, cues: Counter, entities: Entities) -> bool:
    """Amazon's non-enforcement mail: digests, policy announcements, marketing, acknowledgements, report outcomes.

    Such mail names IP words and even ASINs or complaint IDs (the seller's own report), but acts on nothing of the seller's.
    """
    return _has(cues, "KIND_INFORMATIONAL") or (parsed.list_unsubscribe and not entities.asins)


def _is_cease_and_desist(
    parsed: ParsedEmail, cues: Counter, entities: Entities, sender: SenderProfile
) -> bool:
    """A rights owner, agent or law firm writing directly: asserts a right and demands action (or sues)."""
    if (
        sender.amazon_domain
        or parsed.list_unsubscribe
        or _has(cues, "KIND_NEWSLETTER", "KIND_SOLICITATION", "KIND_REPLY_TO_BRAND")
    ):
        return False
    demands = _has(cues, "KIND_CEASE_DESIST", "KIND_DEMAND", "KIND_LAWSUIT")
    return demands and (_has_claim(cues, entities) or _has(cues, "KIND_LAWSUIT", *_CLAIM_WORDS))


def decide_kind(parsed: ParsedEmail, entities: Entities, sender: SenderProfile, tables: DomainTables) -> str:
    """The first kind that applies, in design.md's order."""
    cues = Counter(entities.cues)
    if sender.lookalike:
        return "other"
    if sender.buyer_relay:
        return "buyer_message"
    if _is_retraction(parsed, cues, sender):
        return "retraction"
    if sender.amazon_notice:
        kind = _amazon_kind(cues, entities)
        if kind in AMAZON_ENFORCEMENT_KINDS and _is_amazon_information(parsed, cues, entities):
            kind = None
        if kind:
            return kind
    if _is_cease_and_desist(parsed, cues, entities, sender):
        return "cease_and_desist"
    if _carries_notice(parsed, cues, entities, sender):
        kind = _amazon_kind(cues, entities)
        if kind in AMAZON_ENFORCEMENT_KINDS:
            return kind
    return "other"


def _carries_notice(parsed: ParsedEmail, cues: Counter, entities: Entities, sender: SenderProfile) -> bool:
    """A notice pasted into someone's own mail (an internal thread, a question to a colleague): its identifiers and wording show it."""
    if (
        sender.amazon_domain
        or parsed.list_unsubscribe
        or _has(
            cues,
            "KIND_REPLY_TO_BRAND",
            "KIND_NEWSLETTER",
            "KIND_SOLICITATION",
            "KIND_INFORMATIONAL",
            "KIND_PHISHING_BAIT",
        )
    ):
        return False
    return bool(entities.complaint_ids and entities.asins) and _has(cues, "KIND_RELAYED", "KIND_REMOVAL")


def claim_types(kind: str, entities: Entities) -> list[str]:
    """The rights asserted, in the schema's order; empty for non-complaints."""
    if kind not in COMPLAINT_KINDS:
        return []
    cues = Counter(entities.cues)
    design_patent = any(number.startswith("USD") for number in entities.patent_numbers)
    direct = kind == "cease_and_desist"  # a letter's plain words ('our trademark') are its claim
    found = {
        "trademark": _has(cues, "CLAIM_TRADEMARK")
        or bool(entities.registration_numbers or entities.trademarks)
        or (direct and _has(cues, "CLAIM_TRADEMARK_WORD")),
        "copyright": _has(cues, "CLAIM_COPYRIGHT")
        or bool(entities.copyright_registrations)
        or (direct and _has(cues, "CLAIM_COPYRIGHT_WORD")),
        "patent": _has(cues, "CLAIM_PATENT")
        or bool(entities.patent_numbers)
        or kind == "patent_evaluation"
        or (direct and _has(cues, "CLAIM_PATENT_WORD")),
        "counterfeit": _has(cues, "CLAIM_COUNTERFEIT") or kind == "inauthentic_complaint",
        "design": _has(cues, "CLAIM_DESIGN") or design_patent,
    }
    if not any(found.values()):  # no strong cue: the plain words ('Type: Trademark', 'a company's trademark')
        found.update(
            trademark=_has(cues, "CLAIM_TRADEMARK_WORD"),
            copyright=_has(cues, "CLAIM_COPYRIGHT_WORD"),
            patent=_has(cues, "CLAIM_PATENT_WORD"),
        )
    return [name for name in ("trademark", "copyright", "patent", "counterfeit", "design") if found[name]]


def seller_addresses(parsed: ParsedEmail, sender: SenderProfile) -> set[str]:
    """Addresses that belong to the seller's side: recipients, the forwarder, a replying seller."""
    own = set(parsed.to_addresses) | set(parsed.cc_addresses)
    if parsed.forwarded_by:
        own.add(parsed.forwarded_by.lower())
    if sender.quoted_amazon_notice and not sender.amazon_domain:
        own.add(parsed.from_address)
    return own


def _is_reply_to_brand(kind: str, parsed: ParsedEmail, entities: Entities) -> bool:
    """The seller writing to the complaining brand (its addresses are the brand's)."""
    return (
        kind == "other"
        and _has(Counter(entities.cues), "KIND_REPLY_TO_BRAND")
        and bool(entities.complaint_ids or entities.asins)
    )


def _email_candidates(kind: str, parsed: ParsedEmail, entities: Entities) -> list[str]:
    if kind in {"cease_and_desist", "retraction"}:
        return [parsed.from_address] + entities.contact_emails + entities.emails
    if _is_reply_to_brand(kind, parsed, entities):
        return parsed.to_addresses + entities.contact_emails + entities.emails
    if kind in AMAZON_ENFORCEMENT_KINDS and not entities.contact_emails:
        return entities.emails  # the notice names someone besides Amazon and the seller: the complainant
    if kind in {"buyer_message", "other", "reinstatement"} and not entities.contact_emails:
        return []
    return list(entities.contact_emails)


def rights_owner_emails(
    kind: str, parsed: ParsedEmail, entities: Entities, sender: SenderProfile, tables: DomainTables
) -> list[str]:
    """The complaining owner's, agent's or law firm's addresses: never Amazon's, never the seller's."""
    candidates = _email_candidates(kind, parsed, entities)
    excluded = seller_addresses(parsed, sender)
    if kind == "retraction":
        excluded.discard(parsed.from_address)
    if _is_reply_to_brand(kind, parsed, entities):
        excluded = {parsed.from_address} | ({parsed.forwarded_by} if parsed.forwarded_by else set())
    result = []
    for address in candidates:
        if (
            address
            and address not in excluded
            and not is_amazon_domain(domain_of(address), tables.senders)
            and address not in result
        ):
            result.append(address)
    return result


def choose_marketplace(
    parsed: ParsedEmail, entities: Entities, sender: SenderProfile, tables: DomainTables
) -> str | None:
    """The store a notice is about: the one it names most, else the Amazon domain it came from."""
    stores = tables.marketplaces.stores
    named = [market for market in entities.marketplaces if market in stores]
    if named:
        counts = Counter(named)
        return max(named, key=lambda market: (counts[market], -named.index(market)))
    if sender.amazon_domain:
        base = sender.domain.removeprefix(tables.senders.buyer_relay_prefix)
        for store in stores:
            if base == store or base.endswith("." + store):
                return store
    return None


def stated_deadline(kind: str, entities: Entities) -> int | None:
    """The shortest window the mail gives the seller; only complaints set one."""
    if kind not in COMPLAINT_KINDS or not entities.deadline_days:
        return None
    return min(entities.deadline_days)


def rate_urgency(
    kind: str, claims: list[str], entities: Entities, deadline: int | None, tables: DomainTables
) -> tuple[str, list[str]]:
    """Apply the rubric; every rule that fired becomes a reason, the most important first."""
    cues = Counter(entities.cues)
    rules = tables.urgency
    fired: list[tuple[str, str]] = []
    complaint = kind in COMPLAINT_KINDS
    short = rules.settings["short_legal_deadline_days"]
    if kind == "account_deactivation":
        fired.append(
            (
                "critical",
                "account_at_risk"
                if _has(cues, "KIND_AT_RISK") and not _has(cues, "KIND_DEACTIVATION")
                else "account_deactivated",
            )
        )
    if complaint and ("counterfeit" in claims or kind == "inauthentic_complaint"):
        fired.append(("critical", "counterfeit_claim"))
    # An APEX invitation names a lawsuit only as its way out ('unless you show that suit was filed')
    if complaint and kind != "patent_evaluation" and _has(cues, "KIND_LAWSUIT"):
        fired.append(("critical", "legal_action"))
    if kind == "cease_and_desist" and deadline is not None and deadline <= short:
        fired.append(("critical", "short_legal_deadline"))
    removed = _has(cues, "KIND_REMOVAL", "KIND_DEACTIVATION") and not _has(cues, "KIND_NOT_REMOVED")
    if complaint and kind != "cease_and_desist" and removed:
        fired.append(("high", "listing_removed"))
    if kind == "patent_evaluation":
        fired.append(("high", "patent_evaluation"))
    if kind == "cease_and_desist":
        fired.append(("high", "cease_and_desist"))
    if complaint and kind not in {"cease_and_desist", "patent_evaluation"} and deadline is not None:
        fired.append(("high", "stated_deadline"))
    if complaint and not fired:
        fired.append(("medium", "warning_only"))
    if kind == "buyer_message" and _has(cues, "KIND_IP_QUESTION"):
        fired.append(("medium", "buyer_ip_question"))
    if kind in {"retraction", "reinstatement"}:
        fired.append(("low", kind))
    if not fired:
        fired.append(("low", "not_a_complaint"))
    fired.sort(key=lambda item: URGENCIES.index(item[0]))
    reasons = [
        getattr(rules, level)[code].format(days=deadline if deadline is not None else short)
        for level, code in fired
    ]
    return fired[0][0], reasons


def classify(parsed: ParsedEmail, entities: Entities, sender: SenderProfile, tables: DomainTables) -> Verdict:
    """Decide kind, claims, urgency, deadline, marketplace and rights-owner contacts."""
    kind = decide_kind(parsed, entities, sender, tables)
    claims = claim_types(kind, entities)
    deadline = stated_deadline(kind, entities)
    urgency, reasons = rate_urgency(kind, claims, entities, deadline, tables)
    return Verdict(
        is_complaint=kind in COMPLAINT_KINDS,
        kind=kind,
        claim_types=claims,
        urgency=urgency,
        urgency_reasons=reasons,
        deadline_days=deadline,
        marketplace=choose_marketplace(parsed, entities, sender, tables),
        rights_owner_emails=rights_owner_emails(kind, parsed, entities, sender, tables),
    )
