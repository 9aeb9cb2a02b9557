"""Where mail comes from: saved files, mbox, Maildir, IMAP; one small interface for all."""

from complaint_triage.sources.base import MailSource
from complaint_triage.sources.files import (
    DirectorySource,
    EmlFileSource,
    MaildirSource,
    MboxSource,
    sources_for_path,
)

__all__ = [
    "DirectorySource",
    "EmlFileSource",
    "MailSource",
    "MaildirSource",
    "MboxSource",
    "sources_for_path",
]
