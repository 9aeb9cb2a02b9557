"""Saved mail: single .eml files, directories of them, mbox files and Maildirs."""

from __future__ import annotations

import mailbox
from pathlib import Path
from typing import Iterator

from complaint_triage.errors import SourceError
from complaint_triage.records import RawMessage


class _ReadOnlySource:
    """Saved mail is never changed: settling is a no-op."""

    name: str

    def settle(self, messages: list[RawMessage]) -> None:
        """Saved files are left as they are."""


class EmlFileSource(_ReadOnlySource):
    """One saved message."""

    def __init__(self, path: Path, name: str = "file"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield the file's bytes."""
        yield RawMessage(raw=_read_bytes(self.path), source=str(self.path), source_name=self.name)


class DirectorySource(_ReadOnlySource):
    """Every `*.eml` below a directory, in sorted path order."""

    def __init__(self, path: Path, name: str = "directory"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield each .eml file below the directory."""
        for file in sorted(p for p in self.path.rglob("*") if p.suffix.lower() == ".eml" and p.is_file()):
            yield RawMessage(raw=_read_bytes(file), source=str(file), source_name=self.name)


class MboxSource(_ReadOnlySource):
    """The messages of one mbox file, in file order."""

    def __init__(self, path: Path, name: str = "mbox"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield each message of the mbox; `source` is PATH#N (1-based)."""
        box = mailbox.mbox(self.path, create=False)
        try:
            for index, key in enumerate(box.iterkeys(), start=1):
                yield RawMessage(raw=box.get_bytes(key), source=f"{self.path}#{index}", source_name=self.name)
        finally:
            box.close()


class MaildirSource(_ReadOnlySource):
    """The messages of a Maildir (new/ then cur/), in file-name order; the folder is not changed."""

    def __init__(self, path: Path, name: str = "maildir"):
        self.path, self.name = Path(path), name

    def fetch_messages(self) -> Iterator[RawMessage]:
        """Yield each message file of the Maildir; `source` is its path."""
        for sub in ("new", "cur"):
            for file in sorted((self.path / sub).iterdir()):
                if file.is_file() and not file.name.startswith("."):
                    yield RawMessage(raw=_read_bytes(file), source=str(file), source_name=self.name)


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from exc


def is_maildir(path: Path) -> bool:
    """A directory with cur/ and new/ is a Maildir."""
    return path.is_dir() and (path / "cur").is_dir() and (path / "new").is_dir()


def is_mbox(path: Path) -> bool:
    """An mbox file starts with a 'From ' separator line."""
    with path.open("rb") as handle:
        return handle.read(5) == b"From "


def sources_for_path(path: str | Path, name: str | None = None):
    """The right saved-mail source for a path given on the command line or in the config."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"no such file or directory: {path}")
    if is_maildir(path):
        return MaildirSource(path, name or "maildir")
    if path.is_dir():
        return DirectorySource(path, name or "directory")
    if is_mbox(path):
        return MboxSource(path, name or "mbox")
    return EmlFileSource(path, name or "file")
