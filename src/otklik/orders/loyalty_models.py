"""Tables of loyalty and referrals (orders domain): a workspace's tiers, its referral settings (the shop's
webhook), each customer's referral code and each referral (who brought whom, the reward, its delivery).

A customer's current tier is stored on the customer row (`customers.loyalty_tier`, the tier's name), so
lists, conditions and templates read it without a query of their own; `orders.loyalty` keeps it true.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow


class LoyaltyTier(Base):
    """«Серебро: 10 purchases over 365 days»: the customer reaches it when the metric over the period (or all
    time) is at least the threshold; of the tiers reached, the one with the highest rank is theirs."""

    __tablename__ = "loyalty_tiers"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    metric: Mapped[str] = mapped_column(String(16))  # purchases (paid orders) | spent (their sum)
    threshold: Mapped[Decimal] = mapped_column(Numeric(14, 2))
    period_days: Mapped[int | None] = mapped_column(Integer)  # None: all time
    rank: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class LoyaltySettings(Base):
    """Where the shop hears of a referral reward: its webhook URL, the signing secret (encrypted) and the
    benefit the shop grants («10 %»), sent along so the shop knows what was promised."""

    __tablename__ = "loyalty_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    webhook_url: Mapped[str] = mapped_column(String(500), default="")
    secret_enc: Mapped[str] = mapped_column(Text, default="")
    reward: Mapped[str] = mapped_column(String(200), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReferralCode(Base):
    __tablename__ = "referral_codes"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), unique=True)
    code: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Referral(Base):
    """The referred customer was brought by the referrer (one referrer per customer). `rewarded_at` is set
    once, when the referred customer's first order is paid; the shop's webhook is then delivered with
    retries (`webhook_status`: unconfigured → pending → sending → sent | dead) under `idempotency_key`."""

    __tablename__ = "referrals"
    __table_args__ = (UniqueConstraint("workspace_id", "referred_id"),
                      Index("ix_referrals_webhook_due", "webhook_status", "next_attempt_at"),
                      Index("ix_referrals_ws_referrer", "workspace_id", "referrer_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    referrer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    referred_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8), default="api")  # api | order | ui
    linked_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id", ondelete="SET NULL"))
    order_number: Mapped[str | None] = mapped_column(String(64))
    rewarded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    idempotency_key: Mapped[str] = mapped_column(String(64), unique=True)
    webhook_status: Mapped[str] = mapped_column(String(12), default="none")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
