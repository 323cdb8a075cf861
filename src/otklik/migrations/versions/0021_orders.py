"""orders: orders pushed by (or pulled from) the shop, their status history, the integration settings (issue 16)

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(14, 2)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "orders",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("customer_kind", sa.String(16), nullable=False),
        sa.Column("customer_value", sa.String(254), nullable=False),
        sa.Column("contacts", JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("items", JSON, nullable=False),
        sa.Column("total", MONEY, nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("paid", JSON, nullable=True),
        sa.Column("payment_status", sa.String(16), nullable=False),
        sa.Column("payment_url", sa.String(1000), nullable=True),
        sa.Column("delivery", JSON, nullable=False),
        sa.Column("promised_on", sa.String(10), nullable=True),
        sa.Column("placed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attributes", JSON,
                  nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("fingerprint", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("orders", "workspace_id", "workspaces", "CASCADE"),
        _fk("orders", "customer_id", "customers", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("workspace_id", "number", name=op.f("uq_orders_workspace_id_number")),
    )
    op.create_index("ix_orders_ws_customer", "orders", ["workspace_id", "customer_id"])
    op.create_table(
        "order_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        _fk("order_events", "workspace_id", "workspaces", "CASCADE"),
        _fk("order_events", "order_id", "orders", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
    )
    op.create_index(op.f("ix_order_events_order_id"), "order_events", ["order_id"])
    op.create_table(
        "order_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("lookup_url", sa.String(1000), nullable=False),
        sa.Column("auth_header", sa.String(100), nullable=False),
        sa.Column("auth_value", sa.Text(), nullable=False),
        sa.Column("mapping", JSON, nullable=False),
        sa.Column("timeout_s", sa.Float(), nullable=False),
        sa.Column("cache_s", sa.Integer(), nullable=False),
        sa.Column("signing_secret", sa.Text(), nullable=False),
        sa.Column("require_signature", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("order_settings", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_order_settings")),
    )


def downgrade() -> None:
    op.drop_table("order_settings")
    op.drop_index(op.f("ix_order_events_order_id"), table_name="order_events")
    op.drop_table("order_events")
    op.drop_index("ix_orders_ws_customer", table_name="orders")
    op.drop_table("orders")
