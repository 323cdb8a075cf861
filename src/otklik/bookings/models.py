"""Tables of the bookings domain: the services a shop offers at home (assembly, installation, connection), the
installers who do them (a user or a named contractor, each on a business calendar, with service areas), the
booked visits, and the half-hour cells a visit holds — the unique constraint that makes double booking impossible
on any database, whatever two requests do at the same moment."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow

MONEY = Numeric(14, 2)


class BookingService(Base):
    __tablename__ = "booking_services"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))  # assembly / installation / connection
    duration_minutes: Mapped[int] = mapped_column(Integer)
    price: Mapped[Decimal] = mapped_column(MONEY)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Installer(Base):
    __tablename__ = "installers"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))  # None: a contractor
    contractor: Mapped[str] = mapped_column(String(200), default="")  # the contractor's company, if any
    phone: Mapped[str] = mapped_column(String(32), default="")
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id"))  # NO ACTION: not while in use
    areas: Mapped[list[str]] = mapped_column(JSONType, default=list)  # lower-case city/zone names
    service_ids: Mapped[list[int]] = mapped_column(JSONType, default=list)  # empty: every service
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Booking(Base):
    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_ws_installer_ts", "workspace_id", "installer_id", "start_ts", "end_ts", "status"),
                      Index("ix_bookings_ws_start", "workspace_id", "start_at"),
                      Index("ix_bookings_status_start", "status", "start_at"),
                      Index("ix_bookings_ws_customer", "workspace_id", "customer_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    service_id: Mapped[int] = mapped_column(ForeignKey("booking_services.id"))
    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    order_number: Mapped[str] = mapped_column(String(64), default="")
    area: Mapped[str] = mapped_column(String(120), default="")
    address: Mapped[str] = mapped_column(String(500), default="")
    start_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # the same two moments as UTC epoch seconds: the slot search reads thousands of them per call
    start_ts: Mapped[int] = mapped_column(BigInteger)
    end_ts: Mapped[int] = mapped_column(BigInteger)
    time_zone: Mapped[str] = mapped_column(String(64))  # the installer's calendar's, when booked
    price: Mapped[Decimal] = mapped_column(MONEY)
    status: Mapped[str] = mapped_column(String(16), default="booked")  # booked / done / missed / cancelled
    missed_on: Mapped[str | None] = mapped_column(String(10))  # the agreed day that passed without the visit
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    reminded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    asked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)  # «Всё ли удобно?» sent
    feedback_score: Mapped[int | None] = mapped_column(SmallInteger)
    feedback_comment: Mapped[str] = mapped_column(Text, default="")
    reschedules: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(16), default="agent")  # agent / customer / api / demo
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class BookingCell(Base):
    """One half-hour of an installer's time held by a booking. The primary key (installer, start) is what
    refuses a second booking of the same time: the loser of a race gets an IntegrityError, turned into a 409."""

    __tablename__ = "booking_cells"

    installer_id: Mapped[int] = mapped_column(ForeignKey("installers.id", ondelete="CASCADE"), primary_key=True)
    starts_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    booking_id: Mapped[int] = mapped_column(ForeignKey("bookings.id", ondelete="CASCADE"), index=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
