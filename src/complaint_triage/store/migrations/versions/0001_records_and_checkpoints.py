"""Records, folder checkpoints and source status.

Stores made before migrations existed already hold some of these tables (they were created
directly); each is created only when missing, so such a store upgrades in place.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _missing(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _missing("messages"):
        op.create_table(
            "messages",
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("message_id", sa.String(998), nullable=False, unique=True),
            sa.Column("source", sa.Text, nullable=False),
            sa.Column("source_name", sa.String(200)),
            sa.Column("raw", sa.LargeBinary, nullable=False),
            sa.Column("raw_size", sa.Integer, nullable=False),
            sa.Column("received_at", sa.DateTime(timezone=True)),
            sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("triaged_at", sa.DateTime(timezone=True), nullable=False),
            sa.Column("record", sa.JSON, nullable=False),
            sa.Column("error", sa.Text),
            sa.Column("kind", sa.String(40)),
            sa.Column("urgency", sa.String(10)),
            sa.Column("is_complaint", sa.Boolean, nullable=False),
            sa.Column("response_due", sa.Date),
            sa.Column("attempts", sa.Integer, nullable=False),
        )
    if _missing("folder_checkpoints"):
        op.create_table(
            "folder_checkpoints",
            sa.Column("source_name", sa.String(200), primary_key=True),
            sa.Column("folder", sa.String(1000), primary_key=True),
            sa.Column("uidvalidity", sa.BigInteger, nullable=False),
            sa.Column("last_uid", sa.BigInteger, nullable=False),
            sa.Column("settled_uid", sa.BigInteger, nullable=False),
            sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        )
    if _missing("source_status"):
        op.create_table(
            "source_status",
            sa.Column("source_name", sa.String(200), primary_key=True),
            sa.Column("last_poll_at", sa.DateTime(timezone=True)),
            sa.Column("last_success_at", sa.DateTime(timezone=True)),
            sa.Column("last_error", sa.Text),
            sa.Column("last_error_at", sa.DateTime(timezone=True)),
            sa.Column("messages_triaged", sa.Integer, nullable=False),
            sa.Column("backlog", sa.Integer, nullable=False),
        )


def downgrade() -> None:
    for name in ("source_status", "folder_checkpoints", "messages"):
        op.drop_table(name)
