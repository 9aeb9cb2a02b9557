"""Users of the web workspace and their failed-login counters.

The store keeps password hashes only; hashing and checking them is the web package's work.
Failed logins are counted here, in the shared database, so that every instance of the web app
sees the same counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from complaint_triage.errors import UserError
from complaint_triage.store.dialects import accepts_store
from complaint_triage.store.tables import login_failures, users

ROLES = ("admin", "member")
USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,39}")
RESERVED_NAMES = frozenset({"mail", "cli"})  # case history actors that are not people


@dataclass(frozen=True)
class User:
    """A person who may sign in; a member with accounts sees only those sources."""

    username: str
    password_hash: str
    role: str
    accounts: tuple[str, ...] | None
    created_at: datetime

    @property
    def is_admin(self) -> bool:
        """Admins see every account and may replay failed mail."""
        return self.role == "admin"

    def may_see(self, account: str | None) -> bool:
        """True when this user may see what came from ACCOUNT (a source name)."""
        return self.accounts is None or account in self.accounts


def _now() -> datetime:
    return datetime.now(UTC)


def check_username(name: str) -> str:
    """The name if it is usable: lower-case letters, digits, '.', '_' or '-', up to 40, and not a reserved actor."""
    if not USERNAME.fullmatch(name) or name in RESERVED_NAMES:
        raise UserError(
            f"unusable user name {name!r}: use 1-40 lower-case letters, digits, '.', '_' or '-' (not 'mail' or 'cli')"
        )
    return name


@accepts_store
def add_user(
    engine: Engine, username: str, password_hash: str, role: str = "member", accounts: list[str] | None = None
) -> User:
    """Store a new user; an existing name is an error (remove it first)."""
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: use admin or member")
    if role == "admin" and accounts:
        raise UserError("an admin sees every account: --accounts is for members")
    row = {
        "username": check_username(username),
        "password_hash": password_hash,
        "role": role,
        "accounts": sorted(set(accounts)) if accounts else None,
        "created_at": _now(),
    }
    try:
        with engine.begin() as connection:
            connection.execute(insert(users).values(**row))
    except IntegrityError:
        raise UserError(f"user {username!r} exists already") from None
    return _user(row)


@accepts_store
def get_user(engine: Engine, username: str) -> User | None:
    """The user of that name, or None."""
    with engine.connect() as connection:
        row = connection.execute(select(users).where(users.c.username == username)).first()
    return _user(row._mapping) if row else None


@accepts_store
def list_users(engine: Engine) -> list[User]:
    """Every user, by name."""
    with engine.connect() as connection:
        return [_user(row._mapping) for row in connection.execute(select(users).order_by(users.c.username))]


@accepts_store
def remove_user(engine: Engine, username: str) -> None:
    """Delete a user (their sessions end at their next request)."""
    with engine.begin() as connection:
        if connection.execute(delete(users).where(users.c.username == username)).rowcount == 0:
            raise UserError(f"no user {username!r}")


@accepts_store
def set_password_hash(engine: Engine, username: str, password_hash: str) -> None:
    """Replace a user's hash (after argon2's parameters changed)."""
    with engine.begin() as connection:
        connection.execute(
            update(users).where(users.c.username == username).values(password_hash=password_hash)
        )


def _user(row) -> User:
    accounts = row["accounts"]
    return User(
        row["username"],
        row["password_hash"],
        row["role"],
        tuple(accounts) if accounts is not None else None,
        row["created_at"],
    )


@accepts_store
def recent_failures(engine: Engine, subject: str, window: timedelta) -> int:
    """How many logins failed for SUBJECT within the window that is still running."""
    with engine.connect() as connection:
        row = connection.execute(select(login_failures).where(login_failures.c.subject == subject)).first()
    if row is None or _aware(row.window_start) + window < _now():
        return 0
    return row.failures


@accepts_store
def note_failure(engine: Engine, subject: str, window: timedelta) -> int:
    """Count one failed login for SUBJECT (a new window once the old one ran out); returns the count."""
    now = _now()
    with engine.begin() as connection:
        row = connection.execute(select(login_failures).where(login_failures.c.subject == subject)).first()
        if row is None:
            connection.execute(insert(login_failures).values(subject=subject, failures=1, window_start=now))
            return 1
        if _aware(row.window_start) + window < now:
            connection.execute(
                update(login_failures)
                .where(login_failures.c.subject == subject)
                .values(failures=1, window_start=now)
            )
            return 1
        connection.execute(
            update(login_failures)
            .where(login_failures.c.subject == subject)
            .values(failures=login_failures.c.failures + 1)
        )
        return row.failures + 1


@accepts_store
def clear_failures(engine: Engine, subject: str) -> None:
    """Forget SUBJECT's failed logins (after a successful one)."""
    with engine.begin() as connection:
        connection.execute(delete(login_failures).where(login_failures.c.subject == subject))


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps no offset: stored as UTC
