"""WhatsApp Cloud API channel.

Inbound: `GET /api/v1/channels/whatsapp/webhook/<token>` answers Meta's verification handshake
(`hub.challenge` when `hub.verify_token` matches); `POST` checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw
body with the app secret, constant time) before reading anything, stores messages (text, image, document,
audio, video, location, interactive and button replies) de-duplicated by their `wamid`, and applies delivery
statuses (sent / delivered / read / failed) to our outbound messages. A contact's `wa_id` is their phone: the
customer gets a verified phone identity too, so a call from that number finds the same person.

The 24-hour customer-service window: a free-form reply is allowed only within 24 hours of the customer's
last WhatsApp message; outside it only an approved template may be sent. `reply()` refuses other replies with
a 409 that says so, the agent UI learns it ahead of time from `reply_checks.explain()`, and
`POST /api/v1/whatsapp/conversations/{id}/template` sends a template. Never logs tokens or secrets.

Outbound: the text, then each file uploaded to `/<phone id>/media` and sent by its media id (JPEG/PNG up to
5 MB as an image, anything else as a document up to 100 MB); each part goes once, also across retries.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.channels import meta_graph
from otklik.channels.base import ChannelPlugin, add_plugin, finish_event, record_event
from otklik.channels.delivery import OutgoingFile, files_of, send_parts
from otklik.channels.inbound_kit import (
    Malformed,
    as_dict,
    latest_inbound_meta,
)
from otklik.channels.jobs import MAX_EVENT_ATTEMPTS, enqueue_event_after_commit
from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations import attachments, reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.delivery import record_delivery_status
from otklik.conversations.models import Conversation, DeliveryStatus, Direction, Message
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.customers.suggestions import link_verified_identity
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import Conflict, DomainError

log = logging.getLogger(__name__)
KIND = "whatsapp"
# Cloud API media limits as the sender below uses them: JPEG/PNG images 5 MB, everything else a document, 100 MB
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    max_bytes=100 * 1_048_576, max_files=10, by_type=(("image/jpeg", 5 * 1_048_576), ("image/png", 5 * 1_048_576)),
    note="WhatsApp: JPEG and PNG images up to 5 MB; anything else goes as a document, up to 100 MB"))
WINDOW = dt.timedelta(hours=24)  # Meta's customer-service window: free-form messages only within it
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RETRY_CODES = {4, 80007, 130429, 131048, 131056, 131000, 133004}  # throughput / spam / pair rate limits
MAX_TEXT = 4096
STATUS_MAP = {"sent": DeliveryStatus.sent, "delivered": DeliveryStatus.delivered, "read": DeliveryStatus.read,
              "failed": DeliveryStatus.failed}


class WhatsAppConfig(BaseModel):
    phone_number_id: Annotated[str, Field(pattern=r"^[0-9]{5,30}$", title="Phone number ID",
                                          description="Из WhatsApp Manager → API Setup")]
    api_version: Annotated[str, Field(pattern=r"^v\d{1,3}\.\d$", title="Версия Graph API")] = "v21.0"
    api_base: Annotated[str, Field(pattern=r"^https?://", max_length=200, title="Адрес Graph API",
                                   description="Менять только для прокси")] = "https://graph.facebook.com"


# -- the 24-hour window --------------------------------------------------------------------------------

def last_customer_message_at(session: Session, customer_id: int) -> dt.datetime | None:
    return session.scalar(select(func.max(Message.created_at)).join(
        Conversation, Conversation.id == Message.conversation_id).where(
        Conversation.customer_id == customer_id, Message.channel == KIND,
        Message.direction == Direction.inbound.value))


def window_closes_at(session: Session, conversation: Conversation) -> dt.datetime | None:
    last = last_customer_message_at(session, conversation.customer_id)
    if last is None:
        return None
    if last.tzinfo is None:
        last = last.replace(tzinfo=dt.UTC)
    return last + WINDOW


def window_check(session: Session, conversation: Conversation, meta: dict[str, Any]) -> str | None:
    if meta.get("whatsapp_template"):
        return None  # approved templates may be sent at any time
    closes = window_closes_at(session, conversation)
    if closes is not None and closes > utcnow():
        return None
    return WINDOW_CLOSED


# One fixed sentence (no ids in it), so the agent's UI can show it in the agent's language (web/locale).
WINDOW_CLOSED = ("WhatsApp allows free-form replies only within 24 hours of the customer's last message; the "
                 "window is closed, so only an approved template can be sent now "
                 "(POST /api/v1/whatsapp/conversations/{id}/template).")


# -- inbound -------------------------------------------------------------------------------------------

def verify_signature(app_secret: str, raw: bytes, header: str | None) -> None:
    meta_graph.verify_signature("WhatsApp", app_secret, raw, header)


def _media_line(label: str, body: dict[str, Any]) -> str:
    parts = [f"[{label}"]
    if body.get("filename"):
        parts.append(f": {str(body['filename'])[:200]}")
    parts.append("]")
    caption = str(body.get("caption") or "").strip()
    return "".join(parts) + (f" {caption}" if caption else "")


def message_text(message: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A WhatsApp message as text for the agent, plus structured details for the message meta."""
    kind = str(message.get("type") or "")
    raw = message.get(kind)
    body: dict[str, Any] = raw if isinstance(raw, dict) else {}
    extra: dict[str, Any] = {"type": kind}
    if kind == "text":
        return str(body.get("body") or ""), extra
    if kind in ("image", "document", "audio", "video", "sticker"):
        label = {"image": "Изображение", "document": "Документ", "audio": "Аудио", "video": "Видео",
                 "sticker": "Стикер"}[kind]
        if kind == "audio" and body.get("voice"):
            label = "Голосовое сообщение"
        extra["media"] = {"id": str(body.get("id") or "")[:100], "mime_type": str(body.get("mime_type") or "")[:100],
                          "sha256": str(body.get("sha256") or "")[:100]}
        return _media_line(label, body), extra
    if kind == "location":
        lat, lon = body.get("latitude"), body.get("longitude")
        if not isinstance(lat, int | float) or not isinstance(lon, int | float):
            raise Malformed("location needs numeric latitude and longitude")
        name = " ".join(str(body.get(k) or "") for k in ("name", "address")).strip()
        extra["location"] = {"latitude": lat, "longitude": lon}
        return (f"[Геопозиция] {name} https://maps.google.com/?q={lat},{lon}".replace("  ", " "), extra)
    if kind == "interactive":
        reply = body.get("button_reply") or body.get("list_reply") or {}
        if not isinstance(reply, dict):
            raise Malformed("interactive reply must be an object")
        extra["reply_id"] = str(reply.get("id") or "")[:200]
        title = str(reply.get("title") or "")
        return f"Выбран вариант: {title}" + (f" — {reply['description']}" if reply.get("description") else ""), extra
    if kind == "button":
        extra["payload"] = str(body.get("payload") or "")[:500]
        return f"Нажата кнопка: {body.get('text') or body.get('payload') or ''}", extra
    if kind == "reaction":
        return f"Реакция {body.get('emoji') or ''} на сообщение".strip(), extra
    if kind == "contacts":
        shared = message.get("contacts")
        names = [str(as_dict(c.get("name")).get("formatted_name") or "")
                 for c in (shared if isinstance(shared, list) else []) if isinstance(c, dict)]
        return "[Контакт] " + ", ".join(n for n in names if n), extra
    return f"[Сообщение WhatsApp типа {kind or 'unknown'}: не поддерживается]", extra


