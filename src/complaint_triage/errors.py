"""One tree of errors: everything the library raises on purpose is a TriageError."""


class TriageError(Exception):
    """Base of every error complaint-triage raises on purpose."""


class ConfigError(TriageError):
    """The configuration or a domain table is missing or invalid."""


class SourceError(TriageError):
    """A mail source could not be read."""


class SourceAuthError(SourceError):
    """The mail server refused the credentials: retrying will not help."""


class SourceInterrupted(SourceError):
    """A stop was asked for while the source waited on its server: not a failure of the source."""


class TransientSourceError(SourceError):
    """A passing failure (timeout, dropped connection): retry later."""


class ParseError(TriageError):
    """A message could not be parsed into a ParsedEmail."""


class ExtractionError(TriageError):
    """The extraction pipeline failed on a message."""


class ModelError(TriageError):
    """The spaCy pipeline under models/ is missing, stale or broken."""


class StoreError(TriageError):
    """The record store could not be read or written."""


class CaseError(TriageError):
    """A case named on the command line does not exist or cannot take that status."""


class AlertError(TriageError):
    """An alert could not be delivered."""


class UserError(TriageError):
    """A user of the web workspace named on the command line does not exist, exists already or is unusable."""
