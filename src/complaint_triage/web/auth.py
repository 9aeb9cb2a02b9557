"""Passwords (argon2id), signed session cookies, CSRF tokens and the failed-login limit."""

from __future__ import annotations

import hmac
import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from complaint_triage.errors import ConfigError
from complaint_triage.store import users as user_store

SECRET_ENV = "COMPLAINT_TRIAGE_SESSION_SECRET"
SECRET_FILE_ENV = "COMPLAINT_TRIAGE_SESSION_SECRET_FILE"
MIN_SECRET_CHARS = 32
SESSION_COOKIE = "ct_session"
SESSION_SECONDS = 12 * 3600  # a working day; then sign in again
MAX_FAILURES = 5  # per user name and per client address, within FAILURE_WINDOW
FAILURE_WINDOW = timedelta(minutes=15)

_hasher = PasswordHasher()  # argon2id with the library's current recommended parameters
_DUMMY_HASH = _hasher.hash(
    "no such user"
)  # checked for unknown names, so that they take as long as known ones


def hash_password(password: str) -> str:
    """The argon2id hash to store for PASSWORD."""
    if len(password) < 8:
        raise ConfigError("a password needs at least 8 characters")
    return _hasher.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """True when PASSWORD matches the stored hash (None: an unknown user, checked against a dummy hash all the same)."""
    try:
        return _hasher.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with older parameters than the library's current ones."""
    return _hasher.check_needs_rehash(stored_hash)


def session_secret(environ: dict | None = None) -> str:
    """The session signing secret, from $COMPLAINT_TRIAGE_SESSION_SECRET or the file $COMPLAINT_TRIAGE_SESSION_SECRET_FILE names (never the config file)."""
    environ = os.environ if environ is None else environ
    secret = environ.get(SECRET_ENV)
    if not secret and environ.get(SECRET_FILE_ENV):
        try:
            secret = Path(environ[SECRET_FILE_ENV]).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the session secret file ${SECRET_FILE_ENV}: {exc.strerror}"
            ) from None
    if not secret:
        raise ConfigError(
            f"no session secret: set ${SECRET_ENV} or ${SECRET_FILE_ENV} (the same on every instance)"
        )
    if len(secret) < MIN_SECRET_CHARS:
        raise ConfigError(
            f"the session secret needs at least {MIN_SECRET_CHARS} characters (e.g. `python -c 'import secrets; print(secrets.token_urlsafe(32))'`)"
        )
    return secret


@dataclass(frozen=True)
class Session:
    """Who is signed in, and the CSRF token of their session."""

    username: str
    csrf_token: str


class Sessions:
    """Issues and reads session cookies signed with the shared secret (any instance can read any other's)."""

    def __init__(self, secret: str):
        self._serializer = URLSafeTimedSerializer(secret, salt="complaint-triage-session")

    def issue(self, username: str) -> tuple[str, Session]:
        """A new session for USERNAME: the cookie value and the session."""
        session = Session(username, secrets.token_urlsafe(32))
        return self._serializer.dumps({"u": session.username, "c": session.csrf_token}), session

    def read(self, cookie: str | None) -> Session | None:
        """The session a cookie carries, or None when it is missing, forged or expired."""
        if not cookie:
            return None
        try:
            data = self._serializer.loads(cookie, max_age=SESSION_SECONDS)
        except BadSignature:
            return None
        if (
            not isinstance(data, dict)
            or not isinstance(data.get("u"), str)
            or not isinstance(data.get("c"), str)
        ):
            return None
        return Session(data["u"], data["c"])


def token_matches(session: Session, sent: str | None) -> bool:
    """True when SENT is this session's CSRF token (compared in constant time)."""
    return bool(sent) and hmac.compare_digest(session.csrf_token.encode(), sent.encode())


def login_blocked(store, username: str, address: str) -> bool:
    """True when too many logins failed lately for this name or from this address."""
    return any(
        user_store.recent_failures(store, subject, FAILURE_WINDOW) >= MAX_FAILURES
        for subject in _subjects(username, address)
    )


def note_failed_login(store, username: str, address: str) -> None:
    """Count a failed login against the name and the address."""
    for subject in _subjects(username, address):
        user_store.note_failure(store, subject, FAILURE_WINDOW)


def note_login(store, username: str) -> None:
    """A successful login clears the name's count (the address keeps its own)."""
    user_store.clear_failures(store, f"user:{username}")


def _subjects(username: str, address: str) -> list[str]:
    return [f"user:{username[:80]}", f"ip:{address[:80]}"]