def _timestamp(value: Any) -> dt.datetime | None:
    try:
        stamp = int(value)
    except (TypeError, ValueError):
        return None
    return dt.datetime.fromtimestamp(stamp, dt.UTC) if 0 < stamp < 2**33 else None


def _stored(session: Session, workspace_id: int, wamid: str) -> bool:
    return session.scalar(select(Message.id).where(Message.workspace_id == workspace_id, Message.channel == KIND,
                                                   Message.channel_message_id == wamid[:200])) is not None


def store_message(session: Session, account: ChannelAccount, message: dict[str, Any], name: str, *,
                  attachment_ids: tuple[int, ...] = (), notes: tuple[str, ...] = ()) -> bool:
    """One WhatsApp message into its conversation (False: stored before). The sender's wa_id is their
    phone number, proven by WhatsApp: the customer gets a verified phone identity too."""
    wa_id = message["from"]
    text, extra = message_text(message)
    context = message.get("context")
    if isinstance(context, dict) and context.get("id"):
        extra["reply_to"] = str(context["id"])[:200]
    if notes:
        text = "\n".join((text, *notes))
    received = conversations.receive(session, account.workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind="whatsapp", identity_value="+" + wa_id.lstrip("+"),
        text=text[:conversations.MAX_BODY_CHARS] or "[пустое сообщение]", customer_name=name,
        identity_verified=True, channel_message_id=message["id"][:200], sent_at=_timestamp(message.get("timestamp")),
        attachment_ids=attachment_ids, meta={"whatsapp": {"wa_id": wa_id, **extra}}))
    if received.duplicate:
        return False
    link_verified_identity(session, account.workspace_id, received.conversation.customer_id,
                           kind="phone", value="+" + wa_id.lstrip("+"))
    return True


