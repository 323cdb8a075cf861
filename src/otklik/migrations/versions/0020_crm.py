"""crm: connections to amoCRM / Bitrix24 / RetailCRM, customer links, timeline notes, deals cache, bulk syncs
(issue 18)

Revision ID: 0020
Revises: 0018
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0018"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
WHEN = sa.DateTime(timezone=True)


def _fk(table: str, column: str, target: str, ondelete: str = "CASCADE") -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "crm_connections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("config", JSON, nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("webhook_token", sa.String(64), nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("last_error", sa.String(2000), nullable=True),
        sa.Column("last_error_at", WHEN, nullable=True),
        sa.Column("last_ok_at", WHEN, nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("crm_connections", "workspace_id", "workspaces"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_connections")),
        sa.UniqueConstraint("workspace_id", "kind", "name", name=op.f("uq_crm_connections_workspace_id_kind_name")),
        sa.UniqueConstraint("webhook_token", name=op.f("uq_crm_connections_webhook_token")),
    )
    op.create_index(op.f("ix_crm_connections_workspace_id"), "crm_connections", ["workspace_id"])
    op.create_table(
        "crm_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("matched_by", sa.String(300), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("crm_links", "workspace_id", "workspaces"),
        _fk("crm_links", "connection_id", "crm_connections"),
        _fk("crm_links", "customer_id", "customers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_links")),
        sa.UniqueConstraint("connection_id", "customer_id", name=op.f("uq_crm_links_connection_id_customer_id")),
    )
    op.create_index(op.f("ix_crm_links_workspace_id"), "crm_links", ["workspace_id"])
    op.create_index(op.f("ix_crm_links_customer_id"), "crm_links", ["customer_id"])
    op.create_index("ix_crm_links_contact", "crm_links", ["connection_id", "external_id"])
    op.create_table(
        "crm_notes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("idempotency_key", sa.String(120), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("crm_notes", "workspace_id", "workspaces"),
        _fk("crm_notes", "connection_id", "crm_connections"),
        _fk("crm_notes", "conversation_id", "conversations"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_notes")),
        sa.UniqueConstraint("connection_id", "idempotency_key",
                            name=op.f("uq_crm_notes_connection_id_idempotency_key")),
    )
    op.create_index(op.f("ix_crm_notes_workspace_id"), "crm_notes", ["workspace_id"])
    op.create_index(op.f("ix_crm_notes_conversation_id"), "crm_notes", ["conversation_id"])
    op.create_index("ix_crm_notes_status", "crm_notes", ["connection_id", "status"])
    op.create_table(
        "crm_deals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("contact_external_id", sa.String(64), nullable=False),
        sa.Column("external_id", sa.String(64), nullable=False),
        sa.Column("number", sa.String(64), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("status", sa.String(120), nullable=False),
        sa.Column("amount", sa.String(32), nullable=False),
        sa.Column("currency", sa.String(8), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("changed_at", WHEN, nullable=True),
        sa.Column("fetched_at", WHEN, nullable=False),
        _fk("crm_deals", "workspace_id", "workspaces"),
        _fk("crm_deals", "connection_id", "crm_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_deals")),
        sa.UniqueConstraint("connection_id", "external_id", name=op.f("uq_crm_deals_connection_id_external_id")),
    )
    op.create_index(op.f("ix_crm_deals_workspace_id"), "crm_deals", ["workspace_id"])
    op.create_index("ix_crm_deals_contact", "crm_deals", ["connection_id", "contact_external_id"])
    op.create_table(
        "crm_syncs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("create_missing", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("skipped", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(2000), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", WHEN, nullable=True),
        sa.Column("started_at", WHEN, nullable=False),
        sa.Column("finished_at", WHEN, nullable=True),
        sa.Column("updated_at", WHEN, nullable=False),
        _fk("crm_syncs", "workspace_id", "workspaces"),
        _fk("crm_syncs", "connection_id", "crm_connections"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_syncs")),
    )
    op.create_index(op.f("ix_crm_syncs_workspace_id"), "crm_syncs", ["workspace_id"])
    op.create_index("ix_crm_syncs_conn", "crm_syncs", ["connection_id", "id"])


def downgrade() -> None:
    for table in ("crm_syncs", "crm_deals", "crm_notes", "crm_links", "crm_connections"):
        op.drop_table(table)
