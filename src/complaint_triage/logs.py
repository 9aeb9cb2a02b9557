"""Logging: readable text or JSON lines on stderr, with secrets scrubbed from every line."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from datetime import datetime, timezone

_SECRET_ENV = re.compile(r"(?i)(password|passwd|secret|token|api_key|apikey)")
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]+:)([^@\s]+)(@)")
_registered: set[str] = set()
MAX_LINE_CHARS = 2000


def register_secret(value: str | None) -> None:
    """Remember a secret so that no log line can carry it."""
    if value and len(value) >= 4:
        _registered.add(value)


def _environment_secrets() -> set[str]:
    return {
        value for name, value in os.environ.items() if _SECRET_ENV.search(name) and value and len(value) >= 4
    }


def scrub(text: str) -> str:
    """Replace every known secret and URL password in TEXT."""
    text = _URL_PASSWORD.sub(r"\1***\3", text)
    for secret in _registered | _environment_secrets():
        text = text.replace(secret, "***")
    return text


class ScrubbingFilter(logging.Filter):
    """Rewrites each record's message with secrets removed."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if len(message) > MAX_LINE_CHARS:  # text quoted from hostile mail must not flood the log
            message = message[:MAX_LINE_CHARS] + f"... ({len(message) - MAX_LINE_CHARS} more characters)"
        record.msg = scrub(message)
        record.args = ()
        if record.exc_info:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


class JsonLineFormatter(logging.Formatter):
    """One JSON object per log line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("source", "folder", "uid", "message_id", "count"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(log_format: str = "text", level: int = logging.INFO) -> None:
    """Send the package's logs to stderr as text or JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ScrubbingFilter())
    handler.setFormatter(
        JsonLineFormatter()
        if log_format == "json"
        else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logger = logging.getLogger("complaint_triage")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
