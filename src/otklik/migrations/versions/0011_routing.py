"""routing: per-team auto-assignment settings, agents' availability, skills and open-conversation counts, the
workspace's routing settings; a conversation's first assignment time and transfer count

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "team_routing",
        sa.Column("team_id", sa.Integer(), sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("auto_assign", sa.Boolean(), nullable=False),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("capacity_chat", sa.Integer(), nullable=False),
        sa.Column("capacity_email", sa.Integer(), nullable=False),
        sa.Column("last_user_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_team_routing_workspace_id", "team_routing", ["workspace_id"])
    op.create_table(
        "agent_routing",
        sa.Column("user_id", sa.Integer(), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("availability", sa.String(8), nullable=False),
        sa.Column("languages", JSON, nullable=False),
        sa.Column("categories", JSON, nullable=False),
        sa.Column("open_chat", sa.Integer(), nullable=False),
        sa.Column("open_email", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("last_assigned_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_agent_routing_workspace_id", "agent_routing", ["workspace_id"])
    op.create_table(
        "routing_settings",
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("out_of_hours_to_open_team", sa.Boolean(), nullable=False),
        sa.Column("away_after_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
    )
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("first_assigned_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("transfer_count", sa.Integer(), nullable=False, server_default="0"))
    # Assigned conversations were assigned once already; every user gets a row with today's open counts
    # (email-like channels: email and web forms; the rest are chat-like; new, open and pending count).
    op.execute("UPDATE conversations SET first_assigned_at = created_at WHERE assignee_id IS NOT NULL")
    op.execute(
        "INSERT INTO agent_routing (user_id, workspace_id, availability, languages, categories, open_chat, "
        "open_email, updated_at) "
        "SELECT u.id, u.workspace_id, 'online', '[]', '[]', "
        "(SELECT count(*) FROM conversations c WHERE c.assignee_id = u.id AND c.status IN ('new', 'open', 'pending') "
        "AND c.channel NOT IN ('email', 'form')), "
        "(SELECT count(*) FROM conversations c WHERE c.assignee_id = u.id AND c.status IN ('new', 'open', 'pending') "
        "AND c.channel IN ('email', 'form')), CURRENT_TIMESTAMP FROM users u")


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("transfer_count")
        batch.drop_column("first_assigned_at")
    op.drop_table("routing_settings")
    op.drop_index("ix_agent_routing_workspace_id", table_name="agent_routing")
    op.drop_table("agent_routing")
    op.drop_index("ix_team_routing_workspace_id", table_name="team_routing")
    op.drop_table("team_routing")
