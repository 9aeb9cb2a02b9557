"""Opening an IMAP session: verified TLS, credentials from the environment, a file or an OAuth2 command, and one error tree."""

from __future__ import annotations

import logging
import re
import shlex
import socket
import ssl
import subprocess
import threading
import traceback
from contextlib import contextmanager
from typing import Iterator

from imapclient import IMAPClient, SocketTimeout
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import join_message_ids
from imapclient.response_parser import parse_fetch_response

from complaint_triage.credentials import read_secret
from complaint_triage.credentials import tls_context as verifying_context
from complaint_triage.errors import SourceAuthError, SourceError, SourceInterrupted, TransientSourceError
from complaint_triage.logs import register_secret, scrub
from complaint_triage.settings import SourceSettings


def describe(settings: SourceSettings) -> str:
    """How errors and logs name a source: never with a secret."""
    return f"source {settings.name!r} ({settings.username}@{settings.host})"


def tls_context(settings: SourceSettings) -> ssl.SSLContext:
    """A verifying TLS context: the system's CAs, or only the private CA in ca_file."""
    return verifying_context(settings.ca_file, describe(settings), SourceError)


def read_password(settings: SourceSettings) -> str:
    """The password from the named environment variable or file, remembered as a secret."""
    return read_secret(settings.password_env, settings.password_file, describe(settings), SourceAuthError)


