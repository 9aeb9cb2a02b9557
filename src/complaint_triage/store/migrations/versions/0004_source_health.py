"""Sync cursors of API sources (a Graph delta link per folder), and source health: since when a source has been failing, whether its credentials were refused, when its token expires.

Revision ID: 0004
Revises: 0003 (temporarily 0002 on this branch, until 0003_users is merged)
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_cursors",
        sa.Column("source_name", sa.String(200), primary_key=True),
        sa.Column("scope", sa.String(1000), primary_key=True),
        sa.Column("cursor", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    with op.batch_alter_table("source_status") as batch:
        batch.add_column(sa.Column("failing_since", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("auth_failed", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("token_expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    with op.batch_alter_table("source_status") as batch:
        for name in ("token_expires_at", "auth_failed", "failing_since"):
            batch.drop_column(name)
    op.drop_table("sync_cursors")
