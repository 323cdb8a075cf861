"""accounts: API tokens that expire, where a session was opened from, two-factor sign-in (issue 17 §5–§6)

Revision ID: 0022
Revises: 0023
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0022"
down_revision = "0023"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", UTC_DATETIME, nullable=True))
    with op.batch_alter_table("login_sessions") as batch:
        batch.add_column(sa.Column("ip", sa.String(64), nullable=True))
        batch.add_column(sa.Column("user_agent", sa.String(200), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("totp_secret", sa.Text(), nullable=True))
        batch.add_column(sa.Column("totp_enabled_at", UTC_DATETIME, nullable=True))
        batch.add_column(sa.Column("totp_recovery", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("totp_recovery")
        batch.drop_column("totp_enabled_at")
        batch.drop_column("totp_secret")
    with op.batch_alter_table("login_sessions") as batch:
        batch.drop_column("user_agent")
        batch.drop_column("ip")
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")
