"""feedback and reports: surveys (CSAT, CES, NPS) and what the dashboard needs (filled in by its change)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:55:00
"""

from __future__ import annotations

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