def fetch_oauth2_token(settings: SourceSettings) -> str:
    """Run oauth2_token_command for a fresh access token (tokens expire, so on every connect)."""
    try:
        result = subprocess.run(
            shlex.split(settings.oauth2_token_command),
            capture_output=True,
            text=True,
            timeout=settings.timeout_seconds,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceAuthError(f"{describe(settings)}: oauth2_token_command failed: {exc}") from exc
    token = result.stdout.strip()
    register_secret(token)
    if result.returncode != 0 or not token:
        reason = scrub(result.stderr.strip().splitlines()[0]) if result.stderr.strip() else "no token printed"
        raise SourceAuthError(
            f"{describe(settings)}: oauth2_token_command exited with status {result.returncode}: {reason}"
        )
    return token


def read_credential(settings: SourceSettings, token=None) -> str:
    """The password or an OAuth2 token (from TOKEN, the built-in provider, or the command), read before connecting.

    Read first, so that a missing one is its own error, not a network one.
    """
    if token is not None:
        return token()
    return fetch_oauth2_token(settings) if settings.oauth2_token_command else read_password(settings)


def connect(settings: SourceSettings, stop: threading.Event | None = None, token=None) -> IMAPClient:
    """A logged-in session over TLS (ssl or starttls; plain only on loopback, as the settings allow).

    With STOP, the connection is opened in a helper thread while this one waits for it or for the
    stop, so that a shutdown is not held up for the whole timeout by a server that never answers.
    """
    credential = read_credential(settings, token)
    if stop is None:
        return _open_session(settings, credential)
    return _Opening(lambda: _open_session(settings, credential)).wait(stop, describe(settings))


class _Opening:
    """A session being opened in a helper thread; abandoned (and closed when it comes) if a stop is asked for first."""

    def __init__(self, open_session) -> None:
        self._lock, self._done = threading.Lock(), threading.Event()
        self._abandoned, self._client, self._error = False, None, None
        threading.Thread(target=self._run, args=(open_session,), name="imap-connect", daemon=True).start()

    def _run(self, open_session) -> None:
        client = error = None
        try:
            client = open_session()
        except BaseException as exc:  # noqa: BLE001 (handed to the waiting thread, which raises it)
            error = exc
        with self._lock:
            if self._abandoned and client is not None:
                close_quietly(client)
            self._client, self._error = client, error
            self._done.set()

    def wait(self, stop: threading.Event, where: str) -> IMAPClient:
        """The session once open; SourceInterrupted within 0.2 s of a stop."""
        while not self._done.wait(0.2):
            if stop.is_set():
                with self._lock:
                    if not self._done.is_set():
                        self._abandoned = True
                        raise SourceInterrupted(f"{where}: stopped while waiting for the server")
        if self._error is not None:
            raise self._error
        return self._client


def _open_session(settings: SourceSettings, credential: str) -> IMAPClient:
    context = tls_context(settings) if settings.security != "none" else None
    timeout = SocketTimeout(connect=settings.timeout_seconds, read=settings.timeout_seconds)
    with imap_errors(describe(settings)):
        with connection_errors(settings):
            client = IMAPClient(
                settings.host,
                settings.port,
                ssl=settings.security == "ssl",
                ssl_context=context,
                timeout=timeout,
            )
        try:
            if settings.security == "starttls":
                with connection_errors(settings):
                    client.starttls(context)
            _login(client, settings, credential)
        except BaseException:
            close_quietly(client)
            raise
    quiet_protocol_trace(client)
    return client


# What OpenSSL says when the other side does not speak TLS (it sent an IMAP greeting in clear).
_NOT_TLS = {
    "WRONG_VERSION_NUMBER",
    "UNKNOWN_PROTOCOL",
    "RECORD_LAYER_FAILURE",
    "PACKET_LENGTH_TOO_LONG",
    "HTTP_REQUEST",
}


@contextmanager
def connection_errors(settings: SourceSettings) -> Iterator[None]:
    """Errors of opening the connection, naming host and port and what to check; the rest is left to imap_errors."""
    where, address = describe(settings), f"{settings.host}:{settings.port}"
    try:
        yield
    except ConnectionRefusedError as exc:
        raise TransientSourceError(
            f"{where}: {address}: connection refused: nothing listens there; check host and port"
        ) from exc
    except socket.gaierror as exc:
        raise TransientSourceError(
            f"{where}: cannot resolve the host name {settings.host!r} ({exc.strerror}): check the name and DNS"
        ) from exc
    except TimeoutError as exc:
        raise TransientSourceError(f"{where}: {address}: {_silence(exc, settings)}") from exc
    except ssl.SSLCertVerificationError:
        raise
    except ssl.SSLError as exc:
        if exc.reason not in _NOT_TLS:
            raise
        raise SourceError(
            f"{where}: {address}: TLS handshake failed ({exc.reason}): the server did not answer in TLS; "
            f'this port probably expects STARTTLS: set security = "starttls" (port 143) or use the TLS port (993)'
        ) from exc
    except OSError as exc:
        if isinstance(exc, (ConnectionError, ssl.SSLError)):
            raise
        raise TransientSourceError(
            f"{where}: {address}: cannot connect: {exc.strerror or exc}; check the network and firewalls"
        ) from exc


def _silence(exc: BaseException, settings: SourceSettings) -> str:
    """Which step the server left unanswered, read off where the timeout struck, and what that suggests."""
    steps = {frame.f_code.co_name for frame, _line in traceback.walk_tb(exc.__traceback__)}
    seconds = f"{settings.timeout_seconds:g} s"
    if "create_connection" in steps and "do_handshake" not in steps and "_get_response" not in steps:
        return f"no answer to the connection within {seconds}: check host, port and firewalls"
    if "do_handshake" in steps:
        return f'the TLS handshake was not answered within {seconds}: check that this port speaks TLS (security = "ssl")'
    hint = (
        "" if settings.security == "ssl" else '; if this port expects TLS at once (993), set security = "ssl"'
    )
    return f"the server accepted the connection but sent no greeting within {seconds}{hint}"


# imapclient routes imaplib's protocol trace to this logger and turns the trace fully on (level 5).
PROTOCOL_TRACE = logging.getLogger("imapclient.imaplib")


def quiet_protocol_trace(client: IMAPClient) -> None:
    """Turn imaplib's protocol trace off unless its logger prints debug lines.

    At trace level 5 imaplib formats the repr of every line it reads, and of every fetched body,
    for a debug line the logger then drops: about 25 µs of the 58 µs it takes to fetch a 2 KiB
    message. The trace stays on when someone asks for debug logs of `imapclient.imaplib`.
    """
    if not PROTOCOL_TRACE.isEnabledFor(logging.DEBUG):
        client._imap.debug = 0


def close_quietly(client: IMAPClient) -> None:
    """Close the socket without a word to the server (it may be gone, or half-wrapped in TLS)."""
    try:
        client.shutdown()
    except OSError:
        pass


def _login(client: IMAPClient, settings: SourceSettings, credential: str) -> None:
    if settings.oauth2_token_command or settings.oauth2_provider:
        client.oauth2_login(settings.username, credential)
    else:
        client.login(settings.username, credential)


def _server_text(exc: Exception) -> str:
    text = str(exc.args[0] if exc.args else exc)
    if text.startswith(("b'", 'b"')):  # imapclient wraps the server's bytes in str()
        text = text[2:-1]
    return scrub(text)


@contextmanager
def imap_errors(where: str) -> Iterator[None]:
    """Turn what imaplib, ssl and sockets raise into SourceAuthError, TransientSourceError or SourceError."""
    try:
        yield
    except LoginError as exc:
        raise SourceAuthError(f"{where}: the server refused the login: {_server_text(exc)}") from exc
    except ssl.SSLCertVerificationError as exc:
        raise SourceError(
            f"{where}: TLS certificate not trusted ({exc.verify_message}); for a private CA set ca_file"
        ) from exc
    except (socket.timeout, TimeoutError) as exc:
        raise TransientSourceError(f"{where}: timed out") from exc
    except (IMAPClientAbortError, ssl.SSLEOFError, ConnectionError, EOFError) as exc:
        raise TransientSourceError(f"{where}: connection lost: {_server_text(exc)}") from exc
    except ssl.SSLError as exc:
        raise SourceError(f"{where}: TLS failed: {exc.reason or exc}") from exc
    except OSError as exc:  # unreachable, name not resolved: the network may come back
        raise TransientSourceError(f"{where}: cannot connect: {exc.strerror or exc}") from exc
    except IMAPClientError as exc:  # the server answered NO or BAD
        raise SourceError(f"{where}: the server refused: {_server_text(exc)}") from exc


class FetchAhead:
    """A batch of bodies asked for before it is needed, so the server reads and sends it while the last batch is stored.

    imapclient's `fetch` sends UID FETCH and waits for the answer; this makes the same two imaplib
    calls with the poll's work in between. At most one fetch is in flight, and `receive` is called
    before the connection is used for anything else (flagging, moving, selecting, IDLE), so
    answers never interleave with other commands.
    """

    def __init__(self) -> None:
        self._client: IMAPClient | None = None
        self._tag: str | None = None
        self._uids: list[int] = []
        self._answer: dict[int, dict] | None = None

    def send(self, client: IMAPClient, uids: list[int]) -> None:
        """Ask for the bodies of UIDS (BODY.PEEK[]: nothing is marked read) without waiting for them."""
        self.receive()
        self._client, self._uids, self._answer = client, list(uids), None
        self._tag = client._imap._command("UID", "FETCH", join_message_ids(uids), "(BODY.PEEK[])")

    def receive(self) -> None:
        """Read the answer of the fetch in flight, if any, and keep it; the connection is then free for other commands."""
        if self._tag is None:
            return
        client, tag, self._tag = self._client, self._tag, None
        status, data = client._imap._command_complete("FETCH", tag)
        if status != "OK":
            raise IMAPClientError(f"UID FETCH failed: {data}")
        _status, data = client._imap._untagged_response(status, data, "FETCH")
        self._answer = bodies_only(data)
        if self._answer is None:
            self._answer = parse_fetch_response(data, client.normalise_times, True)

    def fetch(self, client: IMAPClient, uids: list[int]) -> dict[int, dict]:
        """The bodies of UIDS, asked for and read now."""
        self.send(client, uids)
        return self.take(uids) or {}

    def take(self, uids: list[int]) -> dict[int, dict] | None:
        """The bodies of exactly UIDS when they were asked for ahead (by UID; unsolicited responses dropped), else None."""
        self.receive()
        answer, asked = self._answer, self._uids
        self.forget()
        if answer is None or asked != uids:
            return None
        return {uid: answer[uid] for uid in uids if uid in answer}

    def forget(self) -> None:
        """Drop what was asked for (the connection was closed, or the poll ended before it was needed)."""
        self._client, self._tag, self._uids, self._answer = None, None, [], None


# One message of a UID FETCH (BODY.PEEK[]) answer as imaplib hands it on: the line that announces the
# literal ("12 (UID 12 BODY[] {2367}"), the literal, then the rest of the line (")", or " UID 12)" from
# a server that names the UID after the body).
_BODY_HEAD = re.compile(rb"(\d+) \((?:UID (\d+) )?BODY\[\] \{(\d+)\}\Z")
_BODY_TAIL = re.compile(rb"(?: UID (\d+))?\)\Z")


def bodies_only(data: list) -> dict[int, dict] | None:
    """The answer of a body fetch read straight from imaplib's data when it holds nothing but UIDs and bodies, else None.

    imapclient's general response parser tokenises every answer in Python, about 20 µs of a 2 KiB
    message's fetch; an answer of this one shape needs two regular expressions. Anything else (a
    flag change another session made, another order of items) is None, for imapclient to parse.
    """
    answer: dict[int, dict] = {}
    items = iter(data)
    for head in items:
        tail = next(items, None)
        if type(head) is not tuple or not isinstance(tail, bytes):
            return None
        first, last = _BODY_HEAD.match(head[0]), _BODY_TAIL.match(tail)
        if (
            first is None
            or last is None
            or (first[2] is None) == (last[1] is None)
            or int(first[3]) != len(head[1])
        ):
            return None
        uid = int(first[2] or last[1])
        answer[uid] = {b"SEQ": int(first[1]), b"BODY[]": head[1]}
    return answer
