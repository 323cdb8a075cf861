"""Which conversation an email belongs to: `In-Reply-To` / `References` looked up in the Message-ID index,
then a «[#123]» ticket tag in the subject as the fallback. Always scoped to one workspace.

Never creates conversations (that is `conversations.service.receive()`); only remembers Message-IDs.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.channels.email.models import EmailMessageId
from otklik.channels.email.parsing import ParsedEmail, normalise_id, subject_ticket_number
from otklik.conversations.models import Conversation
from otklik.platform.db import RetryTransaction

INBOUND = "inbound"
OUTBOUND = "outbound"
BOUNCE = "bounce"


def find_conversation(session: Session, workspace_id: int, parsed: ParsedEmail) -> int | None:
    """The conversation this mail replies to, or None (then the customer's open conversation, or a new one)."""
    # In-Reply-To names the direct parent; References lists the thread oldest first: try the newest first.
    candidates = [normalise_id(i) for i in [*parsed.in_reply_to, *reversed(parsed.references)]]
    candidates = list(dict.fromkeys(candidates))[:50]
    if candidates:
        rows = dict(session.execute(select(EmailMessageId.header_id, EmailMessageId.conversation_id).where(
            EmailMessageId.workspace_id == workspace_id, EmailMessageId.header_id.in_(candidates),
            EmailMessageId.conversation_id.is_not(None))).tuples().all())
        for header_id in candidates:
            if rows.get(header_id) is not None:
                return _follow_merges(session, workspace_id, rows[header_id])
    number = subject_ticket_number(parsed.subject)
    if number is not None:
        conversation_id = session.scalar(select(Conversation.id).where(
            Conversation.workspace_id == workspace_id, Conversation.number == number))
        if conversation_id is not None:
            return _follow_merges(session, workspace_id, conversation_id)
    return None


def _follow_merges(session: Session, workspace_id: int, conversation_id: int | None) -> int | None:
    seen: set[int] = set()
    while conversation_id is not None and conversation_id not in seen:
        seen.add(conversation_id)
        conversation = session.get(Conversation, conversation_id)
        if conversation is None or conversation.workspace_id != workspace_id:
            return None
        if conversation.merged_into_id is None:
            return conversation.id
        conversation_id = conversation.merged_into_id
    return conversation_id


def lookup(session: Session, workspace_id: int, header_id: str) -> EmailMessageId | None:
    return session.scalar(select(EmailMessageId).where(EmailMessageId.workspace_id == workspace_id,
                                                       EmailMessageId.header_id == normalise_id(header_id)))


def remember(session: Session, workspace_id: int, header_id: str, *, direction: str,
             conversation_id: int | None, message_id: int | None) -> EmailMessageId:
    """Record a Message-ID once; a second call returns the first row (idempotent)."""
    key = normalise_id(header_id)
    row = lookup(session, workspace_id, key)
    if row is not None:
        return row
    row = EmailMessageId(workspace_id=workspace_id, header_id=key, direction=direction,
                         conversation_id=conversation_id, message_id=message_id)
    from sqlalchemy.exc import IntegrityError

    session.add(row)
    try:
        session.flush()
    except IntegrityError:  # a concurrent transaction stored it first (PostgreSQL): start over and find it
        raise RetryTransaction("the same Message-ID was recorded concurrently") from None
    return row


def thread_ids(session: Session, conversation_id: int, limit: int = 20) -> list[str]:
    """Message-IDs of a conversation, oldest first (the first one and the newest `limit - 1`)."""
    rows = list(session.scalars(select(EmailMessageId.header_id).where(
        EmailMessageId.conversation_id == conversation_id,
        EmailMessageId.direction.in_((INBOUND, OUTBOUND))).order_by(EmailMessageId.id)))
    rows = [r for r in rows if not r.startswith("sha256:")]
    if len(rows) > limit:
        rows = [rows[0], *rows[-(limit - 1):]]
    return rows


def last_inbound_id(session: Session, conversation_id: int) -> str | None:
    return session.scalar(select(EmailMessageId.header_id).where(
        EmailMessageId.conversation_id == conversation_id, EmailMessageId.direction == INBOUND,
        ~EmailMessageId.header_id.startswith("sha256:")).order_by(EmailMessageId.id.desc()).limit(1))
