"""Secrets and TLS, the one way: a secret comes from an environment variable or a file (never the
config file) and is remembered so no log line carries it; TLS contexts always verify."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

from complaint_triage.errors import ConfigError, TriageError
from complaint_triage.logs import register_secret


def read_secret(
    env_name: str | None, file_name: str | None, what: str, error: type[TriageError] = ConfigError
) -> str | None:
    """The secret in ENV_NAME or FILE_NAME (None when neither is named); ERROR says which is missing."""
    if env_name:
        value = os.environ.get(env_name)
        if not value:
            raise error(f"{what}: environment variable {env_name} is not set")
    elif file_name:
        try:
            value = Path(file_name).read_text(encoding="utf-8").strip("\r\n")
        except OSError as exc:
            raise error(f"{what}: cannot read {file_name}: {exc.strerror or exc}") from None
        if not value:
            raise error(f"{what}: {file_name} is empty")
    else:
        return None
    register_secret(value)
    return value


def tls_context(ca_file: str | None, what: str, error: type[TriageError] = ConfigError) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or only the private CA in CA_FILE."""
    try:
        return ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
    except (OSError, ssl.SSLError) as exc:
        raise error(
            f"{what}: cannot read ca_file {ca_file}: {getattr(exc, 'strerror', None) or exc}"
        ) from None
