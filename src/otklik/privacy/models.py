"""A workspace's personal-data settings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow


class PrivacySettings(Base):
    """How long closed conversations are kept (152-ФЗ ст. 5 ч. 7: no longer than the purpose needs); None keeps
    them. The worker deletes older ones (`service.sweep_retention`)."""

    __tablename__ = "privacy_settings"

    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True)
    closed_retention_days: Mapped[int | None] = mapped_column(Integer)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
