"""Viber bot channel: the Viber REST Bot API (chatapi.viber.com/pa) in and out.

Inbound: `POST /api/v1/channels/viber/webhook/<token>`, registered with `set_webhook` by the «connect» button.
Every callback carries `X-Viber-Content-Signature`: HMAC-SHA256 of the raw body keyed with the bot's token,
checked in constant time before the body is read. Callbacks are de-duplicated by `message_token` (Viber
re-sends what did not get a 200). Handled: `message` (text, picture, video, file, contact, location, sticker,
url: the customer's message; a picture or file is kept as Viber's link), `subscribed` / `unsubscribed` /
`conversation_started` (the customer is created; whether the bot may write to them is remembered, and
`conversation_started` may be answered with the account's welcome text), `delivered` / `seen` / `failed`
(applied to our outbound message like WhatsApp's statuses), `webhook` (Viber's own check of the address).

Viber lets a bot write only to a user who wrote to it or subscribed, and not after they unsubscribed: a reply to
such a user is a permanent DeliveryError (a dead letter the admin sees), without a call to Viber.

Outbound: `POST /send_message` with `X-Viber-Auth-Token`: the text (split at 7000 characters), then each file
as a `picture` (JPEG/PNG/GIF up to 1 MB) or a `file` (up to 50 MB) by a signed link Viber downloads
(`media_links`); the assistant's clarifying choices (the reply's `buttons`) or else the account's quick-reply
labels go as a reply keyboard under the last part (a tap comes back as the customer's text). Viber status 12
(too many requests) is retried; 5/6/7 (not registered, not subscribed, blocked) and bad data are permanent.
Never logs the token.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from otklik.accounts.service import Actor
from otklik.channels import media_links
from otklik.channels.base import (
    ChannelPlugin,
    VendorError,
    add_plugin,
    clean_api_base,
    clean_button_labels,
    finish_event,
    record_event,
    webhook_account,
)
from otklik.channels.delivery import OutgoingFile, conversation_account, files_of, send_parts
from otklik.channels.inbound_kit import BadSignature, Malformed, as_dict, parse_json, unknown_account
from otklik.channels.jobs import MAX_EVENT_ATTEMPTS, enqueue_event_after_commit
from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations import attachments, reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.delivery import record_delivery_status
from otklik.conversations.models import DeliveryStatus, Message
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.customers import service as customers
from otklik.customers.identities import normalise_identity
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import DomainError, field_error

log = logging.getLogger(__name__)
KIND = "viber"
DEFAULT_API = "https://chatapi.viber.com/pa"
SIGNATURE_HEADER = "x-viber-content-signature"
EVENT_TYPES = ["delivered", "seen", "failed", "subscribed", "unsubscribed", "conversation_started"]
TEXT_LIMIT = 7000
TIMEOUT = httpx.Timeout(15.0, connect=5.0)
PICTURE_TYPES = {"image/jpeg", "image/png", "image/gif"}
MAX_PICTURE_BYTES = 1_048_576        # Viber: «max image size 1 MB on iOS»
MAX_FILE_BYTES = 50 * 1_048_576      # Viber: files up to 50 MB
RETRY_STATUSES = {12: 60.0}          # tooManyRequests
PERMANENT_STATUSES = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14}
STATUS_NAMES = {1: "invalid url", 2: "invalid auth token", 3: "bad data", 4: "missing data",
                5: "the receiver is not registered in Viber", 6: "the receiver is not subscribed to the bot",
                7: "the bot is blocked", 8: "the bot is not found", 9: "the bot is suspended",
                10: "the webhook is not set", 11: "the receiver has no device that supports this message",
                12: "too many requests", 13: "the API version is not supported",
                14: "the message is incompatible with the receiver's Viber version"}
MEDIA_TYPES = ("picture", "video", "file")
SEEN = {"delivered": DeliveryStatus.delivered, "seen": DeliveryStatus.read, "failed": DeliveryStatus.failed}
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    max_bytes=MAX_FILE_BYTES, max_files=10,
    note="Viber: pictures (JPEG, PNG, GIF) up to 1 MB are shown as pictures; other files up to 50 MB"))
router = APIRouter(tags=["channels"])


class ViberConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sender_name: str = Field(default="Поддержка", min_length=1, max_length=28, title="Имя отправителя",
                             description="Viber показывает его над каждым ответом (до 28 символов)")
    sender_avatar: str = Field(default="", max_length=300, title="Аватар отправителя",
                               description="Адрес картинки (необязательно)")
    welcome_text: str = Field(default="", max_length=1000, title="Приветствие",
                              description="Отправляется, когда клиент открывает чат с ботом (пусто — не отправлять)")
    quick_replies: list[str] = Field(default_factory=list, max_length=12, title="Кнопки быстрых ответов",
                                     description="Показываются под каждым ответом; нажатие приходит как сообщение")
    api_base_url: str = Field(default=DEFAULT_API, max_length=300, title="Адрес Viber Bot API",
                              description="Менять не нужно (кроме тестового стенда)")

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return clean_api_base(value, DEFAULT_API)

    @field_validator("sender_avatar")
    @classmethod
    def _avatar(cls, value: str) -> str:
        return clean_api_base(value, "https://shop.example/logo.png") if value.strip() else ""

    @field_validator("quick_replies")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        return clean_button_labels(values, lambda label: "250 characters" if len(label) > 250 else None)


class InvalidCallback(ValueError):
    pass


# -- inbound ------------------------------------------------------------------------------------------

def verify_signature(token: str, raw: bytes, header: str | None) -> None:
    if not token:
        raise BadSignature("the Viber bot token is not configured")
    if not header:
        raise BadSignature("X-Viber-Content-Signature is missing")
    expected = hmac.new(token.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.strip().lower().encode(), expected.encode()):
        raise BadSignature("X-Viber-Content-Signature does not match the body")


def _token(data: dict[str, Any], *, required: bool) -> str | None:
    """Viber's `message_token`: a 64-bit number (sometimes a string): its decimal text, or None."""
    value = data.get("message_token")
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**64:
        return str(value)
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return value
    if required:
        raise InvalidCallback("message_token: a number is required")
    return None


