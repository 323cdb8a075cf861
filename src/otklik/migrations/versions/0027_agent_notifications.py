"""notifications: agents' notification choices, their linked Telegram chat, one-time link codes, and the
notifications sent (one per agent and event)

Revision ID: 0027
Revises: 0025
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0025"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    t = "agent_notification_settings"
    op.create_table(
        t,
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        *(sa.Column(kind, sa.Boolean(), nullable=False, server_default=sa.true())
          for kind in ("new_in_team", "customer_reply", "mention", "sla", "approval")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk(t, "user_id", "users", "CASCADE"),
        _fk(t, "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f(f"pk_{t}")),
    )
    op.create_index(op.f(f"ix_{t}_workspace_id"), t, ["workspace_id"])

    t = "agent_telegram_links"
    op.create_table(
        t,
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("chat_id", sa.String(32), nullable=False),
        sa.Column("username", sa.String(64), nullable=True),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("next_send_at", sa.DateTime(timezone=True), nullable=True),
        _fk(t, "user_id", "users", "CASCADE"),
        _fk(t, "workspace_id", "workspaces", "CASCADE"),
        _fk(t, "account_id", "channel_accounts", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("account_id", "chat_id", name=op.f(f"uq_{t}_account_id_chat_id")),
    )
    op.create_index(op.f(f"ix_{t}_workspace_id"), t, ["workspace_id"])

    t = "agent_link_codes"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk(t, "workspace_id", "workspaces", "CASCADE"),
        _fk(t, "user_id", "users", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("code_hash", name=op.f(f"uq_{t}_code_hash")),
    )
    op.create_index(op.f(f"ix_{t}_workspace_id"), t, ["workspace_id"])
    op.create_index(op.f(f"ix_{t}_user_id"), t, ["user_id"])

    t = "agent_notifications"
    op.create_table(
        t,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("event_key", sa.String(160), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(300), nullable=True),
        sa.Column("chat_id", sa.String(32), nullable=True),
        sa.Column("telegram_message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _fk(t, "workspace_id", "workspaces", "CASCADE"),
        _fk(t, "user_id", "users", "CASCADE"),
        _fk(t, "conversation_id", "conversations", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{t}")),
        sa.UniqueConstraint("user_id", "event_key", name=op.f(f"uq_{t}_user_id_event_key")),
    )
    op.create_index(op.f(f"ix_{t}_workspace_id"), t, ["workspace_id"])
    op.create_index(op.f(f"ix_{t}_conversation_id"), t, ["conversation_id"])
    op.create_index("ix_agent_notifications_user_status", t, ["user_id", "status", "id"])


def downgrade() -> None:
    op.drop_table("agent_notifications")
    op.drop_table("agent_link_codes")
    op.drop_table("agent_telegram_links")
    op.drop_table("agent_notification_settings")
