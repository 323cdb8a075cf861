"""Tables of the authority limits: compensations given on a conversation, the limits per role and per agent, the
running daily usage (the row a request locks), and where the shop's system hears about an applied compensation."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow

MONEY = Numeric(12, 2)  # roubles and kopecks, exact on SQLite and PostgreSQL (asdecimal)


class Compensation(Base):
    __tablename__ = "compensations"
    __table_args__ = (
        Index("ix_compensations_ws_status", "workspace_id", "status", "id"),
        Index("ix_compensations_conv", "conversation_id", "id"),
        Index("ix_compensations_customer", "customer_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(10))  # applied / pending / rejected
    requested_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    requested_by_kind: Mapped[str] = mapped_column(String(10), default="user")  # user / assistant
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    decision_comment: Mapped[str | None] = mapped_column(String(500))
    # the thread entry the shop's webhook rides on (the outbox row points at it); set when applied
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    applied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CompensationLimit(Base):
    """One limit: `subject` is `role:<agent|supervisor|admin|assistant>` or `user:<id>`; `kind` one action kind or
    `*` for all kinds together. A missing bound (None) is no limit."""

    __tablename__ = "compensation_limits"
    __table_args__ = (UniqueConstraint("workspace_id", "subject", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    subject: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(16))
    per_case: Mapped[Decimal | None] = mapped_column(MONEY)
    per_day: Mapped[Decimal | None] = mapped_column(MONEY)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


class CompensationUsage(Base):
    """What one subject gave on its own authority on one day (Moscow date). A request locks this row first, so
    two requests at once cannot both fit under the daily limit."""

    __tablename__ = "compensation_usage"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    subject: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    amount: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0"))


class CompensationWebhook(Base):
    """The shop's endpoint for applied compensations; the signing secret is stored encrypted."""

    __tablename__ = "compensation_webhooks"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_enc: Mapped[str] = mapped_column(String(500))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
