"""calendars: a workspace's business calendars (time zone, weekly hours, country holidays, own days off and
working days); teams point at one. The assistant's own working hours become the workspace's default calendar.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 00:30:00
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def upgrade() -> None:
    op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("workspace_id", sa.Integer(), sa.ForeignKey("workspaces.id", ondelete="CASCADE"), nullable=False),
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("hours", JSON, nullable=False),
        sa.Column("holidays", sa.String(8), nullable=True),
        sa.Column("days_off", JSON, nullable=False),
        sa.Column("working_days", JSON, nullable=False),
        sa.Column("shortened_preholiday", sa.Boolean(), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("workspace_id", "name"),
    )
    op.create_index("ix_calendars_workspace_id", "calendars", ["workspace_id"])
    with op.batch_alter_table("teams") as batch:
        batch.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch.create_foreign_key("fk_teams_calendar_id", "calendars", ["calendar_id"], ["id"], ondelete="SET NULL")

    # The assistant's working hours ({"days": [0..6], "start", "end"}) become the default calendar, with the
    # workspace's time zone and the Russian production calendar (the old hours ignored holidays: issue 13).
    bind = op.get_bind()
    rows = bind.execute(sa.text(
        "SELECT s.workspace_id, s.working_hours, w.timezone FROM assistant_settings s "
        "JOIN workspaces w ON w.id = s.workspace_id")).fetchall()
    calendars = sa.table("calendars", *(sa.column(c) for c in (
        "workspace_id", "name", "time_zone", "holidays", "shortened_preholiday", "is_default",
        "created_at", "updated_at")), sa.column("hours", JSON), sa.column("days_off", JSON),
        sa.column("working_days", JSON))
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    for workspace_id, hours, zone in rows:
        if isinstance(hours, str):
            import json

            hours = json.loads(hours or "{}")
        if not hours or not hours.get("days"):
            continue
        span = [[hours.get("start", "09:00"), hours.get("end", "18:00")]]
        week = {day: (span if i in hours["days"] else []) for i, day in enumerate(DAYS)}
        op.execute(calendars.insert().values(
            workspace_id=workspace_id, name="Основной", time_zone=zone or "Europe/Moscow", hours=week,
            holidays="RU", days_off=[], working_days=[], shortened_preholiday=False, is_default=True,
            created_at=now, updated_at=now))
    with op.batch_alter_table("assistant_settings") as batch:
        batch.drop_column("working_hours")


def downgrade() -> None:
    with op.batch_alter_table("assistant_settings") as batch:
        batch.add_column(sa.Column("working_hours", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("teams") as batch:
        batch.drop_constraint("fk_teams_calendar_id", type_="foreignkey")
        batch.drop_column("calendar_id")
    op.drop_index("ix_calendars_workspace_id", table_name="calendars")
    op.drop_table("calendars")
