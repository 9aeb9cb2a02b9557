"""Service configuration: TOML file, environment overrides, pydantic validation."""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import typing
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from complaint_triage.credentials import read_secret
from complaint_triage.errors import ConfigError

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


class Section(BaseModel):
    """A part of the configuration: an unknown key is an error, never silently ignored."""

    model_config = ConfigDict(extra="forbid")


class StoreSettings(Section):
    """Where records are kept. A PostgreSQL password comes from the environment or a file, never the URL."""

    url: str = "sqlite:///var/complaint-triage.db"
    url_env: str | None = None  # the whole URL from this environment variable
    url_file: str | None = None  # ... or from this file
    password_env: str | None = None  # the database password from this environment variable
    password_file: str | None = None  # ... or from this file
    # Triaged mail is committed in batches, each at the latest this long after its first message:
    # how soon records reach the store, and how much work a crash can make the worker repeat.
    commit_seconds: float = Field(default=1.0, gt=0, le=600)

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_password(cls, data: Any) -> Any:
        return refuse_inline_secrets(data, ("password",), "use password_env or password_file")


def _has_inline_password(url: str) -> bool:
    """True when a database URL carries a password (postgresql://user:secret@host/db)."""
    return bool(re.match(r"^[a-z0-9+]+://[^/@:]*:[^/@]*@", url, re.IGNORECASE))


class PipelineSettings(Section):
    """Where the domain tables, patterns and the built spaCy pipeline are read from (default: those shipped)."""

    tables_dir: str | None = None  # holds urgency.toml, playbooks.toml, domain/ and patterns/
    model_dir: str | None = None  # the built pipeline (complaint-triage build-model --output)


class SourceSettings(Section):
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
    oauth2_provider: Literal["microsoft", "google"] | None = (
        None  # XOAUTH2 built in (IMAP): see sources/oauth.py
    )
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
    token_file: str | None = (
        None  # the authorised-user token the consent flow wrote (refresh token, mode 0600)
    )
    query: str = "in:inbox"  # what the first poll lists
    label: str = "INBOX"  # whose additions later polls read from the history
    gmail_url: str = "https://gmail.googleapis.com/gmail/v1"
    token_uri: str = "https://oauth2.googleapis.com/token"  # where token_file's refresh token is spent

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_password(cls, data: Any) -> Any:
        return refuse_inline_secrets(
            data,
            ("password", "token", "client_secret"),
            "use password_env, password_file or oauth2_token_command",
        )

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
            raise ValueError(f'source {self.name!r}: security = "none" is allowed only for a loopback host')
        if self.after == "move" and not self.move_to:
            raise ValueError(f'source {self.name!r}: after = "move" needs move_to')
        if not (self.password_env or self.password_file or self.oauth2_token_command or self.oauth2_provider):
            raise ValueError(
                f"source {self.name!r}: imap needs password_env, password_file, oauth2_token_command or oauth2_provider"
            )
        if self.oauth2_provider == "microsoft" and not (
            self.tenant_id
            and self.client_id
            and (self.client_secret_env or self.client_secret_file or self.certificate_file)
        ):
            raise ValueError(
                f'source {self.name!r}: oauth2_provider = "microsoft" needs tenant_id, client_id and a client secret or certificate'
            )
        if self.oauth2_provider == "google" and not (self.token_file or self.credentials_file):
            raise ValueError(
                f'source {self.name!r}: oauth2_provider = "google" needs token_file or credentials_file'
            )
        if self.port is None:
            self.port = 993 if self.security == "ssl" else 143

    def _check_graph(self) -> None:
        missing = [key for key in ("tenant_id", "client_id", "mailbox") if not getattr(self, key)]
        if missing:
            raise ValueError(f"source {self.name!r}: graph needs {', '.join(missing)}")
        if not (self.client_secret_env or self.client_secret_file or self.certificate_file):
            raise ValueError(
                f"source {self.name!r}: graph needs client_secret_env, client_secret_file or certificate_file"
            )
        if self.after == "move" and not self.move_to:
            raise ValueError(f'source {self.name!r}: after = "move" needs move_to')
        if self.folder == "INBOX":  # the IMAP default; Graph's well-known name
            self.folder = "inbox"

    def _check_gmail(self) -> None:
        if not self.user:
            raise ValueError(f'source {self.name!r}: gmail needs user (the mailbox, or "me" with token_file)')
        if not (self.credentials_file or self.token_file):
            raise ValueError(
                f"source {self.name!r}: gmail needs credentials_file (a service account) or token_file"
            )
        if self.after == "move" and not self.move_to:
            raise ValueError(f'source {self.name!r}: after = "move" needs move_to')

    @property
    def all_folders(self) -> list[str]:
        """The folders to poll, in order."""
        return self.folders or [self.folder]


class ScheduleSettings(Section):
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


