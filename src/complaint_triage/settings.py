"""Service configuration: TOML file, environment overrides, pydantic validation."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from complaint_triage.errors import ConfigError
from complaint_triage.resources import config_dir

ENV_CONFIG = "COMPLAINT_TRIAGE_CONFIG"
ENV_PREFIX = "COMPLAINT_TRIAGE__"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """'5m' -> 5 minutes; seconds, minutes, hours and days."""
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 5m, 1h)")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses."""
    if host.lower() in {"localhost", "localhost.localdomain"}:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_inline_secrets(data: Any, keys: tuple[str, ...], advice: str) -> Any:
    """A config section as given, unless it holds a secret itself."""
    if isinstance(data, dict) and any(key in data for key in keys):
        raise ValueError(f"secrets never live in the config file: {advice}")
    return data


class StoreSettings(BaseModel):
    url: str = "sqlite:///var/complaint-triage.db"
    # Triaged mail is committed in batches, each at the latest this long after its first message:
    # how soon records reach the store, and how much work a crash can make the worker repeat.
    commit_seconds: float = Field(default=1.0, gt=0, le=600)


class SourceSettings(BaseModel):
    """One place mail comes from."""

    name: str
    type: Literal["directory", "mbox", "maildir", "imap", "eml", "graph", "gmail"]
    path: str | None = None
    host: str | None = None
    port: int | None = None
    security: Literal["ssl", "starttls", "none"] = "ssl"
    ca_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    oauth2_token_command: str | None = None
    oauth2_provider: Literal["microsoft", "google"] | None = None  # XOAUTH2 built in (IMAP): see sources/oauth.py
    oauth2_scope: str | None = None  # default: Exchange Online's IMAP, or https://mail.google.com/
    folder: str = "INBOX"
    folders: list[str] = Field(default_factory=list)
    after: Literal["keep", "seen", "move"] = "keep"
    move_to: str | None = None
    max_message_bytes: int = 25 * 1024 * 1024
    timeout_seconds: float = 30.0
    fetch_chunk: int = 200
    watch: bool = False
    # Microsoft Graph (type = "graph"): app-only access to one user or shared mailbox
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_file: str | None = None
    certificate_file: str | None = None  # PEM: the private key and the certificate registered with the app
    mailbox: str | None = None
    authority_host: str = "https://login.microsoftonline.com"  # another for a national cloud
    graph_url: str = "https://graph.microsoft.com/v1.0"
    # Gmail API (type = "gmail"): a service account acting as `user`, or an installed app's token
    credentials_file: str | None = None  # the service account's JSON key (domain-wide delegation)
    user: str | None = None  # the mailbox; "me" for the token_file's own account
    client_secrets_file: str | None = None  # the installed app's client, for the consent flow
    token_file: str | None = None  # the authorised-user token the consent flow wrote (refresh token, mode 0600)
    query: str = "in:inbox"  # what the first poll lists
    label: str = "INBOX"  # whose additions later polls read from the history
    gmail_url: str = "https://gmail.googleapis.com/gmail/v1"
    token_uri: str = "https://oauth2.googleapis.com/token"  # where token_file's refresh token is spent

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_password(cls, data: Any) -> Any:
        return refuse_inline_secrets(data, ("password", "token", "client_secret"), "use password_env, password_file or oauth2_token_command")

    @model_validator(mode="after")
    def _check_shape(self) -> "SourceSettings":
        if self.type == "imap":
            self._check_imap()
        elif self.type == "graph":
            self._check_graph()
        elif self.type == "gmail":
            self._check_gmail()
        elif not self.path:
            raise ValueError(f"source {self.name!r}: type {self.type} needs a path")
        return self

    def _check_imap(self) -> None:
        if not self.host or not self.username:
            raise ValueError(f"source {self.name!r}: imap needs host and username")
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError(f"source {self.name!r}: security = \"none\" is allowed only for a loopback host")
        if self.after == "move" and not self.move_to:
            raise ValueError(f"source {self.name!r}: after = \"move\" needs move_to")
        if not (self.password_env or self.password_file or self.oauth2_token_command or self.oauth2_provider):
            raise ValueError(f"source {self.name!r}: imap needs password_env, password_file, oauth2_token_command or oauth2_provider")
        if self.oauth2_provider == "microsoft" and not (self.tenant_id and self.client_id and (
                self.client_secret_env or self.client_secret_file or self.certificate_file)):
            raise ValueError(f"source {self.name!r}: oauth2_provider = \"microsoft\" needs tenant_id, client_id and a client secret or certificate")
        if self.oauth2_provider == "google" and not (self.token_file or self.credentials_file):
            raise ValueError(f"source {self.name!r}: oauth2_provider = \"google\" needs token_file or credentials_file")
        if self.port is None:
            self.port = 993 if self.security == "ssl" else 143

    def _check_graph(self) -> None:
        missing = [key for key in ("tenant_id", "client_id", "mailbox") if not getattr(self, key)]
        if missing:
            raise ValueError(f"source {self.name!r}: graph needs {', '.join(missing)}")
        if not (self.client_secret_env or self.client_secret_file or self.certificate_file):
            raise ValueError(f"source {self.name!r}: graph needs client_secret_env, client_secret_file or certificate_file")
        if self.after == "move" and not self.move_to:
            raise ValueError(f"source {self.name!r}: after = \"move\" needs move_to")
        if self.folder == "INBOX":  # the IMAP default; Graph's well-known name
            self.folder = "inbox"

    def _check_gmail(self) -> None:
        if not self.user:
            raise ValueError(f"source {self.name!r}: gmail needs user (the mailbox, or \"me\" with token_file)")
        if not (self.credentials_file or self.token_file):
            raise ValueError(f"source {self.name!r}: gmail needs credentials_file (a service account) or token_file")
        if self.after == "move" and not self.move_to:
            raise ValueError(f"source {self.name!r}: after = \"move\" needs move_to")

    @property
    def all_folders(self) -> list[str]:
        """The folders to poll, in order."""
        return self.folders or [self.folder]


