"""The MAX messenger bot channel plugin.

Inbound: POST /api/v1/channels/max/webhook/<account token>, registered with `POST /subscriptions` together
with a generated secret that MAX sends back in `X-Max-Bot-Api-Secret` (compared in constant time). Handled
update kinds: `message_created` (text and attachments: image, video, audio, file, sticker, contact,
location, share), `message_edited`, `message_callback` (a quick-reply button: its payload becomes the
customer's message; answered with `POST /answers`), `bot_started` (the customer is created and the deep-link
payload remembered, no message). Others are acknowledged and ignored. MAX retries any non-200 for hours, so
only bodies a retry cannot fix get a 4xx.

Outbound: `POST /messages?user_id=<id>` with `Authorization: <token>`; files are uploaded first
(`POST /uploads?type=...`, then the upload URL) and attached by token. 429 -> retried after `Retry-After`
(MAX allows about 30 requests per second); 401/403/404 -> dead letter with the reason.

The payload shapes follow MAX's public OpenAPI schema (github.com/max-messenger/api-schema, 0.0.33) and
docs at dev.max.ru; fixtures in tests/channels/fixtures/max are reconstructed from them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable
from functools import partial
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy.orm import Session

from otklik.channels.base import (
    ChannelPlugin,
    VendorError,
    clean_api_base,
    clean_button_labels,
    record_event,
)
from otklik.channels.delivery import OutgoingFile, conversation_account, files_of, send_parts
from otklik.channels.identity import link_verified_phone
from otklik.channels.inbound_kit import handle_bot_webhook
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.conversations.service import InboundMessage, receive
from otklik.customers import service as customers
from otklik.platform.errors import field_error
from otklik.platform.events import after_commit
from otklik.platform.jobs import task

log = logging.getLogger(__name__)
KIND = "max"
DEFAULT_API = "https://platform-api.max.ru"
SECRET_HEADER = "x-max-bot-api-secret"  # noqa: S105  (a header name)
UPDATE_TYPES = ["message_created", "message_edited", "message_callback", "bot_started"]
TEXT_LIMIT = 4000
TIMEOUT = httpx.Timeout(20.0, connect=5.0)
router = APIRouter(tags=["channels"])


class MaxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    api_base_url: str = Field(default=DEFAULT_API, max_length=300, title="Адрес MAX Bot API",
                              description="Менять не нужно (кроме тестового стенда)")
    quick_replies: list[str] = Field(default_factory=list, max_length=8, title="Кнопки быстрых ответов",
                                     description="Показываются под каждым ответом; нажатие приходит как сообщение")

    @field_validator("api_base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return clean_api_base(value, "https://platform-api.max.ru")

    @field_validator("quick_replies")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        return clean_button_labels(values, lambda label: "64 characters" if len(label) > 64 else None)


class InvalidUpdate(ValueError):
    pass


# -- inbound ------------------------------------------------------------------------------------------

def _user_name(user: dict[str, Any]) -> str:
    name = str(user.get("name") or " ".join(p for p in (user.get("first_name"), user.get("last_name")) if p))
    return name.strip() or str(user.get("username") or "")


def _user_id(user: Any) -> str:
    if not isinstance(user, dict) or not isinstance(user.get("user_id"), int) or isinstance(user.get("user_id"), bool):
        raise InvalidUpdate("user.user_id: an integer is required")
    return str(user["user_id"])


def describe_attachment(att: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind = str(att.get("type") or "")
    payload = att.get("payload") if isinstance(att.get("payload"), dict) else {}
    assert isinstance(payload, dict)
    url = payload.get("url")
    if kind == "image":
        return "📷 Фото", {"type": kind, "url": url}
    if kind == "video":
        return "🎬 Видео", {"type": kind, "url": url}
    if kind == "audio":
        return "🎤 Аудио", {"type": kind, "url": url}
    if kind == "file":
        name = str(att.get("filename") or "без имени")
        return f"📄 Документ: {name}", {"type": kind, "url": url, "filename": name, "size": att.get("size")}
    if kind == "sticker":
        return "Стикер", {"type": kind, "url": url}
    if kind == "contact":
        info = payload.get("max_info") if isinstance(payload.get("max_info"), dict) else {}
        vcf = str(payload.get("vcf_info") or "")
        phone = next((line.split(":", 1)[1].strip() for line in vcf.splitlines()
                      if line.upper().startswith("TEL") and ":" in line), "")
        return f"📱 Контакт: {phone} {_user_name(info or {})}".strip(), {"type": kind, "phone": phone}
    if kind == "location":
        lat, lon = att.get("latitude"), att.get("longitude")
        return f"📍 Геопозиция: {lat}, {lon}", {"type": kind, "latitude": lat, "longitude": lon}
    if kind == "share":
        return f"🔗 {url or ''}".strip(), {"type": kind, "url": url}
    if kind == "inline_keyboard":
        return "", {}
    return "(вложение, которое Отклик не показывает)", {"type": kind}


def _store_message(session: Session, account: ChannelAccount, message: Any, *, edited: bool) -> str:
    if not isinstance(message, dict) or not isinstance(message.get("body"), dict):
        raise InvalidUpdate("message.body: an object is required")
    recipient = message.get("recipient") if isinstance(message.get("recipient"), dict) else {}
    assert isinstance(recipient, dict)
    if recipient.get("chat_type") not in (None, "dialog"):
        return "ignored"  # group chats and channels are not a support inbox
    sender = message.get("sender")
    if not isinstance(sender, dict) or sender.get("is_bot"):
        return "ignored"
    user_id = _user_id(sender)
    body = message["body"]
    mid = body.get("mid")
    if not isinstance(mid, str) or not mid:
        raise InvalidUpdate("message.body.mid: a string is required")
    lines = [str(body.get("text") or "").strip()]
    extras = []
    for att in body.get("attachments") or []:
        if isinstance(att, dict):
            label, extra = describe_attachment(att)
            if label:
                lines.append(label)
            if extra:
                extras.append(extra)
    for att in body.get("attachments") or []:
        payload = att.get("payload") if isinstance(att, dict) and att.get("type") == "contact" else None
        info = payload.get("max_info") if isinstance(payload, dict) else None
        phone = next((e.get("phone") for e in extras if e.get("type") == "contact"), "")
        if isinstance(info, dict) and str(info.get("user_id")) == user_id and phone:
            # the customer shared their own contact (a request_contact button): a verified phone
            link_verified_phone(session, account.workspace_id, kind=KIND, external_id=user_id,
                                name=_user_name(sender), phone_raw=phone)
    text = "\n".join(line for line in lines if line) or "(пустое сообщение)"
    key = f"max:{mid}"
    ts = message.get("timestamp")
    try:
        sent_at = dt.datetime.fromtimestamp(ts / 1000, dt.UTC) if isinstance(ts, int) and ts > 0 else None
    except (OverflowError, OSError, ValueError):
        sent_at = None
    if edited:
        key += f":e{ts}"
        text = "✏️ Исправлено: " + text
    meta: dict[str, Any] = {"max": {"mid": mid, "chat_id": recipient.get("chat_id"),
                                    "username": sender.get("username")}, "account_id": account.id}
    if extras:
        meta["attachments"] = extras
    receive(session, account.workspace_id, InboundMessage(
        channel=KIND, identity_kind=KIND, identity_value=user_id, text=text, customer_name=_user_name(sender),
        identity_verified=True, channel_message_id=key, meta=meta, sent_at=sent_at))
    return "stored"


def handle_update(session: Session, account: ChannelAccount, update: Any) -> str:
    if not isinstance(update, dict) or not isinstance(update.get("update_type"), str):
        raise InvalidUpdate("update_type: a string is required")
    kind = update["update_type"]
    ts = update.get("timestamp")
    if kind in ("message_created", "message_edited"):
        message = update.get("message")
        mid = message.get("body", {}).get("mid") if isinstance(message, dict) and isinstance(
            message.get("body"), dict) else None
        if not isinstance(mid, str):
            raise InvalidUpdate("message.body.mid: a string is required")
        if record_event(session, account, f"{kind}:{mid}:{ts if kind == 'message_edited' else ''}") is None:
            return "duplicate"
        return _store_message(session, account, message, edited=kind == "message_edited")
    if kind == "message_callback":
        callback = update.get("callback")
        if not isinstance(callback, dict) or not isinstance(callback.get("callback_id"), str):
            raise InvalidUpdate("callback.callback_id: a string is required")
        user_id = _user_id(callback.get("user"))
        if record_event(session, account, f"callback:{callback['callback_id']}") is None:
            return "duplicate"
        account_id, callback_id = account.id, callback["callback_id"]
        after_commit(session, lambda: answer_callback(account_id, callback_id))
        text = str(callback.get("payload") or "").strip() or "(нажата кнопка)"
        receive(session, account.workspace_id, InboundMessage(
            channel=KIND, identity_kind=KIND, identity_value=user_id, text=text,
            customer_name=_user_name(callback["user"]), identity_verified=True,
            channel_message_id=f"max:cb:{callback_id}", meta={"button": True, "account_id": account.id}))
        return "stored"
    if kind == "bot_started":
        user_id = _user_id(update.get("user"))
        if record_event(session, account, f"bot_started:{user_id}:{ts}") is None:
            return "duplicate"
        customer, _ = customers.resolve_or_create(session, account.workspace_id, kind=KIND, external_id=user_id,
                                                  name=_user_name(update["user"]), verified=True)
        payload = update.get("payload")
        if isinstance(payload, str) and payload and "max_start_payload" not in (customer.attributes or {}):
            customer.attributes = {**(customer.attributes or {}), "max_start_payload": payload[:128]}
        return "stored"
    digest = hashlib.sha256(json.dumps(update, sort_keys=True, default=str).encode()).hexdigest()[:16]
    event_id = f"{kind[:40]}:{ts}:{digest}"
    return "ignored" if record_event(session, account, event_id) else "duplicate"


def _handle(token: str, secret_header: str, body: bytes) -> JSONResponse:
    return handle_bot_webhook(KIND, "MAX", "X-Max-Bot-Api-Secret", token, secret_header, body,
                              lambda session, account, data, _secrets: handle_update(session, account, data),
                              InvalidUpdate, (TypeError, ValueError, AttributeError, KeyError, IndexError, OverflowError))


@router.post("/channels/max/webhook/{token}", include_in_schema=False)
async def max_webhook(token: str, request: Request) -> JSONResponse:
    body = await request.body()
    return await run_in_threadpool(_handle, token, request.headers.get(SECRET_HEADER, ""), body)


# -- outbound -----------------------------------------------------------------------------------------

def _vendor_message(response: httpx.Response) -> str:
    try:
        data = response.json()
        return str(data.get("message") or data.get("code") or "")[:300]
    except ValueError:
        return ""


def delivery_error(response: httpx.Response) -> DeliveryError:
    status = response.status_code
    reason = _vendor_message(response)
    if status == 429:
        header = response.headers.get("retry-after", "")
        wait = float(header) if header.replace(".", "", 1).isdigit() else 1.0
        return DeliveryError(f"MAX rate limit (429): retry in {wait:g} s", retry_after=wait)
    if status == 401:
        return DeliveryError("MAX rejected the bot token; fix it in Settings → Channels", permanent=True)
    if status in (403, 404):
        return DeliveryError(f"MAX refused: the customer blocked the bot or the chat is gone ({status}) {reason}".strip(),
                             permanent=True)
    if 400 <= status < 500:
        return DeliveryError(f"MAX refused the message ({status}) {reason}".strip(), permanent=True)
    return DeliveryError(f"MAX failed ({status})")


class MaxClient:
    def __init__(self, token: str, base: str):
        self.token = token
        self.base = base.rstrip("/")

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None,
             json_body: Any = None) -> dict[str, Any]:
        try:
            response = httpx.request(method, f"{self.base}{path}", params=params, json=json_body,
                                     headers={"Authorization": self.token}, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"MAX unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise delivery_error(response)
        try:
            data = response.json()
        except ValueError:
            data = {}
        return data if isinstance(data, dict) else {}

    def upload(self, file: OutgoingFile) -> dict[str, Any]:
        kind = "image" if file.content_type.startswith("image/") else "file"
        slot = self.call("POST", "/uploads", params={"type": kind})
        url = slot.get("url")
        if not isinstance(url, str):
            raise DeliveryError("MAX gave no upload address")
        try:
            data = file.path.read_bytes()
        except OSError:
            raise DeliveryError(f"the file {file.filename} is missing from storage", permanent=True) from None
        try:
            response = httpx.post(url, files={"data": (file.filename, data, file.content_type)},
                                  headers={"Authorization": self.token}, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"MAX upload unreachable: {type(exc).__name__}") from None
        if response.status_code >= 300:
            raise delivery_error(response)
        uploaded = response.json() if response.content else {}
        token = slot.get("token") or (uploaded.get("token") if isinstance(uploaded, dict) else None)
        if kind == "image":
            return {"type": "image", "payload": uploaded if isinstance(uploaded, dict) and uploaded else {"token": token}}
        if not token:
            raise DeliveryError("MAX returned no token for the uploaded file")
        return {"type": "file", "payload": {"token": token}}


def _keyboard(labels: list[str]) -> dict[str, Any] | None:
    if not labels:
        return None
    rows = [[{"type": "callback", "text": label, "payload": label} for label in labels[i:i + 2]]
            for i in range(0, len(labels), 2)]
    return {"type": "inline_keyboard", "payload": {"buttons": rows}}


def split_text(text: str, limit: int = TEXT_LIMIT) -> list[str]:
    from otklik.channels.telegram.outbound import split_text as split

    return split(text, limit)


class MaxSender:
    def __init__(self, account: ChannelAccount, config: dict[str, Any], token: str):
        self.account = account
        self.client = MaxClient(token, str(config.get("api_base_url") or DEFAULT_API))
        self.quick_replies = [str(q) for q in config.get("quick_replies") or []]

    def _send(self, user_id: str, body: dict[str, Any]) -> str | None:
        result = self.client.call("POST", "/messages", params={"user_id": user_id}, json_body=body)
        message = result.get("message") if isinstance(result.get("message"), dict) else {}
        assert isinstance(message, dict)
        mid = (message.get("body") or {}).get("mid") if isinstance(message.get("body"), dict) else None
        return str(mid) if mid else None

    def _send_file(self, user_id: str, file: OutgoingFile, extra: list[dict[str, Any]]) -> str | None:
        attachment = self.client.upload(file)
        return self._send(user_id, {"text": None, "attachments": [attachment, *extra]})

    def send(self, message: OutboundMessage) -> str | None:
        other = conversation_account(message, self.account)
        if other is not None:  # the customer wrote to another of the workspace's bots: answer from that one
            return MaxSender(other[0], other[1], other[2].get("bot_token", "")).send(message)
        if not self.client.token:
            raise DeliveryError("the MAX bot has no token; set it in Settings → Channels", permanent=True)
        user_ids = [value for kind, value in message.recipients if kind == KIND]
        if not user_ids:
            raise DeliveryError("the customer has no MAX identity to write to", permanent=True)
        user_id = user_ids[-1]
        texts = split_text(message.text)
        files = files_of(message)
        keyboard = _keyboard(self.quick_replies)
        parts: list[Callable[[], str | None]] = []
        for i, piece in enumerate(texts):
            attachments = [keyboard] if keyboard and i == len(texts) - 1 and not files else []
            parts.append(partial(self._send, user_id, {"text": piece, "attachments": attachments}))
        for i, file in enumerate(files):
            extra = [keyboard] if keyboard and i == len(files) - 1 else []
            parts.append(partial(self._send_file, user_id, file, extra))
        if not parts:
            raise DeliveryError("the reply has neither text nor files", permanent=True)
        return send_parts(self.account, message, parts)


@task(retries=1, retry_delay=2)
def answer_callback(account_id: int, callback_id: str) -> bool:
    from otklik.platform.db import session_scope

    with session_scope(write=False) as session:
        account = session.get(ChannelAccount, account_id)
        if account is None:
            return False
        token = decrypt_secrets(account.secret).get("bot_token", "")
        base = str((account.config or {}).get("api_base_url") or DEFAULT_API)
    try:
        MaxClient(token, base).call("POST", "/answers", params={"callback_id": callback_id},
                                    json_body={"notification": None})
    except DeliveryError as exc:
        log.info("MAX answer to a button press failed: %s", exc)
        return False
    return True


class MaxPlugin(ChannelPlugin):
    kind = KIND
    title = "MAX"
    description = "Бот в мессенджере MAX: сообщения, вложения, кнопки быстрых ответов"
    icon = "MX"
    Config = MaxConfig
    secret_fields = ("bot_token", "webhook_secret")
    secret_titles: ClassVar[dict[str, str]] = {"bot_token": "Токен бота (business.max.ru → Чат-боты → Интеграция)",
                     "webhook_secret": "Секрет вебхука (создаётся сам)"}
    generated_secrets = ("webhook_secret",)
    has_webhook = True
    router = router

    def check_secrets(self, secrets: dict[str, str]) -> None:
        token = secrets.get("bot_token", "")
        if not token:
            raise field_error("secrets.bot_token", "is required: take it from business.max.ru → Чат-боты → Интеграция")
        if len(token) < 16 or any(c.isspace() for c in token):
            raise field_error("secrets.bot_token", "does not look like a MAX bot token")

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> MaxSender:
        return MaxSender(account, config, secrets.get("bot_token", ""))

    def _client(self, config: dict[str, Any], secrets: dict[str, str]) -> MaxClient:
        return MaxClient(secrets.get("bot_token", ""), str(config.get("api_base_url") or DEFAULT_API))

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        try:
            me = self._client(config, secrets).call("GET", "/me")
        except DeliveryError as exc:
            raise VendorError(f"MAX не ответил как ожидалось: {exc}") from None
        return f"Бот {me.get('name') or ''} (@{me.get('username') or me.get('user_id')}) на связи"

    def connect_webhook(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str],
                        url: str) -> str:
        try:
            self._client(config, secrets).call("POST", "/subscriptions", json_body={
                "url": url, "update_types": UPDATE_TYPES, "secret": secrets.get("webhook_secret")})
        except DeliveryError as exc:
            raise VendorError(f"MAX не принял подписку: {exc}") from None
        return f"Подписка на события создана: {url}"


PLUGIN = MaxPlugin()
