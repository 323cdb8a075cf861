"""Agent notifications: what each agent chose to hear about, their linked Telegram chat, and who is told what
when a customer writes, an internal note mentions someone, an SLA timer warns or a compensation waits.

Rules: nobody is told about a conversation they could not open (`may_see`); one event makes at most one
notification per agent (the `(user_id, event_key)` unique key); a burst to one agent goes out as one digest
at most every `GROUP_SECONDS`. This module never speaks a channel's protocol: the Telegram channel registers
the function that sends (`register_sender`), so the domain never imports a channel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import column, delete, func, or_, select, table, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Team, TeamMember, User
from otklik.accounts.service import Actor, actor_for, record_audit
from otklik.conversations.inbox import Mention
from otklik.conversations.models import Conversation, Message
from otklik.conversations.service import customer_names, get_conversation
from otklik.notifications.models import (
    KINDS,
    AgentLinkCode,
    AgentNotification,
    AgentNotificationSettings,
    AgentTelegramLink,
)
from otklik.platform.config import get_settings
from otklik.platform.db import affected, aware, session_scope, utcnow
from otklik.platform.errors import Conflict, NotFound

CODE_TTL = dt.timedelta(minutes=10)   # a link code is good for ten minutes, once
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen and typed on a phone
CODE_LENGTH = 8                        # 32^8 ≈ 10^12 codes: guessing a live one is hopeless
CODE_RE = re.compile(rf"^[{CODE_ALPHABET}]{{{CODE_LENGTH}}}$")
GROUP_SECONDS = 30                     # at most one Telegram message per agent this often; the rest wait as a digest
PREVIEW_CHARS = 160                    # the customer's first words in a notification
DIGEST_LINES = 5                       # a digest names this many notifications, then «and N more»
STALE_SENDING = dt.timedelta(minutes=10)

# The workspace's Telegram bots are channel accounts; read through a bare table so this domain (below
# `channels` in the import order) needs no import of the channel package.
_channel_accounts = table("channel_accounts", column("id"), column("workspace_id"), column("kind"),
                          column("enabled"), column("name"))


class DeliveryRefused(Exception):
    """The channel refused for good (the agent blocked the bot, the chat is gone): no retry."""


Sender = Callable[[int, str, str], int]  # (bot account id, chat id, plain text) -> the sent message's id
_senders: dict[str, Sender] = {}


def register_sender(kind: str, sender: Sender) -> None:
    _senders[kind] = sender


BotName = Callable[[int], "str | None"]  # bot account id -> the bot's @username (None when unknown)
_bot_names: dict[str, BotName] = {}


def register_bot_name(kind: str, namer: BotName) -> None:
    _bot_names[kind] = namer


def bot_username(session: Session, workspace_id: int) -> str | None:
    """The workspace bot's @username, for a one-tap t.me link; None when the channel cannot say."""
    bots = telegram_bots(session, workspace_id)
    namer = _bot_names.get("telegram")
    if not bots or namer is None:
        return None
    try:
        return namer(bots[0])
    except Exception:  # the link is a convenience: the code alone still works
        return None


def start_link(username: str | None, code: str) -> str | None:
    """Telegram's deep link: opening it shows the bot with «Start», which sends `/start CODE`."""
    return f"https://t.me/{username}?start={code}" if username else None


# -- an agent's choices ------------------------------------------------------------------------------------

def preferences(session: Session, actor: Actor) -> dict[str, bool]:
    row = session.get(AgentNotificationSettings, actor.user_id)
    return {kind: bool(getattr(row, kind)) if row is not None else True for kind in KINDS}


def update_preferences(session: Session, actor: Actor, changes: dict[str, bool]) -> dict[str, bool]:
    assert actor.user_id is not None
    row = session.get(AgentNotificationSettings, actor.user_id)
    if row is None:
        row = AgentNotificationSettings(user_id=actor.user_id, workspace_id=actor.workspace_id,
                                        **dict.fromkeys(KINDS, True))
        session.add(row)
    for kind, value in changes.items():
        if kind in KINDS:
            setattr(row, kind, bool(value))
    session.flush()
    return preferences(session, actor)


