"""A Microsoft 365 mailbox through Microsoft Graph: an app-only token (MSAL), new mail by delta query, raw MIME by `$value`.

One folder per source. Its resume point is a link of the delta round: while a page's messages
are committed one by one, the link that produced the page; once its last message is, the page's
next link; once the round is complete, its delta link. The service stores it in the transaction
that commits the records (sources/ never touch the store) and hands it back on the next poll.
Messages are marked read or moved only after the commit. Throttling (429 with Retry-After) and
5xx answers are retried with backoff; a 401 or 403 renews the token once, and one that persists
is an authentication failure; an expired delta token (410 Gone) starts a fresh round, in which
the store skips the mail it has.
"""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from complaint_triage.credentials import read_secret, tls_context
from complaint_triage.errors import SourceAuthError, SourceError, SourceInterrupted, TransientSourceError
from complaint_triage.logs import register_secret, scrub
from complaint_triage.records import RawMessage
from complaint_triage.settings import SourceSettings
from complaint_triage.sources.base import MailSource

log = logging.getLogger("complaint_triage.graph")

ATTEMPTS = 6  # per request, for throttling and server errors
MAX_WAIT = 120.0  # seconds: a longer Retry-After is cut to this, the poll's retries do the rest
STALE_DELTA_CODES = {"syncStateNotFound", "SyncStateNotFound", "resyncRequired", "SyncStateInvalid"}
WELL_KNOWN_FOLDERS = {
    "inbox",
    "archive",
    "deleteditems",
    "drafts",
    "junkemail",
    "sentitems",
    "outbox",
    "clutter",
    "conversationhistory",
    "msgfolderroot",
    "scheduled",
    "searchfolders",
}


class GraphMessage(RawMessage):
    """A message read from a Graph mail folder, with its Graph id and the resume point it completes."""

    graph_id: str
    resume: str  # the link to store when this is the last committed message


def describe(settings: SourceSettings) -> str:
    """How errors and logs name the source: never with a secret."""
    return f"source {settings.name!r} (graph {settings.mailbox})"


