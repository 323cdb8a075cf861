"""Tables of the reports' daily rollup (docs/metrics.md, «The daily rollup»).

`report_rollup` holds, per workspace × calendar day (the workspace's time zone) × channel × team × agent, the
partial figures of the conversations started that day (`reports.service.Partial` as JSON: counts, score counts
and the first-response and resolution durations to the millisecond, so medians stay exact).
`report_rollup_days` says which days are rolled up (and in which time zone, until when a time-dependent figure
holds); `report_rollup_marks` is the append-only list of conversations whose facts changed since (one insert per
flush, no row shared between writers), folded into the rollup by a job after commit and by the worker's sweep.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow


class RollupDay(Base):
    """One rolled-up day of a workspace: its rows in `report_rollup` are complete as of `computed_at`."""

    __tablename__ = "report_rollup_days"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    zone: Mapped[str] = mapped_column(String(64))  # the time zone the day was cut in: another one → not used
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the assistant's containment of a conversation still waiting for its 30 quiet minutes changes with time
    stale_after: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class RollupRow(Base):
    """The partial figures of one day × channel × team × agent (team and agent: the conversation's current)."""

    __tablename__ = "report_rollup"
    __table_args__ = (Index("ix_rollup_ws_day", "workspace_id", "day"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    day: Mapped[dt.date] = mapped_column(Date)
    channel: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(Integer)  # no foreign key: a deleted team's history stays
    agent_id: Mapped[int | None] = mapped_column(Integer)
    conversations: Mapped[int] = mapped_column(Integer, default=0)
    figures: Mapped[str] = mapped_column(Text)  # Partial.to_json()


class RollupMark(Base):
    """A conversation whose facts changed (its row, an SLA timer, a survey answer, an assistant decision, a status
    change in the audit log): the days it and its customer's week before fall in are to be recomputed."""

    __tablename__ = "report_rollup_marks"
    __table_args__ = (Index("ix_rollup_marks_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(Integer)  # no foreign key: a deleted one still marks its day
    customer_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # the conversation's, when known


class WeeklyReportSettings(Base):
    """A workspace's weekly report by e-mail (reports/weekly.py): the extra addresses it goes to, one per line
    (the opted-in supervisors and admins get it too)."""

    __tablename__ = "report_weekly_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    addresses: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeeklyReportOptIn(Base):
    """A supervisor or admin who asked for the weekly report at their own address."""

    __tablename__ = "report_weekly_optins"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class WeeklyReportDelivery(Base):
    """One week's report to one address: claimed before sending, so a recipient gets each week once."""

    __tablename__ = "report_weekly_deliveries"
    __table_args__ = (UniqueConstraint("workspace_id", "week_start", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    week_start: Mapped[dt.date] = mapped_column(Date)  # the Monday of the week reported
    email: Mapped[str] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(8), default="sending")  # sending / sent / failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(300), default="")
    claimed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
