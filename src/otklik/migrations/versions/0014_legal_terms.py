"""guardrails: legal deadlines as timers (sla_timers.kind grows to fit "legal_<obligation>", the conversation's
earliest legal due time for the inbox filter) and a workspace's legal settings (its contact reasons mapped to the
law's situations, its own more generous terms)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sla_timers") as batch:
        batch.alter_column("kind", type_=sa.String(40), existing_type=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("legal_due_at", sa.DateTime(), nullable=True))
    op.create_index("ix_conv_ws_legal_due", "conversations", ["workspace_id", "legal_due_at"])
    op.create_table(
        "legal_settings",
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("reason_situations", JSON, nullable=False),
        sa.Column("terms", JSON, nullable=False),
        sa.Column("warn_days", sa.Integer(), nullable=False, server_default="2"),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("legal_settings")
    op.drop_index("ix_conv_ws_legal_due", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("legal_due_at")
    with op.batch_alter_table("sla_timers") as batch:
        batch.alter_column("kind", type_=sa.String(16), existing_type=sa.String(40), existing_nullable=False)
