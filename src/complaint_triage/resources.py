"""Where the shipped config/ and models/ live: inside the wheel, or beside src/ in a checkout."""

from __future__ import annotations

from pathlib import Path

from complaint_triage.errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def shipped_dir(name: str) -> Path:
    """The shipped `config` or `models` directory, packaged copy first."""
    packaged = _PACKAGE_DIR / "_data" / name
    if packaged.is_dir():
        return packaged
    checkout = _PACKAGE_DIR.parents[1] / name
    if checkout.is_dir():
        return checkout
    raise ConfigError(f"shipped {name}/ directory not found (looked in {packaged} and {checkout})")


def config_dir() -> Path:
    """The shipped default configuration and domain tables."""
    return shipped_dir("config")


def model_dir() -> Path:
    """The built spaCy pipeline."""
    return shipped_dir("models") / "complaint_triage_ner"
