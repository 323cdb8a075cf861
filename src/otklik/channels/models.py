"""A workspace's configured channel accounts (one Telegram bot, one mailbox, one API webhook...), and the
vendor events they received (de-duplication by the vendor's id, and the work queue for slow events)."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class ChannelAccount(Base):
    __tablename__ = "channel_accounts"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120), default="default")
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # `fernet:<token>` of a JSON object {field: value} (see secrets.py); never shown, never logged
    secret: Mapped[str | None] = mapped_column(Text)
    # the unguessable part of this account's webhook URL: /api/v1/channels/<kind>/webhook/<token>
    webhook_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # plugin-owned runtime state (Telegram's getUpdates offset, the poller's lease, the bot's name...)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class EventStatus(enum.StrEnum):
    pending = "pending"   # stored, waiting for slow work (a media download) after the webhook answered
    done = "done"
    failed = "failed"     # the work gave up; `error` says why (shown in the channel settings)


class ChannelEvent(Base):
    """One vendor event (a Telegram update, a MAX update...) seen by an account: a vendor's retry finds its
    row and is acknowledged without a second message. Rows that need slow work keep their payload until done."""

    __tablename__ = "channel_events"
    __table_args__ = (UniqueConstraint("account_id", "event_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default=EventStatus.done.value, index=True)
    payload: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