def _wants(session: Session, user_ids: Iterable[int], kind: str) -> set[int]:
    ids = set(user_ids)
    if not ids:
        return set()
    off = set(session.scalars(select(AgentNotificationSettings.user_id).where(
        AgentNotificationSettings.user_id.in_(ids), getattr(AgentNotificationSettings, kind).is_(False))))
    return ids - off


# -- linking Telegram --------------------------------------------------------------------------------------

def telegram_bots(session: Session, workspace_id: int) -> list[int]:
    """The ids of the workspace's enabled Telegram bots (channel accounts)."""
    c = _channel_accounts.c
    return list(session.scalars(select(c.id).where(c.workspace_id == workspace_id, c.kind == "telegram",
                                                   c.enabled.is_(True)).order_by(c.id)))


def _digest(code: str) -> str:
    return hashlib.sha256(code.encode()).hexdigest()


def issue_link_code(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime]:
    """A new one-time code for the actor (earlier unused ones stop working)."""
    assert actor.user_id is not None
    if not telegram_bots(session, actor.workspace_id):
        raise Conflict("the workspace has no Telegram bot: an admin connects one in Settings → Channels")
    now = now or utcnow()
    session.execute(delete(AgentLinkCode).where(AgentLinkCode.user_id == actor.user_id))
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    expires_at = now + CODE_TTL
    session.add(AgentLinkCode(workspace_id=actor.workspace_id, user_id=actor.user_id, code_hash=_digest(code),
                              expires_at=expires_at))
    session.flush()
    return code, expires_at


def normalise_code(text: str) -> str | None:
    """The code in «/start K7QXM2PD», «k7qx m2pd» or «K7QX-M2PD»; None when the text is not shaped like one."""
    text = text.strip()
    if text.lower().startswith("/start"):
        text = text[len("/start"):]
    candidate = re.sub(r"[\s-]", "", text).upper()
    return candidate if CODE_RE.match(candidate) else None


def code_is_live(session: Session, workspace_id: int, code: str, *, now: dt.datetime | None = None) -> bool:
    expires_at = session.scalar(select(AgentLinkCode.expires_at).where(
        AgentLinkCode.code_hash == _digest(code), AgentLinkCode.workspace_id == workspace_id,
        AgentLinkCode.used_at.is_(None)))
    return expires_at is not None and aware(expires_at) > (now or utcnow())


def redeem_link_code(session: Session, *, account_id: int, workspace_id: int, chat_id: str, code: str,
                     username: str | None = None, now: dt.datetime | None = None) -> User | None:
    """Links the chat to the code's agent when the code is live and of this bot's workspace; spends it."""
    now = now or utcnow()
    row = session.scalar(select(AgentLinkCode).where(AgentLinkCode.code_hash == _digest(code),
                                                     AgentLinkCode.workspace_id == workspace_id).with_for_update())
    if row is None or row.used_at is not None or aware(row.expires_at) <= now:
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active or user.workspace_id != workspace_id:
        return None
    row.used_at = now
    # one agent per chat and one chat per agent: whatever this chat or this agent was linked to goes
    session.execute(delete(AgentTelegramLink).where(or_(
        AgentTelegramLink.user_id == user.id,
        (AgentTelegramLink.account_id == account_id) & (AgentTelegramLink.chat_id == chat_id))))
    session.add(AgentTelegramLink(user_id=user.id, workspace_id=workspace_id, account_id=account_id,
                                  chat_id=chat_id, username=(username or None) and username[:64], linked_at=now))
    record_audit(session, actor_for(user), entity_type="user", entity_id=user.id, action="telegram_linked",
                 after={"account_id": account_id})
    session.flush()
    return user


def workspace_has_links(session: Session, workspace_id: int) -> bool:
    return session.scalar(select(AgentTelegramLink.user_id).where(
        AgentTelegramLink.workspace_id == workspace_id).limit(1)) is not None


def link_of(session: Session, user_id: int | None) -> AgentTelegramLink | None:
    return session.get(AgentTelegramLink, user_id) if user_id is not None else None


def link_for_chat(session: Session, account_id: int, chat_id: str) -> AgentTelegramLink | None:
    return session.scalar(select(AgentTelegramLink).where(AgentTelegramLink.account_id == account_id,
                                                          AgentTelegramLink.chat_id == chat_id))


