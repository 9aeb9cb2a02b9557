"""Attached letters read safely: type by magic bytes, PDF and DOCX text read in a child process under limits.

Layer: beside records/settings (it imports only those); the pure pipeline receives the reader as a callable.
"""

from complaint_triage.attachments.extraction import Extraction
from complaint_triage.attachments.sniff import sniff_type

__all__ = ["Extraction", "sniff_type"]
