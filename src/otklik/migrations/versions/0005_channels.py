"""channels: encrypted secrets as text, webhook tokens, plugin state, vendor events (de-dup + slow work)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 03:50:00
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _encrypt(values: dict[str, str]) -> str:
    # the same scheme as otklik.channels.secrets, inlined so the migration never changes with the code
    from cryptography.fernet import Fernet

    from otklik.platform.config import get_settings

    key = os.environ.get("OTKLIK_SECRET_KEY") or get_settings().secret_key.get_secret_value()
    derived = hashlib.sha256(b"otklik channel secrets\x00" + key.encode()).digest()
    token = Fernet(base64.urlsafe_b64encode(derived)).encrypt(json.dumps(values, ensure_ascii=False).encode())
    return "fernet:" + token.decode()


def upgrade() -> None:
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.alter_column("secret", existing_type=sa.String(length=500), type_=sa.Text(),
                              existing_nullable=True)
        batch_op.add_column(sa.Column("webhook_token", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("state", JSON, nullable=True))
        batch_op.create_unique_constraint(batch_op.f("uq_channel_accounts_webhook_token"), ["webhook_token"])

    conn = op.get_bind()
    accounts = sa.table("channel_accounts", sa.column("id", sa.Integer), sa.column("kind", sa.String),
                        sa.column("secret", sa.Text), sa.column("webhook_token", sa.String),
                        sa.column("state", JSON))
    for row in conn.execute(sa.select(accounts.c.id, accounts.c.secret)).all():
        values: dict[str, object] = {"webhook_token": secrets.token_urlsafe(24), "state": {}}
        if row.secret and not row.secret.startswith("fernet:"):
            # the API channel stored its signing secret in plain text before encryption existed
            values["secret"] = _encrypt({"secret": row.secret})
        conn.execute(accounts.update().where(accounts.c.id == row.id).values(**values))
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.alter_column("state", existing_type=JSON, nullable=False)

    op.create_table("channel_events",
    sa.Column("id", sa.Integer(), nullable=False),
    sa.Column("workspace_id", sa.Integer(), nullable=False),
    sa.Column("account_id", sa.Integer(), nullable=False),
    sa.Column("event_id", sa.String(length=200), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("payload", JSON, nullable=True),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("error", sa.String(length=2000), nullable=True),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["account_id"], ["channel_accounts.id"], name=op.f("fk_channel_events_account_id_channel_accounts"), ondelete="CASCADE"),
    sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], name=op.f("fk_channel_events_workspace_id_workspaces"), ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id", name=op.f("pk_channel_events")),
    sa.UniqueConstraint("account_id", "event_id", name=op.f("uq_channel_events_account_id_event_id"))
    )
    with op.batch_alter_table("channel_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_channel_events_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_channel_events_workspace_id"), ["workspace_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("channel_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_channel_events_workspace_id"))
        batch_op.drop_index(batch_op.f("ix_channel_events_status"))
    op.drop_table("channel_events")
    with op.batch_alter_table("channel_accounts", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_channel_accounts_webhook_token"), type_="unique")
        batch_op.drop_column("state")
        batch_op.drop_column("webhook_token")
        batch_op.alter_column("secret", existing_type=sa.Text(), type_=sa.String(length=500),
                              existing_nullable=True)
