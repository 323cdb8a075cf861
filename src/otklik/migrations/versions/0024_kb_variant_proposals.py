"""knowledge: question variants proposed from agents' answers to handed-off questions (issue 12 §6)

Revision ID: 0024
Revises: 0022
Create Date: 2026-12-07 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0022"
branch_labels = None
depends_on = None


def _fk(column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_kb_variant_proposals_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "kb_variant_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("text", sa.String(500), nullable=False),
        sa.Column("key", sa.String(500), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("question_message_id", sa.Integer(), nullable=True),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("workspace_id", "workspaces", "CASCADE"),
        _fk("article_id", "articles", "CASCADE"),
        _fk("conversation_id", "conversations", "SET NULL"),
        _fk("question_message_id", "messages", "SET NULL"),
        _fk("reply_message_id", "messages", "SET NULL"),
        _fk("agent_id", "users", "SET NULL"),
        _fk("decided_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_kb_variant_proposals")),
        sa.UniqueConstraint("workspace_id", "article_id", "key",
                            name=op.f("uq_kb_variant_proposals_workspace_id_article_id_key")),
    )
    op.create_index("ix_kb_proposals_ws_status", "kb_variant_proposals", ["workspace_id", "status", "id"])


def downgrade() -> None:
    op.drop_index("ix_kb_proposals_ws_status", table_name="kb_variant_proposals")
    op.drop_table("kb_variant_proposals")
