"""A local HTTPS server that speaks the part of the Gmail API and Google's token endpoint the Gmail source uses.

As documented: `users/{u}/profile` (historyId), `messages` (q, maxResults, pageToken; newest
first), `messages/{id}?format=raw`, `history` (startHistoryId, historyTypes=messageAdded,
labelId, pageToken; 404 for an ID older than the history kept), `messages/{id}/modify`,
`labels` list and create; the token endpoint for a service account's signed JWT (checked
against its public key, `sub` = the delegated user) and for a refresh token (optionally rotated;
a revoked one is `invalid_grant`). Faults a test queues are answered instead of the real thing.
"""

from __future__ import annotations

import base64
import json
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import parse_qs, unquote, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.graph_server import Fault

USER = "complaints@shop.example"
CLIENT_ID = "1234-installed.apps.googleusercontent.com"
CLIENT_SECRET = "gmail-client-secret-51be"
REFRESH_TOKEN = "1//refresh-token-initial-9d2c"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # a service account's JWT names Google's endpoint, wherever it is sent


@dataclass
class GmailMessage:
    gmail_id: str
    raw: bytes
    labels: set[str] = field(default_factory=lambda: {"INBOX", "UNREAD"})


class GmailState:
    """The mailbox, its history, the tokens and the queued faults."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, GmailMessage] = {}
        self.order: list[str] = []  # oldest first
        self.history: list[tuple[int, str, list[str]]] = []  # (history id, message id, labels when added)
        self.history_id = 1000
        self.oldest_history = 0  # a startHistoryId below this is answered 404
        self.labels = {"INBOX": "INBOX", "UNREAD": "UNREAD"}
        self.tokens: set[str] = set()
        self.tokens_issued = 0
        self.refresh_tokens = {REFRESH_TOKEN}
        self.rotate_refresh_token = False
        self.public_key = None  # the service account's, to check its JWTs
        self.faults: list[Fault] = []
        self.token_value: str | None = None  # issue this access token (an IMAP server's test password)
        self.codes: dict[str, str] = {}  # authorisation codes handed out by the consent page
        self.scopes: list[str] = []
        self.requests: list[tuple[str, str]] = []

    def deliver(self, raws: list[bytes]) -> list[str]:
        ids = []
        with self.lock:
            for raw in raws:
                self.history_id += 1
                gmail_id = uuid.uuid4().hex[:16]
                self.messages[gmail_id] = GmailMessage(gmail_id, raw)
                self.order.append(gmail_id)
                self.history.append((self.history_id, gmail_id, ["INBOX", "UNREAD"]))
                ids.append(gmail_id)
        return ids

    def forget_history(self) -> None:
        """The API no longer keeps the history up to now (as after about a week)."""
        with self.lock:
            self.oldest_history = self.history_id + 1
            self.history_id += 5

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    def take_fault(self, method: str, target: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and fault.contains in target:
                    self.faults.remove(fault)
                    return fault
        return None

    def issue(self) -> str:
        with self.lock:
            self.tokens_issued += 1
            token = self.token_value or f"ya29.test-{self.tokens_issued}-{uuid.uuid4().hex[:6]}"
            self.tokens.add(token)
            return token


class GmailHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def state(self) -> GmailState:
        return self.server.state

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.state.requests.append((method, self.path))
        fault = self.state.take_fault(method, unquote(self.path))
        if fault is not None:
            return self._json(
                fault.status,
                fault.body or {"error": {"code": fault.status, "message": "injected"}},
                fault.headers,
            )
        parts = urlsplit(self.path)
        path, query = unquote(parts.path), {key: values[0] for key, values in parse_qs(parts.query).items()}
        if (
            path == "/auth"
        ):  # the consent page: the user says yes at once, and the browser goes back to the redirect URI
            return self._consent(query)
        if path == "/token":
            return self._token({key: values[0] for key, values in parse_qs(body.decode()).items()})
        if self.headers.get("Authorization", "").removeprefix("Bearer ") not in self.state.tokens:
            return self._json(
                401,
                {
                    "error": {
                        "code": 401,
                        "message": "Request had invalid authentication credentials.",
                        "status": "UNAUTHENTICATED",
                    }
                },
            )
        prefix = f"/gmail/v1/users/{USER}/"
        if not path.startswith(prefix):
            return self._json(404, {"error": {"code": 404, "message": "no such user"}})
        self._api(method, path[len(prefix) :].split("/"), query, json.loads(body) if body else {})

    def _consent(self, query: dict) -> None:
        code = f"4/code-{uuid.uuid4().hex[:8]}"
        with self.state.lock:
            self.state.codes[code] = query.get("code_challenge", "")
        self.send_response(302)
        self.send_header(
            "Location",
            f"{query['redirect_uri']}?state={query['state']}&code={code}&scope={query.get('scope', '')}",
        )
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _token(self, form: dict) -> None:
        state = self.state
        if form.get("grant_type") == "authorization_code":
            if form.get("code") not in state.codes or not form.get("code_verifier"):
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "Malformed auth code."}
                )
            refresh = f"1//refresh-from-consent-{uuid.uuid4().hex[:6]}"
            state.refresh_tokens.add(refresh)
            return self._json(
                200,
                {
                    "access_token": state.issue(),
                    "expires_in": 3599,
                    "token_type": "Bearer",
                    "refresh_token": refresh,
                    "scope": form.get("scope", "https://www.googleapis.com/auth/gmail.readonly"),
                },
            )
        if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            try:
                claims = jwt.decode(
                    form["assertion"], state.public_key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE
                )
            except jwt.PyJWTError as exc:
                return self._json(
                    400, {"error": "invalid_grant", "error_description": f"Invalid JWT Signature: {exc}"}
                )
            if claims.get("sub") != USER:
                return self._json(
                    401,
                    {
                        "error": "unauthorized_client",
                        "error_description": "Client is unauthorized to retrieve access tokens using this method.",
                    },
                )
            return self._json(
                200, {"access_token": state.issue(), "expires_in": 3599, "token_type": "Bearer"}
            )
        if form.get("grant_type") == "refresh_token":
            if form.get("client_id") != CLIENT_ID or form.get("client_secret") != CLIENT_SECRET:
                return self._json(
                    401, {"error": "invalid_client", "error_description": "The OAuth client was not found."}
                )
            if form.get("refresh_token") not in state.refresh_tokens:
                return self._json(
                    400, {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
                )
            state.scopes.append(form.get("scope", ""))
            answer = {
                "access_token": state.issue(),
                "expires_in": 3599,
                "token_type": "Bearer",
                "scope": form.get("scope", ""),
            }
            if state.rotate_refresh_token:
                rotated = f"1//refresh-token-{uuid.uuid4().hex[:8]}"
                state.refresh_tokens = {rotated}
                answer["refresh_token"] = rotated
            return self._json(200, answer)
        self._json(400, {"error": "unsupported_grant_type"})

    def _api(self, method: str, pieces: list[str], query: dict, body: dict) -> None:
        state = self.state
        with state.lock:
            if pieces == ["profile"]:
                return self._json(200, {"emailAddress": USER, "historyId": str(state.history_id)})
            if pieces == ["messages"]:
                return self._list(query)
            if pieces == ["history"]:
                return self._history(query)
            if pieces == ["labels"]:
                if method == "POST":
                    state.labels.setdefault(body["name"], f"Label_{len(state.labels)}")
                    return self._json(200, {"id": state.labels[body["name"]], "name": body["name"]})
                return self._json(200, {"labels": [{"id": v, "name": k} for k, v in state.labels.items()]})
            if pieces[0] == "messages" and len(pieces) >= 2:
                message = state.messages.get(pieces[1])
                if message is None:
                    return self._json(
                        404, {"error": {"code": 404, "message": "Requested entity was not found."}}
                    )
                if len(pieces) == 2 and query.get("format") == "raw":
                    raw = base64.urlsafe_b64encode(message.raw).decode().rstrip("=")
                    return self._json(
                        200, {"id": message.gmail_id, "labelIds": sorted(message.labels), "raw": raw}
                    )
                if pieces[2:] == ["modify"] and method == "POST":
                    message.labels |= set(body.get("addLabelIds", []))
                    message.labels -= set(body.get("removeLabelIds", []))
                    state.history_id += 1
                    return self._json(200, {"id": message.gmail_id, "labelIds": sorted(message.labels)})
        self._json(404, {"error": {"code": 404, "message": "/".join(pieces)}})

    def _list(self, query: dict) -> None:
        state = self.state
        assert query.get("q") == "in:inbox", query
        matching = [
            gmail_id for gmail_id in reversed(state.order) if "INBOX" in state.messages[gmail_id].labels
        ]
        offset, size = int(query.get("pageToken", "0")), int(query.get("maxResults", "100"))
        answer: dict = {
            "messages": [
                {"id": gmail_id, "threadId": gmail_id} for gmail_id in matching[offset : offset + size]
            ],
            "resultSizeEstimate": len(matching),
        }
        if offset + size < len(matching):
            answer["nextPageToken"] = str(offset + size)
        self._json(200, answer)

    def _history(self, query: dict) -> None:
        state = self.state
        start = int(query["startHistoryId"])
        if start < state.oldest_history:
            return self._json(
                404,
                {"error": {"code": 404, "message": "Requested entity was not found.", "status": "NOT_FOUND"}},
            )
        label = query.get("labelId")
        entries = [
            (h, m, labels)
            for h, m, labels in state.history
            if h > start and (label is None or label in labels)
        ]
        offset, size = int(query.get("pageToken", "0")), 100
        page = entries[offset : offset + size]
        answer: dict = {
            "history": [
                {"id": str(h), "messagesAdded": [{"message": {"id": m, "labelIds": labels}}]}
                for h, m, labels in page
            ],
            "historyId": str(state.history_id),
        }
        if offset + size < len(entries):
            answer["nextPageToken"] = str(offset + size)
        self._json(200, answer)

    def _json(self, status: int, document: dict, headers: dict | None = None) -> None:
        payload = json.dumps(document).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)


class GmailServer:
    """The fake Gmail API and token endpoint on a loopback port, over TLS with the test CA's certificate."""

    def __init__(self, certificates: Path, directory: Path) -> None:
        self.state = GmailState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), GmailHandler)
        self.httpd.daemon_threads = True
        self.httpd.state = self.state
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certificates / "server.crt", certificates / "server.key")
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.ca_file = certificates / "ca.crt"
        self.directory = directory
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

    def service_account_file(self) -> Path:
        """A service account key file whose token_uri is this server (a fresh RSA key; the server checks its JWTs)."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.state.public_key = key.public_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        path = self.directory / "service-account.json"
        path.write_text(
            json.dumps(
                {
                    "type": "service_account",
                    "project_id": "test",
                    "private_key_id": "k1",
                    "private_key": pem,
                    "client_email": "triage@test.iam.gserviceaccount.com",
                    "client_id": "1",
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        return path

    def token_file(self) -> Path:
        """An authorised-user token file, as the installed-app consent flow writes it."""
        path = self.directory / "gmail-token.json"
        path.write_text(
            json.dumps(
                {
                    "type": "authorized_user",
                    "client_id": CLIENT_ID,
                    "client_secret": CLIENT_SECRET,
                    "refresh_token": REFRESH_TOKEN,
                    "token_uri": f"{self.url}/token",
                }
            )
        )
        path.chmod(0o600)
        return path

    def client_secrets_file(self) -> Path:
        """The installed app's client file, as the Google Cloud console downloads it."""
        path = self.directory / "client_secret.json"
        path.write_text(
            json.dumps(
                {
                    "installed": {
                        "client_id": CLIENT_ID,
                        "client_secret": CLIENT_SECRET,
                        "auth_uri": f"{self.url}/auth",
                        "token_uri": f"{self.url}/token",
                        "redirect_uris": ["http://localhost"],
                    }
                }
            )
        )
        return path

    def source(self, **overrides) -> dict:
        return {
            "name": "gmail",
            "type": "gmail",
            "user": USER,
            "gmail_url": f"{self.url}/gmail/v1",
            "ca_file": str(self.ca_file),
            "token_uri": f"{self.url}/token",
            "timeout_seconds": 10,
            "fetch_chunk": 50,
            **overrides,
        }
