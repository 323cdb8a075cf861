"""Helpers for senders: multi-part messages that are never sent twice, and reading a reply's files.

A reply with text and two files is three vendor calls. Each part that the vendor accepted is recorded (a
`ChannelEvent` "out:<idempotency key>:<part>") in its own small transaction, so a retry after a crash or a
429 in the middle sends only the parts still missing. What remains possible is the narrow window between
the vendor accepting a part and the record being written (a worker killed exactly there): vendors such as
Telegram and MAX have no idempotency key to close it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select

from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations.models import Attachment, Direction, Message
from otklik.conversations.outbox import OutboundMessage
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope


@dataclass(frozen=True)
class OutgoingFile:
    filename: str
    content_type: str
    size: int
    path: Path


def files_of(message: OutboundMessage) -> list[OutgoingFile]:
    root = get_settings().attachments_dir
    with session_scope(write=False) as session:
        rows = session.scalars(select(Attachment).where(Attachment.message_id == message.message_id,
                                                        Attachment.workspace_id == message.workspace_id)
                               .order_by(Attachment.id)).all()
        return [OutgoingFile(a.filename, a.content_type, a.size, root / a.storage_key) for a in rows]


def _part_key(message: OutboundMessage, index: int) -> str:
    return f"out:{message.idempotency_key}:{index}"


def send_parts(account: ChannelAccount, message: OutboundMessage, parts: list[Callable[[], str | None]]) -> str | None:
    """Call each part's sender unless an earlier attempt already delivered it; returns the first part's id."""
    keys = [_part_key(message, i) for i in range(len(parts))]
    with session_scope(write=False) as session:
        done = {e.event_id: str((e.payload or {}).get("vendor_id") or "") for e in session.scalars(select(ChannelEvent).where(
            ChannelEvent.account_id == account.id, ChannelEvent.event_id.in_(keys)))}
    ids: list[str | None] = []
    for key, part in zip(keys, parts, strict=True):
        if key in done:
            ids.append(done[key] or None)
            continue
        vendor_id = part()
        with session_scope() as session:
            session.add(ChannelEvent(workspace_id=account.workspace_id, account_id=account.id, event_id=key,
                                     status=EventStatus.done.value, payload={"vendor_id": vendor_id}, attempts=1))
        ids.append(vendor_id)
    return next((i for i in ids if i), None)


def conversation_account(message: OutboundMessage, default: ChannelAccount) -> tuple[ChannelAccount, dict, dict[str, str]] | None:
    """The account the customer last wrote through in this conversation (a workspace may run two bots), when it
    is another enabled account of the same kind; None to keep `default`."""
    with session_scope(write=False) as session:
        meta = session.scalar(select(Message.meta).where(
            Message.conversation_id == message.conversation_id, Message.workspace_id == message.workspace_id,
            Message.direction == Direction.inbound.value).order_by(Message.id.desc()).limit(1))
        account_id = (meta or {}).get("account_id") if isinstance(meta, dict) else None
        if not isinstance(account_id, int) or account_id == default.id:
            return None
        account = session.get(ChannelAccount, account_id)
        if (account is None or account.workspace_id != message.workspace_id or account.kind != default.kind
                or not account.enabled):
            return None
        session.expunge(account)
    try:
        return account, dict(account.config or {}), decrypt_secrets(account.secret)
    except ValueError:
        return None
