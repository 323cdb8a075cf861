"""accounts: an agent's choice to hear about new unassigned conversations of their teams (a toast and a sound)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 04:15:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("notify_team_new", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("notify_team_new")
