"""The agent's view of the inbox: read markers, unread counts per view, @mentions, saved filters, wait targets.

Per-user state only: it never changes a conversation itself (service.py does) and never sends anything.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import TeamMember, User
from otklik.accounts.service import Actor
from otklik.conversations.models import Conversation, Message, Priority, Status
from otklik.conversations.service import ConversationFilters, get_conversation
from otklik.platform.db import Base, UTCDateTime, aware, utcnow
from otklik.platform.errors import Conflict, NotFound, field_error

ACTIVE = [Status.new, Status.open, Status.pending]
VIEWS = ("mine", "unassigned", "team", "all", "mentions")
MAX_SAVED_VIEWS = 50

# How long a customer may wait for an answer before the row turns red, by priority (seconds). A workspace's
# SLA policy, when one exists, is the better source; these are the defaults shown until then.
WAIT_TARGET_SECONDS = {Priority.urgent: 3600, Priority.high: 4 * 3600, Priority.normal: 8 * 3600,
                       Priority.low: 24 * 3600}
NEAR_TARGET = 0.75  # amber from three quarters of the target


class ConversationRead(Base):
    """Up to which moment a user has seen a conversation (unread = a customer message after it)."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"),
                                                 primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    read_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Mention(Base):
    """An internal note naming a user with @name: it shows in that user's Mentions view until seen."""

    __tablename__ = "conversation_mentions"
    __table_args__ = (UniqueConstraint("message_id", "user_id"),
                      Index("ix_mentions_user_seen", "user_id", "seen_at", "id"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    seen_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class SavedView(Base):
    """A user's named inbox filter (the query string of the inbox page)."""

    __tablename__ = "saved_views"
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(80))
    query: Mapped[str] = mapped_column(String(1000))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- views ---------------------------------------------------------------------------------------------

def team_ids_of(session: Session, actor: Actor) -> list[int]:
    return list(session.scalars(select(TeamMember.team_id).where(
        TeamMember.workspace_id == actor.workspace_id, TeamMember.user_id == actor.user_id)))


def mentioned_conversation_ids(session: Session, actor: Actor, *, limit: int = 500) -> list[int]:
    """Conversations where someone mentioned me, most recent mention first (seen or not)."""
    rows = session.execute(select(Mention.conversation_id, func.max(Mention.id).label("last"))
                           .where(Mention.user_id == actor.user_id, Mention.workspace_id == actor.workspace_id)
                           .group_by(Mention.conversation_id).order_by(func.max(Mention.id).desc()).limit(limit))
    return [r[0] for r in rows]


def view_filters(session: Session, actor: Actor, view: str, base: ConversationFilters,
                 team_ids: list[int] | None = None) -> ConversationFilters:
    """The filters of a view (Mine / Unassigned / My team / All / Mentions) on top of the user's own."""
    if view not in VIEWS:
        raise field_error("view", f"one of: {', '.join(VIEWS)}")
    filters = ConversationFilters(**{k: getattr(base, k) for k in base.__dataclass_fields__})
    if view == "mine":
        filters.assignee_id, filters.unassigned = actor.user_id, False
    elif view == "unassigned":
        filters.unassigned, filters.assignee_id = True, None
    elif view == "team":
        filters.team_ids = team_ids if team_ids is not None else team_ids_of(session, actor)
    elif view == "mentions":
        filters.ids = mentioned_conversation_ids(session, actor)
    return filters


def _view_clause(actor: Actor, view: str, team_ids: list[int]) -> Any:
    if view == "mine":
        return Conversation.assignee_id == actor.user_id
    if view == "unassigned":
        return Conversation.assignee_id.is_(None)
    if view == "team":
        return Conversation.team_id.in_(team_ids)
    return None


COUNT_CAP = 1000  # the page shows "999+" past this, so counting further is wasted work


def unread_counts(session: Session, actor: Actor, team_ids: list[int]) -> dict[str, int]:
    """Per view: open conversations (new/open/pending) with a customer message I have not seen.

    Counted as (all in the view) minus (those I read after their last customer message). The first walks a
    (workspace, [assignee | team,] status) index and stops at COUNT_CAP + seen; the second walks only my
    own read markers (EXISTS keeps them the driving table), so a page stays cheap at 100k conversations.
    """
    active = [s.value for s in ACTIVE]
    counts: dict[str, int] = {}
    for view in ("mine", "unassigned", "team", "all"):
        if view == "team" and not team_ids:
            counts[view] = 0
            continue
        clause = _view_clause(actor, view, team_ids)
        fresh = select(Conversation.id).where(
            Conversation.id == ConversationRead.conversation_id, Conversation.workspace_id == actor.workspace_id,
            Conversation.status.in_(active), Conversation.last_customer_message_at <= ConversationRead.read_at)
        if clause is not None:
            fresh = fresh.where(clause)
        seen = session.scalar(select(func.count()).select_from(ConversationRead).where(
            ConversationRead.user_id == actor.user_id, fresh.exists())) or 0
        # No `merged_into_id IS NULL` here: a merged conversation is closed, and leaving it out keeps the
        # count inside the (workspace, status…) indexes instead of visiting every active row.
        in_view = select(Conversation.id).where(
            Conversation.workspace_id == actor.workspace_id, Conversation.status.in_(active))
        if clause is not None:
            in_view = in_view.where(clause)
        total = session.scalar(select(func.count()).select_from(
            in_view.limit(COUNT_CAP + seen).subquery())) or 0
        counts[view] = max(0, total - seen)
    counts["mentions"] = session.scalar(
        select(func.count(func.distinct(Mention.conversation_id))).where(
            Mention.user_id == actor.user_id, Mention.workspace_id == actor.workspace_id,
            Mention.seen_at.is_(None))) or 0
    return counts


def unread_ids(session: Session, actor: Actor, conversations: Sequence[Conversation]) -> set[int]:
    """Which of these conversations have a customer message I have not seen."""
    if not conversations:
        return set()
    rows = session.execute(select(ConversationRead.conversation_id, ConversationRead.read_at).where(
        ConversationRead.user_id == actor.user_id,
        ConversationRead.conversation_id.in_([c.id for c in conversations])))
    read = {conversation_id: read_at for conversation_id, read_at in rows}
    return {c.id for c in conversations
            if c.id not in read or read[c.id] < c.last_customer_message_at}


def mark_read(session: Session, actor: Actor, conversation_id: int) -> None:
    """I have seen everything in this conversation up to now; my mentions in it are seen too."""
    if actor.user_id is None:
        return
    conversation = get_conversation(session, actor, conversation_id)
    now = utcnow()
    marker = session.get(ConversationRead, (actor.user_id, conversation.id))
    if marker is None:
        try:
            with session.begin_nested():
                session.add(ConversationRead(user_id=actor.user_id, conversation_id=conversation.id,
                                             workspace_id=actor.workspace_id, read_at=now))
        except IntegrityError:  # the same user opened it twice at once: the other insert won
            session.execute(update(ConversationRead).where(
                ConversationRead.user_id == actor.user_id,
                ConversationRead.conversation_id == conversation.id).values(read_at=now))
    else:
        marker.read_at = now
    session.execute(update(Mention).where(Mention.user_id == actor.user_id,
                                          Mention.conversation_id == conversation.id,
                                          Mention.seen_at.is_(None)).values(seen_at=now))


# The assistant answered and the customer has said nothing since for this long: nobody waits any more
# (docs/service-levels.md, «Waiting time»). A customer message after the answer starts waiting again.
ASSISTANT_SILENCE_SECONDS = 30 * 60


def wait_state(conversation: Conversation, now: dt.datetime | None = None) -> tuple[int | None, str]:
    """(seconds the customer has waited for a person, 'ok' | 'near' | 'over' | 'bot'); None when nobody waits.

    Waiting starts at the first customer message no person has answered (`waiting_since`) and ends with a
    person's public reply. A bot message never ends it: a conversation the assistant handed off waits from the
    customer's message; one the assistant answered shows 'bot' and stops waiting once the customer has been
    silent for ASSISTANT_SILENCE_SECONDS. Colours: the SLA's due time when a target runs, else fixed targets."""
    if conversation.status not in (Status.new.value, Status.open.value) or conversation.waiting_since is None:
        return None, "ok"
    now = now or utcnow()
    since = aware(conversation.waiting_since)
    answered = conversation.assistant_answered_at
    if answered is not None and aware(answered) >= since:
        if (now - aware(answered)).total_seconds() >= ASSISTANT_SILENCE_SECONDS:
            return None, "ok"
        return max(int((now - since).total_seconds()), 0), "bot"
    waited = max(int((now - since).total_seconds()), 0)
    if conversation.sla_due_at is not None:
        return waited, sla_colour(conversation, now)
    target = WAIT_TARGET_SECONDS[conversation.priority]
    state = "over" if waited >= target else "near" if waited >= target * NEAR_TARGET else "ok"
    return waited, state


def sla_colour(conversation: Conversation, now: dt.datetime) -> str:
    """'over' past the earliest due time, 'near' in its last quarter (of the time from the wait's start), else
    'ok'."""
    due = conversation.sla_due_at
    if due is None:
        return "ok"
    due = aware(due)
    left = (due - now).total_seconds()
    if left <= 0:
        return "over"
    start = aware(conversation.waiting_since or conversation.created_at)
    span = max((due - start).total_seconds(), 1.0)
    return "near" if left / span <= 1 - NEAR_TARGET else "ok"


# -- mentions ------------------------------------------------------------------------------------------

_MENTION = re.compile(r"(?<![\w@])@([\w.\-]+(?:[ \t][\w.\-]+)?)", re.UNICODE)


def mentioned_users(session: Session, actor: Actor, text: str) -> list[User]:
    """Users named in a note as @Имя, @"Имя Фамилия" written as @Имя Фамилия, or @email-local-part."""
    if "@" not in text:
        return []
    tokens = {m.group(1).lower() for m in _MENTION.finditer(text)}
    if not tokens:
        return []
    words = {t.split()[0] for t in tokens} | tokens
    users = list(session.scalars(select(User).where(User.workspace_id == actor.workspace_id,
                                                    User.is_active.is_(True))))
    first_names: dict[str, list[User]] = {}
    for user in users:
        first = (user.name.split() or [""])[0].lower()
        first_names.setdefault(first, []).append(user)
    found: dict[int, User] = {}
    for user in users:
        full = " ".join(user.name.split()).lower()
        local = user.email.split("@", 1)[0].lower()
        first = (user.name.split() or [""])[0].lower()
        if full in tokens or local in words or (first in words and len(first_names[first]) == 1):
            found[user.id] = user
    return list(found.values())


def record_mentions(session: Session, actor: Actor, message: Message) -> list[int]:
    """Store a mention for each user an internal note names (never the author); returns their ids."""
    if not message.is_internal:
        return []
    ids = [u.id for u in mentioned_users(session, actor, message.body_text) if u.id != message.author_user_id]
    for user_id in ids:
        session.add(Mention(workspace_id=message.workspace_id, user_id=user_id,
                            conversation_id=message.conversation_id, message_id=message.id))
    if ids:
        session.flush()
    return ids


# -- saved filters -------------------------------------------------------------------------------------

def list_saved_views(session: Session, actor: Actor) -> list[SavedView]:
    return list(session.scalars(select(SavedView).where(
        SavedView.workspace_id == actor.workspace_id, SavedView.user_id == actor.user_id).order_by(SavedView.name)))


def save_view(session: Session, actor: Actor, *, name: str, query: str) -> SavedView:
    name = " ".join(name.split())
    if not 1 <= len(name) <= 80:
        raise field_error("name", "a saved filter's name has 1-80 characters")
    if len(query) > 1000:
        raise field_error("query", "at most 1000 characters")
    existing = session.scalar(select(SavedView).where(SavedView.user_id == actor.user_id,
                                                      SavedView.workspace_id == actor.workspace_id,
                                                      SavedView.name == name))
    if existing is not None:
        existing.query = query
        return existing
    count = session.scalar(select(func.count()).select_from(SavedView).where(
        SavedView.user_id == actor.user_id)) or 0
    if count >= MAX_SAVED_VIEWS:
        raise Conflict(f"at most {MAX_SAVED_VIEWS} saved filters; delete one first")
    view = SavedView(workspace_id=actor.workspace_id, user_id=actor.user_id, name=name, query=query)
    session.add(view)
    session.flush()
    return view


def delete_saved_view(session: Session, actor: Actor, view_id: int) -> None:
    view = session.get(SavedView, view_id)
    if view is None or view.workspace_id != actor.workspace_id or view.user_id != actor.user_id:
        raise NotFound(f"saved filter {view_id} not found")
    session.delete(view)

