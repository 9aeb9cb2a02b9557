"""Domain tables kept as data in config/: senders, stores, Nice classes, urgency rules, playbooks."""

from __future__ import annotations

import tomllib
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from complaint_triage.errors import ConfigError
from complaint_triage.resources import config_dir


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
    critical: dict[str, str]
    high: dict[str, str]
    medium: dict[str, str]
    low: dict[str, str]
    review: dict[str, str] = Field(default_factory=dict)
    settings: dict[str, int]


class KindPlaybook(BaseModel):
    default_days: int | None = None
    steps: list[str] = Field(default_factory=list)


class CheckPlaybook(BaseModel):
    step: str


class Playbooks(BaseModel):
    kinds: dict[str, KindPlaybook]
    claims: dict[str, KindPlaybook]
    checks: dict[str, CheckPlaybook]


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
        raise ConfigError(f"invalid domain table under {base}: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
