"""Telegram updates -> normalised inbound messages.

Every update is remembered by its `update_id` (a retried webhook or a re-read poll is acknowledged without a
second message). Text, contacts, locations and button presses are stored in the webhook's own short
transaction; updates with media are stored as pending events and a job downloads the files (getFile, size-
capped) and stores the message after the webhook answered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session
from telegram import Message, Update, User
from telegram.error import BadRequest, Forbidden, InvalidToken, NetworkError, RetryAfter, TelegramError

from otklik.accounts.service import Actor
from otklik.channels.base import finish_event, record_event
from otklik.channels.identity import link_verified_phone
from otklik.channels.jobs import MAX_EVENT_ATTEMPTS, enqueue_event_after_commit
from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.channels.secrets import decrypt_secrets
from otklik.channels.telegram import client
from otklik.conversations import attachments
from otklik.conversations.service import InboundMessage, receive
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import DomainError

log = logging.getLogger(__name__)
KIND = "telegram"
TELEGRAM_MAX_DOWNLOAD = 20 * 1_048_576  # the Bot API's getFile limit


class InvalidUpdate(ValueError):
    """The body is not a Telegram update (a retry cannot fix it: answered with 400)."""


# What mangled vendor data (a list where Telegram sends a string...) raises while an update is handled; the
# parser does not check types, so the handler's callers treat these as an invalid update, not a crash.
MALFORMED = (InvalidUpdate, TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError)


@dataclass(frozen=True)
class MediaRef:
    file_id: str
    filename: str
    content_type: str
    size: int | None


def parse_update(data: Any) -> Update:
    if not isinstance(data, dict):
        raise InvalidUpdate("a Telegram update is a JSON object")
    update_id = data.get("update_id")
    if not isinstance(update_id, int) or isinstance(update_id, bool) or update_id < 0:
        raise InvalidUpdate("update_id: a non-negative integer is required")
    try:
        return Update.de_json(data, None)
    except Exception as exc:  # untrusted input: whatever the parser trips on, it is not an update we can use
        raise InvalidUpdate(f"not a Telegram update: {type(exc).__name__}") from None


def _name(user: User) -> str:
    return " ".join(p for p in (user.first_name, user.last_name) if p).strip() or (user.username or "")


def _duration(seconds: Any) -> str:
    total = int(client.seconds(seconds)) if seconds is not None else 0
    return f"{total // 60}:{total % 60:02d}"


def media_of(message: Message) -> list[MediaRef]:
    mid = message.message_id
    if message.photo:
        largest = max(message.photo, key=lambda p: (p.width * p.height, p.file_size or 0))
        return [MediaRef(largest.file_id, f"photo_{mid}.jpg", "image/jpeg", largest.file_size)]
    if message.document:
        d = message.document
        return [MediaRef(d.file_id, d.file_name or f"document_{mid}", d.mime_type or "application/octet-stream",
                         d.file_size)]
    if message.voice:
        v = message.voice
        return [MediaRef(v.file_id, f"voice_{mid}.ogg", v.mime_type or "audio/ogg", v.file_size)]
    if message.audio:
        a = message.audio
        return [MediaRef(a.file_id, a.file_name or f"audio_{mid}.mp3", a.mime_type or "audio/mpeg", a.file_size)]
    if message.video:
        v2 = message.video
        return [MediaRef(v2.file_id, v2.file_name or f"video_{mid}.mp4", v2.mime_type or "video/mp4", v2.file_size)]
    if message.video_note:
        n = message.video_note
        return [MediaRef(n.file_id, f"video_note_{mid}.mp4", "video/mp4", n.file_size)]
    if message.sticker and not message.sticker.is_animated and not message.sticker.is_video:
        s = message.sticker
        return [MediaRef(s.file_id, f"sticker_{mid}.webp", "image/webp", s.file_size)]
    return []


def describe(message: Message) -> tuple[str, dict[str, Any]]:
    """The message's text as an agent should read it, and structured extras for `meta`."""
    meta: dict[str, Any] = {}
    caption = (message.caption or "").strip()
    if message.text:
        return message.text, meta
    if message.photo:
        return caption or "📷 Фото", meta
    if message.document:
        return caption or f"📄 Документ: {message.document.file_name or 'без имени'}", meta
    if message.voice:
        return caption or f"🎤 Голосовое сообщение ({_duration(message.voice.duration)})", meta
    if message.audio:
        return caption or f"🎵 Аудио: {message.audio.title or message.audio.file_name or 'без названия'}", meta
    if message.video or message.video_note:
        return caption or "🎬 Видео", meta
    if message.sticker:
        meta["sticker"] = {"emoji": message.sticker.emoji, "set": message.sticker.set_name}
        return f"Стикер {message.sticker.emoji or ''}".strip(), meta
    if message.contact:
        c = message.contact
        meta["contact"] = {"phone": c.phone_number, "user_id": c.user_id,
                           "name": " ".join(p for p in (c.first_name, c.last_name) if p)}
        return f"📱 Контакт: {c.phone_number} {meta['contact']['name']}".strip(), meta
    if message.location:
        loc = message.location
        meta["location"] = {"latitude": loc.latitude, "longitude": loc.longitude}
        place = f"{message.venue.title}, {message.venue.address}: " if message.venue else ""
        return f"📍 Геопозиция: {place}{loc.latitude:.6f}, {loc.longitude:.6f}", meta
    return "(сообщение этого типа Отклик не показывает; посмотрите его в Telegram)", meta


