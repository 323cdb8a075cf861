"""proactive messages: settings, triggers, campaigns, sends (one per reason and customer), consent (issue 16)

Revision ID: 0028
Revises: 0029
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0028"
down_revision = "0029"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TS = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "proactive_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("cap_count", sa.Integer(), nullable=False),
        sa.Column("cap_days", sa.Integer(), nullable=False),
        sa.Column("quiet_start", sa.Integer(), nullable=False),
        sa.Column("quiet_end", sa.Integer(), nullable=False),
        sa.Column("reply_days", sa.Integer(), nullable=False),
        sa.Column("conversion_days", sa.Integer(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk("proactive_settings", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_proactive_settings")),
    )
    op.create_table(
        "proactive_triggers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("text_ru", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("whatsapp_template", sa.String(512), nullable=False),
        sa.Column("params", JSON, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk("proactive_triggers", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proactive_triggers")),
        sa.UniqueConstraint("workspace_id", "kind", name=op.f("uq_proactive_triggers_workspace_id_kind")),
    )
    op.create_table(
        "proactive_campaigns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("text_ru", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.Column("whatsapp_template", sa.String(512), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("segment", JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("scheduled_at", TS, nullable=True),
        sa.Column("rate_per_second", sa.Float(), nullable=True),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("slots", JSON, nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        sa.Column("started_at", TS, nullable=True),
        sa.Column("finished_at", TS, nullable=True),
        _fk("proactive_campaigns", "workspace_id", "workspaces", "CASCADE"),
        _fk("proactive_campaigns", "created_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proactive_campaigns")),
    )
    op.create_index("ix_proactive_campaigns_ws_status", "proactive_campaigns", ["workspace_id", "status"])
    op.create_table(
        "proactive_sends",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("dedup_key", sa.String(120), nullable=False),
        sa.Column("marketing", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("reason", sa.String(40), nullable=True),
        sa.Column("send_at", TS, nullable=False),
        sa.Column("context", JSON, nullable=False),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("queued_at", TS, nullable=True),
        _fk("proactive_sends", "workspace_id", "workspaces", "CASCADE"),
        _fk("proactive_sends", "customer_id", "customers", "CASCADE"),
        _fk("proactive_sends", "campaign_id", "proactive_campaigns", "CASCADE"),
        _fk("proactive_sends", "conversation_id", "conversations", "SET NULL"),
        _fk("proactive_sends", "message_id", "messages", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proactive_sends")),
        sa.UniqueConstraint("workspace_id", "dedup_key", "customer_id",
                            name=op.f("uq_proactive_sends_workspace_id_dedup_key_customer_id")),
    )
    op.create_index("ix_proactive_sends_due", "proactive_sends", ["status", "send_at"])
    op.create_index("ix_proactive_sends_ws_trigger", "proactive_sends", ["workspace_id", "trigger", "campaign_id"])
    op.create_index("ix_proactive_sends_customer", "proactive_sends", ["workspace_id", "customer_id", "queued_at"])
    op.create_table(
        "proactive_contacts",
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("marketing_consent", sa.Boolean(), nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        _fk("proactive_contacts", "customer_id", "customers", "CASCADE"),
        _fk("proactive_contacts", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("customer_id", name=op.f("pk_proactive_contacts")),
    )
    op.create_index(op.f("ix_proactive_contacts_workspace_id"), "proactive_contacts", ["workspace_id"])
    op.create_table(
        "proactive_consent_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("source", sa.String(24), nullable=False),
        sa.Column("evidence", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("at", TS, nullable=False),
        _fk("proactive_consent_events", "workspace_id", "workspaces", "CASCADE"),
        _fk("proactive_consent_events", "customer_id", "customers", "CASCADE"),
        _fk("proactive_consent_events", "user_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proactive_consent_events")),
    )
    op.create_index("ix_proactive_consent_customer", "proactive_consent_events", ["workspace_id", "customer_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_proactive_consent_customer", table_name="proactive_consent_events")
    op.drop_table("proactive_consent_events")
    op.drop_index(op.f("ix_proactive_contacts_workspace_id"), table_name="proactive_contacts")
    op.drop_table("proactive_contacts")
    op.drop_index("ix_proactive_sends_customer", table_name="proactive_sends")
    op.drop_index("ix_proactive_sends_ws_trigger", table_name="proactive_sends")
    op.drop_index("ix_proactive_sends_due", table_name="proactive_sends")
    op.drop_table("proactive_sends")
    op.drop_index("ix_proactive_campaigns_ws_status", table_name="proactive_campaigns")
    op.drop_table("proactive_campaigns")
    op.drop_table("proactive_triggers")
    op.drop_table("proactive_settings")
