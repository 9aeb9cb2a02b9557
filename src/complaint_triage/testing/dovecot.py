"""A private Dovecot for the tests and the benchmark: generated config, private CA, loopback ports.

Dovecot's login process refuses to run as root, so the server drops to Debian's unprivileged
system users (`dovenull` for logins, `dovecot` for internal processes) and stores mail as
`nobody`. Any user name logs in with PASSWORD (a static passdb), so each test takes a fresh
user and gets an empty mailbox of its own. 127.0.0.2 reaches the same server with a reduced
capability list (no MOVE, no IDLE), to exercise the fallbacks.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from imapclient import IMAPClient

from complaint_triage.settings import SourceSettings
from complaint_triage.testing.mail import PASSWORD_ENV

PASSWORD = "Dovecot-Test-Pa55word"
LEGACY_HOST = "127.0.0.2"  # same server, capabilities IMAP4rev1 LITERAL+ UIDPLUS only
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"


def dovecot_available() -> bool:
    """Dovecot is installed, we can drop to its system users, and openssl can make certificates."""
    try:
        for user in ("dovecot", "dovenull", "nobody"):
            pwd.getpwnam(user)
    except KeyError:
        return False
    return Path(DOVECOT).is_file() and os.geteuid() == 0 and shutil.which("openssl") is not None


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def make_certificates(directory: Path) -> None:
    """A private CA (ca.crt) and a server certificate it signed for localhost, 127.0.0.1 and 127.0.0.2."""
    (directory / "server.ext").write_text(
        "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:127.0.0.2\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    commands = [
        [
            "openssl",
            "req",
            "-x509",
            *ec,
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "3",
            "-subj",
            "/CN=complaint-triage test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        ["openssl", "req", *ec, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost"],
        [
            "openssl",
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "3",
            "-extfile",
            "server.ext",
        ],
    ]
    for command in commands:
        subprocess.run(command, cwd=directory, check=True, capture_output=True)


class Dovecot:
    """One Dovecot instance in its own temporary directory."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="complaint-triage-dovecot-"))
        self.root.chmod(0o755)  # the unprivileged processes must reach their files
        self.plain_port, self.tls_port = free_port(), free_port()
        self.ca_file = self.root / "ca.crt"
        self.log_path = self.root / "dovecot.log"
        self.config = self.root / "dovecot.conf"
        make_certificates(self.root)
        nobody = pwd.getpwnam("nobody")
        for name in ("mail", "home"):
            (self.root / name).mkdir()
            os.chown(self.root / name, nobody.pw_uid, nobody.pw_gid)
        (self.root / "server.key").chmod(0o600)
        self.config.write_text(self._config_text(nobody.pw_uid, nobody.pw_gid))
        self.process: subprocess.Popen | None = None

    def _config_text(self, uid: int, gid: int) -> str:
        return textwrap.dedent(f"""\
            base_dir = {self.root}/run
            state_dir = {self.root}/state
            instance_name = ct-{self.plain_port}
            listen = 127.0.0.1, {LEGACY_HOST}
            protocols = imap
            log_path = {self.log_path}
            ssl = yes
            ssl_cert = <{self.root}/server.crt
            ssl_key = <{self.root}/server.key
            default_internal_user = dovecot
            default_internal_group = dovecot
            default_login_user = dovenull
            mail_location = maildir:{self.root}/mail/%n
            namespace inbox {{
              inbox = yes
              separator = /
            }}
            disable_plaintext_auth = no
            auth_mechanisms = plain login xoauth2
            auth_failure_delay = 0
            auth_verbose = yes
            login_trusted_networks = 127.0.0.0/8
            mail_max_userip_connections = 200
            passdb {{
              driver = static
              args = password={PASSWORD}
            }}
            userdb {{
              driver = static
              args = uid={uid} gid={gid} home={self.root}/home/%n
            }}
            # No auth penalty: after the wrong-password test every login from 127.0.0.1 would wait seconds.
            service anvil {{
              unix_listener anvil-auth-penalty {{
                mode = 0
              }}
            }}
            service imap-login {{
              inet_listener imap {{
                address = 127.0.0.1, {LEGACY_HOST}
                port = {self.plain_port}
              }}
              inet_listener imaps {{
                address = 127.0.0.1, {LEGACY_HOST}
                port = {self.tls_port}
                ssl = yes
              }}
            }}
            local {LEGACY_HOST} {{
              protocol imap {{
                imap_capability = IMAP4rev1 LITERAL+ UIDPLUS
              }}
            }}
            """)

    # -- the process -----------------------------------------------------------------------

    def start(self, timeout: float = 15.0) -> None:
        """Start the master process and wait until it accepts connections."""
        check = subprocess.run([DOVECOT, "-c", str(self.config), "-n"], capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"dovecot config rejected: {check.stderr.strip()}")
        # In the foreground (-F): the process is ours to stop and to reap.
        self.process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self._accepting():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dovecot did not start: {self.log_text()[-2000:]}")
            time.sleep(0.05)

    def _accepting(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.plain_port), timeout=1) as connection:
                return connection.recv(4).startswith(b"* OK")
        except OSError:
            return False

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server as a crash or a restart would: the master, then what it leaves behind (open IMAP sessions)."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        try:  # Dovecot lets running imap processes finish their sessions; the process group is ours (start_new_session)
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def destroy(self) -> None:
        """Stop and remove everything."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        """Everything Dovecot logged so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # -- mailboxes -------------------------------------------------------------------------

    def new_user(self) -> str:
        """A user name no test used before: an empty mailbox."""
        return f"u{uuid.uuid4().hex[:12]}"

    def client(self, user: str, host: str = "127.0.0.1") -> IMAPClient:
        """A logged-in plain session on loopback."""
        client = IMAPClient(host, self.plain_port, ssl=False, timeout=10)
        client.login(user, PASSWORD)
        return client

    def append(self, user: str, messages: list[bytes], folder: str = "INBOX", flags: tuple = ()) -> None:
        """Deliver messages with IMAP APPEND (MULTIAPPEND where many)."""
        with self.client(user) as client:
            if folder != "INBOX" and not client.folder_exists(folder):
                client.create_folder(folder)
            for start in range(0, len(messages), 500):
                client.multiappend(
                    folder, [{"msg": raw, "flags": flags} for raw in messages[start : start + 500]]
                )

    def uids(self, user: str, folder: str = "INBOX") -> list[int]:
        """The UIDs now in a folder."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            return sorted(client.search("ALL"))

    def flags(self, user: str, folder: str = "INBOX") -> dict[int, set[bytes]]:
        """Each message's flags, read without changing them."""
        with self.client(user) as client:
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            return (
                {uid: set(data[b"FLAGS"]) for uid, data in client.fetch(uids, ["FLAGS"]).items()}
                if uids
                else {}
            )

    def message_ids(self, user: str, folder: str = "INBOX") -> list[str]:
        """The Message-ID headers in a folder, in UID order."""
        with self.client(user) as client:
            if not client.folder_exists(folder):
                return []
            client.select_folder(folder, readonly=True)
            uids = client.search("ALL")
            fetched = client.fetch(uids, ["BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"]) if uids else {}
            return [
                _header_value(fetched[uid][b"BODY[HEADER.FIELDS (MESSAGE-ID)]"]) for uid in sorted(fetched)
            ]

    def session_lines(self, user: str) -> list[str]:
        """Log lines of the user's IMAP sessions (logins, logouts with their fetch counters)."""
        return [
            line for line in self.log_text().splitlines() if f"<{user}>" in line or f"imap({user})" in line
        ]


def _header_value(block: bytes) -> str:
    match = re.search(rb"(?i)message-id:\s*(\S+)", block)
    return match.group(1).decode() if match else ""


@dataclass
class Mailbox:
    """A fresh user on the shared Dovecot, and settings for a source reading it."""

    server: Dovecot
    user: str

    def settings(self, **overrides) -> SourceSettings:
        """Settings for a source on this mailbox: plain IMAP on loopback, unless overridden."""
        values = {
            "name": "inbox",
            "type": "imap",
            "host": "127.0.0.1",
            "port": self.server.plain_port,
            "security": "none",
            "username": self.user,
            "password_env": PASSWORD_ENV,
            "timeout_seconds": 10,
        }
        return SourceSettings.model_validate({**values, **overrides})

    def append(self, messages: list[bytes], folder: str = "INBOX", flags: tuple = ()) -> None:
        """Deliver messages to a folder."""
        self.server.append(self.user, messages, folder, flags)
