"""A local HTTPS server that speaks the part of Microsoft Graph and the Entra token endpoint the Graph source uses.

Implemented as documented: tenant discovery (`/{tenant}/v2.0/.well-known/openid-configuration`),
client-credentials tokens (`/{tenant}/oauth2/v2.0/token`), `mailFolders/{id}/messages/delta`
(pages of `Prefer: odata.maxpagesize`, `@odata.nextLink` with a `$skiptoken`, a final
`@odata.deltaLink` with a `$deltatoken`; changed messages come again, moved ones as `@removed`),
`messages/{id}/$value`, `PATCH messages/{id}` (isRead), `POST messages/{id}/move`, and
`mailFolders` lookup by display name and creation. Faults a test queues: any status with headers
on the next matching request (429 with Retry-After, 5xx), tokens that expire server-side, delta
tokens the server no longer knows (410 syncStateNotFound), a client secret that is wrong.
"""

from __future__ import annotations

import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

TENANT = "contoso-tenant-id"
CLIENT_ID = "11111111-2222-3333-4444-555555555555"
CLIENT_SECRET = "graph-client-secret-7f3a9c"
MAILBOX = "ops@shop.example"


@dataclass
class StoredMessage:
    """One message as the fake mailbox holds it."""

    graph_id: str
    raw: bytes
    folder: str
    version: int
    is_read: bool = False
    removed: bool = False  # moved away from its folder: a tombstone for delta


@dataclass
class Fault:
    """The answer to give the next request whose method and path+query match, instead of the real one."""

    method: str
    contains: str
    status: int
    headers: dict = field(default_factory=dict)
    body: dict = field(default_factory=dict)


