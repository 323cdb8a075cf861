"""assistant: per-workspace settings, decisions

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "assistant_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("channels", JSON, nullable=False),
        sa.Column("answer_threshold", sa.Float(), nullable=False),
        sa.Column("negativity_threshold", sa.Float(), nullable=False),
        sa.Column("urgency_threshold", sa.Float(), nullable=False),
        sa.Column("tone", sa.String(length=16), nullable=False),
        sa.Column("greeting", sa.Text(), nullable=False),
        sa.Column("working_hours", JSON, nullable=False),
        sa.Column("out_of_hours_message", sa.Text(), nullable=False),
        sa.Column("handoff_team_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["handoff_team_id"], ["teams.id"],
                                name=op.f("fk_assistant_settings_handoff_team_id_teams"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_assistant_settings_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_assistant_settings")),
    )
    op.create_table(
        "assistant_decisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("article_id", sa.String(length=100), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=False),
        sa.Column("failed", sa.Boolean(), nullable=False),
        sa.Column("reply_message_id", sa.Integer(), nullable=True),
        sa.Column("details", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_assistant_decisions_conversation_id_conversations"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["message_id"], ["messages.id"],
                                name=op.f("fk_assistant_decisions_message_id_messages"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reply_message_id"], ["messages.id"],
                                name=op.f("fk_assistant_decisions_reply_message_id_messages"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_assistant_decisions_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assistant_decisions")),
        sa.UniqueConstraint("message_id", name=op.f("uq_assistant_decisions_message_id")),
    )
    op.create_index("ix_asst_dec_conv", "assistant_decisions", ["conversation_id", "id"], unique=False)
    op.create_index("ix_asst_dec_ws_created", "assistant_decisions", ["workspace_id", "created_at", "id"],
                    unique=False)


def downgrade() -> None:
    op.drop_index("ix_asst_dec_ws_created", table_name="assistant_decisions")
    op.drop_index("ix_asst_dec_conv", table_name="assistant_decisions")
    op.drop_table("assistant_decisions")
    op.drop_table("assistant_settings")
