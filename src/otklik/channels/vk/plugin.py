"""VK (ВКонтакте) community channel: the Callback API in, the VK API out.

Inbound: `POST /api/v1/channels/vk/webhook/<token>` answers VK's `confirmation` with the configured string,
checks `group_id` and the `secret` (constant time), de-duplicates VK's retries by `event_id`, stores the
message and answers the plain text `ok` at once (VK re-sends anything else). Handled: message_new,
message_edit, message_event (callback buttons), wall_reply_new (a comment on a community post: a conversation
tagged as a public comment, answered as a wall comment); message_reply is VK echoing our own reply: ignored.

Outbound: messages.send with `random_id` derived from the outbox idempotency key (VK drops a repeat with the
same random_id, so a retried delivery is never shown twice), or wall.createComment with `guid` for comments.
Files in a private reply: photos (JPEG/PNG/GIF) through photos.getMessagesUploadServer → the upload server →
photos.saveMessagesPhoto, anything else through docs.getMessagesUploadServer → docs.save; the one
messages.send carries them all (up to 10). A reply on the wall with files is refused with an explanation.
VK errors 6/9/29 (rate limits) and 10 are retried with back-off; 901/902 (the person does not accept
messages) and 5/15/27 (token/permission) are permanent. Never logs the token or the secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Annotated, Any, ClassVar

import httpx
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from otklik.channels.base import ChannelPlugin, add_plugin, record_event, webhook_account
from otklik.channels.delivery import OutgoingFile, files_of
from otklik.channels.inbound_kit import (
    Malformed,
    as_int,
    latest_inbound_meta,
    parse_json,
    require_int,
    tag_conversation,
    unknown_account,
    wrong_secret,
)
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.platform.db import run_transaction, session_scope

log = logging.getLogger(__name__)
KIND = "vk"
PUBLIC_COMMENT_TAG = "публичный комментарий"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
RATE_LIMIT_ERRORS = {6: 1.0, 9: 60.0, 29: 3600.0}  # too many per second / flood control / method quota
PERMANENT_ERRORS = {5, 7, 15, 27, 100, 901, 902, 917, 945, 212, 213, 222, 223}
MAX_TEXT = 4096  # messages.send refuses longer texts


class VkConfig(BaseModel):
    group_id: Annotated[int, Field(gt=0, title="ID сообщества", description="Число из адреса club123456")]
    confirmation_code: Annotated[str, Field(min_length=1, max_length=64, title="Строка подтверждения",
                                            description="Из «Управление → Работа с API → Callback API»")]
    api_version: Annotated[str, Field(pattern=r"^5\.\d{1,3}$", title="Версия API")] = "5.199"
    api_base: Annotated[str, Field(pattern=r"^https?://", max_length=200, title="Адрес VK API",
                                   description="Менять только для прокси")] = "https://api.vk.com/method"


# -- inbound -------------------------------------------------------------------------------------------

def _attachment_lines(attachments: Any) -> tuple[list[str], list[dict[str, Any]]]:
    """VK attachments as readable lines for the agent, plus a compact structured copy for the message meta."""
    lines: list[str] = []
    kept: list[dict[str, Any]] = []
    if not isinstance(attachments, list):
        return lines, kept
    for item in attachments[:20]:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type", ""))[:32]
        raw = item.get(kind)
        body: dict[str, Any] = raw if isinstance(raw, dict) else {}
        if kind == "photo":
            raw_sizes = body.get("sizes")
            sizes = [s for s in (raw_sizes if isinstance(raw_sizes, list) else [])
                     if isinstance(s, dict) and isinstance(s.get("url"), str)]
            best = max(sizes, key=lambda s: as_int(s.get("width")) * as_int(s.get("height")), default=None)
            url = best["url"] if best else ""
            lines.append(f"[Фото] {url}".strip())
            kept.append({"type": "photo", "url": url})
        elif kind == "doc":
            title = str(body.get("title") or "файл")[:200]
            size_kb = as_int(body.get("size")) // 1024
            url = str(body.get("url") or "")
            lines.append(f"[Документ: {title}, {size_kb} КБ] {url}".strip())
            kept.append({"type": "doc", "title": title, "size": body.get("size"), "url": url})
        elif kind == "audio_message":
            seconds = as_int(body.get("duration"))
            url = str(body.get("link_mp3") or body.get("link_ogg") or "")
            transcript = str(body.get("transcript") or "").strip()
            line = f"[Голосовое сообщение {seconds // 60}:{seconds % 60:02d}] {url}".strip()
            lines.append(line + (f"\n«{transcript}»" if transcript else ""))
            kept.append({"type": "audio_message", "duration": seconds, "url": url})
        elif kind == "sticker":
            lines.append("[Стикер]")
            kept.append({"type": "sticker"})
        elif kind:
            lines.append(f"[Вложение: {kind}]")
            kept.append({"type": kind})
    return lines, kept


def _text_with_attachments(text: Any, attachments: Any) -> tuple[str, list[dict[str, Any]]]:
    lines, kept = _attachment_lines(attachments)
    body = text if isinstance(text, str) else ""
    return "\n".join(part for part in [body.strip(), *lines] if part), kept


def _sent_at(obj: dict[str, Any]) -> dt.datetime | None:
    stamp = obj.get("date")
    if isinstance(stamp, int) and 0 < stamp < 2**33:
        return dt.datetime.fromtimestamp(stamp, dt.UTC)
    return None


def _receive(session: Session, account: ChannelAccount, *, user_id: int, text: str, message_id: str,
             meta: dict[str, Any], sent_at: dt.datetime | None = None) -> conversations.Received | None:
    if user_id <= 0:
        return None  # written by a community (ours, echoing a reply): nothing for an agent
    if not text.strip():
        return None
    return conversations.receive(session, account.workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind="vk", identity_value=str(user_id), text=text[:conversations.MAX_BODY_CHARS],
        identity_verified=True, channel_message_id=message_id, sent_at=sent_at,
        # a wall comment is public: the top-level `kind` makes the assistant hand it to a person (PUBLIC_KINDS)
        meta={"vk": meta, **({"kind": "wall_comment"} if meta.get("kind") == "wall_comment" else {})}))


def handle_event(session: Session, token: str, payload: dict[str, Any]) -> tuple[str, dict[str, Any] | None]:
    """One Callback API request, inside one transaction. Returns the body to answer, and (for a callback
    button) what to acknowledge to VK after the answer."""
    account = webhook_account(session, KIND, token)
    if account is None:
        raise unknown_account()
    config = dict(account.config or {})
    event_type = payload.get("type")
    if not isinstance(event_type, str):
        raise Malformed("`type` must be a string")
    group_id = require_int(payload, "group_id", "body")
    if group_id != int(config.get("group_id") or 0):
        raise wrong_secret("group_id")
    secrets = decrypt_secrets(account.secret)
    expected = secrets.get("secret_key", "")
    given = payload.get("secret")
    if event_type == "confirmation":
        if given is not None and not hmac.compare_digest(str(given).encode(), expected.encode()):
            raise wrong_secret("secret")
        return str(config.get("confirmation_code", "")), None
    if not expected or not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected.encode()):
        raise wrong_secret("secret")
    event_id = payload.get("event_id")
    if not isinstance(event_id, str) or not event_id or len(event_id) > 100:
        raise Malformed("`event_id` must be a non-empty string")
    obj = payload.get("object")
    if not isinstance(obj, dict):
        raise Malformed("`object` must be an object")
    if record_event(session, account, f"cb:{event_id}") is None:
        return "ok", None  # VK re-sent an event we already stored
    prefix = f"vk:{group_id}"
    if event_type == "message_new":
        nested = obj.get("message")
        message: dict[str, Any] = nested if isinstance(nested, dict) else obj  # API < 5.103: flat
        from_id = require_int(message, "from_id", "object.message")
        peer_id = require_int(message, "peer_id", "object.message")
        vk_id = require_int(message, "id", "object.message")
        text, kept = _text_with_attachments(message.get("text"), message.get("attachments"))
        msg_key = f"{prefix}:msg:{vk_id}" if vk_id else f"{prefix}:ev:{event_id}"
        _receive(session, account, user_id=from_id, text=text, message_id=msg_key, sent_at=_sent_at(message),
                 meta={"kind": "message", "peer_id": peer_id, "message_id": vk_id, "attachments": kept})
    elif event_type == "message_edit":
        from_id = require_int(obj, "from_id", "object")
        peer_id = require_int(obj, "peer_id", "object")
        vk_id = require_int(obj, "id", "object")
        if obj.get("out") == 1:
            return "ok", None  # an edit of our own reply
        text, kept = _text_with_attachments(obj.get("text"), obj.get("attachments"))
        _receive(session, account, user_id=from_id, text=f"✏️ Клиент изменил сообщение:\n{text}",
                 message_id=f"{prefix}:edit:{vk_id}:{event_id}", sent_at=None,
                 meta={"kind": "message", "peer_id": peer_id, "message_id": vk_id, "edited": True,
                       "attachments": kept})
    elif event_type == "wall_reply_new":
        from_id = require_int(obj, "from_id", "object")
        comment_id = require_int(obj, "id", "object")
        post_id = require_int(obj, "post_id", "object")
        owner_id = obj.get("post_owner_id", obj.get("owner_id", -group_id))
        if isinstance(owner_id, bool) or not isinstance(owner_id, int):
            raise Malformed("object.post_owner_id must be an integer")
        text, kept = _text_with_attachments(obj.get("text"), obj.get("attachments"))
        received = _receive(
            session, account, user_id=from_id, text=text, message_id=f"{prefix}:wall:{post_id}:{comment_id}",
            sent_at=_sent_at(obj), meta={"kind": "wall_comment", "owner_id": owner_id, "post_id": post_id,
                                         "comment_id": comment_id, "attachments": kept,
                                         "url": f"https://vk.com/wall{owner_id}_{post_id}?reply={comment_id}"})
        if received is not None and not received.duplicate:
            tag_conversation(session, account.workspace_id, received.conversation.id, PUBLIC_COMMENT_TAG)
    elif event_type == "message_event":
        user_id = require_int(obj, "user_id", "object")
        peer_id = require_int(obj, "peer_id", "object")
        button_event = obj.get("event_id")
        if not isinstance(button_event, str) or not button_event:
            raise Malformed("object.event_id must be a non-empty string")
        button = obj.get("payload")
        label = ""
        if isinstance(button, dict):
            label = str(button.get("label") or button.get("text") or button.get("command") or "")
        if not label:
            label = json.dumps(button, ensure_ascii=False)[:500]
        _receive(session, account, user_id=user_id, text=f"Нажата кнопка: {label}",
                 message_id=f"{prefix}:button:{button_event}",
                 meta={"kind": "message", "peer_id": peer_id, "button": button})
        return "ok", {"account_id": account.id, "event_id": button_event, "user_id": user_id, "peer_id": peer_id}
    # message_reply (our own reply echoed back), typing states, group joins...: acknowledged, nothing stored
    return "ok", None


def _answer_button(ack: dict[str, Any]) -> None:
    """Stops the spinner on the customer's callback button (messages.sendMessageEventAnswer); best effort."""
    with session_scope(write=False) as session:
        account = session.get(ChannelAccount, ack["account_id"])
        if account is None:
            return
        config, secrets = dict(account.config or {}), decrypt_secrets(account.secret)
    try:
        call_api(config, secrets, "messages.sendMessageEventAnswer",
                 {"event_id": ack["event_id"], "user_id": ack["user_id"], "peer_id": ack["peer_id"]})
    except DeliveryError as exc:
        log.info("VK callback button answer failed: %s", exc)


