"""Rules of the conversations domain. Every write goes through here; views and channels never touch tables.

Status rules:
- a customer message re-opens a pending or solved conversation; `closed` is final, and a customer writing
  again opens a new conversation linked to the closed one (`previous_conversation_id`);
- the first public agent or assistant reply records `first_response_at` and moves `new` to `open`;
- replies are stored with an outbox row in the same transaction; the worker delivers after commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, Team, User
from otklik.accounts.service import Actor, next_conversation_number, record_audit
from otklik.conversations import routing, sla
from otklik.conversations.models import (
    PRIORITY_RANK,
    Attachment,
    AuthorKind,
    Conversation,
    ConversationTag,
    DeliveryStatus,
    Direction,
    Message,
    OutboxItem,
    OutboxStatus,
    Priority,
    Status,
)
from otklik.customers import service as customers
from otklik.customers.identities import normalise_identity
from otklik.customers.models import Customer, Identity
from otklik.platform.db import RetryTransaction, affected, utcnow
from otklik.platform.errors import Conflict, DomainError, NotFound, field_error
from otklik.platform.events import Event, after_commit
from otklik.platform.html import html_to_text, sanitize_html, text_to_html
from otklik.platform.pagination import decode_cursor, encode_cursor
from otklik.platform.search import contains_terms, is_common, match_clause, newest_matches
from otklik.platform.text import search_terms

MAX_BODY_CHARS = 100_000
MAX_TAGS = 20
CHANNELS = ("api", "widget", "email", "telegram", "vk", "whatsapp", "max", "phone", "form", "review", "viber",
            "instagram")

ALLOWED_TRANSITIONS: dict[Status, set[Status]] = {
    Status.new: {Status.open, Status.pending, Status.solved, Status.closed},
    Status.open: {Status.pending, Status.solved, Status.closed},
    Status.pending: {Status.open, Status.solved, Status.closed},
    Status.solved: {Status.open, Status.closed},
    Status.closed: set(),
}


def can_transition(current: Status, target: Status) -> bool:
    return current == target or target in ALLOWED_TRANSITIONS[current]


def status_after_customer_message(current: Status) -> Status:
    if current in (Status.pending, Status.solved):
        return Status.open
    return current


def status_after_public_reply(current: Status) -> Status:
    return Status.open if current == Status.new else current


# -- reading ------------------------------------------------------------------------------------------

def get_conversation(session: Session, actor: Actor, conversation_id: int, *, for_update: bool = False
                     ) -> Conversation:
    stmt = select(Conversation).where(Conversation.id == conversation_id,
                                      Conversation.workspace_id == actor.workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    conversation = session.scalar(stmt)
    if conversation is None:
        raise NotFound(f"conversation {conversation_id} not found")
    return conversation


def get_by_number(session: Session, actor: Actor, number: int) -> Conversation:
    conversation = session.scalar(select(Conversation).where(Conversation.workspace_id == actor.workspace_id,
                                                             Conversation.number == number))
    if conversation is None:
        raise NotFound(f"conversation #{number} not found")
    return conversation


def tags_of(session: Session, conversation_ids: Sequence[int]) -> dict[int, list[str]]:
    result: dict[int, list[str]] = {c: [] for c in conversation_ids}
    if conversation_ids:
        rows = session.execute(select(ConversationTag.conversation_id, ConversationTag.tag)
                               .where(ConversationTag.conversation_id.in_(conversation_ids))
                               .order_by(ConversationTag.tag))
        for cid, tag in rows:
            result[cid].append(tag)
    return result


@dataclass
class ConversationFilters:
    status: list[Status] = field(default_factory=list)
    assignee_id: int | None = None
    unassigned: bool = False
    team_id: int | None = None
    channel: str | None = None
    tag: str | None = None
    priority: list[Priority] = field(default_factory=list)
    customer_id: int | None = None
    created_from: dt.datetime | None = None
    created_to: dt.datetime | None = None
    q: str | None = None
    # the agent inbox's filters (issue 3)
    team_ids: list[int] | None = None  # "my team": any of these teams (an empty list matches nothing)
    category: str | None = None
    language: str | None = None
    sentiment: str | None = None
    flagged: bool = False  # urgent or negative (the assistant's signals), or urgent priority
    ids: list[int] | None = None  # e.g. the conversations that mention me
    # SLA (issue 13): a target breached; the earliest running target due before this moment
    sla_breached: bool = False
    due_before: dt.datetime | None = None
    # consumer-law deadlines (issue 14): the earliest running legal deadline before this moment (past ones too)
    legal_due_before: dt.datetime | None = None


SORTS = {
    "last_message_at": Conversation.last_message_at,
    "waiting": Conversation.last_customer_message_at,
    "created_at": Conversation.created_at,
    "priority": Conversation.priority,
    "number": Conversation.number,
    "due": Conversation.sla_due_at,  # soonest SLA due time first; conversations without one after them
}


def _cursor_value(conversation: Conversation, sort: str) -> Any:
    value = getattr(conversation, {"waiting": "last_customer_message_at"}.get(sort, sort))
    if isinstance(value, Priority):
        from otklik.conversations.models import PRIORITY_RANK

        return PRIORITY_RANK[value]
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _parse_cursor_value(sort: str, value: Any) -> Any:
    from otklik.conversations.models import RANK_PRIORITY

    if sort == "due" and value is None:
        return None  # the page ended among conversations without a due time
    try:
        if sort in ("last_message_at", "waiting", "created_at", "due"):
            return dt.datetime.fromisoformat(value)
        if sort == "priority":
            return RANK_PRIORITY[int(value)]
        return int(value)
    except (TypeError, ValueError, KeyError):
        raise field_error("cursor", "does not belong to this sort order") from None


def list_conversations(session: Session, actor: Actor, filters: ConversationFilters, *,
                       sort: str = "last_message_at", descending: bool = True, cursor: str | None = None,
                       limit: int = 25) -> tuple[list[Conversation], str | None]:
    if sort not in SORTS:
        raise field_error("sort", f"one of: {', '.join(SORTS)}")
    column = SORTS[sort]
    stmt = select(Conversation).where(
        Conversation.workspace_id == actor.workspace_id, Conversation.merged_into_id.is_(None))
    statuses = list(dict.fromkeys(s.value for s in filters.status))
    # Several statuses in an index-ordered sort (the inbox's new+open+pending by waiting time): one query
    # per status walks its (workspace, status, sort column) index in order and stops at the page size;
    # a single IN would collect and sort every matching row first (bench/inbox_page.py).
    split = len(statuses) > 1 and sort in ("waiting", "last_message_at", "priority")
    if statuses and not split:
        stmt = stmt.where(Conversation.status.in_(statuses))
    if filters.unassigned:
        stmt = stmt.where(Conversation.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        stmt = stmt.where(Conversation.assignee_id == filters.assignee_id)
    if filters.team_id is not None:
        stmt = stmt.where(Conversation.team_id == filters.team_id)
    if filters.team_ids is not None:
        stmt = stmt.where(Conversation.team_id.in_(filters.team_ids))
    if filters.ids is not None:
        stmt = stmt.where(Conversation.id.in_(filters.ids))
    if filters.category:
        stmt = stmt.where(Conversation.category == filters.category)
    if filters.language:
        stmt = stmt.where(Conversation.language == filters.language)
    if filters.sentiment:
        stmt = stmt.where(Conversation.sentiment == filters.sentiment)
    if filters.flagged:
        stmt = stmt.where(or_(Conversation.urgent.is_(True), Conversation.sentiment == "negative",
                              Conversation.priority == Priority.urgent))
    if filters.sla_breached:
        stmt = stmt.where(Conversation.sla_breached.is_(True))
    if filters.due_before is not None:
        stmt = stmt.where(Conversation.sla_due_at <= filters.due_before)
    if filters.legal_due_before is not None:
        stmt = stmt.where(Conversation.legal_due_at <= filters.legal_due_before)
    if filters.channel:
        stmt = stmt.where(Conversation.channel == filters.channel)
    if filters.priority:
        stmt = stmt.where(Conversation.priority.in_(filters.priority))
    if filters.customer_id is not None:
        stmt = stmt.where(Conversation.customer_id == filters.customer_id)
    if filters.created_from:
        stmt = stmt.where(Conversation.created_at >= filters.created_from)
    if filters.created_to:
        stmt = stmt.where(Conversation.created_at < filters.created_to)
    if filters.tag:
        stmt = stmt.where(Conversation.id.in_(select(ConversationTag.conversation_id).where(
            ConversationTag.workspace_id == actor.workspace_id, ConversationTag.tag == filters.tag.lower())))
    if filters.q:
        clause = match_clause(session, "messages", Message.id, filters.q)
        if clause is None:
            raise field_error("q", "has no searchable words")
        if is_common(session, "messages", filters.q, workspace_id=actor.workspace_id):
            # Thousands of matches: walk conversations in the requested order and test each one's
            # messages, instead of collecting every match first (SQLite; PostgreSQL's GIN plan is fine).
            like = contains_terms(Message.search_terms, filters.q)
            assert like is not None
            stmt = stmt.where(select(Message.id).where(Message.conversation_id == Conversation.id, like).exists())
        else:
            stmt = stmt.where(Conversation.id.in_(select(Message.conversation_id).where(
                Message.workspace_id == actor.workspace_id, clause)))
    if sort == "due":
        return _list_by_due(session, stmt, statuses, cursor, limit)
    if cursor:
        raw_value, last_id = decode_cursor(cursor)
        value = _parse_cursor_value(sort, raw_value)
        if descending:
            stmt = stmt.where(or_(column < value, and_(column == value, Conversation.id < last_id)))
        else:
            stmt = stmt.where(or_(column > value, and_(column == value, Conversation.id > last_id)))
    order = (column.desc(), Conversation.id.desc()) if descending else (column.asc(), Conversation.id.asc())
    if split:
        rows = [c for status in statuses for c in session.scalars(
            stmt.where(Conversation.status == status).order_by(*order).limit(limit + 1))]
        attr = {"waiting": "last_customer_message_at"}.get(sort, sort)
        rows.sort(key=lambda c: (PRIORITY_RANK[c.priority] if sort == "priority" else getattr(c, attr), c.id),
                  reverse=descending)
        rows = rows[:limit + 1]
    else:
        rows = list(session.scalars(stmt.order_by(*order).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(_cursor_value(last, sort), last.id)
    return rows[:limit], next_cursor


def _list_by_due(session: Session, stmt: Any, statuses: list[str], cursor: str | None,
                 limit: int) -> tuple[list[Conversation], str | None]:
    """«Due soonest»: conversations with a running SLA target by due time, then the rest by id. Each status walks
    its (workspace, status, sla_due_at, id) index, so a page reads about a page of rows (bench/inbox_page.py)."""
    due, last_id, phase_null = None, 0, False
    if cursor:
        raw_value, last_id = decode_cursor(cursor)
        due = _parse_cursor_value("due", raw_value)
        phase_null = due is None
    column = Conversation.sla_due_at
    parts = [stmt.where(Conversation.status == st) for st in statuses] if len(statuses) > 1 else [stmt]
    rows: list[Conversation] = []
    if not phase_null:
        timed = [p.where(column.is_not(None)) for p in parts]
        if due is not None:
            timed = [p.where(or_(column > due, and_(column == due, Conversation.id > last_id))) for p in timed]
        for part in timed:
            rows += session.scalars(part.order_by(column.asc(), Conversation.id.asc()).limit(limit + 1))
        rows.sort(key=lambda c: (c.sla_due_at, c.id))
        rows = rows[:limit + 1]
        last_id = 0
    if len(rows) <= limit:
        untimed = [p.where(column.is_(None), Conversation.id > last_id) for p in parts]
        rest: list[Conversation] = []
        for part in untimed:
            rest += session.scalars(part.order_by(Conversation.id.asc()).limit(limit + 1 - len(rows)))
        rest.sort(key=lambda c: c.id)
        rows += rest[:limit + 1 - len(rows)]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = encode_cursor(last.sla_due_at.isoformat() if last.sla_due_at else None, last.id)
    return rows[:limit], next_cursor


def list_messages(session: Session, actor: Actor, conversation_id: int, *, after_id: int | None = None,
                  limit: int = 100, include_internal: bool = True) -> tuple[list[Message], str | None]:
    get_conversation(session, actor, conversation_id)  # the workspace check; its messages share its workspace
    stmt = select(Message).where(Message.conversation_id == conversation_id)
    if not include_internal:
        stmt = stmt.where(Message.is_internal.is_(False))
    if after_id is not None:
        stmt = stmt.where(Message.id > after_id)
    rows = list(session.scalars(stmt.order_by(Message.id).limit(limit + 1)))
    next_cursor = encode_cursor(None, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def attachments_of(session: Session, message_ids: Sequence[int]) -> dict[int, list[Attachment]]:
    result: dict[int, list[Attachment]] = {m: [] for m in message_ids}
    if message_ids:
        for att in session.scalars(select(Attachment).where(Attachment.message_id.in_(message_ids))
                                   .order_by(Attachment.id)):
            assert att.message_id is not None
            result[att.message_id].append(att)
    return result


def search_messages(session: Session, actor: Actor, q: str, *, cursor: str | None = None, limit: int = 20,
                    include_internal: bool = True) -> tuple[list[Message], str | None]:
    """Messages matching every word of `q` (morphology-aware), newest first."""
    base = select(Message).where(Message.workspace_id == actor.workspace_id)
    if not include_internal:
        base = base.where(Message.is_internal.is_(False))
    before_id = decode_cursor(cursor)[1] if cursor else None
    stmt = newest_matches(session, base, "messages", Message.id, q, before_id=before_id)
    if stmt is None:
        raise field_error("q", "has no searchable words")
    rows = list(session.scalars(stmt.limit(limit + 1)))
    next_cursor = encode_cursor(None, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


# -- events -------------------------------------------------------------------------------------------

def conversation_event_data(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id, "number": conversation.number, "status": conversation.status,
        "priority": conversation.priority.value, "assignee_id": conversation.assignee_id,
        "team_id": conversation.team_id, "customer_id": conversation.customer_id,
        "channel": conversation.channel, "subject": conversation.subject, "version": conversation.version,
    }


def message_event_data(message: Message) -> dict[str, Any]:
    return {
        "id": message.id, "conversation_id": message.conversation_id, "direction": message.direction,
        "author_kind": message.author_kind, "author_user_id": message.author_user_id,
        "body_text": message.body_text, "is_internal": message.is_internal, "channel": message.channel,
        "delivery_status": message.delivery_status, "created_at": message.created_at.isoformat(),
    }


def _announce(session: Session, event_type: str, workspace_id: int, data: dict[str, Any]) -> None:
    origin = session.info.get("event_origin")
    if origin is not None:  # who caused it (an automation rule and its chain depth): loop protection above
        data = {**data, "origin": origin}
    after_commit(session, Event(event_type, workspace_id, data))


# -- writing ------------------------------------------------------------------------------------------

def _body(text: str | None, html: str | None) -> tuple[str, str]:
    if html:
        clean_html = sanitize_html(html)
        plain = text if text is not None and text.strip() else html_to_text(clean_html)
    else:
        plain = text or ""
        clean_html = text_to_html(plain)
    if len(plain) > MAX_BODY_CHARS or len(clean_html) > 4 * MAX_BODY_CHARS:
        raise field_error("text", f"a message holds at most {MAX_BODY_CHARS} characters")
    return plain, clean_html


def _claim_attachments(session: Session, workspace_id: int, message: Message, attachment_ids: Sequence[int]
                       ) -> None:
    if not attachment_ids:
        return
    wanted = list(dict.fromkeys(attachment_ids))
    found = list(session.scalars(select(Attachment).where(Attachment.workspace_id == workspace_id,
                                                          Attachment.id.in_(wanted))))
    by_id = {a.id: a for a in found}
    for i, att_id in enumerate(wanted):
        att = by_id.get(att_id)
        if att is None:
            raise field_error(f"attachment_ids.{i}", f"attachment {att_id} not found")
        if att.message_id is not None:
            raise field_error(f"attachment_ids.{i}", f"attachment {att_id} is already on a message")
        att.message_id = message.id


def _add_message(session: Session, conversation: Conversation, *, direction: Direction, author: AuthorKind,
                 author_user_id: int | None, text: str, html: str, is_internal: bool = False,
                 channel: str | None = None, channel_message_id: str | None = None,
                 delivery_status: DeliveryStatus, attachment_ids: Sequence[int] = (),
                 meta: dict[str, Any] | None = None, created_at: dt.datetime | None = None,
                 flush: bool = True) -> Message:
    """Add a message to a conversation. With `flush=False` (batches) the INSERT waits for the caller's
    flush, and the caller announces the message once it has an id."""
    now = created_at or utcnow()
    message = Message(
        workspace_id=conversation.workspace_id, conversation_id=conversation.id,
        channel=channel or conversation.channel, direction=direction.value, author_kind=author.value,
        author_user_id=author_user_id, body_text=text, body_html=html, is_internal=is_internal,
        channel_message_id=channel_message_id, delivery_status=delivery_status.value, meta=meta or {},
        search_terms=search_terms(text), created_at=now,
    )
    session.add(message)
    if flush or attachment_ids:
        session.flush()
        _claim_attachments(session, conversation.workspace_id, message, attachment_ids)
    conversation.message_count = (conversation.message_count or 0) + 1
    if not is_internal:
        conversation.last_message_at = max(conversation.last_message_at or now, now)
        conversation.last_message_preview = " ".join(text.split())[:200]
    conversation.updated_at = utcnow()
    conversation.version = (conversation.version or 0) + 1
    if flush:
        _announce(session, "message.created", conversation.workspace_id, message_event_data(message))
    return message


def _new_conversation(session: Session, workspace_id: int, *, customer_id: int, channel: str, subject: str,
                      priority: Priority = Priority.normal, language: str | None = None,
                      previous_id: int | None = None, created_at: dt.datetime | None = None) -> Conversation:
    now = created_at or utcnow()
    conversation = Conversation(
        workspace_id=workspace_id, number=next_conversation_number(session, workspace_id),
        customer_id=customer_id, channel=channel, subject=subject[:300], status=Status.new.value,
        priority=priority, language=language, previous_conversation_id=previous_id, created_at=now,
        updated_at=now, last_message_at=now, last_customer_message_at=now, version=1, message_count=0,
    )
    session.add(conversation)
    session.flush()
    return conversation


def _check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise field_error("channel", f"one of: {', '.join(CHANNELS)}")


@dataclass(frozen=True)
class InboundMessage:
    """What a channel adapter hands over, already verified and normalised."""

    channel: str
    identity_kind: str
    identity_value: str
    text: str | None = None
    html: str | None = None
    customer_name: str = ""
    identity_verified: bool = False
    channel_message_id: str | None = None
    subject: str = ""
    conversation_id: int | None = None  # a thread the channel matched (email In-Reply-To, widget session)
    attachment_ids: tuple[int, ...] = ()
    language: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    sent_at: dt.datetime | None = None


@dataclass(frozen=True)
class Received:
    conversation: Conversation
    message: Message
    duplicate: bool
    new_conversation: bool


@dataclass
class _Prepared:
    inbound: InboundMessage
    text: str
    html: str
    kind: str
    identity: str


def _prepare(inbound: InboundMessage) -> _Prepared:
    _check_channel(inbound.channel)
    text, html = _body(inbound.text, inbound.html)
    if not text.strip() and not inbound.attachment_ids:
        raise field_error("text", "a message needs text or an attachment")
    if inbound.channel_message_id is not None and len(inbound.channel_message_id) > 200:
        raise field_error("channel_message_id", "at most 200 characters")
    kind, value = normalise_identity(inbound.identity_kind, inbound.identity_value, field="identity")
    return _Prepared(inbound, text, html, kind.value, value)


def _race_guard(session: Session) -> AbstractContextManager[object]:
    """A savepoint where concurrent transactions can race on a unique key (PostgreSQL). SQLite runs one
    write transaction at a time (BEGIN IMMEDIATE), so no race is possible and the savepoint is skipped."""
    if session.get_bind().dialect.name == "sqlite":
        return nullcontext()
    return session.begin_nested()


def _stored_duplicates(session: Session, workspace_id: int, items: Sequence[_Prepared]) -> dict[tuple[str, str], Message]:
    ids = list({p.inbound.channel_message_id for p in items if p.inbound.channel_message_id})
    if not ids:
        return {}
    found = session.scalars(select(Message).where(Message.workspace_id == workspace_id,
                                                  Message.channel_message_id.in_(ids)))
    return {(m.channel, m.channel_message_id): m for m in found if m.channel_message_id}


def _customers_for(session: Session, workspace_id: int, items: Sequence[_Prepared]) -> dict[tuple[str, str], Customer]:
    """The customer behind each identity (one query for the batch), created on first contact."""
    values = list({p.identity for p in items})
    rows = session.execute(select(Identity.kind, Identity.external_id, Customer)
                           .join(Customer, Customer.id == Identity.customer_id)
                           .where(Identity.workspace_id == workspace_id, Identity.external_id.in_(values)))
    result: dict[tuple[str, str], Customer] = {}
    for kind, value, customer in rows:
        while customer.merged_into_id is not None:  # a tombstone left by a merge
            target = session.get(Customer, customer.merged_into_id)
            if target is None:
                break
            customer = target
        result[(kind, value)] = customer
    for p in items:
        key = (p.kind, p.identity)
        if key in result:
            continue
        try:
            with _race_guard(session):
                result[key], _ = customers.resolve_or_create(
                    session, workspace_id, kind=p.kind, external_id=p.identity, name=p.inbound.customer_name,
                    verified=p.inbound.identity_verified, language=p.inbound.language)
        except IntegrityError:  # the same new person wrote twice at once: the other transaction created them
            result[key], _ = customers.resolve_or_create(session, workspace_id, kind=p.kind, external_id=p.identity)
    return result


def _latest_conversations(session: Session, workspace_id: int, customer_ids: Sequence[int]
                          ) -> dict[tuple[int, str], Conversation]:
    """Per (customer, channel): the newest conversation not merged away, row-locked in id order."""
    rows = session.scalars(select(Conversation).where(
        Conversation.workspace_id == workspace_id, Conversation.customer_id.in_(list(set(customer_ids))),
        Conversation.merged_into_id.is_(None)).order_by(Conversation.id).with_for_update())
    return {(c.customer_id, c.channel): c for c in rows}


def receive(session: Session, workspace_id: int, inbound: InboundMessage) -> Received:
    """Store one inbound customer message: resolve the customer, find or open the conversation, de-duplicate.

    Idempotent on (channel, channel_message_id): a vendor's retry returns the stored message, unchanged.
    """
    return receive_many(session, workspace_id, [inbound])[0]


def receive_many(session: Session, workspace_id: int, inbounds: Sequence[InboundMessage]) -> list[Received]:
    """`receive` for many messages in one transaction, in order, with a handful of queries for the batch.

    A validation error names the message's index (`messages.3.text`) when there is more than one.
    """
    prepared = []
    for i, inbound in enumerate(inbounds):
        try:
            prepared.append(_prepare(inbound))
        except DomainError as exc:
            if len(inbounds) > 1:
                exc.fields = [{"field": f"messages.{i}.{f['field']}", "message": f["message"]}
                              for f in exc.fields] or [{"field": f"messages.{i}", "message": exc.message}]
                exc.message = f"messages.{i}: {exc.message}"
            raise
    seen = _stored_duplicates(session, workspace_id, prepared)
    if all(p.inbound.channel_message_id and (p.inbound.channel, p.inbound.channel_message_id) in seen
           for p in prepared):  # a pure retry: answer without touching anything else
        return [_duplicate(session, seen[(p.inbound.channel, p.inbound.channel_message_id or "")])
                for p in prepared]
    people = _customers_for(session, workspace_id, [p for p in prepared if
                                                    (p.inbound.channel, p.inbound.channel_message_id) not in seen])
    latest = _latest_conversations(session, workspace_id, [c.id for c in people.values()])
    system = Actor.system(workspace_id, kind="customer")
    results: list[Received] = []
    reopened: set[int] = set()  # a customer's message changed the status (solved/pending -> open)
    try:
        for p in prepared:
            inbound = p.inbound
            dup_key = (inbound.channel, inbound.channel_message_id or "")
            if inbound.channel_message_id and dup_key in seen:
                results.append(_duplicate(session, seen[dup_key]))
                continue
            customer = people[(p.kind, p.identity)]
            conversation = None
            if inbound.conversation_id is not None:
                conversation = session.scalar(select(Conversation).where(
                    Conversation.id == inbound.conversation_id, Conversation.workspace_id == workspace_id,
                    Conversation.customer_id == customer.id).with_for_update())
            if conversation is None:
                conversation = latest.get((customer.id, inbound.channel))
            while conversation is not None and conversation.merged_into_id is not None:
                conversation = session.get(Conversation, conversation.merged_into_id)
            new_conversation = False
            if conversation is None or conversation.status == Status.closed.value:
                conversation = _new_conversation(
                    session, workspace_id, customer_id=customer.id, channel=inbound.channel,
                    subject=inbound.subject or " ".join(p.text.split())[:80],
                    language=inbound.language or customer.language,
                    previous_id=conversation.id if conversation is not None else None, created_at=inbound.sent_at)
                latest[(customer.id, inbound.channel)] = conversation
                new_conversation = True
            before_status = conversation.status
            message = _add_message(session, conversation, direction=Direction.inbound, author=AuthorKind.customer,
                                   author_user_id=None, text=p.text, html=p.html, channel=inbound.channel,
                                   channel_message_id=inbound.channel_message_id,
                                   delivery_status=DeliveryStatus.received, attachment_ids=inbound.attachment_ids,
                                   meta=inbound.meta, created_at=inbound.sent_at, flush=False)
            if inbound.channel_message_id:
                seen[dup_key] = message
            conversation.last_customer_message_at = message.created_at
            conversation.status = status_after_customer_message(Status(before_status)).value
            if before_status == Status.solved.value and conversation.status != Status.solved.value:
                conversation.solved_at = None
            was_waiting = conversation.waiting_since is not None
            if not was_waiting:
                conversation.waiting_since = message.created_at
            sla.on_customer_message(session, conversation, message.created_at, was_waiting=was_waiting,
                                    new_conversation=new_conversation)
            if new_conversation:
                record_audit(session, system, entity_type="conversation", entity_id=conversation.id,
                             action="created", after={"channel": conversation.channel,
                                                      "previous_conversation_id": conversation.previous_conversation_id})
            elif before_status != conversation.status:
                record_audit(session, system, entity_type="conversation", entity_id=conversation.id,
                             action="status_changed", before={"status": before_status},
                             after={"status": conversation.status}, note="customer wrote again")
                reopened.add(conversation.id)
            results.append(Received(conversation, message, duplicate=False, new_conversation=new_conversation))
        session.flush()  # every message of the batch in one multi-row INSERT
    except IntegrityError:
        # A concurrent transaction stored one of these vendor messages first (PostgreSQL): start over, and
        # the retry will find it as a duplicate.
        raise RetryTransaction("a concurrent delivery of the same message won the race") from None
    announced: set[int] = set()
    for result in results:
        if result.duplicate:
            continue
        _announce(session, "message.created", workspace_id, message_event_data(result.message))
        conv = result.conversation
        if conv.id not in announced:
            announced.add(conv.id)
            data = conversation_event_data(conv)
            if conv.id in reopened:
                data["changed"] = ["status"]  # what an «on status change» automation rule reacts to
            _announce(session, "conversation.created" if result.new_conversation else "conversation.updated",
                      workspace_id, data)
    return results


def _duplicate(session: Session, message: Message) -> Received:
    conversation = session.get(Conversation, message.conversation_id)
    assert conversation is not None
    return Received(conversation, message, duplicate=True, new_conversation=False)


def create_conversation(session: Session, actor: Actor, *, customer_id: int, channel: str, subject: str = "",
                        priority: Priority = Priority.normal, assignee_id: int | None = None,
                        team_id: int | None = None, tags: Sequence[str] = ()) -> Conversation:
    """An agent opens a conversation with a customer (outbound), e.g. after a phone call."""
    _check_channel(channel)
    customer = customers.get_customer(session, actor, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(f"customer {customer_id} was merged into {customer.merged_into_id}", code="merged")
    conversation = _new_conversation(session, actor.workspace_id, customer_id=customer.id, channel=channel,
                                     subject=subject, priority=priority, language=customer.language)
    conversation.status = Status.open.value
    if assignee_id is not None:
        _check_assignee(session, actor, assignee_id)
        conversation.assignee_id = assignee_id
        routing.note_transfer(conversation, None, assignee_id, utcnow())
    if team_id is not None:
        _check_team(session, actor, team_id)
        conversation.team_id = team_id
    if tags:
        _set_tags(session, conversation, tags)
    if conversation.team_id is not None and conversation.assignee_id is None:
        session.flush()
        routing.assign(session, conversation, actor=actor)  # same transaction: the team auto-assigns
    record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="created",
                 after=conversation_event_data(conversation))
    _announce(session, "conversation.created", actor.workspace_id, conversation_event_data(conversation))
    return conversation


# (session, conversation, names of the fields a change moved): called in the change's transaction
ChangeHook = Callable[[Session, Conversation, frozenset[str]], None]
_change_hooks: list[ChangeHook] = []


def register_change_hook(hook: ChangeHook) -> None:
    if hook not in _change_hooks:
        _change_hooks.append(hook)


def reply(session: Session, actor: Actor, conversation_id: int, *, text: str | None = None,
          html: str | None = None, is_internal: bool = False, attachment_ids: Sequence[int] = (),
          author: AuthorKind = AuthorKind.agent, channel: str | None = None,
          meta: dict[str, Any] | None = None, history: bool = False,
          sent_at: dt.datetime | None = None, acknowledge: Sequence[str] = (),
          path: str | None = None) -> Message:
    """An agent's or the assistant's reply (or internal note). Public replies get an outbox row, same commit.

    A channel's reply check (`reply_checks`, e.g. WhatsApp's 24-hour window) may refuse a public reply (409);
    `meta` carries channel specifics such as an approved WhatsApp template. `history=True` records a reply that
    was already sent elsewhere (an import, the demo's past): no channel check, no outbox row, status sent, and
    `sent_at` says when (so waiting time and SLA timers count the real history).

    Every public reply also passes the content checks (`reply_checks.register_content`: «never» phrases, an
    overdue legal deadline...): a 409 names the first problem; `acknowledge` lists the codes of "confirm"
    problems the sender saw and chose to send anyway (recorded in the message's meta as `acknowledged`); `path`
    says which way the reply left (ui, api, macro, rule, assistant) for the checks and the record."""
    if sent_at is not None and not history:
        raise field_error("sent_at", "only a reply recorded as history has its own time")
    conversation = get_conversation(session, actor, conversation_id, for_update=True)
    if conversation.merged_into_id is not None:
        raise Conflict(f"conversation {conversation_id} was merged into {conversation.merged_into_id}",
                       code="merged")
    if conversation.status == Status.closed.value and not is_internal:
        raise Conflict("a closed conversation takes no replies; open a new one with the customer", code="closed")
    plain, clean_html = _body(text, html)
    if not plain.strip() and not attachment_ids:
        raise field_error("text", "a reply needs text or an attachment")
    if channel is not None:
        _check_channel(channel)
    if not is_internal and not history:
        from otklik.conversations import reply_checks
        from otklik.conversations.templates import VARIABLE

        # a template's {{variable}} left unfilled never reaches a customer, whichever path the reply takes (the
        # UI, the API, a macro, a rule, the assistant)
        unfilled = sorted({m.group(1) for m in VARIABLE.finditer(plain)})
        if unfilled:
            raise Conflict(f"fill in the template variables first: {', '.join(unfilled)}",
                           code="unresolved_variables",
                           fields=[{"field": "text", "message": "unfilled: " + ", ".join(unfilled)}])
        reply_checks.ensure_can_reply(session, conversation, channel=channel, meta=meta)
        if attachment_ids:  # what the channel cannot carry is refused here, not by the vendor after queuing
            files = {a.id: a for a in session.scalars(select(Attachment).where(
                Attachment.workspace_id == conversation.workspace_id, Attachment.id.in_(list(attachment_ids))))}
            reply_checks.check_files(channel or conversation.channel, [
                (files[i].filename, files[i].content_type, files[i].size)
                for i in dict.fromkeys(attachment_ids) if i in files])
        passed = reply_checks.ensure_content_ok(
            session, conversation, plain, acknowledged=acknowledge,
            context={"author": author.value, "meta": meta or {}, "path": path})
        acknowledged = sorted({p.code for p in passed if p.severity == "confirm"})
        if acknowledged:
            meta = {**(meta or {}), "acknowledged": acknowledged}
    status = DeliveryStatus.not_sent if is_internal else DeliveryStatus.sent if history else DeliveryStatus.queued
    message = _add_message(
        session, conversation, direction=Direction.outbound, author=author, author_user_id=actor.user_id,
        text=plain, html=clean_html, is_internal=is_internal, channel=channel, delivery_status=status,
        attachment_ids=attachment_ids, meta=meta, created_at=sent_at)
    if not is_internal:
        if author == AuthorKind.agent:
            # only a person answers: the assistant's messages never count as a first response or end a wait
            # (docs/service-levels.md, «Waiting time»)
            if conversation.first_response_at is None:
                conversation.first_response_at = message.created_at
            conversation.waiting_since = None
            conversation.assistant_answered_at = None
            sla.on_agent_reply(session, conversation, message.created_at)
        elif author == AuthorKind.assistant and conversation.waiting_since is not None:
            conversation.assistant_answered_at = message.created_at
        before = conversation.status
        conversation.status = status_after_public_reply(Status(before)).value
        if actor.user_id is not None and conversation.assignee_id is None and author == AuthorKind.agent:
            conversation.assignee_id = actor.user_id  # whoever answers first owns it
            routing.note_transfer(conversation, None, actor.user_id, message.created_at)
            record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                         action="assigned", before={"assignee_id": None}, after={"assignee_id": actor.user_id},
                         note="assigned on first reply")
        if history:
            if before != conversation.status:
                _announce(session, "conversation.updated", actor.workspace_id, conversation_event_data(conversation))
            return message
        item = OutboxItem(workspace_id=actor.workspace_id, message_id=message.id, channel=message.channel,
                          status=OutboxStatus.pending.value, idempotency_key=uuid.uuid4().hex,
                          next_attempt_at=utcnow())
        session.add(item)
        session.flush()
        from otklik.conversations import outbox

        outbox.enqueue_after_commit(session, item.id)
        if before != conversation.status:
            _announce(session, "conversation.updated", actor.workspace_id, conversation_event_data(conversation))
    return message


def _check_assignee(session: Session, actor: Actor, user_id: int) -> None:
    user = session.get(User, user_id)
    if user is None or user.workspace_id != actor.workspace_id:
        raise field_error("assignee_id", f"user {user_id} not found")
    if not user.is_active:
        raise field_error("assignee_id", f"user {user_id} is deactivated")


def _check_team(session: Session, actor: Actor, team_id: int) -> None:
    team = session.get(Team, team_id)
    if team is None or team.workspace_id != actor.workspace_id:
        raise field_error("team_id", f"team {team_id} not found")


def _normalise_tags(tags: Sequence[str]) -> list[str]:
    clean = []
    for i, tag in enumerate(tags):
        t = " ".join(str(tag).split()).lower()
        if not t or len(t) > 48:
            raise field_error(f"tags.{i}", "a tag has 1-48 characters")
        if t not in clean:
            clean.append(t)
    if len(clean) > MAX_TAGS:
        raise field_error("tags", f"at most {MAX_TAGS} tags")
    return clean


def _set_tags(session: Session, conversation: Conversation, tags: Sequence[str]) -> list[str]:
    clean = _normalise_tags(tags)
    session.execute(delete(ConversationTag).where(ConversationTag.conversation_id == conversation.id))
    session.add_all(ConversationTag(conversation_id=conversation.id, tag=t, workspace_id=conversation.workspace_id)
                    for t in clean)
    return clean


UPDATABLE = {"status", "priority", "assignee_id", "team_id", "category", "language", "subject", "tags"}


def update_conversation(session: Session, actor: Actor, conversation_id: int, changes: dict[str, Any], *,
                        expected_version: int | None = None, at: dt.datetime | None = None) -> Conversation:
    """Change fields of a conversation; each change is audited. `expected_version` guards lost updates. `at`
    (imports and the demo's history only): when the change happened, for solved times and SLA timers."""
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise field_error(sorted(unknown)[0], "cannot be changed here")
    conversation = get_conversation(session, actor, conversation_id, for_update=True)
    if expected_version is not None and expected_version != conversation.version:
        raise Conflict(f"conversation changed meanwhile (version {conversation.version}, you had "
                       f"{expected_version}); reload and try again", code="stale")
    if conversation.merged_into_id is not None:
        raise Conflict(f"conversation {conversation_id} was merged into {conversation.merged_into_id}",
                       code="merged")
    changed: dict[str, tuple[Any, Any]] = {}
    now = at or utcnow()
    if changes.keys() & {"status", "assignee_id", "team_id"}:
        routing.lock_teams_for(session, conversation)  # team rows before agents' rows (routing's lock order)
    freed = conversation.assignee_id
    if "status" in changes:
        target = Status(changes["status"])
        current = Status(conversation.status)
        if not can_transition(current, target):
            raise Conflict(f"cannot change status from {current.value} to {target.value}", code="transition",
                           fields=[{"field": "status", "message": f"not allowed from {current.value}"}])
        if target != current:
            conversation.status = target.value
            if target == Status.solved:
                conversation.solved_at = now
            elif target == Status.closed:
                conversation.closed_at = now
                conversation.solved_at = conversation.solved_at or now
            else:
                conversation.solved_at = None
            changed["status"] = (current.value, target.value)
    if "priority" in changes:
        prio = Priority(changes["priority"])
        if prio != conversation.priority:
            changed["priority"] = (conversation.priority.value, prio.value)
            conversation.priority = prio
    if "assignee_id" in changes:
        assignee = changes["assignee_id"]
        if assignee is not None:
            _check_assignee(session, actor, assignee)
            if assignee != actor.user_id:
                actor.require(Role.agent)
        if assignee != conversation.assignee_id:
            changed["assignee_id"] = (conversation.assignee_id, assignee)
            routing.note_transfer(conversation, conversation.assignee_id, assignee, now)
            conversation.assignee_id = assignee
    if "team_id" in changes:
        team = changes["team_id"]
        if team is not None:
            _check_team(session, actor, team)
        if team != conversation.team_id:
            changed["team_id"] = (conversation.team_id, team)
            conversation.team_id = team
    for key, limit in (("category", 64), ("language", 8), ("subject", 300)):
        if key in changes:
            value = changes[key]
            if key == "subject" and value is None:
                value = ""
            if value is not None and len(value) > limit:
                raise field_error(key, f"at most {limit} characters")
            if value != getattr(conversation, key):
                changed[key] = (getattr(conversation, key), value)
                setattr(conversation, key, value)
    if "tags" in changes:
        before_tags = tags_of(session, [conversation.id])[conversation.id]
        after_tags = _set_tags(session, conversation, changes["tags"] or [])
        if sorted(before_tags) != sorted(after_tags):
            changed["tags"] = (before_tags, after_tags)
    if "status" in changed:
        sla.on_status(session, conversation, changed["status"][0], changed["status"][1], now)
        if conversation.status in (Status.solved.value, Status.closed.value):
            conversation.waiting_since = conversation.assistant_answered_at = None
    if changed.keys() & {"priority", "team_id", "category", "language"}:
        sla.reevaluate(session, actor, conversation, now, reason="changed: " + ", ".join(
            sorted(changed.keys() & {"priority", "team_id", "category", "language"})))
    if changed:
        for hook in list(_change_hooks):  # domains above (the legal deadlines) follow a changed contact reason
            hook(session, conversation, frozenset(changed))
    if changed:
        conversation.version += 1
        conversation.updated_at = now
        for key, (old, new) in changed.items():
            action = {"status": "status_changed", "assignee_id": "assigned", "team_id": "team_changed"}.get(
                key, f"{key}_changed")
            record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action=action,
                         before={key: old}, after={key: new})
        data = {**conversation_event_data(conversation), "changed": sorted(changed)}
        if "tags" in changed:
            data["tags_added"] = sorted(set(changed["tags"][1]) - set(changed["tags"][0]))
        _announce(session, "conversation.updated", actor.workspace_id, data)
    if changed.keys() & {"status", "assignee_id", "team_id"}:
        _route_after_change(session, actor, conversation, freed)
    return conversation


def _route_after_change(session: Session, actor: Actor, conversation: Conversation, before: int | None) -> None:
    """In the change's transaction: an unassigned conversation of an auto-assigning team gets an agent; an agent
    whose conversation was solved, closed or handed on has room again, so their teams' queues move."""
    if conversation.assignee_id is None and conversation.team_id is not None:
        routing.assign(session, conversation, actor=actor)
    if before is not None and (conversation.assignee_id != before
                               or conversation.status in (Status.solved.value, Status.closed.value)):
        routing.drain(session, routing.teams_of(session, [before]))


def merge_conversations(session: Session, actor: Actor, *, target_id: int, source_id: int) -> Conversation:
    """Move every message of `source` into `target`; `source` is closed and points at `target`."""
    if target_id == source_id:
        raise field_error("source_id", "cannot merge a conversation into itself")
    target = get_conversation(session, actor, target_id, for_update=True)
    source = get_conversation(session, actor, source_id, for_update=True)
    for conv in (target, source):
        if conv.merged_into_id is not None:
            raise Conflict(f"conversation {conv.id} was already merged into {conv.merged_into_id}", code="merged")
    if target.status == Status.closed.value:
        raise Conflict("cannot merge into a closed conversation", code="closed")
    moved = affected(session.execute(update(Message).where(Message.conversation_id == source.id)
                            .values(conversation_id=target.id)))
    target.message_count += source.message_count
    source.message_count = 0
    target.last_message_at = max(target.last_message_at, source.last_message_at)
    target.last_customer_message_at = max(target.last_customer_message_at, source.last_customer_message_at)
    if source.first_response_at and (target.first_response_at is None
                                     or source.first_response_at < target.first_response_at):
        target.first_response_at = source.first_response_at
    target.created_at = min(target.created_at, source.created_at)
    waits = [w for w in (target.waiting_since, source.waiting_since) if w is not None]
    target.waiting_since = min(waits) if waits else None
    source.waiting_since = source.assistant_answered_at = None
    sla.stop_all(session, source, utcnow())  # its timers no longer apply; the target's keep counting
    merged_tags = tags_of(session, [target.id, source.id])
    _set_tags(session, target, merged_tags[target.id] + merged_tags[source.id])
    before_status = source.status
    source.merged_into_id = target.id
    source.status = Status.closed.value
    source.closed_at = utcnow()
    target.version += 1
    source.version += 1
    target.updated_at = source.updated_at = utcnow()
    note = f"merged conversation #{source.number} into #{target.number}"
    _add_message(session, target, direction=Direction.outbound, author=AuthorKind.system, author_user_id=actor.user_id,
                 text=note, html=text_to_html(note), is_internal=True, delivery_status=DeliveryStatus.not_sent)
    record_audit(session, actor, entity_type="conversation", entity_id=target.id, action="merged",
                 before={"source_id": source.id}, after={"moved_messages": moved})
    record_audit(session, actor, entity_type="conversation", entity_id=source.id, action="merged_into",
                 before={"status": before_status}, after={"target_id": target.id, "status": "closed"})
    _announce(session, "conversation.updated", actor.workspace_id, conversation_event_data(target))
    _announce(session, "conversation.updated", actor.workspace_id, conversation_event_data(source))
    if source.assignee_id is not None:  # the closed source frees a slot
        routing.drain(session, routing.teams_of(session, [source.assignee_id]))
    return target


def _move_customer_conversations(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    return affected(session.execute(update(Conversation).where(Conversation.workspace_id == workspace_id,
                                                      Conversation.customer_id == source_id)
                           .values(customer_id=target_id)))


customers.register_merge_mover("conversations", _move_customer_conversations)


def customer_names(session: Session, customer_ids: Sequence[int]) -> dict[int, str]:
    if not customer_ids:
        return {}
    return {cid: name for cid, name in session.execute(
        select(Customer.id, Customer.name).where(Customer.id.in_(customer_ids)))}


__all__ = ["Customer", "InboundMessage", "Received", "create_conversation", "get_conversation", "receive",
           "reply", "update_conversation"]
