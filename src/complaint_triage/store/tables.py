"""Every table of the store, on one MetaData: the records, where each source stands, cases and alerts.

The Alembic migrations under complaint_triage/migrations build exactly these tables; a test
compares the migrated schema with this module.
"""

from __future__ import annotations

import json

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

from complaint_triage.records import TriageRecord

metadata = MetaData()

messages = Table(
    "messages",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(998), nullable=False, unique=True),
    Column("source", Text, nullable=False),
    Column("source_name", String(200)),
    Column("raw", LargeBinary, nullable=False),
    Column("raw_size", Integer, nullable=False),
    Column("received_at", DateTime(timezone=True)),
    Column("stored_at", DateTime(timezone=True), nullable=False),
    Column("triaged_at", DateTime(timezone=True), nullable=False),
    Column("record", JSON, nullable=False),
    Column("error", Text),
    Column("kind", String(40)),
    Column("urgency", String(10)),
    Column("is_complaint", Boolean, nullable=False, default=False),
    Column("response_due", Date),
    Column("attempts", Integer, nullable=False, default=1),
)

folder_checkpoints = Table(
    "folder_checkpoints",
    metadata,
    Column("source_name", String(200), primary_key=True),
    Column("folder", String(1000), primary_key=True),
    Column("uidvalidity", BigInteger, nullable=False),
    Column("last_uid", BigInteger, nullable=False),  # every message up to this UID is committed
    Column("settled_uid", BigInteger, nullable=False),  # ... and flagged or moved up to this one
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

sync_cursors = Table(
    "sync_cursors",
    metadata,
    Column("source_name", String(200), primary_key=True),
    Column("scope", String(1000), primary_key=True),  # a folder, or what the cursor covers
    Column("cursor", Text, nullable=False),  # an API's resume point (a Graph delta link): opaque here
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

source_status = Table(
    "source_status",
    metadata,
    Column("source_name", String(200), primary_key=True),
    Column("last_poll_at", DateTime(timezone=True)),
    Column("last_success_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("last_error_at", DateTime(timezone=True)),
    Column("messages_triaged", Integer, nullable=False, default=0),
    Column("backlog", Integer, nullable=False, default=0),
    Column("failing_since", DateTime(timezone=True)),  # the first failed poll since the last good one
    Column(
        "auth_failed", Boolean, nullable=False, default=False, server_default=false()
    ),  # the last poll's credentials were refused
    Column("token_expires_at", DateTime(timezone=True)),  # of the access token, where the source knows it
)

cases = Table(
    "cases",
    metadata,
    Column("case_key", String(400), primary_key=True),  # complaint:<id> | asin:<ASIN>:<owner> | mail:<hash>
    Column("complaint_id", String(64)),
    Column("asin", String(10)),
    Column("rights_owner", String(320)),
    Column("source_name", String(200)),
    Column("status", String(30), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

case_messages = Table(
    "case_messages",
    metadata,
    Column("case_key", String(400), ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True),
    Column("message_id", String(998), primary_key=True),
    Column("linked_at", DateTime(timezone=True), nullable=False),
    Index("ix_case_messages_message_id", "message_id"),
)

case_asins = Table(
    "case_asins",
    metadata,
    Column("case_key", String(400), ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True),
    Column("asin", String(10), primary_key=True),
    Index("ix_case_asins_asin", "asin"),
)

case_events = Table(
    "case_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "case_key", String(400), ForeignKey("cases.case_key", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("status", String(30), nullable=False),
    Column("note", Text),
    Column("actor", String(40), nullable=False),  # "mail" (set by a message) or "cli"
    Column("message_id", String(998)),
)

alerts = Table(
    "alerts",
    metadata,
    Column("case_key", String(400), primary_key=True),
    Column("channel", String(20), primary_key=True),  # email | webhook
    Column("state", String(10), nullable=False),  # sent | failed | gave_up
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("first_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_attempt_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True)),
)

users = Table(
    "users",
    metadata,
    Column("username", String(40), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id, encoded with its parameters and salt
    Column("role", String(10), nullable=False),  # admin | member
    Column("accounts", JSON),  # the sources (seller accounts) a member may see; null: every account
    Column("created_at", DateTime(timezone=True), nullable=False),
)

login_failures = Table(
    "login_failures",
    metadata,
    Column("subject", String(200), primary_key=True),  # "user:<name>" or "ip:<address>"
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
)

case_assignments = Table(
    "case_assignments",
    metadata,
    Column("case_key", String(400), ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True),
    Column("username", String(40), nullable=False),
    Column("assigned_by", String(40), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)


def decode_record(value) -> TriageRecord:
    """A stored record column as a TriageRecord (PostgreSQL hands back a dict, SQLite the JSON text)."""
    return TriageRecord.model_validate(value if isinstance(value, dict) else json.loads(value))
