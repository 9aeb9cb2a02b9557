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


def shipped_inside_package() -> bool:
    """True when config/ and models/ are the copies inside an installed wheel, not a checkout's."""
    return (_PACKAGE_DIR / "_data" / "models").is_dir()


def model_location(root: str | None) -> str | None:
    """The pipeline under ROOT: ROOT itself when it holds one, else ROOT/complaint_triage_ner (as build-model --output writes it)."""
    if root is None or (Path(root) / "config.cfg").is_file():
        return root
    return str(Path(root) / "complaint_triage_ner")
