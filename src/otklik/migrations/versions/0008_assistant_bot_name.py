"""assistant: the name the bot introduces itself with; the workspace's own contact reasons

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 22:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("assistant_settings") as batch:
        batch.add_column(sa.Column("bot_name", sa.String(80), nullable=False, server_default=""))
        batch.add_column(sa.Column("reasons", JSON, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("assistant_settings") as batch:
        batch.drop_column("reasons")
        batch.drop_column("bot_name")