class _MediaUnavailable(Exception):
    """Meta refused the media (gone, too large): a retry cannot help; the message is stored with a note."""


def _graph_base(config: dict[str, Any]) -> str:
    return meta_graph.graph_base(config, "https://graph.facebook.com")


def download_media(config: dict[str, Any], secrets: dict[str, str], media_id: str) -> tuple[bytes, str]:
    """GET /<media id> gives a short-lived URL; GET that URL (with the same bearer token) gives the bytes."""
    cap = get_settings().max_attachment_bytes
    headers = {"Authorization": f"Bearer {secrets.get('access_token', '')}"}
    info = httpx.get(f"{_graph_base(config)}/{media_id}", headers=headers, timeout=TIMEOUT)
    if 400 <= info.status_code < 500 and info.status_code != 429:
        raise _MediaUnavailable(f"Meta: HTTP {info.status_code}")
    info.raise_for_status()
    meta = info.json()
    if int(meta.get("file_size") or 0) > cap:
        raise _MediaUnavailable("the file is larger than this server accepts")
    with httpx.stream("GET", str(meta.get("url") or ""), headers=headers, timeout=TIMEOUT) as response:
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise _MediaUnavailable(f"Meta: HTTP {response.status_code}")
        response.raise_for_status()
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > cap:
                raise _MediaUnavailable("the file is larger than this server accepts")
    return bytes(data), str(meta.get("mime_type") or "application/octet-stream")


def process_pending(event_id: int) -> None:
    """After the webhook answered: fetch a media message's file from Meta, then store the message with it.
    Network trouble is retried by the channel sweep; the last attempt stores the message with a note."""
    with session_scope(write=False) as session:
        event = session.get(ChannelEvent, event_id)
        if event is None or event.status != EventStatus.pending.value or not event.payload:
            return
        account = session.get(ChannelAccount, event.account_id)
        if account is None:
            return
        payload, attempts = dict(event.payload), event.attempts
        config, secrets = dict(account.config or {}), decrypt_secrets(account.secret)
    message = payload["message"]
    kind = str(message.get("type"))
    body = message.get(kind) or {}
    filename = str(body.get("filename") or f"whatsapp-{kind}")
    note: str | None = None
    data, mime = b"", ""
    try:
        data, mime = download_media(config, secrets, str(body.get("id")))
    except _MediaUnavailable as exc:
        note = f"[файл не загружен из WhatsApp: {exc}]"
    except (httpx.HTTPError, ValueError) as exc:
        if attempts < MAX_EVENT_ATTEMPTS:
            raise  # the sweep tries again
        note = f"[файл не удалось загрузить из WhatsApp: {type(exc).__name__}]"

    def work(session: Session) -> None:
        event = session.get(ChannelEvent, event_id)
        account = session.get(ChannelAccount, event.account_id) if event is not None else None
        if event is None or account is None or event.status != EventStatus.pending.value:
            return
        ids: tuple[int, ...] = ()
        notes = (note,) if note else ()
        if data:
            if "." not in filename:
                extension = {"image/jpeg": ".jpg", "image/png": ".png", "image/webp": ".webp", "audio/ogg": ".ogg",
                             "audio/mpeg": ".mp3", "video/mp4": ".mp4", "application/pdf": ".pdf"}
                name = filename + extension.get(mime.split(";")[0].strip(), "")
            else:
                name = filename
            try:
                stored = attachments.store(session, Actor.system(account.workspace_id, kind="customer"),
                                           filename=name, content_type=mime, chunks=[data])
                ids = (stored.id,)
            except DomainError as exc:
                notes = (f"[файл {name} не сохранён: {exc.message}]",)
        store_message(session, account, message, str(payload.get("name") or ""), attachment_ids=ids, notes=notes)
        finish_event(event)

    run_transaction(work)