router = APIRouter(tags=["channels"])


@router.post("/channels/vk/webhook/{token}", include_in_schema=False)
async def vk_callback(token: str, request: Request, background: BackgroundTasks) -> PlainTextResponse:
    payload = parse_json(await request.body())
    answer, ack = await run_in_threadpool(run_transaction, lambda session: handle_event(session, token, payload))
    if ack is not None:
        background.add_task(_answer_button, ack)
    return PlainTextResponse(answer)


# -- outbound ------------------------------------------------------------------------------------------

def random_id(idempotency_key: str) -> int:
    """VK's own de-duplication key for messages.send: the same outbox row always gets the same number."""
    return int.from_bytes(hashlib.sha256(idempotency_key.encode()).digest()[:4], "big") & 0x7FFFFFFF


def _upload_url(server: Any) -> str:
    url = server.get("upload_url") if isinstance(server, dict) else None
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise DeliveryError("VK named no upload server for the file")
    return url


PHOTO_TYPES = {"image/jpeg", "image/png", "image/gif"}
MAX_PHOTO_BYTES = 50 * 1024 * 1024
MAX_ATTACHMENTS = 10
# messages.send: at most 10 attachments; documents up to 200 MB, photos up to 50 MB
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    max_bytes=200 * 1_048_576, max_files=MAX_ATTACHMENTS, by_type=(("image/", 50 * 1_048_576),),
    note="VK: at most 10 files, documents up to 200 MB, photos up to 50 MB"))