def _user_id(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or len(value) > 64:
        raise InvalidCallback(f"{where}: a Viber user id (a string) is required")
    try:
        normalise_identity(KIND, value)
    except DomainError:
        raise InvalidCallback(f"{where}: not a Viber user id") from None
    return value


def _sent_at(data: dict[str, Any]) -> dt.datetime | None:
    stamp = data.get("timestamp")
    if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 2**45:
        return dt.datetime.fromtimestamp(stamp / 1000, dt.UTC)
    return None


def describe(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A Viber message as the agent reads it, plus what to keep in the message meta."""
    kind = str(message.get("type") or "")[:32]
    text = str(message.get("text") or "").strip() if isinstance(message.get("text"), str) else ""
    raw_media = message.get("media")
    media = raw_media[:2000] if isinstance(raw_media, str) and raw_media.startswith(("https://", "http://")) else ""
    extra: dict[str, Any] = {"type": kind}
    if kind == "text":
        return text, extra
    if kind == "picture":
        extra["media"] = media
        return "\n".join(p for p in (text, f"📷 Фото {media}".strip()) if p), extra
    if kind == "video":
        extra["media"] = media
        return "\n".join(p for p in (text, f"🎬 Видео {media}".strip()) if p), extra
    if kind == "file":
        name = str(message.get("file_name") or "без имени")[:200]
        size = message.get("size")
        kb = f", {size // 1024} КБ" if isinstance(size, int) and not isinstance(size, bool) and 0 <= size < 2**40 else ""
        extra.update(media=media, file_name=name)
        return f"📄 Документ: {name}{kb} {media}".strip(), extra
    if kind == "contact":
        contact = as_dict(message.get("contact"))
        name, phone = str(contact.get("name") or "")[:200], str(contact.get("phone_number") or "")[:40]
        extra["contact"] = {"name": name, "phone": phone}
        return f"📱 Контакт: {name} {phone}".strip(), extra
    if kind == "location":
        location = as_dict(message.get("location"))
        lat, lon = location.get("lat"), location.get("lon")
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and abs(v) <= 180 for v in (lat, lon)):
            raise InvalidCallback("message.location needs numeric lat and lon")
        extra["location"] = {"lat": lat, "lon": lon}
        return f"📍 Геопозиция: {lat}, {lon} https://maps.google.com/?q={lat},{lon}", extra
    if kind == "sticker":
        return "Стикер", extra
    if kind == "url":
        return media or text or "(ссылка)", extra
    return f"(сообщение Viber типа {kind or 'unknown'}: Отклик его не показывает)", extra


def store_message(session: Session, account: ChannelAccount, data: dict[str, Any], *,
                  attachment_ids: tuple[int, ...] = (), note: str | None = None) -> None:
    """A checked `message` callback as the customer's message (with the file fetched from Viber, if any)."""
    sender, message = as_dict(data.get("sender")), as_dict(data.get("message"))
    user_id = str(sender.get("id"))
    text, extra = describe(message)
    if attachment_ids and extra.get("media"):
        text = text.replace(f" {extra['media']}", "")  # the file is attached: its expiring link is only kept in meta
    if note:
        text = f"{text}\n{note}"
    tracking = message.get("tracking_data")
    if isinstance(tracking, str) and tracking:
        extra["tracking_data"] = tracking[:500]
    conversations.receive(session, account.workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind=KIND, identity_value=user_id,
        text=(text or "(пустое сообщение)")[:conversations.MAX_BODY_CHARS], customer_name=_user_name(sender),
        identity_verified=True, channel_message_id=f"viber:{_token(data, required=True)}", sent_at=_sent_at(data),
        attachment_ids=attachment_ids, language=_language(sender),
        meta={"viber": {"user_id": user_id, **extra}, "account_id": account.id}))


class _MediaUnavailable(Exception):
    """Viber's link is gone or the file is too large: a retry cannot help; the message is stored with a note."""


def download_media(url: str) -> tuple[bytes, str]:
    """GET Viber's media link (no token needed; it expires), at most the attachment size limit."""
    cap = get_settings().max_attachment_bytes
    with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise _MediaUnavailable(f"Viber: HTTP {response.status_code}")
        response.raise_for_status()
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > cap:
                raise _MediaUnavailable("the file is larger than this server accepts")
        mime = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    return bytes(data), mime


EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "video/mp4": ".mp4", "application/pdf": ".pdf"}


