"""Tables of the feedback domain: one survey answer per conversation and kind (a second answer updates it)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow


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
