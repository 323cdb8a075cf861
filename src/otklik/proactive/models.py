"""Tables of the proactive domain: the workspace's rules (caps, quiet hours, windows), its triggers and campaigns,
one send row per (reason, customer) claimed before anything is enqueued, and each customer's consent and
opt-out with the log of how they were given."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class ProactiveSettings(Base):
    """A workspace's limits on proactive messages (defaults in `service.DEFAULTS` when no row exists)."""

    __tablename__ = "proactive_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    cap_count: Mapped[int] = mapped_column(Integer, default=1)  # marketing messages a customer gets …
    cap_days: Mapped[int] = mapped_column(Integer, default=7)  # … per this many days
    quiet_start: Mapped[int] = mapped_column(Integer, default=21)  # local hour when quiet hours begin
    quiet_end: Mapped[int] = mapped_column(Integer, default=9)  # local hour when they end
    reply_days: Mapped[int] = mapped_column(Integer, default=3)  # a customer message this soon is a reply
    conversion_days: Mapped[int] = mapped_column(Integer, default=7)  # an order this soon is a conversion
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProactiveTrigger(Base):
    """One automatic reason to write first (order delayed, delivered, returned; cart abandoned; replenishment
    due), switched on or off, with the text in Russian and English."""

    __tablename__ = "proactive_triggers"
    __table_args__ = (UniqueConstraint("workspace_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    text_ru: Mapped[str] = mapped_column(Text, default="")
    text_en: Mapped[str] = mapped_column(Text, default="")
    whatsapp_template: Mapped[str] = mapped_column(String(512), default="")  # sent outside the 24-hour window
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # delay_minutes, days_before
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProactiveCampaign(Base):
    """A message to a segment of customers, sent once at `scheduled_at`. `cursor` (the last customer id
    walked) and `slots` (per channel, the next free moment at its rate) make a run resumable."""

    __tablename__ = "proactive_campaigns"
    __table_args__ = (Index("ix_proactive_campaigns_ws_status", "workspace_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    text_ru: Mapped[str] = mapped_column(Text, default="")
    text_en: Mapped[str] = mapped_column(Text, default="")
    whatsapp_template: Mapped[str] = mapped_column(String(512), default="")
    marketing: Mapped[bool] = mapped_column(Boolean, default=True)
    segment: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(12), default="draft")  # draft scheduled running done cancelled
    scheduled_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    rate_per_second: Mapped[float | None] = mapped_column(Float)  # None: each channel's own rate
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    slots: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class ProactiveSend(Base):
    """One proactive message to one customer for one reason (`dedup_key`: «campaign:12», «order_delayed:4512»):
    claimed by inserting this row (unique), then queued (a message and its outbox row), left pending until
    `send_at` (quiet hours, a cart's delay), or skipped with the reason."""

    __tablename__ = "proactive_sends"
    __table_args__ = (UniqueConstraint("workspace_id", "dedup_key", "customer_id"),
                      Index("ix_proactive_sends_due", "status", "send_at"),
                      Index("ix_proactive_sends_ws_trigger", "workspace_id", "trigger", "campaign_id"),
                      Index("ix_proactive_sends_customer", "workspace_id", "customer_id", "queued_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    trigger: Mapped[str] = mapped_column(String(32))  # a trigger kind, or «campaign»
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("proactive_campaigns.id", ondelete="CASCADE"))
    dedup_key: Mapped[str] = mapped_column(String(120))
    marketing: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(10), default="pending")  # pending queued skipped
    reason: Mapped[str | None] = mapped_column(String(40))  # why skipped (or why still pending)
    send_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)  # the text's variables
    channel: Mapped[str | None] = mapped_column(String(16))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class CustomerContact(Base):
    """Whether a customer may get proactive messages: opted out of all (honoured for every proactive message),
    and consent to marketing (38-ФЗ «О рекламе» ст. 18 ч. 1; 152-ФЗ ст. 15 ч. 1)."""

    __tablename__ = "proactive_contacts"

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class ConsentEvent(Base):
    """The record of a consent given or withdrawn, or an opt-out: what, how (source), the evidence, when."""

    __tablename__ = "proactive_consent_events"
    __table_args__ = (Index("ix_proactive_consent_customer", "workspace_id", "customer_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(24))  # consent_given consent_withdrawn opted_out opted_in
    source: Mapped[str] = mapped_column(String(24))  # api ui reply shop unsubscribe_link
    evidence: Mapped[str] = mapped_column(Text, default="")  # the wording agreed to, the message, the page
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
