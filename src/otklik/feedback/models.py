"""Tables of the feedback domain: one survey answer per conversation and kind (a second answer updates it)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class SurveyAnswer(Base):
    """A survey sent about a conversation (score None until the customer answers) and its answer."""

    __tablename__ = "survey_answers"
    __table_args__ = (
        UniqueConstraint("conversation_id", "kind"),
        Index("ix_survey_ws_conv", "workspace_id", "conversation_id"),
        Index("ix_survey_ws_customer", "workspace_id", "customer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # csat (1–5) / ces (1–7) / nps (0–10)
    channel: Mapped[str] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(SmallInteger)
    comment: Mapped[str] = mapped_column(Text, default="")
    follow_up_task_id: Mapped[int | None] = mapped_column(ForeignKey("customer_tasks.id", ondelete="SET NULL"))
    sent_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class NpsSettings(Base):
    """A workspace's NPS schedule (docs/metrics.md «NPS»): off until an admin turns it on; the delay after a
    contact or a delivered order, and the question and «почему?» texts per language (empty: the built-in ones)."""

    __tablename__ = "nps_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    delay_days: Mapped[int] = mapped_column(Integer, default=30)
    texts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # {"ru": {"question", "why"}, "en": …}
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MysteryScenario(Base):
    """A mystery-shopper scenario a supervisor wrote (docs/qa.md «Mystery shopping»): the opening message a test
    visitor sends in the widget, and what a good answer contains (one point per line)."""

    __tablename__ = "mystery_scenarios"
    __table_args__ = (Index("ix_mystery_scenarios_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(200))
    opening: Mapped[str] = mapped_column(Text)
    expected: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class MysteryRun(Base):
    """One run of a scenario: the widget conversation it opened (flagged `mystery`)."""

    __tablename__ = "mystery_runs"
    __table_args__ = (Index("ix_mystery_runs_ws", "workspace_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    scenario_id: Mapped[int] = mapped_column(ForeignKey("mystery_scenarios.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