def process_pending(event_id: int) -> None:
    """After the webhook answered: fetch a picture's, video's or file's bytes from Viber's link, then store the
    message with it. Network trouble is retried by the channel sweep; the last attempt stores a note instead."""
    with session_scope(write=False) as session:
        event = session.get(ChannelEvent, event_id)
        if event is None or event.status != EventStatus.pending.value or not event.payload:
            return
        data, attempts = dict(event.payload.get("callback") or {}), event.attempts
    message = as_dict(data.get("message"))
    _, extra = describe(message)
    content, mime, note = b"", "", None
    try:
        content, mime = download_media(str(extra.get("media")))
    except _MediaUnavailable as exc:
        note = f"[файл не загружен из Viber: {exc}]"
    except httpx.HTTPError as exc:
        if attempts < MAX_EVENT_ATTEMPTS:
            raise  # the sweep tries again
        note = f"[файл не удалось загрузить из Viber: {type(exc).__name__}]"
    name = str(extra.get("file_name") or message.get("file_name") or f"viber-{extra['type']}")[:200]
    if "." not in name:
        name += EXTENSIONS.get(mime, "")

    def work(session: Session) -> None:
        event = session.get(ChannelEvent, event_id)
        account = session.get(ChannelAccount, event.account_id) if event is not None else None
        if event is None or account is None or event.status != EventStatus.pending.value:
            return
        ids: tuple[int, ...] = ()
        problem = note
        if content:
            try:
                stored = attachments.store(session, Actor.system(account.workspace_id, kind="customer"),
                                           filename=name, content_type=mime, chunks=[content])
                ids = (stored.id,)
            except DomainError as exc:
                problem = f"[файл {name} не сохранён: {exc.message}]"
        store_message(session, account, data, attachment_ids=ids, note=problem)
        finish_event(event)

    run_transaction(work)


