"""A Gmail or Google Workspace mailbox through the Gmail API: google-auth tokens, history IDs as the checkpoint, raw messages.

Credentials: a service account with domain-wide delegation (`credentials_file`, acting as
`user`), or an installed app's authorised-user token (`token_file`, written by the consent flow;
its refresh token is saved again, atomically and mode 0600, whenever Google rotates it).
The first poll lists the mail `query` selects (default `in:inbox`) after noting the mailbox's
history ID; later polls read the history from there (messages added to `label`, default INBOX).
The resume point is a small JSON text: the phase, the history ID it starts from and the page in
hand, advanced like the Graph source's (the page's own token while its messages are committed,
the next one's once the last is, the newest history ID once the walk is complete) and stored
by the service with the records. Labels change only after the commit. Throttling (429, and
403 rateLimitExceeded) and 5xx are retried with backoff; a 401 refreshes the token once; a
refusal that persists, or a revoked refresh token, is an authentication failure; a history ID
too old for the API (404) starts a fresh listing, in which the store skips what it has.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import tempfile
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx

from complaint_triage.errors import SourceAuthError, SourceError, SourceInterrupted, TransientSourceError
from complaint_triage.logs import register_secret, scrub
from complaint_triage.records import RawMessage
from complaint_triage.settings import SourceSettings
from complaint_triage.sources.base import MailSource
from complaint_triage.sources.graph import MAX_WAIT, _retry_after, _tls_context, _transport_error, pin_verify

log = logging.getLogger("complaint_triage.gmail")

ATTEMPTS = 6
READONLY_SCOPE = "https://www.googleapis.com/auth/gmail.readonly"
MODIFY_SCOPE = "https://www.googleapis.com/auth/gmail.modify"
THROTTLED_REASONS = {"rateLimitExceeded", "userRateLimitExceeded", "backendError"}


class GmailMessage(RawMessage):
    """A message read through the Gmail API, with its id and the resume point it completes."""

    gmail_id: str
    resume: str


def describe(settings: SourceSettings) -> str:
    """How errors and logs name the source: never with a secret."""
    return f"source {settings.name!r} (gmail {settings.user})"


def _cursor(phase: str, start: str, page: str | None = None) -> str:
    return json.dumps({"phase": phase, "start": start, "page": page}, separators=(",", ":"))


class GmailSource(MailSource):
    """New mail of one Gmail mailbox since the resume point it is given; labels untouched until settle."""

    uses_cursor = True
    watches = False

    def __init__(self, settings: SourceSettings, stop: threading.Event | None = None):
        self.settings, self.name = settings, settings.name
        self.stop = stop or threading.Event()
        self.where = describe(settings)
        self.token_expires_at: datetime | None = None
        self.found = self.committed = 0
        self._completed: str | None = None
        self._credentials = None
        self._label_ids: dict[str, str] = {}
        self._http = httpx.Client(
            verify=_tls_context(settings),
            timeout=settings.timeout_seconds,
            headers={"User-Agent": "complaint-triage"},
        )

    @property
    def scope(self) -> str:
        """What the resume point covers: the query and the label."""
        return f"{self.settings.query} | {self.settings.label}"

    @property
    def touches_mailbox(self) -> bool:
        """True when committed mail is relabelled (so its commit must be durable first)."""
        return self.settings.after != "keep"

    @property
    def backlog(self) -> int:
        """Messages the last poll found and did not commit."""
        return max(0, self.found - self.committed)

    # -- fetching --------------------------------------------------------------------------

    def fetch_messages(self, cursor: str | None = None) -> Iterator[GmailMessage]:
        """Yield the mail added since CURSOR (the mail QUERY selects, without one)."""
        self._completed, self.found, self.committed = None, 0, 0
        point = (
            json.loads(cursor) if cursor else {"phase": "full", "start": self._history_now(), "page": None}
        )
        if point["phase"] == "history":
            yield from self._history(point)
        else:
            yield from self._listing(point)

    def _history_now(self) -> str:
        return str(self._json(self._call("GET", f"{self._user_url()}/profile"), "profile")["historyId"])

    def _listing(self, point: dict, relisted: bool = False) -> Iterator[GmailMessage]:
        """The first poll: every message the query selects, page by page; then the history from the ID noted before."""
        start, page = point["start"], point["page"]
        while True:
            params = {
                "q": self.settings.query,
                "maxResults": self.settings.fetch_chunk,
                **({"pageToken": page} if page else {}),
            }
            answer = self._json(
                self._call("GET", f"{self._user_url()}/messages", params=params), "messages.list"
            )
            following = answer.get("nextPageToken")
            after = _cursor("full", start, following) if following else _cursor("history", start)
            yield from self._messages(
                [item["id"] for item in answer.get("messages", [])], _cursor("full", start, page), after
            )
            if self.stop.is_set():
                return
            if not following:  # then what arrived while the listing ran, from the history ID noted before it
                yield from self._history({"phase": "history", "start": start, "page": None}, relisted)
                return
            page = following

    def _history(self, point: dict, relisted: bool = False) -> Iterator[GmailMessage]:
        start, page = point["start"], point["page"]
        while True:
            params = {
                "startHistoryId": start,
                "historyTypes": "messageAdded",
                "labelId": self.settings.label,
                **({"pageToken": page} if page else {}),
            }
            response = self._call("GET", f"{self._user_url()}/history", params=params)
            if response.status_code == 404:  # the ID is older than the history the API keeps
                log.warning(
                    "%s: history ID %s is no longer available: listing the mailbox afresh (stored mail is not duplicated)",
                    self.where,
                    start,
                )
                if relisted:  # the ID was noted just now: the API is not keeping its history
                    raise TransientSourceError(f"{self.where}: the history from ID {start} is not available")
                yield from self._listing(
                    {"phase": "full", "start": self._history_now(), "page": None}, relisted=True
                )
                return
            answer = self._json(response, "history.list")
            following, newest = answer.get("nextPageToken"), str(answer.get("historyId", start))
            after = _cursor("history", start, following) if following else _cursor("history", newest)
            yield from self._messages(
                _added(answer, self.settings.label), _cursor("history", start, page), after
            )
            if self.stop.is_set():
                return
            if not following:
                self._completed = _cursor("history", newest)
                return
            page = following

    def _messages(self, ids: list[str], this_page: str, next_page: str) -> Iterator[GmailMessage]:
        self.found += len(ids)
        for position, gmail_id in enumerate(ids):
            if self.stop.is_set():
                return
            message = self._raw(gmail_id, next_page if position == len(ids) - 1 else this_page)
            if message is not None:
                yield message

    def _raw(self, gmail_id: str, resume: str) -> GmailMessage | None:
        response = self._call(
            "GET", f"{self._user_url()}/messages/{quote(gmail_id, safe='')}", params={"format": "raw"}
        )
        if response.status_code == 404:  # deleted since it was listed
            return None
        answer = self._json(response, "messages.get")
        raw = base64.urlsafe_b64decode(answer["raw"] + "=" * (-len(answer["raw"]) % 4))
        source = f"gmail://{self.settings.user}/{gmail_id}"
        return GmailMessage(raw=raw, source=source, source_name=self.name, gmail_id=gmail_id, resume=resume)

    # -- resume points ---------------------------------------------------------------------

    def cursor_after(self, messages: list[RawMessage]) -> str:
        """The resume point once MESSAGES (in the order fetched) are committed."""
        self.committed += len(messages)
        return messages[-1].resume

    def completed_cursor(self) -> str | None:
        """The resume point after a poll that ran to its end (None when it stopped early)."""
        return self._completed

    # -- after the commit ------------------------------------------------------------------

    def settle(self, messages: list[RawMessage]) -> None:
        """Remove UNREAD, or move (add move_to's label, remove `label`), as configured; nothing with after = "keep"."""
        if self.settings.after == "keep":
            return
        if self.settings.after == "seen":
            change = {"removeLabelIds": ["UNREAD"]}
        else:
            change = {
                "addLabelIds": [self._label_id(self.settings.move_to)],
                "removeLabelIds": [self.settings.label],
            }
        for message in messages:
            response = self._call(
                "POST", f"{self._user_url()}/messages/{quote(message.gmail_id, safe='')}/modify", json=change
            )
            if response.status_code != 404:
                self._json(response, "messages.modify")

    def _label_id(self, name: str) -> str:
        """The id of the label NAME, created when missing."""
        if name not in self._label_ids:
            labels = self._json(self._call("GET", f"{self._user_url()}/labels"), "labels.list").get(
                "labels", []
            )
            found = [label["id"] for label in labels if label.get("name") == name or label.get("id") == name]
            if not found:
                created = self._json(
                    self._call("POST", f"{self._user_url()}/labels", json={"name": name}), "labels.create"
                )
                found = [created["id"]]
            self._label_ids[name] = found[0]
        return self._label_ids[name]

    def _user_url(self) -> str:
        return f"{self.settings.gmail_url.rstrip('/')}/users/{quote(self.settings.user, safe='@')}"

    # -- requests --------------------------------------------------------------------------

    def _call(self, method: str, url: str, **options) -> httpx.Response:
        """One API request with a token; throttling and server errors retried, an auth refusal retried once with a new token."""
        refreshed = False
        for attempt in range(ATTEMPTS):
            response = self._send(method, url, **options)
            status, reason = response.status_code, _reason(response)
            if status == 429 or status >= 500 or (status == 403 and reason in THROTTLED_REASONS):
                self._wait_before_retry(response, attempt)
                continue
            if status in (401, 403):
                if refreshed:
                    raise SourceAuthError(
                        f"{self.where}: the Gmail API refused the token (HTTP {status} {_message(response)}); "
                        "check the scopes granted (gmail.modify) and, for a service account, its domain-wide delegation"
                    )
                self._refresh()
                refreshed = True
                continue
            return response
        raise TransientSourceError(
            f"{self.where}: the Gmail API answered HTTP {status} {_message(response)} {ATTEMPTS} times"
        )

    def _wait_before_retry(self, response: httpx.Response, attempt: int) -> None:
        seconds = min(_retry_after(response) or 2.0**attempt, MAX_WAIT)
        log.warning(
            "%s: the Gmail API answered HTTP %d: retrying in %.1f s",
            self.where,
            response.status_code,
            seconds,
            extra={"source": self.name},
        )
        if self.stop.wait(seconds):
            raise SourceInterrupted(f"{self.where}: stopped while waiting to retry")

    def _send(self, method: str, url: str, **options) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self._token()}"}
        try:
            return self._http.request(method, url, headers=headers, **options)
        except httpx.TransportError as exc:
            raise _transport_error(exc, self.where, url, self.settings.timeout_seconds) from exc

    @staticmethod
    def _json(response: httpx.Response, what: str) -> dict:
        if not 200 <= response.status_code < 300:
            raise SourceError(f"Gmail {what}: HTTP {response.status_code} {_message(response)}")
        try:
            return response.json()
        except ValueError as exc:
            raise TransientSourceError(f"Gmail {what}: the answer is not JSON") from exc

    # -- credentials -----------------------------------------------------------------------

    def _token(self) -> str:
        credentials = self._google_credentials()
        if not credentials.valid:
            self._refresh()
        return credentials.token

    def _refresh(self) -> None:
        """A new access token from the token endpoint; a rotated refresh token is saved at once."""
        self.token_expires_at = refresh_credentials(self._google_credentials(), self.settings, self.where)

    def _google_credentials(self):
        if self._credentials is None:
            self._credentials = load_credentials(self.settings, self.where)
        return self._credentials

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()


