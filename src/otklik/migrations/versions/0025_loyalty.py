"""loyalty: tiers, each customer's tier on the customer row, referral codes, referrals and their reward webhook
(issue 16 «Loyalty and referrals»)

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("loyalty_tier", sa.String(64), nullable=True))
    op.create_table(
        "loyalty_tiers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("metric", sa.String(16), nullable=False),
        sa.Column("threshold", sa.Numeric(14, 2), nullable=False),
        sa.Column("period_days", sa.Integer(), nullable=True),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("loyalty_tiers", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loyalty_tiers")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_loyalty_tiers_workspace_id_name")),
    )
    op.create_index(op.f("ix_loyalty_tiers_workspace_id"), "loyalty_tiers", ["workspace_id"])
    op.create_table(
        "loyalty_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("webhook_url", sa.String(500), nullable=False),
        sa.Column("secret_enc", sa.Text(), nullable=False),
        sa.Column("reward", sa.String(200), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("loyalty_settings", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_loyalty_settings")),
    )
    op.create_table(
        "referral_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("referral_codes", "workspace_id", "workspaces", "CASCADE"),
        _fk("referral_codes", "customer_id", "customers", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_codes")),
        sa.UniqueConstraint("customer_id", name=op.f("uq_referral_codes_customer_id")),
        sa.UniqueConstraint("workspace_id", "code", name=op.f("uq_referral_codes_workspace_id_code")),
    )
    op.create_table(
        "referrals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("referrer_id", sa.Integer(), nullable=False),
        sa.Column("referred_id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(32), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("linked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("order_id", sa.Integer(), nullable=True),
        sa.Column("order_number", sa.String(64), nullable=True),
        sa.Column("rewarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("webhook_status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        _fk("referrals", "workspace_id", "workspaces", "CASCADE"),
        _fk("referrals", "referrer_id", "customers", "CASCADE"),
        _fk("referrals", "referred_id", "customers", "CASCADE"),
        _fk("referrals", "order_id", "orders", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referrals")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_referrals_idempotency_key")),
        sa.UniqueConstraint("workspace_id", "referred_id", name=op.f("uq_referrals_workspace_id_referred_id")),
    )
    op.create_index("ix_referrals_webhook_due", "referrals", ["webhook_status", "next_attempt_at"])
    op.create_index("ix_referrals_ws_referrer", "referrals", ["workspace_id", "referrer_id"])


def downgrade() -> None:
    op.drop_index("ix_referrals_ws_referrer", table_name="referrals")
    op.drop_index("ix_referrals_webhook_due", table_name="referrals")
    op.drop_table("referrals")
    op.drop_table("referral_codes")
    op.drop_table("loyalty_settings")
    op.drop_index(op.f("ix_loyalty_tiers_workspace_id"), table_name="loyalty_tiers")
    op.drop_table("loyalty_tiers")
    with op.batch_alter_table("customers") as batch:
        batch.drop_column("loyalty_tier")