def store_message(session: Session, account: ChannelAccount, message: Message, *, token: str, edited: bool,
                  attachment_ids: tuple[int, ...] = (), notes: tuple[str, ...] = ()) -> None:
    user = message.from_user
    assert user is not None
    text, meta = describe(message)
    if message.contact and message.contact.user_id == user.id:
        link_verified_phone(session, account.workspace_id, kind=KIND, external_id=str(user.id), name=_name(user),
                            phone_raw=message.contact.phone_number)
        meta["contact"]["own"] = True
    meta.update({"telegram": {"chat_id": message.chat.id, "message_id": message.message_id,
                              "username": user.username}, "account_id": account.id})
    message_key = f"{client.bot_id(token)}:{message.chat.id}:{message.message_id}"
    if edited:
        edit_date = message.edit_date.timestamp() if message.edit_date else 0
        message_key += f":e{int(edit_date)}"
        meta["edited_of"] = f"{client.bot_id(token)}:{message.chat.id}:{message.message_id}"
        text = "✏️ Исправлено: " + text
    if notes:
        text = "\n".join((text, *notes))
    receive(session, account.workspace_id, InboundMessage(
        channel=KIND, identity_kind=KIND, identity_value=str(user.id), text=text, customer_name=_name(user),
        identity_verified=True, channel_message_id=message_key, attachment_ids=attachment_ids, meta=meta,
        sent_at=message.edit_date if edited and message.edit_date else message.date))


def is_agent_chat_or_code(session: Session, account: ChannelAccount, message: Message) -> bool:
    """The chat is an agent's linked notifications chat, or the text is a link code (`/start CODE`)."""
    from otklik.notifications import service as notifications

    code = notifications.normalise_code(message.text) if message.text else None
    if code is not None and notifications.code_is_live(session, account.workspace_id, code):
        return True
    if message.text and message.text.strip().lower().startswith("/start ") and code is not None:
        return True  # a link attempt with a spent or mistyped code: answered, not stored as a customer's
    return is_agent_chat(session, account, message)


def is_agent_chat(session: Session, account: ChannelAccount, message: Message) -> bool:
    from otklik.notifications import service as notifications

    return notifications.link_for_chat(session, account.id, str(message.chat.id)) is not None


