"""feedback and reports: surveys (CSAT, CES, NPS) and what the dashboard needs (filled in by its change)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 03:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "survey_answers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("score", sa.SmallInteger(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("follow_up_task_id", sa.Integer(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("survey_answers", "workspace_id", "workspaces", "CASCADE"),
        _fk("survey_answers", "conversation_id", "conversations", "CASCADE"),
        _fk("survey_answers", "customer_id", "customers", "CASCADE"),
        _fk("survey_answers", "follow_up_task_id", "customer_tasks", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_survey_answers")),
        sa.UniqueConstraint("conversation_id", "kind", name=op.f("uq_survey_answers_conversation_id_kind")),
    )
    op.create_index("ix_survey_ws_conv", "survey_answers", ["workspace_id", "conversation_id"])
    op.create_index("ix_survey_ws_customer", "survey_answers", ["workspace_id", "customer_id", "sent_at"])


def downgrade() -> None:
    op.drop_index("ix_survey_ws_customer", table_name="survey_answers")
    op.drop_index("ix_survey_ws_conv", table_name="survey_answers")
    op.drop_table("survey_answers")
