"""Fixtures for the IMAP and service tests: a session-wide Dovecot, fresh mailboxes, source settings, messages.

Test modules import what they use: `from tests.imap_fixtures import dovecot, mailbox, ...`.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

import pytest

from complaint_triage.store.checkpoints import Checkpoints
from complaint_triage.settings import SourceSettings
from tests.conftest import fixture_files, require_service
from tests.dovecot import PASSWORD, Dovecot, dovecot_available
from tests.mail import NOTICE, build_message

PASSWORD_ENV = "COMPLAINT_TRIAGE_TEST_IMAP_PASSWORD"
_MESSAGE_ID = re.compile(rb"(?im)^message-id:[^\n]*\n(?:[ \t][^\n]*\n)*")


def with_message_id(raw: bytes, message_id: str) -> bytes:
    """The message with its Message-ID replaced (or added), so copies of a fixture stay distinct."""
    return f"Message-ID: {message_id}\r\n".encode() + _MESSAGE_ID.sub(b"", raw, count=1)


def sample_messages(count: int, tag: str | None = None) -> list[bytes]:
    """COUNT distinct messages: the shipped fixture mails in turn, or generated notices when there are none."""
    tag = tag or uuid.uuid4().hex[:8]
    bodies = [path.read_bytes() for path in fixture_files()] or [build_message(NOTICE, message_id=None)]
    return [with_message_id(bodies[n % len(bodies)], f"<{tag}-{n}@test.example>") for n in range(count)]


def message_of_size(size: int, message_id: str) -> bytes:
    """A plain notice padded to about SIZE bytes."""
    raw = build_message(NOTICE, message_id=message_id)
    padding = b"\r\n".join([b"x" * 76] * max(0, (size - len(raw)) // 78))
    return raw + padding + b"\r\n"


@pytest.fixture(scope="session")
def dovecot():
    """One Dovecot for the session (every test uses its own user, hence its own mailbox)."""
    require_service(dovecot_available(), "Dovecot (dovecot-imapd, run as root)")
    server = Dovecot()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
def imap_password(monkeypatch):
    """The right password in the environment variable the sources name."""
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    return PASSWORD


@dataclass
class Mailbox:
    """A fresh user on the shared Dovecot, and settings for a source reading it."""

    server: Dovecot
    user: str

    def settings(self, **overrides) -> SourceSettings:
        """Settings for a source on this mailbox: plain IMAP on loopback, unless overridden."""
        values = {"name": "inbox", "type": "imap", "host": "127.0.0.1", "port": self.server.plain_port, "security": "none",
                  "username": self.user, "password_env": PASSWORD_ENV, "timeout_seconds": 10}
        return SourceSettings.model_validate({**values, **overrides})

    def append(self, messages: list[bytes], folder: str = "INBOX", flags: tuple = ()) -> None:
        """Deliver messages to a folder."""
        self.server.append(self.user, messages, folder, flags)


@pytest.fixture
def mailbox(dovecot, imap_password) -> Mailbox:
    """An empty mailbox of its own."""
    return Mailbox(dovecot, dovecot.new_user())


@pytest.fixture
def checkpoints(fresh_store) -> Checkpoints:
    """Checkpoints in the fresh store's database."""
    return Checkpoints(fresh_store.engine)

