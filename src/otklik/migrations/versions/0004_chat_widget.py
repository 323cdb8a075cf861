"""chat widget: widget settings, visitors, page visits, proactive greeting rules

Revision ID: 0004
Revises: 0003b
Create Date: 2026-11-24 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003b"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    # tables of the chat widget (issue 3); greeting rules live in widget_settings.config
    op.create_table(
        "widget_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("public_key", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("allowed_origins", JSON, nullable=False),
        sa.Column("identity_secret", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_widget_settings_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_widget_settings")),
        sa.UniqueConstraint("public_key", name=op.f("uq_widget_settings_public_key")),
    )
    op.create_table(
        "widget_visitors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("language", sa.String(length=8), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"],
                                name=op.f("fk_widget_visitors_conversation_id_conversations"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"],
                                name=op.f("fk_widget_visitors_customer_id_customers"), ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_widget_visitors_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_widget_visitors")),
        sa.UniqueConstraint("public_id", name=op.f("uq_widget_visitors_public_id")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_widget_visitors_token_hash")),
    )
    with op.batch_alter_table("widget_visitors", schema=None) as batch_op:
        batch_op.create_index("ix_widget_visitors_customer", ["workspace_id", "customer_id"], unique=False)
    op.create_table(
        "widget_page_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("visitor_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("visited_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["visitor_id"], ["widget_visitors.id"],
                                name=op.f("fk_widget_page_visits_visitor_id_widget_visitors"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_widget_page_visits_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_widget_page_visits")),
    )
    with op.batch_alter_table("widget_page_visits", schema=None) as batch_op:
        batch_op.create_index("ix_widget_page_visits_visitor", ["visitor_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_table("widget_page_visits")
    op.drop_table("widget_visitors")
    op.drop_table("widget_settings")
