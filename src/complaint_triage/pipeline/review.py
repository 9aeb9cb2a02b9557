"""Does a person need to read this? Mail that looks like a notice or a legal demand the rules left undecided."""

from __future__ import annotations

from collections import Counter

from complaint_triage.pipeline.classify import COMPLAINT_KINDS, Verdict
from complaint_triage.pipeline.domain import DomainTables
from complaint_triage.pipeline.senders import SenderProfile
from complaint_triage.records import Entities, ParsedEmail

# Below this many words a message is too short to say which language it is in.
MIN_WORDS_FOR_LANGUAGE = 25
# A pack's function words must make up at least this share of the words to name the language.
MIN_LANGUAGE_SHARE = 0.07
_LETTER_TYPES = (
    "application/pdf",
    "application/msword",
    "application/vnd.openxmlformats-officedocument",
    "image/",
)
_LEGAL = ("KIND_CEASE_DESIST", "KIND_DEMAND", "KIND_LAWSUIT")
_STRONG_CLAIMS = ("CLAIM_TRADEMARK", "CLAIM_COPYRIGHT", "CLAIM_PATENT", "CLAIM_DESIGN", "CLAIM_COUNTERFEIT")
# Mail the rules placed on purpose: broadcasts, offers, bait, the seller writing to a brand, Amazon's
# non-enforcement mail. Reading it again would only add noise.
_DECIDED_NOT_NOTICE = (
    "KIND_NEWSLETTER",
    "KIND_SOLICITATION",
    "KIND_PHISHING_BAIT",
    "KIND_REPLY_TO_BRAND",
    "KIND_INFORMATIONAL",
)


def _has(cues: Counter, *labels: str) -> bool:
    return any(cues.get(label, 0) for label in labels)


def language_known(entities: Entities) -> bool:
    """True when some language pack's function words are common enough in the text (or it is too short to tell)."""
    if entities.words < MIN_WORDS_FOR_LANGUAGE:
        return True
    best = max(entities.languages.values(), default=0)
    return best >= max(3, MIN_LANGUAGE_SHARE * entities.words)


def _looks_like_notice(entities: Entities, sender: SenderProfile) -> bool:
    """Identifiers or an Amazon sender: something a notice would carry, whatever its language."""
    return sender.amazon_notice or bool(
        entities.complaint_ids or entities.registration_numbers or entities.patent_numbers or entities.asins
    )


def _letters(parsed: ParsedEmail) -> list[str]:
    return [
        a.filename or a.content_type for a in parsed.attachments if a.content_type.startswith(_LETTER_TYPES)
    ]


def _undecided_reasons(parsed: ParsedEmail, entities: Entities, sender: SenderProfile) -> list[str]:
    """Signs of a notice or a legal demand in mail the rules did not take for a complaint."""
    cues = Counter(entities.cues)
    if sender.lookalike or parsed.list_unsubscribe or _has(cues, *_DECIDED_NOT_NOTICE):
        return []
    claimed = _has(cues, *_STRONG_CLAIMS) or bool(entities.registration_numbers or entities.patent_numbers)
    reasons = []
    if _letters(parsed) and (claimed or _has(cues, *_LEGAL)):
        reasons.append("attached_letter")
    if (
        not sender.amazon_domain
        and _has(cues, *_LEGAL)
        and (claimed or _has(cues, "CLAIM_TRADEMARK_WORD", "CLAIM_COPYRIGHT_WORD", "CLAIM_PATENT_WORD"))
    ):
        reasons.append("legal_words")
    if (
        sender.amazon_notice
        and (claimed or entities.complaint_ids)
        and _has(cues, "KIND_REMOVAL", "KIND_RELAYED", "KIND_SUSPECTED", "KIND_SUSPECTED_STRONG")
    ):
        reasons.append("amazon_notice_undecided")
    if (
        entities.complaint_ids
        and (entities.asins or entities.registration_numbers or entities.patent_numbers)
        and not sender.buyer_relay
    ):
        reasons.append("identifiers_together")
    return reasons


def review(parsed: ParsedEmail, entities: Entities, sender: SenderProfile, verdict: Verdict) -> list[str]:
    """The review reason codes, most important first; empty when the rules' verdict can stand."""
    reasons = []
    if not language_known(entities) and _looks_like_notice(entities, sender):
        reasons.append("unknown_language")
    if verdict.kind not in COMPLAINT_KINDS and verdict.kind not in {
        "retraction",
        "reinstatement",
        "buyer_message",
    }:
        reasons += _undecided_reasons(parsed, entities, sender)
    return list(dict.fromkeys(reasons))


def raise_for_review(verdict: Verdict, reasons: list[str], tables: DomainTables) -> Verdict:
    """A record that needs review is at least medium; its reasons say why first."""
    if not reasons:
        return verdict
    low = set(tables.urgency.low.values())
    kept = [reason for reason in verdict.urgency_reasons if reason not in low]
    urgency = verdict.urgency if verdict.urgency != "low" else "medium"
    return verdict.model_copy(
        update={"urgency": urgency, "urgency_reasons": [tables.urgency.medium["needs_review"]] + kept}
    )
