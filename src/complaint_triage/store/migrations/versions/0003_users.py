"""Users of the web workspace, failed-login counters and case assignments.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("username", sa.String(40), primary_key=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(10), nullable=False),
        sa.Column("accounts", sa.JSON),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "login_failures",
        sa.Column("subject", sa.String(200), primary_key=True),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "case_assignments",
        sa.Column(
            "case_key", sa.String(400), sa.ForeignKey("cases.case_key", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("username", sa.String(40), nullable=False),
        sa.Column("assigned_by", sa.String(40), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    for name in ("case_assignments", "login_failures", "users"):
        op.drop_table(name)
