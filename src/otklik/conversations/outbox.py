"""Outbound delivery through the outbox: at-least-once attempts, exactly-once effect.

A reply and its outbox row are committed together. A job (enqueued after commit) claims the row with a
lease, hands the message to the channel's sender with the row's idempotency key, and records the result.
A worker killed mid-delivery leaves the row `sending` with an expired lease; the periodic sweep re-enqueues
it and the retry carries the same idempotency key, so the receiving side applies it once.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from otklik.conversations.models import (
    Attachment,
    Conversation,
    DeliveryStatus,
    Message,
    OutboxItem,
    OutboxStatus,
)
from otklik.customers.models import Identity
from otklik.platform.config import get_settings
from otklik.platform.db import affected, session_scope, utcnow
from otklik.platform.events import Event, after_commit

log = logging.getLogger(__name__)
BACKOFF_SECONDS = (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)


@dataclass(frozen=True)
class OutboundMessage:
    outbox_id: int
    idempotency_key: str
    workspace_id: int
    conversation_id: int
    conversation_number: int
    message_id: int
    channel: str
    text: str
    html: str
    recipients: list[tuple[str, str]]  # the customer's identities (kind, external_id)
    attachments: list[tuple[str, str, int]]  # (filename, content type, size)
    attempt: int


class DeliveryError(Exception):
    """A failed attempt. `permanent` ones go straight to dead; others are retried with back-off."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class NotConnected(DeliveryError):
    """No account of the channel can take the reply (none connected, or switched off). Retrying cannot help
    until an admin connects one, so the row is dead at once: the agent sees «not delivered» with this reason,
    and the reply waits under Settings → Channels → Undelivered messages to be retried."""

    def __init__(self, channel: str):
        super().__init__(f"the {channel} channel is not connected or is switched off: there is nothing to "
                         f"deliver this reply through (connect it in Settings → Channels, then retry)",
                         permanent=True)


class Sender(Protocol):
    def send(self, message: OutboundMessage) -> str | None:
        """Deliver; return the channel's message id. Raise DeliveryError on failure."""


_senders: dict[str, Callable[[int], Sender | None]] = {}


def register_sender(channel: str, factory: Callable[[int], Sender | None]) -> None:
    """Channels register a factory: workspace id -> configured sender (None when not configured)."""
    _senders[channel] = factory


def get_sender(channel: str, workspace_id: int) -> Sender | None:
    """The configured sender of another channel (a web form's replies go out through the email channel)."""
    factory = _senders.get(channel)
    return factory(workspace_id) if factory else None


def can_deliver(channel: str, workspace_id: int) -> bool:
    """Whether a reply in `channel` has something to go out through now (the agent UI warns when not). A
    sender that delivers through another channel (a web form's replies are e-mails) answers `can_deliver()`."""
    sender = get_sender(channel, workspace_id)
    if sender is None:
        return False
    through = getattr(sender, "can_deliver", None)
    return bool(through()) if callable(through) else True


def enqueue_after_commit(session: Session, outbox_id: int) -> None:
    from otklik.conversations import jobs

    after_commit(session, lambda: jobs.deliver_outbox(outbox_id))


def backoff(attempt: int) -> float:
    return float(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])


def _claim(outbox_id: int) -> OutboundMessage | None:
    lease = get_settings().outbox_lease_seconds
    now = utcnow()
    with session_scope() as session:
        claimed = affected(session.execute(
            update(OutboxItem)
            .where(OutboxItem.id == outbox_id, OutboxItem.next_attempt_at <= now,
                   or_(OutboxItem.status == OutboxStatus.pending.value,
                       (OutboxItem.status == OutboxStatus.sending.value) & (OutboxItem.locked_until < now)))
            .values(status=OutboxStatus.sending.value, attempts=OutboxItem.attempts + 1,
                    locked_until=now + dt.timedelta(seconds=lease))
        ))
        if claimed != 1:
            return None
        item = session.get(OutboxItem, outbox_id)
        assert item is not None
        message = session.get(Message, item.message_id)
        assert message is not None
        conversation = session.get(Conversation, message.conversation_id)
        assert conversation is not None
        recipients = [(i.kind, i.external_id) for i in session.scalars(
            select(Identity).where(Identity.customer_id == conversation.customer_id).order_by(Identity.id))]
        attachments = [(a.filename, a.content_type, a.size) for a in session.scalars(
            select(Attachment).where(Attachment.message_id == message.id).order_by(Attachment.id))]
        return OutboundMessage(
            outbox_id=item.id, idempotency_key=item.idempotency_key, workspace_id=item.workspace_id,
            conversation_id=conversation.id, conversation_number=conversation.number, message_id=message.id,
            channel=item.channel, text=message.body_text, html=message.body_html, recipients=recipients,
            attachments=attachments, attempt=item.attempts)


