"""Tables of the CRM integration: a workspace's connections, the customer ↔ contact links, the notes written
(one per idempotency key), a small cache of the contact's deals/orders, and the resumable bulk syncs.

The cache is a copy for display only: the CRM stays the truth, and the `orders` domain owns the shop's orders
(RetailCRM's orders are stored there too, through its upsert: `service.feed_orders`).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, JSONType, UTCDateTime, utcnow


class ConnectionStatus(enum.StrEnum):
    disconnected = "disconnected"  # never tested, or missing secrets
    ok = "ok"                      # the last call to the CRM worked
    error = "error"                # the last call failed: `last_error` says why


class CrmConnection(Base):
    __tablename__ = "crm_connections"
    __table_args__ = (UniqueConstraint("workspace_id", "kind", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(120), default="default")
    config: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # `fernet:<token>` of a JSON object {field: value} (platform.crypto, purpose "crm secrets"); never shown
    secret: Mapped[str | None] = mapped_column(Text)
    # the unguessable part of the CRM's webhook URL: /api/v1/integrations/crm/webhook/<token>
    webhook_token: Mapped[str] = mapped_column(String(64), unique=True)
    # connector-owned runtime state (RetailCRM's history cursor, amoCRM's stage names)
    state: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    status: Mapped[str] = mapped_column(String(16), default=ConnectionStatus.disconnected.value)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    last_error_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CrmLink(Base):
    """An Otklik customer is this CRM contact. `matched_by` names the verified identity that proved it
    ("phone:+79991234567"), or "created" when Otklik created the contact."""

    __tablename__ = "crm_links"
    __table_args__ = (UniqueConstraint("connection_id", "customer_id"),
                      Index("ix_crm_links_contact", "connection_id", "external_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("crm_connections.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"), index=True)
    external_id: Mapped[str] = mapped_column(String(64))
    matched_by: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class NoteStatus(enum.StrEnum):
    pending = "pending"  # claimed; the CRM may or may not have it yet (checked by its key before writing)
    done = "done"
    failed = "failed"    # gave up for now; `error` says why; the retry button or the sweep tries again


class CrmNote(Base):
    """One timeline note per (connection, idempotency key): a retry finds the row and never writes twice."""

    __tablename__ = "crm_notes"
    __table_args__ = (UniqueConstraint("connection_id", "idempotency_key"),
                      Index("ix_crm_notes_status", "connection_id", "status"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("crm_connections.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    idempotency_key: Mapped[str] = mapped_column(String(120))
    external_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default=NoteStatus.pending.value)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CrmDeal(Base):
    """A CRM deal (Bitrix24), lead (amoCRM) or order (RetailCRM) of a linked contact, as last read."""

    __tablename__ = "crm_deals"
    __table_args__ = (UniqueConstraint("connection_id", "external_id"),
                      Index("ix_crm_deals_contact", "connection_id", "contact_external_id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("crm_connections.id", ondelete="CASCADE"))
    contact_external_id: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(64), default="")
    title: Mapped[str] = mapped_column(String(300), default="")
    status: Mapped[str] = mapped_column(String(120), default="")
    amount: Mapped[str] = mapped_column(String(32), default="")
    currency: Mapped[str] = mapped_column(String(8), default="")
    url: Mapped[str] = mapped_column(String(500), default="")
    changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    fetched_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class SyncStatus(enum.StrEnum):
    running = "running"
    done = "done"
    failed = "failed"    # stopped on an error that needs a person (wrong key); resumable from its cursor
    cancelled = "cancelled"


class CrmSync(Base):
    """A bulk sync of a workspace's customers to one connection. `cursor` is the last customer id finished:
    a worker killed mid-way leaves it behind, and the next one resumes after it (the lease says who runs)."""

    __tablename__ = "crm_syncs"
    __table_args__ = (Index("ix_crm_syncs_conn", "connection_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("crm_connections.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default=SyncStatus.running.value)
    create_missing: Mapped[bool] = mapped_column(Boolean, default=False)
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    total: Mapped[int] = mapped_column(Integer, default=0)
    processed: Mapped[int] = mapped_column(Integer, default=0)
    matched: Mapped[int] = mapped_column(Integer, default=0)
    created: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(2000))
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
