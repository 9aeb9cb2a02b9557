"""Who sent a message: Amazon, a buyer through Amazon's relay, a look-alike, or someone else."""

from __future__ import annotations

import re

from pydantic import BaseModel

from complaint_triage.pipeline.domain import Senders
from complaint_triage.pipeline.parse import normalise_text
from complaint_triage.records import ParsedEmail

_AMAZON_TEAM_NAME = re.compile(
    r"(?i)\bamazon\b(\.[a-z.]+)?(\s+(seller|selling|services|notification|notifications|team|support|performance|brand|payments|account|legal|notice|ip)\b.*)?$|^\s*seller\s+(central|performance|notification)"
)
_AUTH_FAIL = re.compile(r"(?i)\b(dkim|dmarc)\s*=\s*(fail|permerror|softfail)")
_AMAZON_ADDRESS = re.compile(r"(?i)[\w.+-]+@(?:[\w-]+\.)*amazon\.(?:com\.[a-z]{2}|co\.[a-z]{2}|[a-z]{2,3})\b")


class SenderProfile(BaseModel):
    """What the From line and the authentication headers tell about the sender."""

    domain: str
    amazon_domain: bool
    buyer_relay: bool
    claims_amazon: bool
    lookalike: bool
    auth_failed: bool
    quoted_amazon_notice: bool

    @property
    def amazon_notice(self) -> bool:
        """A notice from Amazon itself, or a reply that quotes one."""
        return (self.amazon_domain and not self.buyer_relay) or self.quoted_amazon_notice


def domain_of(address: str) -> str:
    """The lower-case domain of an address ('' when there is none)."""
    return address.rsplit("@", 1)[1].lower().strip(". >") if "@" in address else ""


def is_amazon_domain(domain: str, senders: Senders) -> bool:
    """amazon.de, marketplace.amazon.de, sell.amazon.com ... (not amazon-notice.net)."""
    return any(domain == known or domain.endswith("." + known) for known in senders.amazon_domains)


def _undo_swaps(domain: str, senders: Senders) -> str:
    """amaz0n-seller.com -> amazon-seller.com."""
    for fake, real in senders.character_swaps.items():
        domain = domain.replace(fake, real)
    return domain


def _spells_swapped_brand(domain: str, senders: Senders) -> bool:
    """A domain that spells an Amazon name only once its swapped characters are undone."""
    undone = _undo_swaps(domain, senders)
    return undone != domain and any(brand in undone for brand in senders.imitated_brands)


def is_lookalike(domain: str, senders: Senders) -> bool:
    """A non-Amazon domain that spells an Amazon name, directly or with swapped characters."""
    if not domain or is_amazon_domain(domain, senders):
        return False
    return _spells_swapped_brand(domain, senders) or any(brand in domain for brand in senders.imitated_brands)


def profile_sender(parsed: ParsedEmail, senders: Senders) -> SenderProfile:
    """Profile the sender of a parsed message."""
    domain = domain_of(parsed.from_address)
    amazon = is_amazon_domain(domain, senders)
    claims = amazon or bool(_AMAZON_TEAM_NAME.search(normalise_text(parsed.from_name).strip()))
    return SenderProfile(
        domain=domain,
        amazon_domain=amazon,
        buyer_relay=amazon and domain.startswith(senders.buyer_relay_prefix),
        claims_amazon=claims,
        lookalike=is_lookalike(domain, senders) and (claims or _spells_swapped_brand(domain, senders)),
        auth_failed=any(_AUTH_FAIL.search(result) for result in parsed.authentication_results),
        quoted_amazon_notice=_quotes_amazon(parsed, senders),
    )


def _quotes_amazon(parsed: ParsedEmail, senders: Senders) -> bool:
    """A reply whose quoted part is an Amazon notice, or that answers a notice address."""
    if not parsed.quoted_text:
        return False
    recipients = set(parsed.to_addresses) | set(parsed.cc_addresses)
    if recipients & set(senders.notice_addresses):
        return True
    return any(
        is_amazon_domain(domain_of(address), senders)
        and not domain_of(address).startswith(senders.buyer_relay_prefix)
        for address in _AMAZON_ADDRESS.findall(parsed.quoted_text[:2000])
    )