class ScheduleSettings(BaseModel):
    poll_every: str = "5m"
    daily_report_at: str = "07:00"
    timezone: str = "UTC"

    @field_validator("poll_every")
    @classmethod
    def _valid_duration(cls, value: str) -> str:
        parse_duration(value)
        return value

    @field_validator("daily_report_at")
    @classmethod
    def _valid_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError(f"daily_report_at must be HH:MM, got {value!r}")
        return value

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class ReportSettings(BaseModel):
    dir: str = "reports"
    formats: list[Literal["html", "markdown", "json", "csv"]] = Field(default_factory=lambda: ["html", "markdown", "json"])


class EscalationSettings(BaseModel):
    """When repetition becomes an escalation in the summary."""

    window_days: int = Field(30, ge=1)
    complaints_per_owner: int = Field(3, ge=2)
    cases_per_asin: int = Field(2, ge=2)


class EmailAlertSettings(BaseModel):
    """Alerts by email over SMTP; the password comes from the environment or a file."""

    host: str
    port: int | None = None
    security: Literal["starttls", "ssl", "none"] = "starttls"
    ca_file: str | None = None
    username: str | None = None
    password_env: str | None = None
    password_file: str | None = None
    sender: str
    to: list[str] = Field(min_length=1)
    timeout_seconds: float = 20.0

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_password(cls, data: Any) -> Any:
        return refuse_inline_secrets(data, ("password",), "use password_env or password_file")

    @model_validator(mode="after")
    def _check(self) -> "EmailAlertSettings":
        if self.security == "none" and not is_loopback(self.host):
            raise ValueError('alerts.email: security = "none" is allowed only for a loopback host')
        if self.port is None:
            self.port = 465 if self.security == "ssl" else 587
        return self


class WebhookAlertSettings(BaseModel):
    """Alerts as a JSON POST with a Slack-compatible `text`; the URL (which carries a token) comes from the environment or a file."""

    url_env: str | None = None
    url_file: str | None = None
    ca_file: str | None = None
    timeout_seconds: float = 10.0

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_url(cls, data: Any) -> Any:
        return refuse_inline_secrets(data, ("url",), "a webhook URL carries a token: use url_env or url_file")

    @model_validator(mode="after")
    def _check(self) -> "WebhookAlertSettings":
        if not (self.url_env or self.url_file):
            raise ValueError("alerts.webhook needs url_env or url_file")
        return self


class AlertSettings(BaseModel):
    """Who hears about a new critical (and optionally high) case, and how hard to try."""

    urgencies: list[Literal["critical", "high"]] = Field(default_factory=lambda: ["critical"])
    max_age: str = "3d"  # older mail (a backfill) is reported, not alerted
    source_down_after: str = "1h"  # a source failing this long (or refusing its credentials) is announced
    attempts_per_run: int = Field(3, ge=1)
    max_attempts: int = Field(10, ge=1)
    email: EmailAlertSettings | None = None
    webhook: WebhookAlertSettings | None = None

    @field_validator("max_age", "source_down_after")
    @classmethod
    def _valid_age(cls, value: str) -> str:
        parse_duration(value)
        return value

    @property
    def enabled(self) -> bool:
        """True when at least one channel is configured."""
        return self.email is not None or self.webhook is not None


class Settings(BaseModel):
    """The whole configuration file."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    escalations: EscalationSettings = Field(default_factory=EscalationSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    config_path: str | None = None

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Settings":
        names = [source.name for source in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("source names must be unique")
        return self


def resolve_config_path(explicit: str | os.PathLike | None) -> Path:
    """--config, else $COMPLAINT_TRIAGE_CONFIG, else ./config/complaint-triage.toml, else the shipped default."""
    for candidate in (explicit, os.environ.get(ENV_CONFIG)):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            return path
    local = Path("config/complaint-triage.toml")
    return local if local.is_file() else config_dir() / "complaint-triage.toml"


def _apply_env_overrides(data: dict, environ: dict[str, str]) -> dict:
    """COMPLAINT_TRIAGE__STORE__URL=... sets [store] url; list items by index (SOURCES__0__HOST)."""
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX):].split("__") if part]
        _set_path(data, path, value, key)
    return data


def _set_path(node: Any, path: list[str], value: str, key: str) -> None:
    for index, part in enumerate(path):
        last = index == len(path) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"{key}: no list item {part}")
            part = int(part)
        if last:
            node[part] = _env_value(value)
            return
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        else:
            node = node[part]


def _env_value(value: str) -> Any:
    """Environment values are TOML literals when they parse as such, else strings."""
    try:
        return tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        return value


def load_settings(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, override from the environment, and validate the configuration."""
    config_path = resolve_config_path(path)
    try:
        data = tomllib.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read config {config_path}: {exc}") from exc
    data = _apply_env_overrides(data, dict(os.environ if environ is None else environ))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigError(f"invalid config {config_path}: {where}: {first['msg']}") from None
    settings.config_path = str(config_path)
    return settings
