"""Tables of agent notifications: what each agent wants to hear about, their linked Telegram chat, the one-time
codes that link it, and one row per (agent, event) sent — the row's unique key is what makes a notification
go out once however often its event is replayed."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow

# what an agent may choose to hear about (the columns of `AgentNotificationSettings`)
KINDS = ("new_in_team", "customer_reply", "mention", "sla", "approval")


class AgentNotificationSettings(Base):
    """An agent's choices; no row means every kind is on."""

    __tablename__ = "agent_notification_settings"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    new_in_team: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    customer_reply: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    mention: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    sla: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    approval: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AgentTelegramLink(Base):
    """An agent's own Telegram chat with the workspace's bot (one per agent; one agent per chat and bot)."""

    __tablename__ = "agent_telegram_links"
    __table_args__ = (UniqueConstraint("account_id", "chat_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    # the workspace's Telegram bot (a channel account) the agent wrote to
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    chat_id: Mapped[str] = mapped_column(String(32))
    username: Mapped[str | None] = mapped_column(String(64))
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # the send slot: no message to this chat before it (a burst becomes one digest, see service.GROUP_SECONDS)
    next_send_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class AgentLinkCode(Base):
    """A one-time code shown on the agent's profile; only its SHA-256 digest is stored."""

    __tablename__ = "agent_link_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class AgentNotification(Base):
    """One notification for one agent about one event. `event_key` names the event («message:812»)."""

    __tablename__ = "agent_notifications"
    __table_args__ = (UniqueConstraint("user_id", "event_key"),
                      Index("ix_agent_notifications_user_status", "user_id", "status", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    event_key: Mapped[str] = mapped_column(String(160))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                        index=True)
    text: Mapped[str] = mapped_column(Text)
    # pending -> sending (claimed by one delivery) -> sent / failed
    status: Mapped[str] = mapped_column(String(12), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(300))
    # the Telegram message that carried it (a reply to that message answers the conversation)
    chat_id: Mapped[str | None] = mapped_column(String(32))
    telegram_message_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