def unlink(session: Session, actor: Actor) -> None:
    link = link_of(session, actor.user_id)
    if link is None:
        raise NotFound("your Telegram is not linked")
    session.delete(link)
    record_audit(session, actor, entity_type="user", entity_id=link.user_id, action="telegram_unlinked")
    session.flush()


def unlink_chat(session: Session, account_id: int, chat_id: str) -> bool:
    """The agent wrote /stop to the bot (or blocked it): their chat is unlinked."""
    link = link_for_chat(session, account_id, chat_id)
    if link is None:
        return False
    session.delete(link)
    session.flush()
    return True


# -- who is told what -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Planned:
    user_ids: set[int]
    kind: str
    event_key: str
    conversation_id: int
    headline: dict[str, str]    # by language: the first line
    preview: str                # the customer's (or the note's) first words


def may_see(session: Session, user: User, conversation_id: int) -> bool:
    """Whether the agent could open the conversation (the same check the conversation page makes)."""
    if not user.is_active:
        return False
    try:
        get_conversation(session, actor_for(user), conversation_id)
    except NotFound:
        return False
    return True


def preview(text: str | None, limit: int = PREVIEW_CHARS) -> str:
    words = " ".join((text or "").split())
    if len(words) <= limit:
        return words
    cut = words[:limit].rsplit(" ", 1)[0] if " " in words[:limit] else words[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _team_name(session: Session, team_id: int | None) -> str:
    team = session.get(Team, team_id) if team_id is not None else None
    return team.name if team is not None else ""


def plan(session: Session, event_type: str, workspace_id: int, data: dict[str, Any]) -> Planned | None:
    """The notification an event makes (recipients before the choices and visibility checks)."""
    moved = event_type == "conversation.updated" and "team_id" in (data.get("changed") or [])
    if event_type == "conversation.created" or moved:
        conversation = session.get(Conversation, data.get("id"))
        if conversation is None or conversation.workspace_id != workspace_id or conversation.team_id is None:
            return None
        if conversation.assignee_id is not None:
            users = {conversation.assignee_id}
        else:
            users = set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == conversation.team_id)))
        team = _team_name(session, conversation.team_id)
        # a conversation moved to a team is news to that team once per move (the version names the move)
        key = f"team:{conversation.id}:{conversation.team_id}:{data.get('version')}" if moved else \
            f"conversation:{conversation.id}"
        n = conversation.number
        headline = ({"ru": f"🆕 Обращение #{n} передано в команду «{team}»",
                     "en": f"🆕 Conversation #{n} moved to team «{team}»"} if moved else
                    {"ru": f"🆕 Новое обращение #{n} в команде «{team}»",
                     "en": f"🆕 New conversation #{n} in team «{team}»"})
        return Planned(users, "new_in_team", key, conversation.id, headline,
                       preview(conversation.last_message_preview or conversation.subject))
    if event_type == "message.created":
        message = session.get(Message, data.get("id"))
        if message is None or message.workspace_id != workspace_id:
            return None
        conversation = session.get(Conversation, message.conversation_id)
        if conversation is None:
            return None
        if message.is_internal:
            users = set(session.scalars(select(Mention.user_id).where(Mention.message_id == message.id)))
            author = session.get(User, message.author_user_id) if message.author_user_id else None
            who = author.name if author is not None else ""
            return Planned(users, "mention", f"mention:{message.id}", conversation.id,
                           {"ru": f"📣 {who} упоминает вас в заметке к обращению #{conversation.number}".strip(),
                            "en": f"📣 {who} mentioned you in a note on conversation #{conversation.number}".strip()},
                           preview(message.body_text))
        if message.author_kind != "customer" or conversation.assignee_id is None:
            return None
        earlier = session.scalar(select(func.count()).select_from(Message).where(
            Message.conversation_id == conversation.id, Message.author_kind == "customer", Message.id < message.id))
        if not earlier:
            return None  # the conversation's first message: «new conversation» tells about it
        return Planned({conversation.assignee_id}, "customer_reply", f"message:{message.id}", conversation.id,
                       {"ru": f"💬 Клиент ответил в обращении #{conversation.number}",
                        "en": f"💬 The customer replied in conversation #{conversation.number}"},
                       preview(message.body_text))
    if event_type in ("sla.warning", "sla.breached"):
        conversation = session.get(Conversation, data.get("conversation_id"))
        if conversation is None or conversation.workspace_id != workspace_id:
            return None
        users = {int(u) for u in data.get("notify_user_ids") or [] if isinstance(u, int)}
        soon = event_type == "sla.warning"
        return Planned(users, "sla", f"{event_type}:{conversation.id}:{data.get('kind')}:{data.get('due_at')}",
                       conversation.id,
                       {"ru": f"⏰ Обращение #{conversation.number}: срок SLA "
                              + ("скоро истечёт" if soon else "нарушен"),
                        "en": f"⏰ Conversation #{conversation.number}: the SLA target "
                              + ("is near" if soon else "was missed")},
                       preview(conversation.last_message_preview))
    if event_type == "compensation.requested":
        conversation = session.get(Conversation, data.get("conversation_id"))
        if conversation is None or conversation.workspace_id != workspace_id:
            return None
        users = {int(u) for u in data.get("notify_user_ids") or [] if isinstance(u, int)}
        amount = str(data.get("amount") or "")
        return Planned(users, "approval", f"compensation:{data.get('id')}", conversation.id,
                       {"ru": f"✅ Нужно согласование компенсации ({amount}) в обращении #{conversation.number}",
                        "en": f"✅ A compensation ({amount}) waits for approval in conversation "
                              f"#{conversation.number}"},
                       preview(conversation.last_message_preview))
    return None


