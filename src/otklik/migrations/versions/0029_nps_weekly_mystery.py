"""feedback/reports (issue 15, third round): the NPS schedule's settings, the weekly report by e-mail (settings,
opt-ins, one delivery per week and address), mystery-shopper scenarios and runs, conversations.mystery

Revision ID: 0029
Revises: 0027
Create Date: 2026-12-07 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0029"
down_revision = "0027"
branch_labels = None
depends_on = None

UTC_DATETIME = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], [f"{target}.id"], ondelete=ondelete,
                                   name=op.f(f"fk_{table}_{column}_{target}"))


def upgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("mystery", sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        "nps_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("delay_days", sa.Integer(), nullable=False),
        sa.Column("texts", JSON, nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        _fk("nps_settings", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_nps_settings")),
    )
    op.create_table(
        "report_weekly_settings",
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("addresses", sa.Text(), nullable=False),
        sa.Column("updated_at", UTC_DATETIME, nullable=False),
        _fk("report_weekly_settings", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_report_weekly_settings")),
    )
    op.create_table(
        "report_weekly_optins",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        _fk("report_weekly_optins", "user_id", "users", "CASCADE"),
        _fk("report_weekly_optins", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_report_weekly_optins")),
    )
    op.create_index(op.f("ix_report_weekly_optins_workspace_id"), "report_weekly_optins", ["workspace_id"])
    op.create_table(
        "report_weekly_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("week_start", sa.Date(), nullable=False),
        sa.Column("email", sa.String(254), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(300), nullable=False),
        sa.Column("claimed_at", UTC_DATETIME, nullable=False),
        sa.Column("sent_at", UTC_DATETIME, nullable=True),
        _fk("report_weekly_deliveries", "workspace_id", "workspaces", "CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_weekly_deliveries")),
        sa.UniqueConstraint("workspace_id", "week_start", "email",
                            name=op.f("uq_report_weekly_deliveries_workspace_id_week_start_email")),
    )
    op.create_table(
        "mystery_scenarios",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("opening", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        _fk("mystery_scenarios", "workspace_id", "workspaces", "CASCADE"),
        _fk("mystery_scenarios", "created_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mystery_scenarios")),
    )
    op.create_index("ix_mystery_scenarios_ws", "mystery_scenarios", ["workspace_id", "id"])
    op.create_table(
        "mystery_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("scenario_id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("started_by_id", sa.Integer(), nullable=True),
        sa.Column("started_at", UTC_DATETIME, nullable=False),
        _fk("mystery_runs", "workspace_id", "workspaces", "CASCADE"),
        _fk("mystery_runs", "scenario_id", "mystery_scenarios", "CASCADE"),
        _fk("mystery_runs", "conversation_id", "conversations", "SET NULL"),
        _fk("mystery_runs", "started_by_id", "users", "SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mystery_runs")),
    )
    op.create_index("ix_mystery_runs_ws", "mystery_runs", ["workspace_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_mystery_runs_ws", table_name="mystery_runs")
    op.drop_table("mystery_runs")
    op.drop_index("ix_mystery_scenarios_ws", table_name="mystery_scenarios")
    op.drop_table("mystery_scenarios")
    op.drop_table("report_weekly_deliveries")
    op.drop_index(op.f("ix_report_weekly_optins_workspace_id"), table_name="report_weekly_optins")
    op.drop_table("report_weekly_optins")
    op.drop_table("report_weekly_settings")
    op.drop_table("nps_settings")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("mystery")