def call_api(config: dict[str, Any], secrets: dict[str, str], method: str, params: dict[str, Any]) -> Any:
    token = secrets.get("access_token")
    if not token:
        raise DeliveryError("VK: the community access token is not set", permanent=True)
    url = f"{str(config.get('api_base') or 'https://api.vk.com/method').rstrip('/')}/{method}"
    data = {**{k: str(v) for k, v in params.items()}, "access_token": token,
            "v": str(config.get("api_version") or "5.199")}
    try:
        response = httpx.post(url, data=data, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"VK unreachable: {type(exc).__name__}") from None
    if response.status_code == 429:
        raise DeliveryError("VK: HTTP 429", retry_after=_retry_after(response))
    if response.status_code >= 400:
        raise DeliveryError(f"VK: HTTP {response.status_code}", permanent=400 <= response.status_code < 500
                            and response.status_code not in (408, 429))
    try:
        body = response.json()
    except ValueError:
        raise DeliveryError("VK answered something that is not JSON") from None
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        code = int(error.get("error_code") or 0)
        text = str(error.get("error_msg") or "")[:300]
        if code in RATE_LIMIT_ERRORS:
            raise DeliveryError(f"VK rate limit (error {code}): {text}", retry_after=RATE_LIMIT_ERRORS[code])
        raise DeliveryError(f"VK error {code}: {text}", permanent=code in PERMANENT_ERRORS)
    if not isinstance(body, dict) or "response" not in body:
        raise DeliveryError("VK answered without `response`")
    return body["response"]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else None


