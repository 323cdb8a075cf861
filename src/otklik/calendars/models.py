"""Tables of the calendars domain: a workspace's business calendars (teams point at one, one is the default)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class Calendar(Base):
    __tablename__ = "calendars"
    __table_args__ = (UniqueConstraint("workspace_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    time_zone: Mapped[str] = mapped_column(String(64))
    hours: Mapped[dict[str, list[list[str]]]] = mapped_column(JSONType, default=dict)  # {"mon": [["09:00","18:00"]]}
    holidays: Mapped[str | None] = mapped_column(String(8), nullable=True)  # country code ("RU") or none
    days_off: Mapped[list[str]] = mapped_column(JSONType, default=list)  # ISO dates, the workspace's own
    working_days: Mapped[list[str]] = mapped_column(JSONType, default=list)  # ISO dates: a Saturday made working
    shortened_preholiday: Mapped[bool] = mapped_column(Boolean, default=False)  # ст. 95 ТК РФ: one hour less
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