class GraphSource(MailSource):
    """New mail of one Graph mail folder since the resume point it is given; read flags untouched until settle."""

    uses_cursor = True
    watches = False

    def __init__(self, settings: SourceSettings, stop: threading.Event | None = None):
        self.settings, self.name = settings, settings.name
        self.stop = stop or threading.Event()
        self.where = describe(settings)
        self.token_expires_at: datetime | None = None
        self.found = self.committed = 0
        self._completed: str | None = None
        self._app = None
        self._token: str | None = None
        self._folder_ids: dict[str, str] = {}
        self._http = httpx.Client(
            verify=_tls_context(settings),
            timeout=settings.timeout_seconds,
            headers={"User-Agent": "complaint-triage"},
        )

    @property
    def scope(self) -> str:
        """What the resume point covers: the folder."""
        return self.settings.folder

    @property
    def touches_mailbox(self) -> bool:
        """True when committed mail is marked read or moved (so its commit must be durable first)."""
        return self.settings.after != "keep"

    @property
    def backlog(self) -> int:
        """Messages the last poll found and did not commit."""
        return max(0, self.found - self.committed)

    # -- fetching --------------------------------------------------------------------------

    def fetch_messages(self, cursor: str | None = None) -> Iterator[GraphMessage]:
        """Yield the folder's messages new or changed since CURSOR (all of them without one), oldest page first."""
        self._completed, self.found, self.committed = None, 0, 0
        link: str | None = cursor or self._start_link()
        while link is not None:
            page, link = self._delta_page(link)
            items = [item for item in page.get("value", []) if "@removed" not in item]
            following = page.get("@odata.nextLink") or page.get("@odata.deltaLink")
            self.found += len(items)
            for position, item in enumerate(items):
                if self.stop.is_set():
                    return
                yield self._message(item["id"], following if position == len(items) - 1 else link)
            if "@odata.nextLink" not in page:
                self._completed = page.get("@odata.deltaLink")
                return
            link = page["@odata.nextLink"]

    def _start_link(self) -> str:
        folder = self._folder_id(self.settings.folder)
        return f"{self._mailbox_url()}/mailFolders/{quote(folder, safe='')}/messages/delta?$select=id,internetMessageId"

    def _delta_page(self, link: str) -> tuple[dict, str]:
        """One page of the delta round, and the link that produced it; a stale delta token starts the round again."""
        response = self._call(
            "GET", link, headers={"Prefer": f"odata.maxpagesize={self.settings.fetch_chunk}"}
        )
        stale = response.status_code == 410 or (
            response.status_code == 400 and _error_code(response) in STALE_DELTA_CODES
        )
        if stale and link != self._start_link():
            log.warning(
                "%s: the delta token is no longer valid (%s): reading the folder afresh (stored mail is not duplicated)",
                self.where,
                _error_code(response) or response.status_code,
            )
            return self._delta_page(self._start_link())
        return self._json(response, "delta query"), link

    def _message(self, graph_id: str, resume: str) -> GraphMessage:
        response = self._call("GET", f"{self._mailbox_url()}/messages/{quote(graph_id, safe='')}/$value")
        self._ok(response, "message download")
        source = f"msgraph://{self.settings.mailbox}/{self.settings.folder}/{graph_id}"
        return GraphMessage(
            raw=response.content, source=source, source_name=self.name, graph_id=graph_id, resume=resume
        )

    # -- resume points ---------------------------------------------------------------------

    def cursor_after(self, messages: list[RawMessage]) -> str:
        """The resume point once MESSAGES (in the order fetched) are committed."""
        self.committed += len(messages)
        return messages[-1].resume

    def completed_cursor(self) -> str | None:
        """The delta link of the last poll's round when it ran to its end (None when it stopped early)."""
        return self._completed

    # -- after the commit ------------------------------------------------------------------

    def settle(self, messages: list[RawMessage]) -> None:
        """Mark committed messages read or move them, as configured; nothing happens with after = "keep"."""
        if self.settings.after == "keep":
            return
        target = (
            self._folder_id(self.settings.move_to, create=True) if self.settings.after == "move" else None
        )
        for message in messages:
            url = f"{self._mailbox_url()}/messages/{quote(message.graph_id, safe='')}"
            if target is None:
                response = self._call("PATCH", url, json={"isRead": True})
            else:
                response = self._call("POST", f"{url}/move", json={"destinationId": target})
            if response.status_code != 404:  # deleted meanwhile: nothing left to settle
                self._ok(response, "mark read" if target is None else "move")

    # -- folders ---------------------------------------------------------------------------

    def _folder_id(self, name: str, create: bool = False) -> str:
        """A well-known folder name as it is, else the id of the top-level folder of that display name."""
        if name.lower() in WELL_KNOWN_FOLDERS:
            return name.lower()
        if name not in self._folder_ids:
            self._folder_ids[name] = self._find_folder(name) or self._create_folder(name, create)
        return self._folder_ids[name]

    def _find_folder(self, name: str) -> str | None:
        escaped = name.replace("'", "''")
        response = self._call(
            "GET", f"{self._mailbox_url()}/mailFolders", params={"$filter": f"displayName eq '{escaped}'"}
        )
        found = self._json(response, "folder lookup").get("value", [])
        return found[0]["id"] if found else None

    def _create_folder(self, name: str, create: bool) -> str:
        if not create:
            raise SourceError(f"{self.where}: no folder {name!r} in the mailbox")
        response = self._call("POST", f"{self._mailbox_url()}/mailFolders", json={"displayName": name})
        return self._json(response, "folder creation")["id"]

    def _mailbox_url(self) -> str:
        return f"{self.settings.graph_url.rstrip('/')}/users/{quote(self.settings.mailbox, safe='@')}"

    # -- requests --------------------------------------------------------------------------

    def _call(self, method: str, url: str, **options) -> httpx.Response:
        """One Graph request with a token; throttling and server errors retried, an auth refusal retried once with a new token."""
        renewed = False
        for attempt in range(ATTEMPTS):
            response = self._send(method, url, **options)
            status = response.status_code
            if status in (401, 403):
                if renewed:
                    raise SourceAuthError(
                        f"{self.where}: Graph refused the token (HTTP {status} {_error_text(response)}); "
                        "check the app's Mail.ReadWrite application permission and admin consent"
                    )
                self._renew()
                renewed = True
                continue
            if status == 429 or status >= 500:
                self._wait_before_retry(response, attempt)
                continue
            return response
        raise TransientSourceError(
            f"{self.where}: Graph answered HTTP {status} {_error_text(response)} {ATTEMPTS} times"
        )

    def _wait_before_retry(self, response: httpx.Response, attempt: int) -> None:
        seconds = min(_retry_after(response) or 2.0**attempt, MAX_WAIT)
        log.warning(
            "%s: Graph answered HTTP %d: retrying in %.1f s",
            self.where,
            response.status_code,
            seconds,
            extra={"source": self.name},
        )
        if self.stop.wait(seconds):
            raise SourceInterrupted(f"{self.where}: stopped while waiting to retry")

    def _send(self, method: str, url: str, headers: dict | None = None, **options) -> httpx.Response:
        headers = {**(headers or {}), "Authorization": f"Bearer {self._access_token()}"}
        try:
            return self._http.request(method, url, headers=headers, **options)
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.where, url, self.settings.timeout_seconds) from exc

    @staticmethod
    def _ok(response: httpx.Response, what: str) -> None:
        if not 200 <= response.status_code < 300:
            raise SourceError(f"Graph {what}: HTTP {response.status_code} {_error_text(response)}")

    def _json(self, response: httpx.Response, what: str) -> dict:
        self._ok(response, what)
        try:
            return response.json()
        except ValueError as exc:
            raise TransientSourceError(f"{self.where}: Graph {what}: the answer is not JSON") from exc

    # -- the token -------------------------------------------------------------------------

    def _access_token(self) -> str:
        """A valid app-only token: MSAL's cached one until it nears expiry, then a new one."""
        import requests

        try:
            result = self._msal().acquire_token_for_client(scopes=[_scope(self.settings.graph_url)])
        except requests.exceptions.RequestException as exc:
            host = urlsplit(self.settings.authority_host).netloc
            raise TransientSourceError(
                f"{self.where}: cannot reach the token endpoint at {host}: {type(exc).__name__}"
            ) from exc
        if "access_token" not in result:
            description = scrub(
                (result.get("error_description") or "").strip().splitlines()[0]
                if result.get("error_description")
                else ""
            )
            raise SourceAuthError(
                f"{self.where}: the token endpoint refused: {result.get('error')}: {description}".rstrip(": ")
            )
        register_secret(result["access_token"])
        self.token_expires_at = datetime.now(UTC) + timedelta(seconds=int(result.get("expires_in", 0)))
        return result["access_token"]

    def _renew(self) -> None:
        """Forget the cached token (the server says it is no longer good): the next request gets a new one."""
        if self._app is not None:
            self._app.remove_tokens_for_client()

    def _msal(self):
        if self._app is None:
            self._app = _confidential_client(self.settings, self.where)
        return self._app

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