def handle_notification(session: Session, account: ChannelAccount, payload: dict[str, Any]) -> dict[str, int]:
    """A verified webhook notification, inside one transaction: messages stored, statuses applied."""
    config = dict(account.config or {})
    counts = {"messages": 0, "duplicates": 0, "statuses": 0}
    entries = payload.get("entry")
    if payload.get("object") != "whatsapp_business_account" or not isinstance(entries, list):
        raise Malformed("expected object=whatsapp_business_account with an `entry` list")
    for entry in entries:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        if not isinstance(changes, list):
            raise Malformed("entry.changes must be a list")
        for change in changes:
            if not isinstance(change, dict) or change.get("field") != "messages":
                continue  # account updates, template reviews...: not ours to show
            value = change.get("value")
            if not isinstance(value, dict):
                raise Malformed("changes.value must be an object")
            metadata = as_dict(value.get("metadata"))
            if str(metadata.get("phone_number_id") or "") != str(config.get("phone_number_id")):
                continue  # another number of the same business account
            contacts = value.get("contacts")
            names = {str(c.get("wa_id")): str(as_dict(c.get("profile")).get("name") or "")[:200]
                     for c in (contacts if isinstance(contacts, list) else []) if isinstance(c, dict)}
            messages, statuses = value.get("messages") or [], value.get("statuses") or []
            if not isinstance(messages, list) or not isinstance(statuses, list):
                raise Malformed("value.messages and value.statuses must be lists")
            for message in messages:
                if not isinstance(message, dict) or not isinstance(message.get("id"), str) \
                        or not isinstance(message.get("from"), str):
                    raise Malformed("every message needs string `id` and `from`")
                _, extra = message_text(message)  # validates the shape before anything is stored
                media = extra.get("media")
                if media and media.get("id"):
                    # the file is fetched from Meta after we answered; the message is stored with it then
                    if _stored(session, account.workspace_id, message["id"]):
                        counts["duplicates"] += 1
                        continue
                    event = record_event(session, account, f"media:{message['id']}"[:200], pending=True,
                                         payload={"message": message, "name": names.get(message["from"], "")})
                    if event is None:
                        counts["duplicates"] += 1
                        continue
                    enqueue_event_after_commit(session, event.id)
                    counts["messages"] += 1
                    continue
                if store_message(session, account, message, names.get(message["from"], "")):
                    counts["messages"] += 1
                else:
                    counts["duplicates"] += 1
            for status in statuses:
                if not isinstance(status, dict) or not isinstance(status.get("id"), str):
                    raise Malformed("every status needs a string `id`")
                mapped = STATUS_MAP.get(str(status.get("status")))
                if mapped is None:
                    continue
                error = None
                if mapped is DeliveryStatus.failed:
                    raw_errors = status.get("errors")
                    errors = [e for e in (raw_errors if isinstance(raw_errors, list) else []) if isinstance(e, dict)]
                    error = "; ".join(f"{e.get('code')}: {e.get('title') or e.get('message') or ''}"
                                      for e in errors) or None
                record_delivery_status(session, account.workspace_id, channel=KIND,
                                       channel_message_id=status["id"], status=mapped, error=error)
                counts["statuses"] += 1
    return counts


router = APIRouter(tags=["channels"])


@router.get("/channels/whatsapp/webhook/{token}", include_in_schema=False)
def whatsapp_verify(token: str, request: Request) -> PlainTextResponse:
    return meta_graph.verify_handshake(KIND, token, request)


@router.post("/channels/whatsapp/webhook/{token}", include_in_schema=False)
async def whatsapp_notify(token: str, request: Request) -> dict[str, int]:
    return await meta_graph.receive_notification(KIND, "WhatsApp", token, request, handle_notification)


# -- templates (the API field for sending outside the window) ------------------------------------------

