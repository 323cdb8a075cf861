"""Tables of the assistant domain: per-workspace settings and the log of its decisions."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from otklik.assistant.pipeline import DEFAULT_ANSWER_THRESHOLD
from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class AssistantSettings(Base):
    __tablename__ = "assistant_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    channels: Mapped[list[str]] = mapped_column(JSONType, default=list)  # empty: every channel
    answer_threshold: Mapped[float] = mapped_column(Float, default=DEFAULT_ANSWER_THRESHOLD)
    negativity_threshold: Mapped[float] = mapped_column(Float, default=0.95)
    urgency_threshold: Mapped[float] = mapped_column(Float, default=0.95)
    tone: Mapped[str] = mapped_column(String(16), default="formal")
    greeting: Mapped[str] = mapped_column(Text, default="")
    bot_name: Mapped[str] = mapped_column(String(80), default="", server_default="")  # "": «ИИ-ассистент»
    # the workspace's own contact reasons: [{"name", "description", "examples"?}]; None/[]: the shipped store list
    reasons: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType, default=None, nullable=True)
    out_of_hours_message: Mapped[str] = mapped_column(Text, default="")
    handoff_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AssistantDecision(Base):
    __tablename__ = "assistant_decisions"
    __table_args__ = (
        Index("ix_asst_dec_conv", "conversation_id", "id"),
        Index("ix_asst_dec_ws_created", "workspace_id", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    action: Mapped[str] = mapped_column(String(16))  # answer | clarify | handoff | silent
    reason: Mapped[str] = mapped_column(String(32))
    article_id: Mapped[str | None] = mapped_column(String(100))
    confidence: Mapped[float] = mapped_column(Float, default=0.0)
    failed: Mapped[bool] = mapped_column(Boolean, default=False)
    reply_message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    details: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