class GraphState:
    """The mailbox, the tokens and the queued faults, shared by the handler threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, StoredMessage] = {}
        self.folders = {"inbox": "inbox"}  # display name or well-known name -> id
        self.version = 0
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.token_lifetime = 3600
        self.known_delta_tokens: set[int] | None = None  # None: every token is accepted
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []
        self.secret = CLIENT_SECRET
        self.token_value: str | None = (
            None  # issue this access token (an IMAP server's test password) instead of a fresh one
        )
        self.scopes: list[str] = []  # the scope of every token request

    def deliver(self, raws: list[bytes], folder: str = "inbox") -> list[str]:
        """Put messages in a folder; their Graph ids."""
        ids = []
        with self.lock:
            for raw in raws:
                self.version += 1
                graph_id = f"AAMk{uuid.uuid4().hex}"
                self.messages[graph_id] = StoredMessage(graph_id, raw, folder, self.version)
                ids.append(graph_id)
        return ids

    def expire_tokens(self) -> None:
        """Every token issued so far stops working, as when it expires or is revoked."""
        with self.lock:
            self.tokens.clear()

    def in_folder(self, folder: str) -> list[StoredMessage]:
        """The messages now in FOLDER."""
        with self.lock:
            return [m for m in self.messages.values() if m.folder == folder and not m.removed]

    def take_fault(self, method: str, target: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.contains in target:
                    self.faults.remove(fault)
                    return fault
        return None


class GraphHandler(BaseHTTPRequestHandler):
    """Routes one request of the documented subset."""

    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> GraphState:
        return self.server.state

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.state.requests.append((method, self.path))
        fault = self.state.take_fault(method, unquote(self.path))
        if fault is not None:
            return self._json(
                fault.status, fault.body or {"error": {"code": "Fault", "message": "injected"}}, fault.headers
            )
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), parse_qs(parts.query)
        if path.startswith(f"/{TENANT}/"):
            return self._identity(method, path, body)
        token = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if token not in self.state.tokens:
            return self._json(
                401,
                {
                    "error": {
                        "code": "InvalidAuthenticationToken",
                        "message": "Access token has expired or is not yet valid.",
                    }
                },
            )
        prefix = f"/v1.0/users/{MAILBOX}/"
        if not path.startswith(prefix):
            return self._json(404, {"error": {"code": "ErrorInvalidUser", "message": "mailbox not found"}})
        self._mail(method, path[len(prefix) :], query, json.loads(body) if body else {})

    # -- identity --------------------------------------------------------------------------

    def _identity(self, method: str, path: str, body: bytes) -> None:
        base = f"https://{self.headers['Host']}/{TENANT}"
        if method == "GET" and path.endswith("/v2.0/.well-known/openid-configuration"):
            return self._json(
                200,
                {
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "issuer": f"{base}/v2.0",
                },
            )
        if method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = {key: values[0] for key, values in parse_qs(body.decode()).items()}
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != self.state.secret:
                return self._json(
                    401,
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided.\r\nTrace ID: x",
                    },
                )
            with self.state.lock:
                self.state.tokens_issued += 1
                self.state.scopes.append(form.get("scope", ""))
                token = (
                    self.state.token_value or f"graph-token-{self.state.tokens_issued}-{uuid.uuid4().hex[:6]}"
                )
                self.state.tokens.add(token)
            return self._json(
                200, {"token_type": "Bearer", "expires_in": self.state.token_lifetime, "access_token": token}
            )
        self._json(404, {"error": "not_found"})

    # -- mail ------------------------------------------------------------------------------

    def _mail(self, method: str, path: str, query: dict, body: dict) -> None:
        pieces = path.split("/")
        if (
            method == "GET"
            and len(pieces) == 4
            and pieces[0] == "mailFolders"
            and pieces[2:] == ["messages", "delta"]
        ):
            return self._delta(pieces[1], query)
        if pieces[0] == "mailFolders" and len(pieces) == 1:
            return self._folders(method, query, body)
        if pieces[0] == "messages" and len(pieces) >= 2:
            return self._message(method, pieces[1], pieces[2:], body)
        self._json(404, {"error": {"code": "ResourceNotFound", "message": path}})

    def _folders(self, method: str, query: dict, body: dict) -> None:
        if method == "POST":
            name = body["displayName"]
            self.state.folders.setdefault(name, f"folder-{uuid.uuid4().hex[:8]}")
            return self._json(201, {"id": self.state.folders[name], "displayName": name})
        wanted = (
            query.get("$filter", [""])[0]
            .removeprefix("displayName eq '")
            .removesuffix("'")
            .replace("''", "'")
        )
        found = [
            {"id": folder_id, "displayName": name}
            for name, folder_id in self.state.folders.items()
            if name == wanted
        ]
        self._json(200, {"value": found})

    def _delta(self, folder: str, query: dict) -> None:
        state = self.state
        if "$skiptoken" in query:
            since, upto, offset = (int(part) for part in query["$skiptoken"][0].split("."))
        else:
            since = int(query.get("$deltatoken", ["0"])[0])
            if (
                "$deltatoken" in query
                and state.known_delta_tokens is not None
                and since not in state.known_delta_tokens
            ):
                return self._json(
                    410, {"error": {"code": "syncStateNotFound", "message": "The sync state was not found."}}
                )
            upto, offset = state.version, 0
        with state.lock:
            changed = sorted(
                (m for m in state.messages.values() if m.folder == folder and since < m.version <= upto),
                key=lambda m: m.version,
            )
        size = int(self.headers.get("Prefer", "odata.maxpagesize=10").split("=")[-1])
        page = changed[offset : offset + size]
        base = f"https://{self.headers['Host']}/v1.0/users/{MAILBOX}/mailFolders/{folder}/messages/delta"
        value = [
            {"id": m.graph_id, "@removed": {"reason": "deleted"}}
            if m.removed
            else {"id": m.graph_id, "isRead": m.is_read}
            for m in page
        ]
        answer: dict = {"value": value}
        if offset + size < len(changed):
            answer["@odata.nextLink"] = f"{base}?$skiptoken={since}.{upto}.{offset + size}"
        else:
            answer["@odata.deltaLink"] = f"{base}?$deltatoken={upto}"
            if state.known_delta_tokens is not None:
                state.known_delta_tokens.add(upto)
        self._json(200, answer)

    def _message(self, method: str, graph_id: str, rest: list[str], body: dict) -> None:
        state = self.state
        with state.lock:
            message = state.messages.get(graph_id)
            if message is None or message.removed:
                return self._json(404, {"error": {"code": "ErrorItemNotFound", "message": "not found"}})
            if method == "GET" and rest == ["$value"]:
                return self._raw(message.raw)
            if method == "PATCH" and not rest:
                message.is_read = bool(body.get("isRead", message.is_read))
                state.version += 1
                message.version = state.version
                return self._json(200, {"id": graph_id, "isRead": message.is_read})
            if method == "POST" and rest == ["move"]:
                target = body["destinationId"]
                state.version += 1
                message.removed, message.version = True, state.version
                state.version += 1
                moved = StoredMessage(
                    f"AAMk{uuid.uuid4().hex}", message.raw, target, state.version, message.is_read
                )
                state.messages[moved.graph_id] = moved
                return self._json(201, {"id": moved.graph_id, "parentFolderId": target})
        self._json(405, {"error": {"code": "MethodNotAllowed", "message": method}})

    # -- answers ---------------------------------------------------------------------------

    def _json(self, status: int, document: dict, headers: dict | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)

    def _raw(self, raw: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)


class GraphServer:
    """The fake Graph on a loopback port, over TLS with a certificate of the test's private CA."""

    def __init__(self, certificates: Path) -> None:
        self.state = GraphState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), GraphHandler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.ca_file = certificates / "ca.crt"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    def source(self, **overrides) -> dict:
        """A [[sources]] entry for this server's mailbox (the client secret from GRAPH_CLIENT_SECRET)."""
        return {
            "name": "m365",
            "type": "graph",
            "tenant_id": TENANT,
            "client_id": CLIENT_ID,
            "client_secret_env": "GRAPH_CLIENT_SECRET",
            "mailbox": MAILBOX,
            "authority_host": self.url,
            "graph_url": f"{self.url}/v1.0",
            "ca_file": str(self.ca_file),
            "timeout_seconds": 10,
            "fetch_chunk": 50,
            **overrides,
        }