EVENTS = ("conversation.created", "conversation.updated", "message.created", "sla.warning", "sla.breached",
          "compensation.requested")


def conversation_url(conversation_id: int) -> str:
    base = (get_settings().public_url or "").rstrip("/")
    return f"{base}/conversations/{conversation_id}"


def _text(lang: str, planned: Planned, customer: str, conversation_id: int) -> str:
    lines = [planned.headline.get(lang) or planned.headline["ru"]]
    if customer:
        lines.append(customer)
    if planned.preview:
        lines.append(f"«{planned.preview}»")
    lines.append(conversation_url(conversation_id))
    return "\n".join(lines)


def record(session: Session, workspace_id: int, planned: Planned) -> list[int]:
    """Stores the notifications of one event for the agents who want them, can see the conversation and have
    a linked Telegram; returns the agents told. Replaying the event adds nothing (the unique key)."""
    conversation = session.get(Conversation, planned.conversation_id)
    if conversation is None:
        return []
    linked = set(session.scalars(select(AgentTelegramLink.user_id).where(
        AgentTelegramLink.user_id.in_(planned.user_ids), AgentTelegramLink.workspace_id == workspace_id)))
    customer = customer_names(session, [conversation.customer_id]).get(conversation.customer_id, "")
    told: list[int] = []
    for user_id in sorted(_wants(session, linked, planned.kind)):
        user = session.get(User, user_id)
        if user is None or user.workspace_id != workspace_id or not may_see(session, user, conversation.id):
            continue
        lang = "en" if user.language == "en" else "ru"
        try:
            with session.begin_nested():
                session.add(AgentNotification(workspace_id=workspace_id, user_id=user_id, kind=planned.kind,
                                              event_key=planned.event_key[:160], conversation_id=conversation.id,
                                              text=_text(lang, planned, customer, conversation.id)))
        except IntegrityError:
            continue  # this event was already recorded for this agent
        told.append(user_id)
    return told


def recent(session: Session, actor: Actor, limit: int = 20) -> list[AgentNotification]:
    return list(session.scalars(select(AgentNotification).where(
        AgentNotification.user_id == actor.user_id, AgentNotification.workspace_id == actor.workspace_id)
        .order_by(AgentNotification.id.desc()).limit(limit)))


# -- delivery ---------------------------------------------------------------------------------------------

DIGEST_HEAD = {"ru": "🔔 Уведомлений: {n}", "en": "🔔 {n} notifications"}
DIGEST_MORE = {"ru": "…и ещё {n}", "en": "…and {n} more"}


def compose(rows: list[AgentNotification], lang: str) -> str:
    """One notification as it is; several as a digest: each one's first line and link."""
    if len(rows) == 1:
        return rows[0].text
    parts = [DIGEST_HEAD[lang].format(n=len(rows))]
    for row in rows[:DIGEST_LINES]:
        first, *_rest = row.text.split("\n")
        parts.append(f"• {first}\n  {conversation_url(row.conversation_id or 0)}")
    if len(rows) > DIGEST_LINES:
        parts.append(DIGEST_MORE[lang].format(n=len(rows) - DIGEST_LINES))
    return "\n".join(parts)