class TemplateIn(BaseModel):
    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,512}$", description="The approved template's name")]
    language: Annotated[str, Field(pattern=r"^[a-z]{2,3}(_[A-Z]{2})?$", description="e.g. ru, en_US")] = "ru"
    parameters: Annotated[list[Annotated[str, Field(min_length=1, max_length=1024)]],
                          Field(max_length=20, description="Body parameters {{1}}, {{2}}... in order")] = []


class TemplateOut(BaseModel):
    message_id: int
    conversation_id: int
    delivery_status: str


class WindowOut(BaseModel):
    open: bool
    closes_at: dt.datetime | None
    explanation: str | None


api_router = APIRouter(tags=["whatsapp"])


@api_router.post("/whatsapp/conversations/{conversation_id}/template", response_model=TemplateOut,
                 status_code=201)
def send_template(conversation_id: int, body: TemplateIn, actor: CurrentActor, db: DB) -> TemplateOut:
    """Send an approved WhatsApp template: allowed also outside the 24-hour window."""
    actor.require(Role.agent)
    conversation = conversations.get_conversation(db, actor, conversation_id)
    if conversation.channel != KIND:
        raise Conflict("templates are a WhatsApp feature; this conversation is on " + conversation.channel,
                       code="wrong_channel")
    preview = f"[Шаблон WhatsApp «{body.name}» ({body.language})]"
    if body.parameters:
        preview += " " + " · ".join(body.parameters)
    message = conversations.reply(db, actor, conversation_id, text=preview, meta={"whatsapp_template": {
        "name": body.name, "language": body.language, "parameters": body.parameters}})
    return TemplateOut(message_id=message.id, conversation_id=conversation_id,
                       delivery_status=message.delivery_status)


@api_router.get("/whatsapp/conversations/{conversation_id}/window", response_model=WindowOut)
def reply_window(conversation_id: int, actor: CurrentActor, db: DB) -> WindowOut:
    """Whether a free-form reply can be sent now (the 24-hour customer-service window)."""
    conversation = conversations.get_conversation(db, actor, conversation_id)
    if conversation.channel != KIND:
        raise Conflict("the reply window is a WhatsApp rule; this conversation is on " + conversation.channel,
                       code="wrong_channel")
    closes = window_closes_at(db, conversation)
    reason = window_check(db, conversation, {})
    return WindowOut(open=reason is None, closes_at=closes, explanation=reason)


# -- outbound ------------------------------------------------------------------------------------------

# Cloud API media limits: images (JPEG/PNG) up to 5 MB; anything else goes as a document, up to 100 MB.
IMAGE_TYPES = {"image/jpeg", "image/png"}
MAX_IMAGE_BYTES = 5 * 1024 * 1024
MAX_DOCUMENT_BYTES = 100 * 1024 * 1024


