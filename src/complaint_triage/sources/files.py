"""Saved mail: single message files, directories of them, mbox files and Maildirs (with Maildir++ folders)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Iterator

from complaint_triage.errors import SourceError
from complaint_triage.pipeline.parse import has_mail_headers
from complaint_triage.records import RawMessage
from complaint_triage.sources.base import MailSource

UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 65_536
NO_MAIL_HEADERS = "not *.eml and without mail headers"
_FIELD_LINE = re.compile(rb"[!-9;-~]+[ \t]*:")  # RFC 5322 field name: printable ASCII but the colon


class _ReadOnlySource(MailSource):
    """Saved mail: read, never changed (the interface's defaults)."""


class EmlFileSource(_ReadOnlySource):
    """One saved message."""

    def __init__(self, path: Path, name: str = "file"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield the file's bytes."""
        yield RawMessage(raw=_read_bytes(self.path), source=str(self.path), source_name=self.name)


class DirectorySource(_ReadOnlySource):
    """Every `*.eml` below a directory and every other file that starts like mail (an mbox gives its messages).

    Files are read in sorted path order; what is not read is counted by reason in `skipped`.
    """

    def __init__(self, path: Path, name: str = "directory"):
        self.path, self.name = Path(path), name
        self.skipped: Counter = Counter()

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield the messages of each mail file below the directory."""
        self.skipped = Counter()
        for file in sorted(p for p in self.path.rglob("*") if p.is_file()):
            if is_mbox(file):
                yield from MboxSource(file, self.name).fetch_messages()
            elif file.suffix.lower() == ".eml" or starts_like_mail(_head(file)):
                yield RawMessage(raw=_read_bytes(file), source=str(file), source_name=self.name)
            else:
                self.skipped[NO_MAIL_HEADERS] += 1


class MboxSource(_ReadOnlySource):
    """The messages of one mbox file, in file order: each starts at a 'From ' line (a UTF-8 BOM before the first is ignored)."""

    def __init__(self, path: Path, name: str = "mbox"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield each message of the mbox without its 'From ' line; `source` is PATH#N (1-based)."""
        try:
            handle = self.path.open("rb")
        except OSError as exc:
            raise SourceError(f"cannot read {self.path}: {exc.strerror or exc}") from exc
        with handle:
            for index, raw in enumerate(mbox_messages(handle), start=1):
                yield RawMessage(raw=raw, source=f"{self.path}#{index}", source_name=self.name)


def mbox_messages(lines) -> Iterator[bytes]:
    """The messages of an mbox read line by line (as the standard library splits it: at every 'From ' line)."""
    current: list[bytes] | None = None
    for number, line in enumerate(lines):
        if number == 0:
            line = line.removeprefix(UTF8_BOM)
        if line.startswith(b"From "):
            if current is not None:
                yield _without_separator_line(current)
            current = []
        elif current is not None:  # text before the first 'From ' line belongs to no message
            current.append(line)
    if current is not None:
        yield _without_separator_line(current)


def _without_separator_line(lines: list[bytes]) -> bytes:
    """The message's bytes without the empty line that separates it from the next 'From ' line."""
    if lines and lines[-1] == b"\n":
        lines = lines[:-1]
    return b"".join(lines)


class MaildirSource(_ReadOnlySource):
    """The messages of a Maildir and of its Maildir++ folders (.Sent, .Lists.Work), new/ then cur/ of each, in
    file-name order; nothing is changed."""

    def __init__(self, path: Path, name: str = "maildir"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield each message file of the Maildir and its folders; `source` is its path."""
        for folder in [self.path, *maildir_folders(self.path)]:
            for sub in ("new", "cur"):
                for file in sorted((folder / sub).iterdir()) if (folder / sub).is_dir() else []:
                    if file.is_file() and not file.name.startswith("."):
                        yield RawMessage(raw=_read_bytes(file), source=str(file), source_name=self.name)


def maildir_folders(path: Path) -> list[Path]:
    """The Maildir++ folders of a Maildir: its subdirectories named '.Name' that are Maildirs themselves."""
    return sorted(child for child in path.iterdir() if child.name.startswith(".") and is_maildir(child))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def is_maildir(path: Path) -> bool:
    """A directory with cur/ and new/ is a Maildir."""
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def starts_like_mail(head: bytes) -> bool:
    """True when bytes open with a header field and their header block has a mail header.

    The first line must be a field: a database or its journal beside the mail holds whole messages
    further in, and must not be read as one.
    """
    head = head.removeprefix(UTF8_BOM)
    return _FIELD_LINE.match(head) is not None and has_mail_headers(head)


def is_mbox(path: Path) -> bool:
    """An mbox file starts with a 'From ' separator line (after a UTF-8 byte-order mark, if any)."""
    return _head(path, 8).removeprefix(UTF8_BOM).startswith(b"From ")


def _head(path: Path, size: int = _SNIFF_BYTES) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


_SOURCE_TYPES = {
    "directory": DirectorySource,
    "mbox": MboxSource,
    "maildir": MaildirSource,
    "eml": EmlFileSource,
}


def sources_for_path(path: str | Path, name: str | None = None, declared_type: str | None = None):
    """The saved-mail source for a path: of DECLARED_TYPE when the config says one, else told by what is there."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"no such file or directory: {path}")
    if declared_type is not None:
        return _declared_source(path, name, declared_type)
    if is_maildir(path):
        return MaildirSource(path, name or "maildir")
    if path.is_dir():
        return DirectorySource(path, name or "directory")
    if is_mbox(path):
        return MboxSource(path, name or "mbox")
    return EmlFileSource(path, name or "file")


def _declared_source(path: Path, name: str | None, declared_type: str):
    kind = _SOURCE_TYPES.get(declared_type)
    if kind is None:
        raise SourceError(f"{path}: saved mail cannot be of type {declared_type!r}")
    if (kind in (DirectorySource, MaildirSource)) != path.is_dir():
        raise SourceError(
            f"{path}: declared {declared_type}, but it is {'a directory' if path.is_dir() else 'a file'}"
        )
    if kind is MaildirSource and not is_maildir(path):
        raise SourceError(f"{path}: declared maildir, but it has no cur/ and new/")
    return kind(path, name or declared_type)
