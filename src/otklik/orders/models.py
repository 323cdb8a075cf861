"""Tables of the orders domain: the order as the shop last described it, its status history, and the
workspace's integration settings (the pull URL and the optional push signature secret)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, Numeric, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow

MONEY = Numeric(14, 2)  # roubles and kopecks, exact on SQLite and PostgreSQL


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (UniqueConstraint("workspace_id", "number"),
                      Index("ix_orders_ws_customer", "workspace_id", "customer_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    number: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id", ondelete="SET NULL"))
    # the identity the shop named the buyer by (normalised like customers.identities), and any other contacts
    # it gave: the assistant answers only someone who proves one of them
    customer_kind: Mapped[str] = mapped_column(String(16))
    customer_value: Mapped[str] = mapped_column(String(254))
    contacts: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16))
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    total: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3), default="RUB")
    paid: Mapped[Any] = mapped_column(JSONType, nullable=True)  # as the shop sent it: true/false or the amount paid
    payment_status: Mapped[str] = mapped_column(String(16), default="unpaid")
    payment_url: Mapped[str | None] = mapped_column(String(1000))
    delivery: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    promised_on: Mapped[str | None] = mapped_column(String(10))  # ISO date, copied out of delivery to query
    placed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    source: Mapped[str] = mapped_column(String(8), default="api")  # api | csv | pull | demo | crm (RetailCRM)
    fingerprint: Mapped[str] = mapped_column(String(32))  # of the normalised content: a repeat changes nothing
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class OrderEvent(Base):
    """One status the order entered, when, and who said so (the first one is its status when it arrived)."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    source: Mapped[str] = mapped_column(String(8), default="api")
    note: Mapped[str] = mapped_column(Text, default="")


class OrderSettings(Base):
    """A workspace's order integration: the optional pull URL (with its encrypted auth header and JSON field
    mapping) and the optional secret that signs pushes."""

    __tablename__ = "order_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    lookup_url: Mapped[str] = mapped_column(String(1000), default="")  # with {number}
    auth_header: Mapped[str] = mapped_column(String(100), default="")  # its name, e.g. X-API-KEY
    auth_value: Mapped[str] = mapped_column(Text, default="")  # fernet:…, never shown again
    mapping: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    timeout_s: Mapped[float] = mapped_column(Float, default=1.5)
    cache_s: Mapped[int] = mapped_column(Integer, default=60)
    signing_secret: Mapped[str] = mapped_column(Text, default="")  # fernet:…; set: pushes must be signed
    require_signature: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


import otklik.orders.loyalty_models  # noqa: E402,F401 - loyalty's tables belong to this domain's metadata
