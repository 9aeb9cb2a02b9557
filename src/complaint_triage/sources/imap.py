"""An IMAP account as a mail source: incremental by UID, read without touching flags, settled only after commit.

Per source and folder the store keeps the UIDVALIDITY and the last committed UID (checkpoints.py).
A poll asks for newer UIDs and, with SEARCH LARGER, which of them are large or over the size
limit; then fetches bodies with BODY.PEEK[] in batches (a large message alone); a message over
the limit yields its headers and the reason instead.
The checkpoint advances in the transaction that commits the records (`record_progress`), and
flagging or moving (`settle`) happens after that commit; what a dropped connection left unsettled
is settled at the start of the next poll.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from typing import Any, Iterable, Iterator
from urllib.parse import quote

from imapclient import DELETED, SEEN, IMAPClient
from imapclient.exceptions import IMAPClientError

from complaint_triage.errors import SourceError, TransientSourceError
from complaint_triage.records import FolderCheckpoint, RawMessage
from complaint_triage.settings import SourceSettings
from complaint_triage.sources.base import CheckpointLedger, MailSource
from complaint_triage.sources.imap_session import FetchAhead, close_quietly, connect, describe, imap_errors
from complaint_triage.sources.oauth import token_provider

log = logging.getLogger("complaint_triage.imap")

# A message larger than this is fetched on its own, so one batched fetch holds at most fetch_chunk x 256 KiB.
LARGE_MESSAGE = 256 * 1024


class ImapMessage(RawMessage):
    """A message fetched from an IMAP folder, with where it sits there."""

    folder: str
    uidvalidity: int
    uid: int


def folder_url(settings: SourceSettings, folder: str, uidvalidity: int) -> str:
    """The RFC 5092 IMAP URL of a folder under one UIDVALIDITY; a message's adds `/;UID=n`."""
    default_port = 993 if settings.security == "ssl" else 143
    port = "" if settings.port == default_port else f":{settings.port}"
    return f"imap://{quote(settings.username, safe='')}@{settings.host}{port}/{quote(folder, safe='/')};UIDVALIDITY={uidvalidity}"


def plan_fetches(
    uids: list[int], large: set[int], oversized: set[int], chunk: int
) -> Iterator[tuple[list[int], bool]]:
    """Group UIDs, in order, into body fetches of up to CHUNK; a large message stands alone, an oversized one is flagged True."""
    run: list[int] = []
    for uid in uids:
        if uid in large or uid in oversized:
            if run:
                yield run, False
            run = []
            yield [uid], uid in oversized
            continue
        run.append(uid)
        if len(run) == chunk:
            yield run, False
            run = []
    if run:
        yield run, False


def by_folder(messages: Iterable[RawMessage]) -> dict[tuple[str, int], list[int]]:
    """UIDs grouped by (folder, UIDVALIDITY)."""
    groups: dict[tuple[str, int], list[int]] = defaultdict(list)
    for message in messages:
        groups[(message.folder, message.uidvalidity)].append(message.uid)
    return groups