class VkSender:
    def __init__(self, config: dict[str, Any], secrets: dict[str, str]):
        self.config = config
        self.secrets = secrets

    def _upload(self, upload_url: str, field: str, file: OutgoingFile) -> dict[str, Any]:
        """POST the file to the upload server VK named (multipart), returning its JSON answer."""
        try:
            content = file.path.read_bytes()
        except OSError:
            raise DeliveryError(f"the file {file.filename} is missing from storage", permanent=True) from None
        try:
            response = httpx.post(upload_url, files={field: (file.filename, content, file.content_type)},
                                  timeout=httpx.Timeout(60.0, connect=5.0))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"VK upload server unreachable: {type(exc).__name__}") from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code >= 400 or not isinstance(data, dict) or data.get("error"):
            raise DeliveryError(f"VK upload of {file.filename} failed (HTTP {response.status_code})",
                                permanent=400 <= response.status_code < 500 and response.status_code != 429)
        return data

    def _attachment(self, peer_id: int, file: OutgoingFile) -> str:
        """Upload one file for a message and return its `attachment` string (photo… or doc…)."""
        if file.content_type in PHOTO_TYPES and file.size <= MAX_PHOTO_BYTES:
            server = call_api(self.config, self.secrets, "photos.getMessagesUploadServer", {"peer_id": peer_id})
            up = self._upload(_upload_url(server), "photo", file)
            saved = call_api(self.config, self.secrets, "photos.saveMessagesPhoto", {
                "photo": up.get("photo", ""), "server": up.get("server", ""), "hash": up.get("hash", "")})
            photo = saved[0] if isinstance(saved, list) and saved else {}
            ref = f"photo{photo.get('owner_id')}_{photo.get('id')}"
            return ref + (f"_{photo['access_key']}" if photo.get("access_key") else "")
        server = call_api(self.config, self.secrets, "docs.getMessagesUploadServer", {"type": "doc", "peer_id": peer_id})
        up = self._upload(_upload_url(server), "file", file)
        saved = call_api(self.config, self.secrets, "docs.save", {"file": up.get("file", ""), "title": file.filename})
        doc = saved.get("doc", {}) if isinstance(saved, dict) else {}
        return f"doc{doc.get('owner_id')}_{doc.get('id')}"

    def send(self, message: OutboundMessage) -> str | None:
        text = message.text.strip()
        files = files_of(message) if message.attachments else []
        if not text and not files:
            raise DeliveryError("VK: an empty reply", permanent=True)
        if len(files) > MAX_ATTACHMENTS:
            raise DeliveryError(f"VK takes at most {MAX_ATTACHMENTS} files in one message", permanent=True)
        with session_scope(write=False) as session:
            target = latest_inbound_meta(session, message.conversation_id, KIND, "vk")
        if target.get("kind") == "wall_comment" and files:
            raise DeliveryError("VK: files cannot be attached to a reply on the wall; write to the customer in "
                                "private messages", permanent=True)
        if target.get("kind") == "wall_comment":
            result = call_api(self.config, self.secrets, "wall.createComment", {
                "owner_id": target["owner_id"], "post_id": target["post_id"],
                "from_group": int(self.config["group_id"]), "reply_to_comment": target["comment_id"],
                "message": text[:MAX_TEXT], "guid": message.idempotency_key})
            comment_id = result.get("comment_id") if isinstance(result, dict) else None
            return f"vk:{self.config['group_id']}:wall:{target['post_id']}:{comment_id}" if comment_id else None
        peer_id = target.get("peer_id")
        if peer_id is None:
            peer_id = next((int(v) for k, v in message.recipients if k == "vk"), None)
        if peer_id is None:
            raise DeliveryError("VK: the customer has no VK id to write to", permanent=True)
        params: dict[str, Any] = {"peer_id": peer_id, "random_id": random_id(message.idempotency_key),
                                  "message": text[:MAX_TEXT]}
        if files:
            # uploads reach nobody by themselves; the one messages.send carries them all, and its random_id
            # makes VK drop a repeat of it, so a retry after a crash cannot deliver the files twice
            params["attachment"] = ",".join(self._attachment(int(peer_id), f) for f in files)
        result = call_api(self.config, self.secrets, "messages.send", params)
        return f"vk:{self.config['group_id']}:msg:{result}" if isinstance(result, int) else None


class VkPlugin(ChannelPlugin):
    kind = KIND
    title = "ВКонтакте"
    description = "Сообщения сообщества и комментарии к постам (Callback API)"
    icon = "VK"
    Config = VkConfig
    secret_fields = ("access_token", "secret_key")
    secret_titles: ClassVar[dict[str, str]] = {"access_token": "Ключ доступа сообщества (messages, wall, manage)",
                     "secret_key": "Секретный ключ Callback API"}
    has_webhook = True
    router = router

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> VkSender | None:
        if not secrets.get("access_token") or not config.get("group_id"):
            return None
        return VkSender(config, secrets)

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        from otklik.channels.base import VendorError

        try:
            groups = call_api(config, secrets, "groups.getById", {"group_id": config.get("group_id")})
        except DeliveryError as exc:
            raise VendorError(str(exc)) from None
        if isinstance(groups, dict):
            groups = groups.get("groups", [])
        name = groups[0].get("name", "") if isinstance(groups, list) and groups and isinstance(groups[0], dict) else ""
        return f"Сообщество: {name}" if name else "VK API отвечает"


PLUGIN = VkPlugin()


def register() -> None:
    add_plugin(PLUGIN)
