"""Tables of the conversations domain."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class Status(enum.StrEnum):
    new = "new"
    open = "open"
    pending = "pending"
    solved = "solved"
    closed = "closed"


class Priority(enum.StrEnum):
    low = "low"
    normal = "normal"
    high = "high"
    urgent = "urgent"


PRIORITY_RANK = {Priority.low: 0, Priority.normal: 1, Priority.high: 2, Priority.urgent: 3}
RANK_PRIORITY = {v: k for k, v in PRIORITY_RANK.items()}


class PriorityType(TypeDecorator[Priority]):
    """Stored as a small integer so "most urgent first" is an index scan, shown as a word."""

    impl = SmallInteger
    cache_ok = True

    def process_bind_param(self, value: Priority | str | None, dialect: Any) -> int | None:
        return None if value is None else PRIORITY_RANK[Priority(value)]

    def process_result_value(self, value: int | None, dialect: Any) -> Priority | None:
        return None if value is None else RANK_PRIORITY[int(value)]


class Direction(enum.StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class AuthorKind(enum.StrEnum):
    customer = "customer"
    agent = "agent"
    assistant = "assistant"
    system = "system"


class DeliveryStatus(enum.StrEnum):
    received = "received"  # inbound
    queued = "queued"
    sent = "sent"
    delivered = "delivered"
    read = "read"
    failed = "failed"
    not_sent = "not_sent"  # internal notes, system events


class OutboxStatus(enum.StrEnum):
    pending = "pending"
    sending = "sending"
    sent = "sent"
    dead = "dead"  # gave up after the last retry: shown to agents as failed


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        Index("ix_conv_ws_last", "workspace_id", "last_message_at", "id"),
        Index("ix_conv_ws_status_last", "workspace_id", "status", "last_message_at", "id"),
        Index("ix_conv_ws_status_waiting", "workspace_id", "status", "last_customer_message_at", "id"),
        Index("ix_conv_ws_status_prio", "workspace_id", "status", "priority", "id"),
        Index("ix_conv_ws_prio", "workspace_id", "priority", "id"),
        Index("ix_conv_ws_assignee_status", "workspace_id", "assignee_id", "status", "last_message_at", "id"),
        Index("ix_conv_ws_team_status", "workspace_id", "team_id", "status", "last_message_at", "id"),
        Index("ix_conv_ws_customer", "workspace_id", "customer_id", "id"),
        Index("ix_conv_ws_created", "workspace_id", "created_at", "id"),
        Index("ix_conv_ws_status_due", "workspace_id", "status", "sla_due_at", "id"),
        Index("ix_conv_ws_legal_due", "workspace_id", "legal_due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    # active_history: the routing's flush hook needs the old assignee/status/channel to move agents' counts
    channel: Mapped[str] = mapped_column(String(16), active_history=True)
    subject: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(10), default=Status.new.value, active_history=True)
    priority: Mapped[Priority] = mapped_column(PriorityType, default=Priority.normal)
    category: Mapped[str | None] = mapped_column(String(64))
    language: Mapped[str | None] = mapped_column(String(8))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), active_history=True)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    previous_conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id",
                                                                             ondelete="SET NULL"))
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    version: Mapped[int] = mapped_column(Integer, default=1)
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    last_message_preview: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_customer_message_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_response_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    solved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # The assistant's signals (conversations/signals.py): shown in red in the inbox, filterable.
    sentiment: Mapped[str | None] = mapped_column(String(8))  # negative / neutral / positive
    urgent: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Waiting time (docs/service-levels.md): since the first customer message that no person has answered yet;
    # a bot message never clears it. `assistant_answered_at`: the assistant answered after that message.
    waiting_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assistant_answered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # SLA (conversations/sla.py): the earliest due time of a running timer (the inbox's «due soonest»), and
    # whether any target of this conversation was breached.
    sla_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    sla_breached: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Consumer-law deadlines (guardrails): the earliest due time of a running legal timer (also in sla_due_at)
    legal_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Routing (conversations/routing.py): when a person was first assigned, and how many times it was handed to
    # another person after that (a transfer; an unassign-then-assign counts once).
    first_assigned_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    transfer_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A mystery-shopper run (feedback/mystery.py): worked like any conversation, scored by QA, but left out of
    # every customer figure (reports, rollup, CSAT/NPS surveys) — docs/qa.md «Mystery shopping»
    mystery: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class ConversationTag(Base):
    __tablename__ = "conversation_tags"
    __table_args__ = (Index("ix_conv_tags_ws_tag", "workspace_id", "tag", "conversation_id"),)

    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    tag: Mapped[str] = mapped_column(String(48), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conv", "conversation_id", "id"),
        Index("uq_messages_channel_id", "workspace_id", "channel", "channel_message_id", unique=True),
        Index("ix_messages_ws_id", "workspace_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(16))
    direction: Mapped[str] = mapped_column(String(10))
    author_kind: Mapped[str] = mapped_column(String(10))
    author_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str] = mapped_column(Text, default="")
    is_internal: Mapped[bool] = mapped_column(Boolean, default=False)
    channel_message_id: Mapped[str | None] = mapped_column(String(200))
    delivery_status: Mapped[str] = mapped_column(String(10))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    search_terms: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OutboxItem(Base):
    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(10), default=OutboxStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