class ImapSource(MailSource):
    """New mail of each configured folder since its checkpoint; flags untouched until settle."""

    keeps_place = True  # UIDs above the folder's checkpoint: nothing stored is fetched again

    def __init__(
        self, settings: SourceSettings, checkpoints: CheckpointLedger, stop: threading.Event | None = None
    ):
        self.settings, self.name, self.checkpoints = settings, settings.name, checkpoints
        self.stop = stop or threading.Event()
        self.where = describe(settings)
        self.found = self.committed = 0
        self._client: IMAPClient | None = None
        self._selected: tuple[str, int] | None = None
        self._known_folders: set[str] = set()
        self._urls: dict[tuple[str, int], str] = {}
        self._ahead = FetchAhead()
        self._token = token_provider(settings, self.where)  # XOAUTH2 built in, when the settings ask for it

    @property
    def token_expires_at(self):
        """When the built-in provider's access token expires (None without one, or before the first)."""
        return getattr(self._token, "token_expires_at", None)

    @property
    def watches(self) -> bool:
        """True when the source waits in IDLE for new mail instead of polling on a timer."""
        return self.settings.watch

    @property
    def touches_mailbox(self) -> bool:
        """True when committed mail is flagged or moved (so its commit must be durable first)."""
        return self.settings.after != "keep"

    @property
    def backlog(self) -> int:
        """Messages the last poll found and did not commit."""
        return max(0, self.found - self.committed)

    # -- fetching --------------------------------------------------------------------------

    def fetch_messages(self) -> Iterator[ImapMessage]:
        """Yield the new messages of every folder, oldest first; nothing is marked read."""
        self.found = self.committed = 0
        with self._guard():
            client = self._session()
            try:
                for folder in self.settings.all_folders:
                    if self.stop.is_set():
                        return
                    yield from self._new_in_folder(client, folder)
            finally:
                self._end_fetch_ahead()

    def _end_fetch_ahead(self) -> None:
        """A poll that ends early (stop, lost lease) reads the batch still on its way, so the connection is free again."""
        try:
            with imap_errors(self.where):
                self._ahead.receive()
        except SourceError:  # the session is in doubt: the next poll opens a new one
            self._drop()
        self._ahead.forget()

    def _new_in_folder(self, client: IMAPClient, folder: str) -> Iterator[ImapMessage]:
        uidvalidity = self._open(client, folder, force=True)
        mark = self._checkpoint(folder, uidvalidity)
        self._catch_up(client, folder, mark)
        uids = self._newer(client, mark.last_uid)
        self.found += len(uids)
        log.log(
            logging.INFO if uids else logging.DEBUG,
            "%s: %s: %d new",
            self.where,
            folder,
            len(uids),
            extra={"source": self.name, "folder": folder, "count": len(uids)},
        )
        large, oversized = self._large_and_oversized(client, mark.last_uid, uids)
        plans = list(plan_fetches(uids, large, oversized, self.settings.fetch_chunk))
        for position, (batch, too_big) in enumerate(plans):
            following = plans[position + 1] if position + 1 < len(plans) else ([], True)
            ahead = (
                [] if following[1] else following[0]
            )  # the next batch of bodies, asked for before this one is handed on
            fetched = (
                self._headers_only(client, folder, uidvalidity, batch[0])
                if too_big
                else self._bodies(client, folder, uidvalidity, batch, ahead)
            )
            for message in fetched:
                if self.stop.is_set():
                    return
                yield message

    def _newer(self, client: IMAPClient, last_uid: int, *criteria) -> list[int]:
        """UIDs above LAST_UID matching CRITERIA, ascending (`n:*` also names the highest UID, even below n)."""
        return sorted(uid for uid in client.search(["UID", f"{last_uid + 1}:*", *criteria]) if uid > last_uid)

    def _large_and_oversized(
        self, client: IMAPClient, last_uid: int, uids: list[int]
    ) -> tuple[set[int], set[int]]:
        """The sizes that matter, asked of the server (SEARCH LARGER) instead of fetched message by message."""
        if not uids:
            return set(), set()
        limit = self.settings.max_message_bytes
        large = set(self._newer(client, last_uid, "LARGER", str(min(LARGE_MESSAGE, limit))))
        oversized = set(self._newer(client, last_uid, "LARGER", str(limit))) if large else set()
        return large, oversized

    def _bodies(
        self, client: IMAPClient, folder: str, uidvalidity: int, uids: list[int], ahead: list[int]
    ) -> Iterator[ImapMessage]:
        """The bodies of UIDS (asked for ahead, or now); AHEAD is asked for before they are handed on, so the server sends it while these are stored."""
        self._open(client, folder)  # settle may have selected another folder while we were suspended
        fetched = self._ahead.take(uids)
        if fetched is None:
            fetched = self._ahead.fetch(client, uids)
        if ahead:
            self._ahead.send(client, ahead)
        for uid in uids:
            body = fetched.get(uid, {}).get(b"BODY[]")
            if body is not None:  # else expunged meanwhile
                yield self._message(folder, uidvalidity, uid, body)

    def _headers_only(
        self, client: IMAPClient, folder: str, uidvalidity: int, uid: int
    ) -> Iterator[ImapMessage]:
        self._open(client, folder)
        self._ahead.receive()
        data = client.fetch([uid], ["RFC822.SIZE", "BODY.PEEK[HEADER]"]).get(uid, {})
        if b"BODY[HEADER]" not in data:
            return
        reason = f"message of {data.get(b'RFC822.SIZE')} bytes is over the {self.settings.max_message_bytes}-byte limit: only its headers were fetched; read it in the mailbox"
        log.warning(
            "%s: %s: UID %d: %s",
            self.where,
            folder,
            uid,
            reason,
            extra={"source": self.name, "folder": folder, "uid": uid},
        )
        yield self._message(folder, uidvalidity, uid, data[b"BODY[HEADER]"], reason)

    def _message(
        self, folder: str, uidvalidity: int, uid: int, raw: bytes, unfetched_reason: str | None = None
    ) -> ImapMessage:
        if (folder, uidvalidity) not in self._urls:
            self._urls[(folder, uidvalidity)] = folder_url(self.settings, folder, uidvalidity)
        source = f"{self._urls[(folder, uidvalidity)]}/;UID={uid}"
        return ImapMessage(
            raw=raw,
            source=source,
            source_name=self.name,
            folder=folder,
            uidvalidity=uidvalidity,
            uid=uid,
            unfetched_reason=unfetched_reason,
        )

    def _checkpoint(self, folder: str, uidvalidity: int) -> FolderCheckpoint:
        """The folder's checkpoint under its current UIDVALIDITY; a changed one starts a rescan."""
        stored = self.checkpoints.folder(self.name, folder)
        mark = stored.under(uidvalidity)
        if mark is not stored:
            if stored.uidvalidity is not None:
                log.warning(
                    "%s: %s: UIDVALIDITY changed from %s to %s: rescanning (stored messages are not duplicated)",
                    self.where,
                    folder,
                    stored.uidvalidity,
                    uidvalidity,
                )
            self.checkpoints.save(self.name, folder, mark)
        return mark

    # -- after the commit ------------------------------------------------------------------

    def record_progress(self, connection: Any, messages: list[RawMessage]) -> None:
        """Advance each folder's checkpoint to the highest committed UID, inside the transaction that commits the records."""
        keep = self.settings.after == "keep"
        for (folder, uidvalidity), uids in by_folder(messages).items():
            last = max(uids)  # fetched in UID order, so everything below it is committed too
            self.checkpoints.advance(
                connection, self.name, folder, FolderCheckpoint(uidvalidity, last, last if keep else 0)
            )
        self.committed += len(messages)

    def settle(self, messages: list[RawMessage]) -> None:
        """Mark committed messages seen or move them, as configured; nothing happens with after = "keep"."""
        if self.settings.after == "keep" or not messages:
            return
        with self._guard():
            client = self._connected()
            self._ahead.receive()  # the next batch may be on its way: read it before other commands
            resume = self._selected
            for (folder, uidvalidity), uids in by_folder(messages).items():
                self._settle_in(client, folder, uidvalidity, uids)
            if (
                resume is not None
                and self._selected != resume
                and self._open(client, resume[0], force=True) != resume[1]
            ):
                raise TransientSourceError(f"{self.where}: {resume[0]}: UIDVALIDITY changed during the poll")

    def _settle_in(self, client: IMAPClient, folder: str, uidvalidity: int, uids: list[int]) -> None:
        if (
            self._open(client, folder) != uidvalidity
        ):  # the folder was recreated: these UIDs now name other mail
            log.warning(
                "%s: %s: UIDVALIDITY changed since the fetch: %d messages left in place",
                self.where,
                folder,
                len(uids),
            )
            return
        self._act(client, uids)
        self.checkpoints.save(self.name, folder, FolderCheckpoint(uidvalidity, 0, max(uids)))

    def _catch_up(self, client: IMAPClient, folder: str, mark: FolderCheckpoint) -> None:
        """Settle what an earlier poll committed but could not flag or move (the connection dropped in between)."""
        if self.settings.after == "keep" or mark.settled_uid >= mark.last_uid:
            return
        pending = client.search(["UID", f"{mark.settled_uid + 1}:{mark.last_uid}"])
        if pending:
            log.info(
                "%s: %s: settling %d messages committed by an earlier poll", self.where, folder, len(pending)
            )
            self._act(client, pending)
        self.checkpoints.save(self.name, folder, FolderCheckpoint(mark.uidvalidity, 0, mark.last_uid))

    def _act(self, client: IMAPClient, uids: list[int]) -> None:
        if self.settings.after == "seen":
            client.add_flags(uids, [SEEN], silent=True)
        else:
            self._move(client, uids, self.settings.move_to)

    def _move(self, client: IMAPClient, uids: list[int], target: str) -> None:
        """MOVE where the server has it, else COPY, flag \\Deleted and expunge just those UIDs (UIDPLUS) or the folder."""
        if target not in self._known_folders:
            if not client.folder_exists(target):
                client.create_folder(target)
            self._known_folders.add(target)
        if client.has_capability("MOVE"):
            client.move(uids, target)
            return
        client.copy(uids, target)
        client.add_flags(uids, [DELETED], silent=True)
        client.uid_expunge(uids) if client.has_capability("UIDPLUS") else client.expunge()

    # -- waiting for mail ------------------------------------------------------------------

    def wait_for_mail(self, seconds: float) -> bool:
        """Wait in IDLE on the first folder until new mail, SECONDS or stop; False when the server has no IDLE."""
        folder = self.settings.all_folders[0]
        with self._guard():
            client = self._session()
            if not client.has_capability("IDLE"):
                return False
            uidvalidity = self._open(client, folder, force=True)
            last = self.checkpoints.folder(self.name, folder).under(uidvalidity).last_uid
            if any(uid > last for uid in client.search(["UID", f"{last + 1}:*"])):
                return True  # arrived between the poll and now: IDLE would not announce it
            client.idle()
            try:
                self._idle_until(client, time.monotonic() + seconds)
            finally:
                client.idle_done()
        return True

    def _idle_until(self, client: IMAPClient, deadline: float) -> None:
        while not self.stop.is_set() and (left := deadline - time.monotonic()) > 0:
            slice_ = min(1.0, left)  # wake every second to notice a stop
            started = time.monotonic()
            responses = client.idle_check(timeout=slice_)
            if any(len(response) > 1 and response[1] == b"EXISTS" for response in responses):
                return
            if (
                not responses and time.monotonic() - started < slice_ / 2
            ):  # woke with nothing to read: the server hung up
                raise TransientSourceError(f"{self.where}: connection closed during IDLE")

    # -- the connection --------------------------------------------------------------------

    def _session(self) -> IMAPClient:
        """The open connection if it still answers NOOP, else a new one (with credentials fetched afresh)."""
        if self._client is not None:
            try:
                self._client.noop()
                return self._client
            except (IMAPClientError, OSError):
                self._drop()
        self._client = connect(self.settings, self.stop, self._token)
        self._selected, self._known_folders = None, set()
        return self._client

    def _connected(self) -> IMAPClient:
        if self._client is None:
            raise TransientSourceError(f"{self.where}: not connected")
        return self._client

    def _open(self, client: IMAPClient, folder: str, force: bool = False) -> int:
        """Select FOLDER (read-only with after = "keep") unless it is selected; returns its UIDVALIDITY."""
        if force or self._selected is None or self._selected[0] != folder:
            self._ahead.receive()
            status = client.select_folder(folder, readonly=self.settings.after == "keep")
            self._selected = (folder, int(status[b"UIDVALIDITY"]))
        return self._selected[1]

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """IMAP errors as the library's; after a transient one the connection is dropped, to be reopened."""
        try:
            with imap_errors(self.where):
                yield
        except TransientSourceError:
            self._drop()
            raise

    def _drop(self) -> None:
        client, self._client, self._selected = self._client, None, None
        self._ahead.forget()
        if client is not None:
            close_quietly(client)

    def close(self) -> None:
        """Log out and close the connection."""
        self._end_fetch_ahead()
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            client.logout()
        except (IMAPClientError, OSError):
            close_quietly(client)