@dataclass(frozen=True)
class Delivery:
    result: str                      # "sent", "held", "nothing", "unlinked", "refused"
    retry_at: dt.datetime | None = None


def deliver_to(user_id: int, *, now: dt.datetime | None = None) -> Delivery:
    """Sends the agent's pending notifications in one message when their send slot is open."""
    now = now or utcnow()
    with session_scope() as session:
        rows = list(session.scalars(select(AgentNotification).where(
            AgentNotification.user_id == user_id, AgentNotification.status == "pending")
            .order_by(AgentNotification.id).limit(50)))
        if not rows:
            return Delivery("nothing")
        link = session.get(AgentTelegramLink, user_id)
        if link is None:
            for row in rows:
                row.status, row.error = "failed", "telegram not linked"
            return Delivery("unlinked")
        if link.next_send_at is not None and aware(link.next_send_at) > now:
            return Delivery("held", aware(link.next_send_at))
        # the slot is taken in one statement, so two deliveries at once never both send
        took = session.execute(update(AgentTelegramLink).where(
            AgentTelegramLink.user_id == user_id,
            or_(AgentTelegramLink.next_send_at.is_(None), AgentTelegramLink.next_send_at <= now))
            .values(next_send_at=now + dt.timedelta(seconds=GROUP_SECONDS)))
        if affected(took) != 1:
            return Delivery("held", now + dt.timedelta(seconds=GROUP_SECONDS))
        ids = [row.id for row in rows]
        for row in rows:
            row.status, row.attempts = "sending", row.attempts + 1
        user = session.get(User, user_id)
        lang = "en" if user is not None and user.language == "en" else "ru"
        text = compose(rows, lang)
        account_id, chat_id = link.account_id, link.chat_id
    sender = _senders.get("telegram")
    try:
        if sender is None:
            raise RuntimeError("no Telegram sender registered (channels not loaded)")
        message_id = sender(account_id, chat_id, text)
    except DeliveryRefused as exc:
        with session_scope() as session:
            session.execute(update(AgentNotification).where(AgentNotification.id.in_(ids))
                            .values(status="failed", error=str(exc)[:300]))
            unlink_chat(session, account_id, chat_id)  # blocked or gone: stop writing to it
        return Delivery("refused")
    except Exception:
        with session_scope() as session:  # back in the queue; the slot opens again for the retry
            session.execute(update(AgentNotification).where(AgentNotification.id.in_(ids))
                            .values(status="pending"))
            session.execute(update(AgentTelegramLink).where(AgentTelegramLink.user_id == user_id)
                            .values(next_send_at=None))
        raise
    with session_scope() as session:
        session.execute(update(AgentNotification).where(AgentNotification.id.in_(ids)).values(
            status="sent", sent_at=utcnow(), chat_id=chat_id, telegram_message_id=message_id))
    return Delivery("sent")


def due_users(*, now: dt.datetime | None = None) -> list[int]:
    """Agents with pending notifications whose send slot is open (the sweep's work); claims that a crashed
    delivery left «sending» for long are given up (never sent twice: Telegram may have shown them)."""
    now = now or utcnow()
    with session_scope() as session:
        session.execute(update(AgentNotification).where(
            AgentNotification.status == "sending", AgentNotification.created_at < now - STALE_SENDING)
            .values(status="failed", error="delivery interrupted"))
        return list(session.scalars(
            select(AgentNotification.user_id).join(AgentTelegramLink,
                                                   AgentTelegramLink.user_id == AgentNotification.user_id)
            .where(AgentNotification.status == "pending",
                   or_(AgentTelegramLink.next_send_at.is_(None), AgentTelegramLink.next_send_at <= now))
            .distinct()))


# -- replying from Telegram --------------------------------------------------------------------------------

def notification_replied_to(session: Session, link: AgentTelegramLink, telegram_message_id: int
                            ) -> list[AgentNotification]:
    """The notifications one Telegram message of the bot carried to this agent's chat."""
    return list(session.scalars(select(AgentNotification).where(
        AgentNotification.user_id == link.user_id, AgentNotification.chat_id == link.chat_id,
        AgentNotification.telegram_message_id == telegram_message_id)))
