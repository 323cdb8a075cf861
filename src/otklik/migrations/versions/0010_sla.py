"""service levels: SLA policies and per-conversation timers (first response, next response, resolution), the
conversation's own waiting clock (a bot message is not an answer), its earliest due time for the inbox

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("conditions", JSON, nullable=False),
        sa.Column("first_response_minutes", sa.Integer(), nullable=True),
        sa.Column("next_response_minutes", sa.Integer(), nullable=True),
        sa.Column("resolution_minutes", sa.Integer(), nullable=True),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), sa.ForeignKey("calendars.id", ondelete="SET NULL"), nullable=True),
        sa.Column("warn_share", sa.Float(), nullable=False),
        sa.Column("escalation", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    op.create_index("ix_sla_policies_workspace_id", "sla_policies", ["workspace_id"])
    op.create_table(
        "sla_timers",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("conversation_id", sa.Integer(), sa.ForeignKey("conversations.id", ondelete="CASCADE"),
                  nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("policy_id", sa.Integer(), sa.ForeignKey("sla_policies.id", ondelete="SET NULL"), nullable=True),
        sa.Column("target_minutes", sa.Integer(), nullable=False),
        sa.Column("business_hours", sa.Boolean(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("running_since", sa.DateTime(), nullable=True),
        sa.Column("elapsed_minutes", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(), nullable=True),
        sa.Column("warn_at", sa.DateTime(), nullable=True),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("warned_at", sa.DateTime(), nullable=True),
        sa.Column("breached_at", sa.DateTime(), nullable=True),
        sa.Column("stopped_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("conversation_id", "kind"),
    )
    op.create_index("ix_sla_timers_state_due", "sla_timers", ["state", "due_at"])
    op.create_index("ix_sla_timers_state_warn", "sla_timers", ["state", "warn_at"])
    op.create_index("ix_sla_timers_ws", "sla_timers", ["workspace_id", "state"])
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("waiting_since", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("assistant_answered_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("sla_due_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("sla_breached", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_conv_ws_status_due", "conversations", ["workspace_id", "status", "sla_due_at", "id"])
    # Who waits on us today: a new/open conversation whose last message is the customer's.
    op.execute("UPDATE conversations SET waiting_since = last_customer_message_at "
               "WHERE status IN ('new', 'open') AND last_customer_message_at >= last_message_at")


def downgrade() -> None:
    op.drop_index("ix_conv_ws_status_due", table_name="conversations")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("sla_breached")
        batch.drop_column("sla_due_at")
        batch.drop_column("assistant_answered_at")
        batch.drop_column("waiting_since")
    op.drop_index("ix_sla_timers_ws", table_name="sla_timers")
    op.drop_index("ix_sla_timers_state_warn", table_name="sla_timers")
    op.drop_index("ix_sla_timers_state_due", table_name="sla_timers")
    op.drop_table("sla_timers")
    op.drop_index("ix_sla_policies_workspace_id", table_name="sla_policies")
    op.drop_table("sla_policies")
