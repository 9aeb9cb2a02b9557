"""Store identities that cannot mix two messages: a Message-ID taken by other bytes gets the content digest.

Message-IDs are not unique in the wild (list software, broken clients, test corpora reuse them). The
first message stored under a Message-ID keeps it; a message with the same Message-ID and other bytes
is stored as `<id> sha256:<digest>`; the same bytes again (a second folder, a re-fetch, a reprocess)
resolve to the row they already have, so that the record and the raw bytes always belong together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.engine import Connection

from complaint_triage.pipeline.parse import MAX_MESSAGE_ID_OCTETS
from complaint_triage.records import RawMessage, TriageRecord
from complaint_triage.store.tables import messages

Pair = tuple[RawMessage, TriageRecord]
_LOOKUP_CHUNK = 400


def content_digest(raw: bytes) -> str:
    """'sha256:' and the hex digest of the raw bytes."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def distinct_identity(identity: str, raw: bytes) -> str:
    """The identity of RAW when IDENTITY is held by other bytes: the identity with the digest, or the digest alone."""
    digest = content_digest(raw)
    if identity == digest:
        return identity
    joined = f"{identity} {digest}"
    return joined if len(joined.encode("utf-8")) <= MAX_MESSAGE_ID_OCTETS else digest


def resolve_identities(connection: Connection, pairs: Iterable[Pair]) -> list[Pair]:
    """PAIRS with each record's message_id made the identity its own bytes have (or may take) in the store.

    Same identity and same bytes twice in one batch stay one row (the last one wins, as before).
    """
    pairs = list(pairs)
    wanted = {record.message_id for _message, record in pairs}
    wanted |= {distinct_identity(record.message_id, message.raw) for message, record in pairs}
    holders = _stored_digests(connection, wanted)
    resolved = []
    for message, record in pairs:
        identity = _identity_for(record.message_id, message.raw, holders)
        holders.setdefault(identity, content_digest(message.raw))
        resolved.append(
            (
                message,
                record
                if identity == record.message_id
                else record.model_copy(update={"message_id": identity}),
            )
        )
    return resolved


def _identity_for(identity: str, raw: bytes, holders: dict[str, str]) -> str:
    digest = content_digest(raw)
    if holders.get(identity, digest) == digest:
        return identity
    return distinct_identity(identity, raw)


def _stored_digests(connection: Connection, identities: set[str]) -> dict[str, str]:
    """Identity -> digest of the raw bytes stored under it, for the IDENTITIES that are stored."""
    found: dict[str, str] = {}
    ordered = sorted(identities)
    for start in range(0, len(ordered), _LOOKUP_CHUNK):
        chunk = ordered[start : start + _LOOKUP_CHUNK]
        query = select(messages.c.message_id, messages.c.raw).where(messages.c.message_id.in_(chunk))
        for row in connection.execute(query):
            found[row.message_id] = content_digest(row.raw)
    return found


def holds_message(connection: Connection, identity: str, raw: bytes) -> bool:
    """True when exactly these bytes are stored, under IDENTITY or under their distinct identity."""
    digest = content_digest(raw)
    return digest in _stored_digests(connection, {identity, distinct_identity(identity, raw)}).values()
