"""Delivery receipts from channels (WhatsApp's sent / delivered / read / failed) applied to outbound messages.

Receipts arrive out of order and more than once: a status only moves forward (queued < sent < delivered <
read), except `failed`, which a vendor may report after `sent` and which agents must see.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.conversations.models import DeliveryStatus, Direction, Message
from otklik.platform.events import Event, after_commit

_RANK = {DeliveryStatus.queued: 0, DeliveryStatus.sent: 1, DeliveryStatus.delivered: 2, DeliveryStatus.read: 3}


def record_delivery_status(session: Session, workspace_id: int, *, channel: str, channel_message_id: str,
                           status: DeliveryStatus, error: str | None = None) -> Message | None:
    """Apply a vendor's receipt to our outbound message with that vendor id; None when no such message."""
    message = session.scalar(select(Message).where(
        Message.workspace_id == workspace_id, Message.channel == channel,
        Message.channel_message_id == channel_message_id[:200], Message.direction == Direction.outbound.value))
    if message is None:
        return None
    current = DeliveryStatus(message.delivery_status)
    if status is DeliveryStatus.failed:
        if current is DeliveryStatus.read:
            return message  # read is proof of delivery; a late failure report cannot undo it
        changed = current is not DeliveryStatus.failed or (error or None) != message.delivery_error
        message.delivery_status = status.value
        message.delivery_error = (error or "the channel reported a failed delivery")[:2000]
    else:
        if current is DeliveryStatus.failed or _RANK.get(status, -1) <= _RANK.get(current, -1):
            return message
        changed = True
        message.delivery_status = status.value
        message.delivery_error = None
    if changed:
        after_commit(session, Event("message.updated", workspace_id, {
            "id": message.id, "conversation_id": message.conversation_id,
            "delivery_status": message.delivery_status, "delivery_error": message.delivery_error}))
    return message
