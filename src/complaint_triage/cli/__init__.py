"""The command line: a thin shell over the library, one module per command group."""

from complaint_triage.cli.main import cli, main

__all__ = ["cli", "main"]
