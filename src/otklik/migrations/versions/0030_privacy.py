"""privacy: the retention period of closed conversations per workspace (issue 17 §3, 152-ФЗ)

Revision ID: 0030
Revises: 0028
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "privacy_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("closed_retention_days", sa.Integer(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"], ondelete="CASCADE",
                                name=op.f("fk_privacy_settings_workspace_id_workspaces")),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_privacy_settings")),
    )


def downgrade() -> None:
    op.drop_table("privacy_settings")