def refresh_credentials(credentials, settings: SourceSettings, where: str) -> datetime | None:
    """Get a new access token (remembered as a secret); save a rotated refresh token to token_file; the token's expiry."""
    import google.auth.exceptions
    import google.auth.transport.requests
    import requests

    before = getattr(credentials, "refresh_token", None)
    session = pin_verify(requests.Session(), settings.ca_file)
    try:
        credentials.refresh(google.auth.transport.requests.Request(session))
    except google.auth.exceptions.RefreshError as exc:
        raise SourceAuthError(f"{where}: the token endpoint refused: {scrub(_first_line(exc))}") from exc
    except (google.auth.exceptions.TransportError, requests.exceptions.RequestException) as exc:
        host = urlsplit(getattr(credentials, "token_uri", "") or "").netloc
        raise TransientSourceError(
            f"{where}: cannot reach the token endpoint {host}: {type(exc).__name__}"
        ) from exc
    register_secret(credentials.token)
    if (
        settings.token_file
        and not settings.credentials_file
        and getattr(credentials, "refresh_token", None) != before
    ):
        register_secret(credentials.refresh_token)
        save_token_file(settings.token_file, credentials.to_json(strip=["token", "expiry"]))
    return credentials.expiry.replace(tzinfo=UTC) if credentials.expiry else None