class WhatsAppSender:
    def __init__(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]):
        self.account = account
        self.config = config
        self.secrets = secrets

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.secrets.get('access_token', '')}"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        return headers

    @staticmethod
    def _checked(response: httpx.Response) -> dict[str, Any]:
        """The JSON answer, or a `DeliveryError` saying whether a retry can help."""
        try:
            data = response.json()
        except ValueError:
            data = {}
        error = data.get("error") if isinstance(data, dict) else None
        if response.status_code == 429 or (isinstance(error, dict) and error.get("code") in RETRY_CODES):
            retry = response.headers.get("retry-after", "")
            code = error.get("code") if isinstance(error, dict) else 429
            raise DeliveryError(f"WhatsApp rate limit ({code})",
                                retry_after=float(retry) if retry.isdigit() else 60.0)
        if isinstance(error, dict) or response.status_code >= 400:
            code = error.get("code") if isinstance(error, dict) else response.status_code
            text = str(error.get("message") if isinstance(error, dict) else "")[:300]
            permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409)
            raise DeliveryError(f"WhatsApp error {code}: {text}", permanent=permanent)
        return data if isinstance(data, dict) else {}

    def _post(self, body: dict[str, Any], idempotency_key: str) -> str | None:
        url = f"{_graph_base(self.config)}/{self.config['phone_number_id']}/messages"
        try:
            response = httpx.post(url, json=body, headers=self._headers(idempotency_key), timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"WhatsApp unreachable: {type(exc).__name__}") from None
        messages = self._checked(response).get("messages")
        if isinstance(messages, list) and messages and isinstance(messages[0], dict):
            return str(messages[0].get("id") or "") or None
        return None

    def _upload(self, file: OutgoingFile) -> str:
        """POST /<phone id>/media (multipart): the media id a message can then refer to."""
        url = f"{_graph_base(self.config)}/{self.config['phone_number_id']}/media"
        try:
            content = file.path.read_bytes()
        except OSError:
            raise DeliveryError(f"the file {file.filename} is missing from storage", permanent=True) from None
        try:
            response = httpx.post(url, headers=self._headers(), timeout=httpx.Timeout(60.0, connect=5.0),
                                  data={"messaging_product": "whatsapp", "type": file.content_type},
                                  files={"file": (file.filename, content, file.content_type)})
        except httpx.HTTPError as exc:
            raise DeliveryError(f"WhatsApp unreachable: {type(exc).__name__}") from None
        media_id = self._checked(response).get("id")
        if not media_id:
            raise DeliveryError("WhatsApp returned no media id for the uploaded file")
        return str(media_id)

    def _send_file(self, base: dict[str, Any], file: OutgoingFile, idempotency_key: str) -> str | None:
        media_id = self._upload(file)
        if file.content_type in IMAGE_TYPES and file.size <= MAX_IMAGE_BYTES:
            body = {**base, "type": "image", "image": {"id": media_id}}
        else:
            body = {**base, "type": "document", "document": {"id": media_id, "filename": file.filename[:240]}}
        return self._post(body, idempotency_key)

    def send(self, message: OutboundMessage) -> str | None:
        with session_scope(write=False) as session:
            target = latest_inbound_meta(session, message.conversation_id, KIND, "whatsapp")
            stored = session.get(Message, message.message_id)
            template = (stored.meta or {}).get("whatsapp_template") if stored is not None else None
        wa_id = target.get("wa_id") or next((v.lstrip("+") for k, v in message.recipients if k == "whatsapp"),
                                            None)
        if not wa_id:
            raise DeliveryError("WhatsApp: the customer has no WhatsApp number", permanent=True)
        base: dict[str, Any] = {"messaging_product": "whatsapp", "recipient_type": "individual", "to": wa_id}
        if template:
            body = {**base, "type": "template",
                    "template": {"name": template["name"], "language": {"code": template["language"]}}}
            if template.get("parameters"):
                body["template"]["components"] = [{"type": "body", "parameters": [
                    {"type": "text", "text": p} for p in template["parameters"]]}]
            return self._post(body, message.idempotency_key)
        files = files_of(message) if message.attachments else []
        for file in files:
            if file.size > MAX_DOCUMENT_BYTES:
                raise DeliveryError(f"WhatsApp accepts files up to 100 MB; {file.filename} is larger",
                                    permanent=True)
        parts: list[Callable[[], str | None]] = []
        if message.text.strip() or not files:
            parts.append(partial(self._post, {**base, "type": "text",
                                              "text": {"preview_url": False, "body": message.text[:MAX_TEXT]}},
                                 message.idempotency_key))
        for i, file in enumerate(files, start=1):
            parts.append(partial(self._send_file, base, file, f"{message.idempotency_key}:{i}"))
        if len(parts) == 1:
            return parts[0]()
        # text, then each file: a part that went out is not sent again when a later one fails and is retried
        return send_parts(self.account, message, parts)


class WhatsAppPlugin(ChannelPlugin):
    kind = KIND
    title = "WhatsApp"
    description = "WhatsApp Business Cloud API: сообщения, статусы доставки, шаблоны вне 24-часового окна"
    icon = "WA"
    Config = WhatsAppConfig
    secret_fields = ("access_token", "app_secret", "verify_token")
    secret_titles: ClassVar[dict[str, str]] = {"access_token": "Постоянный токен доступа (System User)",
                     "app_secret": "App Secret приложения (для X-Hub-Signature-256)",
                     "verify_token": "Verify token (любая строка, та же в настройках вебхука Meta)"}
    has_webhook = True
    router = router

    def process_pending(self, event_id: int) -> None:
        process_pending(event_id)

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]
               ) -> WhatsAppSender | None:
        if not secrets.get("access_token") or not config.get("phone_number_id"):
            return None
        return WhatsAppSender(account, config, secrets)


PLUGIN = WhatsAppPlugin()


def register() -> None:
    add_plugin(PLUGIN)
    reply_checks.register(KIND, window_check)