# whether the bot may write to a user: one row per account and user (a vendor state, kept with its events)

def _subscription_key(user_id: str) -> str:
    return f"user:{user_id}"


def set_subscribed(session: Session, account: ChannelAccount, user_id: str, subscribed: bool, at_ms: int) -> None:
    """Remember the newest of the user's subscribe / unsubscribe / message events (Viber may deliver late)."""
    key = _subscription_key(user_id)
    row = session.scalar(select(ChannelEvent).where(ChannelEvent.account_id == account.id, ChannelEvent.event_id == key))
    if row is None:
        session.add(ChannelEvent(workspace_id=account.workspace_id, account_id=account.id, event_id=key,
                                 status=EventStatus.done.value, payload={"subscribed": subscribed, "at": at_ms},
                                 attempts=0))
        from sqlalchemy.exc import IntegrityError

        from otklik.platform.db import RetryTransaction

        try:
            session.flush()
        except IntegrityError:
            raise RetryTransaction("a concurrent event of the same Viber user won the race") from None
        return
    if int((row.payload or {}).get("at") or 0) <= at_ms:
        row.payload = {"subscribed": subscribed, "at": at_ms}


def subscription(account_id: int, user_id: str) -> bool | None:
    """True: the user wrote or subscribed; False: they unsubscribed since; None: neither is known."""
    with session_scope(write=False) as session:
        payload = session.scalar(select(ChannelEvent.payload).where(
            ChannelEvent.account_id == account_id, ChannelEvent.event_id == _subscription_key(user_id)))
    return None if not isinstance(payload, dict) else bool(payload.get("subscribed"))


def _user_name(user: dict[str, Any]) -> str:
    return str(user.get("name") or "")[:200]


def _language(user: dict[str, Any]) -> str | None:
    language = user.get("language")
    return language[:2].lower() if isinstance(language, str) and language[:2].isalpha() else None


