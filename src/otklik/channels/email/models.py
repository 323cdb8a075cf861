"""Tables of the email channel: the Message-ID index that threads replies, and each mailbox's IMAP position.

Only the email channel reads or writes these; conversations and messages stay in the conversations domain.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from otklik.platform.db import Base, UTCDateTime, utcnow


class EmailMessageId(Base):
    """One Message-ID seen in a workspace: a customer's mail, our outbound mail, or a bounce report.

    `In-Reply-To` / `References` of an inbound mail are looked up here to find the conversation. Our outbound
    Message-IDs are written *before* the SMTP transaction, so a reply threads even if the worker died after
    the server accepted the mail; `sent_at` is stamped right after the server's 250, so a retry of the same
    outbox row does not send twice.
    """

    __tablename__ = "email_message_ids"
    __table_args__ = (
        UniqueConstraint("workspace_id", "header_id"),
        Index("ix_email_message_ids_conversation", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    header_id: Mapped[str] = mapped_column(String(255))  # the Message-ID without <>, or sha256:<hex> if long
    direction: Mapped[str] = mapped_column(String(10))  # inbound / outbound / bounce
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    sent_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class EmailMailbox(Base):
    """Where the IMAP poller of one account stands in one folder: UIDVALIDITY, the last stored UID, a lease."""

    __tablename__ = "email_mailboxes"
    __table_args__ = (UniqueConstraint("account_id", "folder"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("channel_accounts.id", ondelete="CASCADE"))
    folder: Mapped[str] = mapped_column(String(255))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    imported: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_poll_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(String(2000))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
