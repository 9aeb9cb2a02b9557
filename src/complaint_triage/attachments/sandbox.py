"""The parent's side of the attachment sandbox: one re-used child process, replaced when it dies, hangs or grows."""

from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path

from complaint_triage.attachments.extraction import Extraction
from complaint_triage.attachments.reading import ReadAttachment, read_all
from complaint_triage.attachments.sniff import sniff_type
from complaint_triage.attachments.worker import HEADER
from complaint_triage.records import Attachment
from complaint_triage.settings import AttachmentSettings

log = logging.getLogger(__name__)
START_SECONDS = 60.0  # importing pypdf and pydantic in a fresh interpreter on a loaded host
RECYCLE_JOBS = 1000  # a fresh child now and then, whatever its memory says


class ChildGone(Exception):
    """The child stopped answering: it exited, was killed by a limit, or timed out."""


class Child:
    """One running worker process and its pipes."""

    def __init__(self, limits: AttachmentSettings):
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        )
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "complaint_triage.attachments.worker", limits.model_dump_json()],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env=env,
                start_new_session=True,  # no terminal signals
            )
        except OSError as exc:
            raise ChildGone(f"the reader process could not start ({exc})") from None
        self.jobs = 0
        try:
            self.receive(time.monotonic() + START_SECONDS)
        except ChildGone as exc:
            self.stop()
            raise ChildGone(f"the reader process did not start ({exc})") from None

    def send(self, data: bytes) -> None:
        """One request frame."""
        try:
            self.process.stdin.write(len(data).to_bytes(HEADER, "big") + data)
            self.process.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise ChildGone(f"the reader process stopped ({exc})") from None

    def receive(self, deadline: float) -> dict:
        """One reply frame, or ChildGone when the deadline passes or the child exits first."""
        header = self._read(HEADER, deadline)
        return json.loads(self._read(int.from_bytes(header, "big"), deadline))

    def _read(self, size: int, deadline: float) -> bytes:
        fd, chunks, left = self.process.stdout.fileno(), [], size
        while left:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise ChildGone("timeout")
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                raise ChildGone(self.exit_reason())
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def exit_reason(self) -> str:
        """Why the child ended, in the words of the limit that ended it."""
        code = self.process.wait(timeout=5)
        if code == -signal.SIGXCPU:
            return "over the CPU limit"
        if code == -signal.SIGKILL:
            return "killed (over the memory limit?)"
        return f"the reader process exited with status {code}"

    def stop(self) -> None:
        """Kill and reap the process."""
        if self.process.poll() is None:
            self.process.kill()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process.wait()


class SandboxedReader:
    """Reads a message's attachments in a child process under the configured limits; callable by the Triager."""

    def __init__(self, limits: AttachmentSettings | None = None):
        self.limits = limits or AttachmentSettings()
        self._child: Child | None = None
        self._lock = threading.Lock()
        self.last_reply: dict = {}  # the figures of the latest extraction (seconds, peak_kib, rss_kib), for benchmarks
        weakref.finalize(self, _stop_holder, self.__dict__)

    def __call__(self, attachments: list[Attachment]) -> list[ReadAttachment]:
        """Each attachment's record entry and text."""
        return read_all(attachments, self.read_one, self.limits)

    def read_one(self, data: bytes) -> Extraction:
        """The extraction of one attachment's bytes; a timeout or a dead child gives 'unreadable' and a new child."""
        with self._lock:
            try:
                reply = self._ask(data)
            except ChildGone as exc:
                self._discard()
                return Extraction(type=sniff_type(data), status="unreadable", reason=self._reason(str(exc)))
            self._recycle(reply)
        self.last_reply = {key: reply[key] for key in ("seconds", "peak_kib", "rss_kib")}
        return Extraction(
            type=reply["type"],
            status=reply["status"],
            text=reply["text"],
            pages=reply["pages"],
            reason=reply["reason"],
        )

    def _ask(self, data: bytes) -> dict:
        if self._child is not None and self._child.process.poll() is not None:
            self._discard()  # it died while idle (killed from outside): not this attachment's doing
        if self._child is None:
            self._child = Child(self.limits)
        self._child.send(data)
        self._child.jobs += 1
        return self._child.receive(time.monotonic() + self.limits.timeout_seconds)

    def _reason(self, why: str) -> str:
        if why == "timeout":
            return f"timed out after {self.limits.timeout_seconds:g} s"
        return why

    def _recycle(self, reply: dict) -> None:
        """A child that grew past recycle_rss_mb (allocators rarely give memory back) is replaced."""
        if reply.get("rss_kib", 0) > self.limits.recycle_rss_mb * 1024 or self._child.jobs >= RECYCLE_JOBS:
            self._discard()

    def _discard(self) -> None:
        if self._child is not None:
            child, self._child = self._child, None
            child.stop()

    def close(self) -> None:
        """Stop the child process."""
        with self._lock:
            self._discard()


def _stop_holder(state: dict) -> None:
    child = state.get("_child")
    if child is not None:
        child.stop()
