"""Tables of the guardrails domain: a conversation's consumer-law case (its situation and the dates and sums the
agent confirmed), from which the side bar computes what the seller owes and by when."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class LegalCase(Base):
    __tablename__ = "legal_cases"

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    situation: Mapped[str | None] = mapped_column(String(40))  # None: from the conversation's contact reason
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # ISO dates, sums as strings, flags
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class LegalSettings(Base):
    """A workspace's consumer-law settings: its contact reasons mapped to the law's situations (none stored: the
    shipped store mapping), its own more generous terms, and how many days ahead a legal deadline warns."""

    __tablename__ = "legal_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    reason_situations: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    # [{"situation", "key", "days" | "months", "title"}]: e.g. the shop's «возврат 30 дней»
    terms: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    warn_days: Mapped[int] = mapped_column(Integer, default=2, server_default="2")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
