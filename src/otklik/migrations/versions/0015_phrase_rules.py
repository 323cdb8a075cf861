"""guardrails: the phrase checker's workspace rules (its own phrases, changes to shipped ones); conversations:
reply drafts (the reply box's unsent text per agent, which the checker marks again when the agent comes back)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "phrase_rules",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("shipped_id", sa.String(80), nullable=True),
        sa.Column("language", sa.String(2), nullable=False),
        sa.Column("phrase", sa.String(200), nullable=True),
        sa.Column("severity", sa.String(8), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("alternatives", JSON, nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("updated_by", sa.Integer(), sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
        sa.UniqueConstraint("workspace_id", "shipped_id", name="uq_phrase_rules_workspace_id_shipped_id"),
    )
    op.create_index("ix_phrase_rules_workspace_id", "phrase_rules", ["workspace_id"])
    op.create_table(
        "reply_drafts",
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_reply_drafts_workspace_id", "reply_drafts", ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_reply_drafts_workspace_id", table_name="reply_drafts")
    op.drop_table("reply_drafts")
    op.drop_index("ix_phrase_rules_workspace_id", table_name="phrase_rules")
    op.drop_table("phrase_rules")
