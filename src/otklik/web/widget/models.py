"""Tables of the chat widget: per-workspace settings, visitors (a browser's hashed token), page visits.

The visitor's token is a credential: only its SHA-256 is stored. The identity secret is encrypted at rest.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class WidgetSettings(Base):
    __tablename__ = "widget_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    public_key: Mapped[str] = mapped_column(String(40), unique=True)  # in the embed snippet; not a secret
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    # colours, texts, launcher buttons, quick replies, greetings, working hours: see service.DEFAULT_CONFIG
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    allowed_origins: Mapped[list[str]] = mapped_column(JSONType, default=list)
    identity_secret: Mapped[str | None] = mapped_column(Text)  # fernet:..., see platform/crypto.py
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class WidgetVisitor(Base):
    __tablename__ = "widget_visitors"
    __table_args__ = (Index("ix_widget_visitors_customer", "workspace_id", "customer_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # the "widget" identity's value
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    external_id: Mapped[str | None] = mapped_column(String(200))  # the site's verified customer id
    language: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PageVisit(Base):
    __tablename__ = "widget_page_visits"
    __table_args__ = (Index("ix_widget_page_visits_visitor", "visitor_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    visitor_id: Mapped[int] = mapped_column(ForeignKey("widget_visitors.id", ondelete="CASCADE"))
    url: Mapped[str] = mapped_column(String(2000))
    title: Mapped[str] = mapped_column(String(300), default="")
    visited_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
