"""Domain tables kept as data in config/: senders, stores, Nice classes, urgency rules, playbooks."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from complaint_triage.errors import ConfigError
from complaint_triage.records import CLAIM_TYPES, KINDS, URGENCIES
from complaint_triage.resources import config_dir

# The rubric's rules as the classifier fires them, each at the level design.md gives it.
# urgency.toml words them; it may not move a rule to another level or drop one.
URGENCY_RULES: dict[str, tuple[str, ...]] = {
    "critical": (
        "account_deactivated",
        "account_at_risk",
        "counterfeit_claim",
        "legal_action",
        "short_legal_deadline",
    ),
    "high": ("listing_removed", "patent_evaluation", "cease_and_desist", "stated_deadline"),
    "medium": ("warning_only", "buyer_ip_question", "needs_review"),
    "low": ("retraction", "reinstatement", "not_a_complaint"),
}
URGENCY_SETTINGS = ("short_legal_deadline_days",)


class Senders(BaseModel):
    amazon_domains: list[str]
    buyer_relay_prefix: str
    notice_addresses: list[str]
    imitated_brands: list[str]
    character_swaps: dict[str, str]


class Store(BaseModel):
    country: str
    offices: list[str]
    seller_central: str


class Marketplaces(BaseModel):
    stores: dict[str, Store]
    office_words: dict[str, list[str]]


class Category(BaseModel):
    classes: list[int]
    words: list[str]


class NiceTables(BaseModel):
    headings: dict[int, str]
    categories: dict[str, Category]


class UrgencyRules(BaseModel):
    """urgency.toml: the wording of each rule of the rubric, at the level the rubric gives it."""

    model_config = ConfigDict(extra="forbid")
    critical: dict[str, str]
    high: dict[str, str]
    medium: dict[str, str]
    low: dict[str, str]
    review: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, int]

    @model_validator(mode="after")
    def _rubric_levels(self) -> "UrgencyRules":
        for level in URGENCIES:
            for code in sorted(set(getattr(self, level)) - set(URGENCY_RULES[level])):
                home = next((other for other, codes in URGENCY_RULES.items() if code in codes), None)
                raise ValueError(
                    f"rule {code!r} belongs under [{home}], not [{level}]"
                    if home
                    else f"[{level}] {code!r} is not a rule the classifier knows"
                )
        for level in URGENCIES:
            if missing := set(URGENCY_RULES[level]) - set(getattr(self, level)):
                raise ValueError(f"[{level}] lacks the rule(s) {', '.join(sorted(missing))}")
        if missing := set(URGENCY_SETTINGS) - set(self.settings):
            raise ValueError(f"[settings] lacks {', '.join(sorted(missing))}")
        return self


class KindPlaybook(BaseModel):
    default_days: int | None = None
    steps: list[str] = Field(default_factory=list)


class CheckPlaybook(BaseModel):
    step: str


class Playbooks(BaseModel):
    """playbooks.toml: next steps for every kind and claim type, and for the checks."""

    kinds: dict[str, KindPlaybook]
    claims: dict[str, KindPlaybook]
    checks: dict[str, CheckPlaybook]

    @model_validator(mode="after")
    def _complete(self) -> "Playbooks":
        for table, wanted in (("kinds", KINDS), ("claims", CLAIM_TYPES)):
            unknown = set(getattr(self, table)) - set(wanted)
            missing = [name for name in wanted if name not in getattr(self, table)]
            if unknown:
                raise ValueError(f"[{table}] has no such entry: {', '.join(sorted(unknown))}")
            if missing:
                raise ValueError(f"[{table}] lacks a playbook for {', '.join(missing)}")
        return self


class DomainTables(BaseModel):
    """Everything classify and advise read besides the message."""

    senders: Senders
    marketplaces: Marketplaces
    nice: NiceTables
    urgency: UrgencyRules
    playbooks: Playbooks


_FILES = {
    "senders": "domain/senders.toml",
    "marketplaces": "domain/marketplaces.toml",
    "nice": "domain/nice_classes.toml",
    "urgency": "urgency.toml",
    "playbooks": "playbooks.toml",
}


def _read_toml(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


@lru_cache(maxsize=8)
def load_domain(root: str | None = None) -> DomainTables:
    """Read and validate the domain tables under ROOT (default: the shipped config/)."""
    base = Path(root) if root else config_dir()
    data = {key: _read_toml(base / relative) for key, relative in _FILES.items()}
    try:
        return DomainTables.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ConfigError(
            f"invalid domain table under {base}: {'.'.join(map(str, first['loc']))}: {first['msg']}"
        ) from None