def _finish(outbound: OutboundMessage, *, channel_message_id: str | None = None,
            error: DeliveryError | None = None) -> None:
    max_attempts = get_settings().outbox_max_attempts
    with session_scope() as session:
        item = session.scalar(select(OutboxItem).where(OutboxItem.id == outbound.outbox_id).with_for_update())
        message = session.get(Message, outbound.message_id)
        if item is None or message is None or item.attempts != outbound.attempt:
            return  # someone else re-claimed it after our lease ran out; their result counts
        if error is None:
            item.status = OutboxStatus.sent.value
            item.sent_at = utcnow()
            item.last_error = None
            item.locked_until = None
            message.delivery_status = DeliveryStatus.sent.value
            message.delivery_error = None
            if channel_message_id and message.channel_message_id is None:
                message.channel_message_id = channel_message_id[:200]
        else:
            item.last_error = str(error)[:2000]
            item.locked_until = None
            if error.permanent or item.attempts >= max_attempts:
                item.status = OutboxStatus.dead.value
                message.delivery_status = DeliveryStatus.failed.value
                message.delivery_error = item.last_error
            else:
                item.status = OutboxStatus.pending.value
                delay = error.retry_after if error.retry_after is not None else backoff(item.attempts)
                item.next_attempt_at = utcnow() + dt.timedelta(seconds=delay)
        after_commit(session, Event("message.updated", message.workspace_id, {
            "id": message.id, "conversation_id": message.conversation_id,
            "delivery_status": message.delivery_status, "delivery_error": message.delivery_error}))


def deliver(outbox_id: int) -> str:
    """One delivery attempt of one outbox row. Safe to call any number of times, from any process."""
    outbound = _claim(outbox_id)
    if outbound is None:
        return "skipped"
    factory = _senders.get(outbound.channel)
    sender = factory(outbound.workspace_id) if factory else None
    if sender is None:
        error = NotConnected(outbound.channel)
        log.warning("outbox %s is not delivered: %s", outbox_id, error)
        _finish(outbound, error=error)
        return "unconfigured"
    try:
        channel_message_id = sender.send(outbound)
    except DeliveryError as exc:
        log.warning("delivery of outbox %s (message %s) failed (attempt %s): %s", outbox_id, outbound.message_id,
                    outbound.attempt, exc)
        _finish(outbound, error=exc)
        return "failed"
    except Exception as exc:
        log.exception("delivery of outbox %s crashed", outbox_id)
        _finish(outbound, error=DeliveryError(f"{type(exc).__name__}: {exc}"))
        return "failed"
    _finish(outbound, channel_message_id=channel_message_id)
    # ids only (never the text or the recipient): with the request id on the record, the trail's last line
    log.info("outbox %s delivered: message %s in conversation %s via %s (attempt %s)", outbox_id,
             outbound.message_id, outbound.conversation_id, outbound.channel, outbound.attempt)
    return "sent"


def due_ids(limit: int = 500) -> list[int]:
    now = utcnow()
    with session_scope(write=False) as session:
        return list(session.scalars(
            select(OutboxItem.id).where(
                or_((OutboxItem.status == OutboxStatus.pending.value) & (OutboxItem.next_attempt_at <= now),
                    (OutboxItem.status == OutboxStatus.sending.value) & (OutboxItem.locked_until < now)))
            .order_by(OutboxItem.id).limit(limit)))


def list_items(session: Session, workspace_id: int, *, status: str | None = None, limit: int = 50
               ) -> list[OutboxItem]:
    stmt = select(OutboxItem).where(OutboxItem.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(OutboxItem.status == status)
    return list(session.scalars(stmt.order_by(OutboxItem.id.desc()).limit(limit)))


def retry_dead(session: Session, workspace_id: int, outbox_id: int) -> OutboxItem | None:
    item = session.get(OutboxItem, outbox_id)
    if item is None or item.workspace_id != workspace_id:
        return None
    if item.status == OutboxStatus.dead.value:
        item.status = OutboxStatus.pending.value
        item.attempts = 0
        item.next_attempt_at = utcnow()
        message = session.get(Message, item.message_id)
        if message is not None:
            message.delivery_status = DeliveryStatus.queued.value
            message.delivery_error = None
        enqueue_after_commit(session, item.id)
    return item
