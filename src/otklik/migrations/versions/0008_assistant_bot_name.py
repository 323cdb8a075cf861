"""assistant: the name the bot introduces itself with; the workspace's own contact reasons; the answer
threshold moved to the new answer model's default where a workspace still had an earlier shipped default

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
    # The answer model was refitted across KBs (issue 12) with its threshold moved to 0.75: a workspace still on
    # one of the earlier shipped defaults (the model's probabilities then meant something else) gets the new one;
    # a value an admin chose is kept.
    earlier = (0.7, 0.704, 0.71, 0.711, 0.731, 0.764, 0.77, 0.774, 0.776, 0.78)
    settings = sa.table("assistant_settings", sa.column("answer_threshold", sa.Float()))
    op.execute(settings.update().where(settings.c.answer_threshold.in_(earlier)).values(answer_threshold=0.75))


def downgrade() -> None:
    with op.batch_alter_table("assistant_settings") as batch:
        batch.drop_column("reasons")
        batch.drop_column("bot_name")
