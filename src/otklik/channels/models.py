"""A workspace's configured channel accounts (one Telegram bot, one mailbox, one API webhook...)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
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
    secret: Mapped[str | None] = mapped_column(String(500))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
