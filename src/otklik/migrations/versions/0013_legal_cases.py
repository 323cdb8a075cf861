"""guardrails: a conversation's consumer-law case (situation and the inputs the agent confirmed)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 01:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "legal_cases",
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("situation", sa.String(40), nullable=True),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_legal_cases_workspace_id", "legal_cases", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_legal_cases_workspace_id", table_name="legal_cases")
    op.drop_table("legal_cases")