def _confidential_client(settings: SourceSettings, where: str):
    """MSAL's client for the app registration, with its secret or certificate; tenant discovery errors are auth errors."""
    import msal
    import requests

    session = pin_verify(requests.Session(), settings.ca_file, settings.timeout_seconds)
    try:
        return msal.ConfidentialClientApplication(
            settings.client_id,
            authority=f"{settings.authority_host.rstrip('/')}/{settings.tenant_id}",
            client_credential=_client_credential(settings, where),
            instance_discovery=False,
            http_client=session,
        )
    except requests.exceptions.SSLError as exc:
        raise SourceError(
            f"{where}: {urlsplit(settings.authority_host).netloc}: TLS certificate not trusted; for a private CA set ca_file"
        ) from exc
    except requests.exceptions.RequestException as exc:
        raise TransientSourceError(
            f"{where}: cannot reach {urlsplit(settings.authority_host).netloc}: {type(exc).__name__}"
        ) from exc
    except ValueError as exc:
        raise SourceAuthError(
            f"{where}: the tenant {settings.tenant_id!r} is not known to {settings.authority_host}: check tenant_id"
        ) from exc


def pin_verify(session, ca_file: str | None, timeout: float | None = None):
    """SESSION with certificates verified against CA_FILE (or the system's) on every request, whatever the caller passes.

    requests lets REQUESTS_CA_BUNDLE override a session-wide `verify` (and the OAuth libraries pass
    `verify=None` themselves), which would drop a private CA; so it is set per request.
    """
    send = session.request

    def request(method, url, **options):
        options["verify"] = ca_file or True
        if timeout is not None and options.get("timeout") is None:
            options["timeout"] = timeout
        return send(method, url, **options)

    session.request = request
    return session