def load_credentials(settings: SourceSettings, where: str, scopes: list[str] | None = None):
    """The service account (acting as the user) or the installed app's authorised-user token."""
    scopes = scopes or [READONLY_SCOPE if settings.after == "keep" else MODIFY_SCOPE]
    try:
        if settings.credentials_file:
            from google.oauth2 import service_account

            subject = settings.user or settings.username  # the Gmail mailbox, or the IMAP login
            return service_account.Credentials.from_service_account_file(
                settings.credentials_file, scopes=scopes, subject=subject
            )
        from google.oauth2.credentials import Credentials

        info = json.loads(Path(settings.token_file).read_text(encoding="utf-8"))
        # google-auth reads no token_uri from an authorised-user file (it always names Google's): the setting does
        credentials = Credentials(
            None,
            refresh_token=info["refresh_token"],
            client_id=info["client_id"],
            client_secret=info["client_secret"],
            token_uri=settings.token_uri,
            scopes=scopes,
        )
    except KeyError as exc:
        raise SourceAuthError(
            f"{where}: token_file {settings.token_file} has no {exc.args[0]}: run the consent flow again"
        ) from exc
    except OSError as exc:
        raise SourceAuthError(f"{where}: cannot read {exc.filename}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a file that is not the credentials it should be (JSONDecodeError is one)
        raise SourceAuthError(
            f"{where}: the credentials file is not usable: {scrub(_first_line(exc))}"
        ) from exc
    register_secret(credentials.refresh_token or "")
    register_secret(credentials.client_secret or "")
    return credentials


def save_token_file(path: str, text: str) -> None:
    """Replace the token file atomically (a crash leaves the old one or the new one), readable by its owner only."""
    target = Path(path)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        os.fchmod(handle, 0o600)
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _added(answer: dict, label: str) -> list[str]:
    """The ids of messages added with LABEL in one history page, each once, in order."""
    seen: dict[str, None] = {}
    for entry in answer.get("history", []):
        for added in entry.get("messagesAdded", []):
            message = added.get("message", {})
            if label in message.get("labelIds", []):
                seen.setdefault(message["id"], None)
    return list(seen)


def _first_line(exc: BaseException) -> str:
    text = str(exc.args[0] if exc.args else exc)
    return text.strip().splitlines()[0] if text.strip() else type(exc).__name__


def _error(response: httpx.Response) -> dict:
    try:
        error = response.json().get("error", {})
        return error if isinstance(error, dict) else {"message": str(error)}
    except (ValueError, AttributeError):
        return {}


def _reason(response: httpx.Response) -> str:
    errors = _error(response).get("errors") or [{}]
    return str(errors[0].get("reason", "")) if isinstance(errors, list) else ""


def _message(response: httpx.Response) -> str:
    error = _error(response)
    text = f"{error.get('status', '')}: {error.get('message', '')}".strip(": ")
    return scrub(text.splitlines()[0]) if text else ""