class ChatSettings(Section):
    """A chat channel the morning summary's short version is posted to; the webhook URL (it carries a token) from the environment or a file."""

    type: Literal["slack", "teams"]
    url_env: str | None = None
    url_file: str | None = None
    ca_file: str | None = None
    timeout_seconds: float = 10.0

    @model_validator(mode="before")
    @classmethod
    def _refuse_inline_url(cls, data: Any) -> Any:
        return refuse_inline_secrets(data, ("url",), "a webhook URL carries a token: use url_env or url_file")

    @model_validator(mode="after")
    def _check(self) -> "ChatSettings":
        if not (self.url_env or self.url_file):
            raise ValueError(f"reports.chat ({self.type}) needs url_env or url_file")
        return self


class ReportSettings(Section):
    dir: str = "reports"
    formats: list[Literal["html", "markdown", "json", "csv"]] = Field(
        default_factory=lambda: ["html", "markdown", "json"]
    )
    email_to: list[str] = Field(
        default_factory=list
    )  # sent over the [alerts.email] SMTP settings at daily_report_at
    chat: list[ChatSettings] = Field(default_factory=list)
    workspace_url: str | None = (
        None  # where `complaint-triage serve` is reached, for links in the chat version
    )


class EscalationSettings(Section):
    """When repetition becomes an escalation in the summary."""

    window_days: int = Field(30, ge=1)
    complaints_per_owner: int = Field(3, ge=2)
    cases_per_asin: int = Field(2, ge=2)


class EmailAlertSettings(Section):
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


class WebhookAlertSettings(Section):
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


class AlertSettings(Section):
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


class AttachmentSettings(Section):
    """Limits on reading attached PDF and DOCX letters; each extraction runs in a child process under them."""

    model_config = ConfigDict(
        frozen=True, extra="forbid"
    )  # hashable: the cached default triager is keyed on it

    read: bool = True  # false: attachments stay metadata only
    max_per_message: int = Field(10, ge=0)
    max_bytes: int = Field(25 * 1024 * 1024, ge=1)  # an attachment larger than this is skipped
    max_pages: int = Field(50, ge=1)
    max_chars: int = Field(100_000, ge=1)
    timeout_seconds: float = Field(10.0, gt=0)  # wall clock per attachment
    cpu_seconds: int = Field(10, ge=1)  # RLIMIT_CPU per attachment
    memory_mb: int = Field(768, ge=128)  # RLIMIT_AS of the reading process
    max_stream_bytes: int = Field(32 * 1024 * 1024, ge=1024)  # one decompressed PDF stream
    max_zip_members: int = Field(1000, ge=1)
    max_document_bytes: int = Field(32 * 1024 * 1024, ge=1024)  # word/document.xml, declared and read
    max_zip_total_bytes: int = Field(256 * 1024 * 1024, ge=1024)  # all members, declared
    max_compression_ratio: int = Field(200, ge=1)  # declared size over compressed size, per member
    recycle_rss_mb: int = Field(256, ge=32)  # the reading process is replaced when it holds more