def _client_credential(settings: SourceSettings, where: str):
    """The client secret (from the environment or a file) or the certificate's key and thumbprint."""
    secret = read_secret(settings.client_secret_env, settings.client_secret_file, where, SourceAuthError)
    return secret.strip() if secret is not None else _certificate_credential(settings.certificate_file, where)


def _certificate_credential(path: str, where: str) -> dict:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    text = _read(path, "certificate_file", where)
    try:
        certificate = x509.load_pem_x509_certificate(text.encode())
    except ValueError as exc:
        raise SourceAuthError(f"{where}: certificate_file {path} holds no PEM certificate") from exc
    return {"private_key": text, "thumbprint": certificate.fingerprint(hashes.SHA1()).hex()}


def _read(path: str, key: str, where: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise SourceAuthError(f"{where}: cannot read {key} {path}: {exc.strerror or exc}") from exc


def _tls_context(settings: SourceSettings) -> ssl.SSLContext:
    return tls_context(settings.ca_file, describe(settings), SourceError)


def _scope(graph_url: str) -> str:
    parts = urlsplit(graph_url)
    return f"{parts.scheme}://{parts.netloc}/.default"


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json().get("error", {}).get("code", ""))
    except (ValueError, AttributeError):
        return ""


def _error_text(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return scrub(f"{error.get('code', '')}: {error.get('message', '')}".splitlines()[0])
    except (ValueError, AttributeError, IndexError):
        return ""


def _transport_error(exc: httpx.TransportError, where: str, url: str, timeout: float) -> SourceError:
    """A network failure named by host and port, with what to check."""
    parts = urlsplit(url)
    address = f"{parts.hostname}:{parts.port or 443}"
    cause = exc.__cause__ or exc.__context__
    while cause is not None and cause.__cause__ is not None and not isinstance(cause, OSError):
        cause = cause.__cause__
    if isinstance(exc, httpx.TimeoutException):
        return TransientSourceError(f"{where}: {address}: no answer within {timeout:g} s")
    if isinstance(cause, ssl.SSLCertVerificationError) or "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return SourceError(f"{where}: {address}: TLS certificate not trusted; for a private CA set ca_file")
    if isinstance(cause, socket.gaierror) or "Name or service not known" in str(exc):
        return TransientSourceError(
            f"{where}: cannot resolve the host name {parts.hostname!r}: check the name and DNS"
        )
    if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(exc):
        return TransientSourceError(
            f"{where}: {address}: connection refused: nothing listens there; check graph_url"
        )
    return TransientSourceError(f"{where}: {address}: {type(exc).__name__}: {scrub(str(exc))}")