def handle_callback(session: Session, account: ChannelAccount, data: dict[str, Any]) -> dict[str, Any]:
    """One callback in one transaction: the body to answer with (Viber reads a welcome message from it)."""
    event = data.get("event")
    if not isinstance(event, str) or not event:
        raise InvalidCallback("event: a string is required")
    if event == "webhook":
        return {"status": 0, "status_message": "ok"}
    stamp = data.get("timestamp")
    at_ms = stamp if isinstance(stamp, int) and not isinstance(stamp, bool) and 0 < stamp < 2**45 else 0
    if event == "message":
        token = _token(data, required=True)
        sender = data.get("sender")
        if not isinstance(sender, dict):
            raise InvalidCallback("sender: an object is required")
        user_id = _user_id(sender.get("id"), "sender.id")
        message = data.get("message")
        if not isinstance(message, dict):
            raise InvalidCallback("message: an object is required")
        _, extra = describe(message)  # validates the shape before anything is stored
        if extra.get("media") and extra["type"] in MEDIA_TYPES:
            # the file is fetched from Viber's link after we answered; the message is stored with it then
            pending = record_event(session, account, f"message:{token}", pending=True, payload={"callback": data})
            if pending is None:
                return {"status": 0, "status_message": "duplicate"}
            set_subscribed(session, account, user_id, True, at_ms)
            enqueue_event_after_commit(session, pending.id)
            return {"status": 0, "status_message": "stored"}
        if record_event(session, account, f"message:{token}") is None:
            return {"status": 0, "status_message": "duplicate"}
        set_subscribed(session, account, user_id, True, at_ms)
        store_message(session, account, data)
        return {"status": 0, "status_message": "stored"}
    if event in SEEN:
        token = _token(data, required=True)
        user_id = _user_id(data.get("user_id"), "user_id")
        if record_event(session, account, f"{event}:{token}:{user_id}") is None:
            return {"status": 0, "status_message": "duplicate"}
        error = None
        if event == "failed":
            error = f"Viber: {str(data.get('desc') or 'the message was not delivered')[:500]}"
        record_delivery_status(session, account.workspace_id, channel=KIND, channel_message_id=f"viber:{token}",
                               status=SEEN[event], error=error)
        return {"status": 0, "status_message": "status"}
    if event in ("subscribed", "conversation_started", "unsubscribed"):
        token = _token(data, required=False) or f"{at_ms}"
        user: dict[str, Any] = {}
        if event == "unsubscribed":
            user_id = _user_id(data.get("user_id"), "user_id")
        else:
            raw_user = data.get("user")
            if not isinstance(raw_user, dict):
                raise InvalidCallback("user: an object is required")
            user, user_id = raw_user, _user_id(raw_user.get("id"), "user.id")
        if record_event(session, account, f"{event}:{token}:{user_id}") is None:
            return {"status": 0, "status_message": "duplicate"}
        if event == "unsubscribed":
            set_subscribed(session, account, user_id, False, at_ms)
            return {"status": 0, "status_message": "unsubscribed"}
        customers.resolve_or_create(session, account.workspace_id, kind=KIND, external_id=user_id,
                                    name=_user_name(user), verified=True, language=_language(user))
        if event == "subscribed" or data.get("subscribed") is True:
            set_subscribed(session, account, user_id, True, at_ms)
        welcome = str((account.config or {}).get("welcome_text") or "").strip()
        if event == "conversation_started" and welcome:
            # Viber shows a message in the answer to conversation_started even to a user not subscribed yet
            return {"sender": _sender(dict(account.config or {})), "type": "text", "text": welcome[:TEXT_LIMIT]}
        return {"status": 0, "status_message": event}
    return {"status": 0, "status_message": "ignored"}  # client_status and events added later by Viber


def _answer(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "fields": []}}, status_code=status)


def handle_webhook(token: str, signature: str | None, raw: bytes) -> JSONResponse:
    def work(session: Session) -> JSONResponse:
        account = webhook_account(session, KIND, token)
        if account is None:
            raise unknown_account()
        try:
            secrets = decrypt_secrets(account.secret)
        except ValueError as exc:  # OTKLIK_SECRET_KEY changed: Viber retries while the admin fixes it
            return _answer(503, "secrets_unreadable", str(exc))
        verify_signature(secrets.get("auth_token", ""), raw, signature)
        data = parse_json(raw)
        try:
            with session.begin_nested():
                return JSONResponse(handle_callback(session, account, data))
        except InvalidCallback as exc:
            raise Malformed(f"not a Viber callback: {exc}") from None
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            raise Malformed(f"not a Viber callback: {type(exc).__name__}") from None

    return run_transaction(work)


@router.post("/channels/viber/webhook/{token}", include_in_schema=False)
async def viber_webhook(token: str, request: Request) -> JSONResponse:
    raw = await request.body()
    return await run_in_threadpool(handle_webhook, token, request.headers.get(SIGNATURE_HEADER), raw)


# -- outbound -----------------------------------------------------------------------------------------