def handle_update(session: Session, account: ChannelAccount, update: Update, data: dict[str, Any], *,
                  token: str) -> str:
    """One update in the caller's transaction: "duplicate", "stored", "pending" (media after commit) or
    "ignored" (kinds a support inbox does not show: group chats, bots, membership changes)."""
    event_key = f"u:{update.update_id}"
    message = update.message or update.edited_message
    if message is not None:
        if message.chat.type != "private" or message.from_user is None or message.from_user.is_bot:
            return "ignored" if record_event(session, account, event_key) else "duplicate"
        if update.message is None and is_agent_chat(session, account, message):
            # an agent editing a message in their notifications chat: nothing to do, and never a customer's
            return "ignored" if record_event(session, account, event_key) else "duplicate"
        if update.message is not None and is_agent_chat_or_code(session, account, message):
            # an agent linking their chat, or writing from it: never a customer message (notifications)
            if record_event(session, account, event_key) is None:
                return "duplicate"
            from otklik.channels.telegram.agents import handle_agent_message

            return handle_agent_message(session, account, message) or "ignored"
        if media_of(message):
            describe(message)  # mangled fields fail now (400), not later in the job
            event = record_event(session, account, event_key, payload=data, pending=True)
            if event is None:
                return "duplicate"
            enqueue_event_after_commit(session, event.id)
            return "pending"
        if record_event(session, account, event_key) is None:
            return "duplicate"
        store_message(session, account, message, token=token, edited=update.edited_message is not None)
        return "stored"
    query = update.callback_query
    if query is not None and query.data and query.from_user and not query.from_user.is_bot:
        if record_event(session, account, event_key) is None:
            return "duplicate"
        from otklik.channels.telegram.jobs import answer_callback
        from otklik.platform.events import after_commit

        callback_id, account_id = query.id, account.id
        after_commit(session, lambda: answer_callback(account_id, callback_id))
        user = query.from_user
        receive(session, account.workspace_id, InboundMessage(
            channel=KIND, identity_kind=KIND, identity_value=str(user.id), text=query.data,
            customer_name=_name(user), identity_verified=True, channel_message_id=f"{client.bot_id(token)}:cb:{query.id}",
            meta={"telegram": {"callback_query_id": query.id, "username": user.username}, "button": True,
                  "account_id": account.id}))
        return "stored"
    return "ignored" if record_event(session, account, event_key) else "duplicate"


def _download(token: str, base: str, ref: MediaRef, cap: int) -> bytes | str:
    """The file's bytes, or a note for the agent when it is not stored (too large). Network trouble raises."""
    if ref.size is not None and ref.size > cap:
        return f"[файл {ref.filename} ({ref.size // 1024} КБ) больше предела и не сохранён]"
    bot = client.bot_for(token, base)

    async def fetch() -> bytes:
        file = await bot.get_file(ref.file_id)
        if file.file_size is not None and file.file_size > cap:
            return b""
        return bytes(await file.download_as_bytearray())

    data = client.run(fetch())
    if not data or len(data) > cap:
        return f"[файл {ref.filename} больше предела и не сохранён]"
    return data


def process_pending(event_id: int) -> None:
    with session_scope(write=False) as session:
        event = session.get(ChannelEvent, event_id)
        if event is None or event.status != EventStatus.pending.value or not event.payload:
            return
        account = session.get(ChannelAccount, event.account_id)
        if account is None:
            return
        payload, attempts = dict(event.payload), event.attempts
        token = decrypt_secrets(account.secret).get("bot_token", "")
        base = client.api_base(account.config or {})
    update = parse_update(payload)
    message = update.message or update.edited_message
    assert message is not None
    cap = min(get_settings().max_attachment_bytes, TELEGRAM_MAX_DOWNLOAD)
    files: list[tuple[MediaRef, bytes]] = []
    notes: list[str] = []
    for ref in media_of(message):
        try:
            got = _download(token, base, ref, cap)
        except (BadRequest, Forbidden, InvalidToken) as exc:  # a retry cannot fix these
            got = f"[файл {ref.filename} не загружен: {exc.message}]"
        except (NetworkError, RetryAfter, TimeoutError):
            if attempts < MAX_EVENT_ATTEMPTS:
                raise  # the sweep tries again; the last attempt stores the message without the file
            got = f"[файл {ref.filename} не удалось загрузить из Telegram]"
        except TelegramError as exc:
            got = f"[файл {ref.filename} не загружен: {exc.message}]"
        if isinstance(got, str):
            notes.append(got)
        else:
            files.append((ref, got))

    def work(session: Session) -> None:
        event = session.get(ChannelEvent, event_id)
        account = session.get(ChannelAccount, event.account_id) if event is not None else None
        if event is None or account is None or event.status != EventStatus.pending.value:
            return
        ids: list[int] = []
        extra = list(notes)
        for ref, data in files:
            try:
                stored = attachments.store(session, Actor.system(account.workspace_id, kind="customer"),
                                           filename=ref.filename, content_type=ref.content_type, chunks=[data])
                ids.append(stored.id)
            except DomainError as exc:
                extra.append(f"[файл {ref.filename} не сохранён: {exc.message}]")
        store_message(session, account, message, token=token, edited=update.edited_message is not None,
                      attachment_ids=tuple(ids), notes=tuple(extra))
        finish_event(event)

    run_transaction(work)
