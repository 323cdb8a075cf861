"""conversations: index for "most urgent first" across statuses

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 03:06:47
"""

from __future__ import annotations

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # `priority=urgent&sort=priority` scanned the workspace's conversations without it (bench/inbox.py).
    op.create_index("ix_conv_ws_prio", "conversations", ["workspace_id", "priority", "id"])


def downgrade() -> None:
    op.drop_index("ix_conv_ws_prio", table_name="conversations")