class Settings(Section):
    """The whole configuration file."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    sources: list[SourceSettings] = Field(default_factory=list)
    schedule: ScheduleSettings = Field(default_factory=ScheduleSettings)
    reports: ReportSettings = Field(default_factory=ReportSettings)
    escalations: EscalationSettings = Field(default_factory=EscalationSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    attachments: AttachmentSettings = Field(default_factory=AttachmentSettings)
    config_path: str | None = None

    @model_validator(mode="after")
    def _unique_source_names(self) -> "Settings":
        names = [source.name for source in self.sources]
        if len(names) != len(set(names)):
            raise ValueError("source names must be unique")
        return self


def resolve_config_path(explicit: str | os.PathLike | None) -> Path | None:
    """--config, else $COMPLAINT_TRIAGE_CONFIG, else ./config/complaint-triage.toml; None means the built-in defaults."""
    for candidate in (explicit, os.environ.get(ENV_CONFIG)):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise ConfigError(f"config file not found: {path}")
            return path
    local = Path("config/complaint-triage.toml")
    return local if local.is_file() else None


def _apply_env_overrides(data: dict, environ: dict[str, str]) -> dict[tuple, str]:
    """COMPLAINT_TRIAGE__STORE__URL=... sets [store] url; list items by index (SOURCES__0__HOST).

    Returns which environment variable set each key, so that an error can name it.
    """
    origins: dict[tuple, str] = {}
    for key, value in sorted(environ.items()):
        if not key.startswith(ENV_PREFIX):
            continue
        path = [part.lower() for part in key[len(ENV_PREFIX) :].split("__") if part]
        _set_path(data, path, value, key)
        origins[tuple(int(part) if part.isdigit() else part for part in path)] = key
    return origins


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


def _section_model(annotation: Any) -> type[BaseModel] | None:
    """The settings model inside an annotation such as `list[SourceSettings]` or `EmailAlertSettings | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for argument in typing.get_args(annotation):
        found = _section_model(argument)
        if found is not None:
            return found
    return None


def known_keys(location: tuple) -> list[str]:
    """The keys the section at LOCATION (as pydantic reports it: ('sources', 0)) accepts."""
    model: type[BaseModel] | None = Settings
    for part in location:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = _section_model(field.annotation) if field else None
        if model is None:
            return []
    return [name for name in model.model_fields if name != "config_path"]


def _where(location: tuple) -> str:
    return "".join(
        f"[{part}]" if isinstance(part, int) else (f".{part}" if index else str(part))
        for index, part in enumerate(location)
    )


def describe_problem(error: dict, origins: dict[tuple, str]) -> str:
    """One line naming the key, where it came from, and for an unknown key the closest valid one."""
    location = tuple(error["loc"])
    where = _where(location) or "(top level)"
    origin = origins.get(location)
    prefix = f"{origin} (sets {where})" if origin else where
    if error["type"] != "extra_forbidden":
        return f"{prefix}: {error['msg']}"
    known = known_keys(location[:-1])
    close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(known)}"
    return f"{prefix}: unknown key {location[-1]!r}; {hint}"


def _absolute(value: str | None, base: Path) -> str | None:
    """A path from the config file, relative to the file's directory."""
    if not value:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else base / path)


_SQLITE_URL = re.compile(r"^(sqlite(?:\+\w+)?:///)([^?]*)(.*)$")


def _absolute_sqlite(url: str, base: Path) -> str:
    """sqlite:///var/x.db in a config file means var/x.db beside the file; absolute and in-memory URLs stay."""
    match = _SQLITE_URL.match(url)
    if not match or not match.group(2) or match.group(2) == ":memory:" or match.group(2).startswith("file:"):
        return url
    return match.group(1) + _absolute(match.group(2), base) + match.group(3)


def resolve_paths(settings: Settings, base: Path) -> Settings:
    """Make every path in SETTINGS absolute against BASE (the config file's directory)."""
    for source in settings.sources:
        source.path, source.ca_file, source.password_file = (
            _absolute(v, base) for v in (source.path, source.ca_file, source.password_file)
        )
    settings.reports.dir = _absolute(settings.reports.dir, base)
    store = settings.store
    store.url, store.url_file, store.password_file = (
        _absolute_sqlite(store.url, base),
        _absolute(store.url_file, base),
        _absolute(store.password_file, base),
    )
    settings.pipeline.tables_dir, settings.pipeline.model_dir = (
        _absolute(settings.pipeline.tables_dir, base),
        _absolute(settings.pipeline.model_dir, base),
    )
    if settings.alerts.email:
        email = settings.alerts.email
        email.ca_file, email.password_file = (
            _absolute(email.ca_file, base),
            _absolute(email.password_file, base),
        )
    if settings.alerts.webhook:
        hook = settings.alerts.webhook
        hook.url_file, hook.ca_file = _absolute(hook.url_file, base), _absolute(hook.ca_file, base)
    return settings


def load_settings(path: str | os.PathLike | None = None, environ: dict[str, str] | None = None) -> Settings:
    """Read, override from the environment, and validate the configuration (built-in defaults without a file)."""
    config_path = resolve_config_path(path)
    data: dict = {}
    if config_path is not None:
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read config {config_path}: {exc}") from exc
    url = data.get("store", {}).get("url") if isinstance(data.get("store"), dict) else None
    if isinstance(url, str) and _has_inline_password(url):
        raise ConfigError(
            f"invalid config {config_path}: store.url holds a password, and secrets never live in the config file: use password_env or password_file (or url_env)"
        )
    origins = _apply_env_overrides(data, dict(os.environ if environ is None else environ))
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        where = f"invalid config {config_path}" if config_path else "invalid configuration"
        raise ConfigError(f"{where}: {describe_problem(exc.errors()[0], origins)}") from None
    if config_path is not None:
        settings.config_path = str(config_path)
        resolve_paths(settings, config_path.resolve().parent)
    settings.store.url = store_url(settings.store)
    return settings


_USER_PART = re.compile(r"^([a-z0-9+]+://)([^/@:]+)(@.*)$", re.IGNORECASE)


def store_url(store: StoreSettings) -> str:
    """The store URL to connect with: from url_env / url_file when named, with the password from password_env / password_file."""
    url = read_secret(store.url_env, store.url_file, "store.url") or store.url
    password = read_secret(store.password_env, store.password_file, "store.password")
    if not password:
        return url
    match = _USER_PART.match(url)
    if not match:
        raise ConfigError(
            "store: a password is configured but the store URL names no user (postgresql+psycopg://USER@host/db)"
        )
    return f"{match.group(1)}{match.group(2)}:{quote(password, safe='')}{match.group(3)}"
