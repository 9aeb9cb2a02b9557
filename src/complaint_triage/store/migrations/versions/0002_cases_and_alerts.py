"""Cases (links to records, ASINs, status history) and the alert log.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_KEY = sa.String(400)


def upgrade() -> None:
    op.create_table(
        "cases",
        sa.Column("case_key", _KEY, primary_key=True),
        sa.Column("complaint_id", sa.String(64)),
        sa.Column("asin", sa.String(10)),
        sa.Column("rights_owner", sa.String(320)),
        sa.Column("source_name", sa.String(200)),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "case_messages",
        sa.Column("case_key", _KEY, sa.ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True),
        sa.Column("message_id", sa.String(998), primary_key=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_case_messages_message_id", "case_messages", ["message_id"])
    op.create_table(
        "case_asins",
        sa.Column("case_key", _KEY, sa.ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True),
        sa.Column("asin", sa.String(10), primary_key=True),
    )
    op.create_index("ix_case_asins_asin", "case_asins", ["asin"])
    op.create_table(
        "case_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("case_key", _KEY, sa.ForeignKey("cases.case_key", ondelete="CASCADE"), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("note", sa.Text),
        sa.Column("actor", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(998)),
    )
    op.create_index("ix_case_events_case_key", "case_events", ["case_key"])
    op.create_table(
        "alerts",
        sa.Column("case_key", _KEY, primary_key=True),
        sa.Column("channel", sa.String(20), primary_key=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("first_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
    )


def downgrade() -> None:
    for name in ("alerts", "case_events", "case_asins", "case_messages", "cases"):
        op.drop_table(name)
