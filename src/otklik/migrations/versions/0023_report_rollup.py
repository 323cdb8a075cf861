"""reports: the daily rollup (per workspace × day × channel × team × agent) and its marks of changed facts;
feedback: reviews from review sites, automatic and manual QA scores

Revision ID: 0023
Revises: 0021
Create Date: 2026-12-07 06:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0021"
branch_labels = None
depends_on = None


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    op.create_table(
        "report_rollup_days",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("zone", sa.String(64), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stale_after", sa.DateTime(timezone=True), nullable=True),
        _fk("report_rollup_days", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", "day", name=op.f("pk_report_rollup_days")),
    )
    op.create_table(
        "report_rollup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("conversations", sa.Integer(), nullable=False),
        sa.Column("figures", sa.Text(), nullable=False),
        _fk("report_rollup", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollup")),
    )
    op.create_index("ix_rollup_ws_day", "report_rollup", ["workspace_id", "day"])
    op.create_table(
        "report_rollup_marks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=True),
        _fk("report_rollup_marks", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_rollup_marks")),
    )
    op.create_index("ix_rollup_marks_ws", "report_rollup_marks", ["workspace_id", "id"])
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(24), nullable=False),
        sa.Column("external_id", sa.String(200), nullable=False),
        sa.Column("rating", sa.SmallInteger(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("link", sa.String(1000), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("sentiment", sa.String(8), nullable=True),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=True),
        sa.Column("replied_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replied_by", sa.Integer(), nullable=True),
        sa.Column("follow_up_task_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        _fk("reviews", "workspace_id", "workspaces", "CASCADE"),
        _fk("reviews", "conversation_id", "conversations", "CASCADE"),
        _fk("reviews", "customer_id", "customers", "CASCADE"),
        _fk("reviews", "replied_by", "users", "SET NULL"),
        _fk("reviews", "follow_up_task_id", "customer_tasks", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reviews")),
        sa.UniqueConstraint("workspace_id", "platform", "external_id",
                            name=op.f("uq_reviews_workspace_id_platform_external_id")),
    )
    op.create_index("ix_reviews_ws_created", "reviews", ["workspace_id", "created_at"])
    op.create_index("ix_reviews_conversation", "reviews", ["conversation_id"])
    op.create_table(
        "qa_scores",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=True),
        sa.Column("reviewer_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("items", sa.Text(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        _fk("qa_scores", "workspace_id", "workspaces", "CASCADE"),
        _fk("qa_scores", "conversation_id", "conversations", "CASCADE"),
        _fk("qa_scores", "agent_id", "users", "SET NULL"),
        _fk("qa_scores", "reviewer_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_qa_scores")),
        sa.UniqueConstraint("conversation_id", "kind", name=op.f("uq_qa_scores_conversation_id_kind")),
    )
    op.create_index("ix_qa_ws_agent", "qa_scores", ["workspace_id", "kind", "agent_id", "computed_at"])


def downgrade() -> None:
    op.drop_index("ix_qa_ws_agent", table_name="qa_scores")
    op.drop_table("qa_scores")
    op.drop_index("ix_reviews_conversation", table_name="reviews")
    op.drop_index("ix_reviews_ws_created", table_name="reviews")
    op.drop_table("reviews")
    op.drop_index("ix_rollup_marks_ws", table_name="report_rollup_marks")
    op.drop_table("report_rollup_marks")
    op.drop_index("ix_rollup_ws_day", table_name="report_rollup")
    op.drop_table("report_rollup")
    op.drop_table("report_rollup_days")
