"""guardrails: compensations, authority limits and approvals (issue 14 §2)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 03:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

MONEY = sa.Numeric(12, 2)


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "compensations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_by_kind", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decision_comment", sa.String(500), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=True),
        _fk("compensations", "workspace_id", "workspaces", "CASCADE"),
        _fk("compensations", "conversation_id", "conversations", "CASCADE"),
        _fk("compensations", "customer_id", "customers", "CASCADE"),
        _fk("compensations", "requested_by", "users", "SET NULL"),
        _fk("compensations", "decided_by", "users", "SET NULL"),
        _fk("compensations", "message_id", "messages", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compensations")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_compensations_idempotency_key")),
    )
    op.create_index("ix_compensations_ws_status", "compensations", ["workspace_id", "status", "id"])
    op.create_index("ix_compensations_conv", "compensations", ["conversation_id", "id"])
    op.create_index("ix_compensations_customer", "compensations", ["customer_id", "id"])
    op.create_table(
        "compensation_limits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("per_case", MONEY, nullable=True),
        sa.Column("per_day", MONEY, nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.Integer(), nullable=True),
        _fk("compensation_limits", "workspace_id", "workspaces", "CASCADE"),
        _fk("compensation_limits", "updated_by", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compensation_limits")),
        sa.UniqueConstraint("workspace_id", "subject", "kind",
                            name=op.f("uq_compensation_limits_workspace_id_subject_kind")),
    )
    op.create_table(
        "compensation_usage",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("subject", sa.String(40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amount", MONEY, nullable=False),
        _fk("compensation_usage", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "subject", "day", name=op.f("pk_compensation_usage")),
    )
    op.create_table(
        "compensation_webhooks",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret_enc", sa.String(500), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        _fk("compensation_webhooks", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_compensation_webhooks")),
    )


def downgrade() -> None:
    op.drop_table("compensation_webhooks")
    op.drop_table("compensation_usage")
    op.drop_table("compensation_limits")
    op.drop_index("ix_compensations_customer", table_name="compensations")
    op.drop_index("ix_compensations_conv", table_name="compensations")
    op.drop_index("ix_compensations_ws_status", table_name="compensations")
    op.drop_table("compensations")