def _sender(config: dict[str, Any]) -> dict[str, str]:
    sender = {"name": str(config.get("sender_name") or "Поддержка")[:28]}
    if config.get("sender_avatar"):
        sender["avatar"] = str(config["sender_avatar"])
    return sender


def keyboard(labels: list[str]) -> dict[str, Any] | None:
    """A reply keyboard: a tap sends the label back as the customer's text. Two buttons a row (Columns 3 of 6)."""
    labels = [label.strip()[:250] for label in labels if label and label.strip()][:24]
    if not labels:
        return None
    return {"Type": "keyboard", "DefaultHeight": False, "Buttons": [
        {"ActionType": "reply", "ActionBody": label, "Text": label, "TextSize": "regular",
         "Columns": 6 if len(labels) == 1 else 3, "Rows": 1} for label in labels]}


def split_text(text: str) -> list[str]:
    from otklik.channels.telegram.outbound import split_text as split

    return split(text, TEXT_LIMIT)


class ViberClient:
    def __init__(self, token: str, base: str):
        self.token = token
        self.base = base.rstrip("/")

    def call(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response = httpx.post(f"{self.base}/{method}", json=body, headers={"X-Viber-Auth-Token": self.token},
                                  timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"Viber unreachable: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry = response.headers.get("retry-after", "")
            raise DeliveryError("Viber: HTTP 429", retry_after=float(retry) if retry.isdigit() else 60.0)
        if response.status_code >= 400:
            raise DeliveryError(f"Viber: HTTP {response.status_code}",
                                permanent=400 <= response.status_code < 500 and response.status_code != 408)
        try:
            data = response.json()
        except ValueError:
            raise DeliveryError("Viber answered something that is not JSON") from None
        if not isinstance(data, dict):
            raise DeliveryError("Viber answered something that is not a JSON object")
        status = data.get("status")
        if status == 0:
            return data
        code = status if isinstance(status, int) and not isinstance(status, bool) else -1
        reason = STATUS_NAMES.get(code, "general error")
        detail = str(data.get("status_message") or "")[:200]
        text = f"Viber status {code} ({reason}){': ' + detail if detail and detail != reason else ''}"
        if code in RETRY_STATUSES:
            raise DeliveryError(text, retry_after=RETRY_STATUSES[code])
        raise DeliveryError(text, permanent=code in PERMANENT_STATUSES)


class ViberSender:
    def __init__(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]):
        self.account = account
        self.config = config
        self.client = ViberClient(secrets.get("auth_token", ""), str(config.get("api_base_url") or DEFAULT_API))

    def _send(self, body: dict[str, Any]) -> str | None:
        result = self.client.call("send_message", body)
        token = _token(result, required=False)
        return f"viber:{token}" if token else None

    def _file_body(self, base: dict[str, Any], file: OutgoingFile, url: str) -> dict[str, Any]:
        if file.content_type in PICTURE_TYPES and file.size <= MAX_PICTURE_BYTES:
            return {**base, "type": "picture", "text": "", "media": url}
        return {**base, "type": "file", "media": url, "size": file.size, "file_name": file.filename[:256]}

    def send(self, message: OutboundMessage) -> str | None:
        other = conversation_account(message, self.account)
        if other is not None:  # the customer wrote to another of the workspace's bots: answer from that one
            return ViberSender(other[0], other[1], other[2]).send(message)
        if not self.client.token:
            raise DeliveryError("the Viber bot has no token; set it in Settings → Channels", permanent=True)
        users = [value for kind, value in message.recipients if kind == KIND]
        if not users:
            raise DeliveryError("the customer has no Viber identity to write to", permanent=True)
        user_id = users[-1]
        state = subscription(self.account.id, user_id)
        if state is False:
            raise DeliveryError("Viber: the customer unsubscribed from the bot; a bot may write only to "
                                "subscribed users (they can write to the bot again)", permanent=True)
        if state is None:
            raise DeliveryError("Viber: the customer has not written to the bot or subscribed to it, so the bot "
                                "may not write to them yet", permanent=True)
        with session_scope(write=False) as session:
            stored = session.get(Message, message.message_id)
            buttons = (stored.meta or {}).get("buttons") if stored is not None else None
            webhook_url = session.scalar(select(ChannelAccount.state).where(ChannelAccount.id == self.account.id))
        labels = [str(b) for b in buttons] if isinstance(buttons, list) and buttons else \
            [str(q) for q in self.config.get("quick_replies") or []]
        keys = keyboard(labels)
        files = files_of(message) if message.attachments else []
        for file in files:
            if file.size > MAX_FILE_BYTES:
                raise DeliveryError(f"Viber takes files up to 50 MB; {file.filename} is larger", permanent=True)
        links: list[str] = []
        if files:
            base_url = media_links.public_base((webhook_url or {}).get("webhook_url"))
            ids = media_links.attachment_ids(message.workspace_id, message.message_id)
            links = [media_links.link(base_url, message.workspace_id, f, i) for f, i in zip(files, ids, strict=True)]
        base: dict[str, Any] = {"receiver": user_id, "min_api_version": 1, "sender": _sender(self.config),
                                "tracking_data": f"otklik:{message.conversation_number}"}
        bodies = [{**base, "type": "text", "text": piece} for piece in split_text(message.text)]
        bodies += [self._file_body(base, f, url) for f, url in zip(files, links, strict=True)]
        if not bodies:
            raise DeliveryError("the reply has neither text nor files", permanent=True)
        if keys:
            bodies[-1] = {**bodies[-1], "keyboard": keys}
        parts: list[Callable[[], str | None]] = [partial(self._send, body) for body in bodies]
        if len(parts) == 1:
            return parts[0]()
        return send_parts(self.account, message, parts)


class ViberPlugin(ChannelPlugin):
    kind = KIND
    title = "Viber"
    description = "Бот Viber: сообщения, фото, файлы, контакты, геопозиция; статусы доставки; кнопки"
    icon = "VB"
    Config = ViberConfig
    secret_fields = ("auth_token",)
    secret_titles: ClassVar[dict[str, str]] = {"auth_token": "Токен бота (partners.viber.com → Info → Token)"}
    has_webhook = True
    router = router

    def check_secrets(self, secrets: dict[str, str]) -> None:
        token = secrets.get("auth_token", "")
        if not token:
            raise field_error("secrets.auth_token", "is required: take it from partners.viber.com (the bot's Info tab)")
        if len(token) < 16 or any(c.isspace() for c in token):
            raise field_error("secrets.auth_token", "does not look like a Viber bot token")

    def process_pending(self, event_id: int) -> None:
        process_pending(event_id)

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> ViberSender:
        return ViberSender(account, config, secrets)

    def _client(self, config: dict[str, Any], secrets: dict[str, str]) -> ViberClient:
        return ViberClient(secrets.get("auth_token", ""), str(config.get("api_base_url") or DEFAULT_API))

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        try:
            info = self._client(config, secrets).call("get_account_info", {})
        except DeliveryError as exc:
            raise VendorError(f"Viber не ответил как ожидалось: {exc}") from None
        uri = f" (viber://pa?chatURI={info['uri']})" if isinstance(info.get("uri"), str) else ""
        return f"Бот {str(info.get('name') or '')[:100]}{uri} на связи"

    def connect_webhook(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str],
                        url: str) -> str:
        try:
            self._client(config, secrets).call("set_webhook", {"url": url, "event_types": EVENT_TYPES,
                                                               "send_name": True, "send_photo": False})
        except DeliveryError as exc:
            raise VendorError(f"Viber не принял адрес вебхука: {exc}") from None
        return f"Вебхук Viber установлен: {url}"


PLUGIN = ViberPlugin()


def register() -> None:
    add_plugin(PLUGIN)
