"""VK, WhatsApp, phone, web forms, identity suggestions

Revision ID: 0005c
Revises: 0005b
Create Date: 2026-11-24 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005c"
down_revision = "0005b"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # VK, WhatsApp, phone and forms keep their state in channel_accounts / channel_events (0005) and in
    # messages' meta; the only table of their own: duplicate suggestions an agent dismissed.
    op.create_table(
        "customer_suggestion_dismissals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("other_id", sa.Integer(), nullable=False),
        sa.Column("dismissed_by", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["other_id"], ["customers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["dismissed_by"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("workspace_id", "customer_id", "other_id"),
    )
    op.create_index("ix_customer_suggestion_dismissals_workspace_id", "customer_suggestion_dismissals",
                    ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_customer_suggestion_dismissals_workspace_id", table_name="customer_suggestion_dismissals")
    op.drop_table("customer_suggestion_dismissals")
