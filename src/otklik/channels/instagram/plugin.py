"""Instagram channel: direct messages and comments on the shop's posts (Meta Graph API, Instagram messaging —
the same family as the WhatsApp Cloud channel).

Inbound: `GET /api/v1/channels/instagram/webhook/<token>` answers Meta's verification handshake
(`hub.challenge` when `hub.verify_token` matches); `POST` checks `X-Hub-Signature-256` (HMAC-SHA256 of the raw
body with the app secret, constant time) before reading anything. Handled, for the configured professional
account only (`entry.id`): `messaging` events — a message (text, attachments: image, video, audio, file, share,
reel; a reply to a story; a mention in a story; a quick-reply tap), a postback (a button), `read` (our reply
was seen: its delivery status becomes «read»); echoes of our own messages and deletions are ignored. Messages
are de-duplicated by their `mid`. `changes` with field `comments`: a comment on a post becomes a conversation
like a VK wall comment — tagged as a public comment, its meta `kind` = "comment", so the assistant never
posts a chat-style text there (assistant.service.PUBLIC_KINDS) and a person answers; our own replies echoed
back as comments are ignored.

Replies: in a direct conversation, `POST /<account>/messages` to the customer's Instagram-scoped id — within
24 hours of the customer's last message; after that, up to 7 days, only with the HUMAN_AGENT tag and only when
the account's settings enable it (Meta grants the permission); otherwise the reply is refused up front (409,
`reply_checks`) and, if the window closed while it waited in the outbox, it is a permanent, readable
DeliveryError. In a comment conversation the reply is a public reply to that comment (`POST /<comment id>/
replies`), or, when the agent chooses «privately» (`POST /api/v1/instagram/conversations/{id}/private-reply`),
a private reply (a direct message with `recipient.comment_id`, allowed within 7 days of the comment). Files go
by signed links Meta downloads (`media_links`); quick replies carry the assistant's clarifying choices or the
account's labels. Graph rate limits (codes 4, 17, 32, 613) are retried; token, permission and window errors are
permanent. Never logs tokens or secrets.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field, field_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.channels import media_links, meta_graph
from otklik.channels.base import (
    ChannelPlugin,
    VendorError,
    add_plugin,
    clean_button_labels,
    finish_event,
    record_event,
)
from otklik.channels.delivery import OutgoingFile, files_of, send_parts
from otklik.channels.inbound_kit import (
    Malformed,
    as_dict,
    tag_conversation,
)
from otklik.channels.jobs import MAX_EVENT_ATTEMPTS, enqueue_event_after_commit
from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.conversations import attachments, reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.delivery import record_delivery_status
from otklik.conversations.models import Conversation, DeliveryStatus, Direction, Message
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import Conflict, DomainError

log = logging.getLogger(__name__)
KIND = "instagram"
PUBLIC_COMMENT_TAG = "публичный комментарий"  # the same tag as VK's wall comments
WINDOW = dt.timedelta(hours=24)               # Meta's standard messaging window
HUMAN_AGENT_WINDOW = dt.timedelta(days=7)     # the HUMAN_AGENT tag's window (and a private reply's to a comment)
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TEXT_LIMIT = 1000                             # Instagram's limit for a text message
RETRY_CODES = {1: 30.0, 2: 30.0, 4: 60.0, 17: 300.0, 32: 300.0, 613: 60.0}
IMAGE_TYPES = {"image/jpeg", "image/png", "image/gif"}
MAX_IMAGE_BYTES = 8 * 1_048_576
MAX_FILE_BYTES = 25 * 1_048_576
reply_checks.register_file_limits(KIND, reply_checks.FileLimits(
    max_bytes=MAX_FILE_BYTES, max_files=10, by_type=(("image/", MAX_IMAGE_BYTES),),
    note="Instagram: images up to 8 MB, video, audio and files up to 25 MB; none on a public comment reply"))
# Fixed sentences (no ids in them), so the agent's UI can show them in the agent's language.
WINDOW_CLOSED = ("Instagram allows replies to a direct message only within 24 hours of the customer's last "
                 "message; the window is closed (the HUMAN_AGENT tag, up to 7 days, is off in this channel's "
                 "settings or has expired too)")
PRIVATE_REPLY_LATE = "Instagram allows a private reply to a comment only within 7 days of the comment"


class InstagramConfig(BaseModel):
    account_id: Annotated[str, Field(pattern=r"^[0-9]{5,30}$", title="ID аккаунта Instagram",
                                     description="ID профессионального аккаунта (entry.id в вебхуках Meta)")]
    page_id: Annotated[str, Field(pattern=r"^([0-9]{5,30})?$", title="ID страницы Facebook",
                                  description="Только для входа через Facebook: сообщения идут от страницы")] = ""
    human_agent_tag: Annotated[bool, Field(title="Метка HUMAN_AGENT",
                                           description="Отвечать до 7 дней после сообщения клиента (нужно "
                                                       "разрешение Human Agent от Meta)")] = False
    quick_replies: Annotated[list[str], Field(max_length=13, title="Кнопки быстрых ответов",
                                              description="Показываются под ответом в директе; нажатие "
                                                          "приходит как сообщение")] = []
    api_version: Annotated[str, Field(pattern=r"^v\d{1,3}\.\d$", title="Версия Graph API")] = "v21.0"
    api_base: Annotated[str, Field(pattern=r"^https?://", max_length=200, title="Адрес Graph API",
                                   description="graph.instagram.com (вход через Instagram) или "
                                               "graph.facebook.com (через Facebook)")] = "https://graph.instagram.com"

    @field_validator("quick_replies")
    @classmethod
    def _labels(cls, values: list[str]) -> list[str]:
        return clean_button_labels(values, lambda label: "20 characters" if len(label) > 20 else None)


# -- inbound -------------------------------------------------------------------------------------------

def verify_signature(app_secret: str, raw: bytes, header: str | None) -> None:
    meta_graph.verify_signature("Instagram", app_secret, raw, header)


def vendor_key(prefix: str, mid: str) -> str:
    """Our `channel_message_id` for an Instagram id (a `mid` may be long: then its digest)."""
    return f"{prefix}{mid}" if len(prefix) + len(mid) <= 200 else f"{prefix}#{hashlib.sha256(mid.encode()).hexdigest()}"


def _igsid(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.isdigit() or len(value) > 20:
        raise Malformed(f"{where} must be an Instagram-scoped id (digits)")
    return value


def _url(value: Any) -> str:
    return value[:2000] if isinstance(value, str) and value.startswith(("https://", "http://")) else ""


ATTACHMENT_LABELS = {"image": "📷 Фото", "video": "🎬 Видео", "audio": "🎤 Аудио", "file": "📄 Файл",
                     "share": "🔗 Публикация", "ig_reel": "🎞 Reels", "reel": "🎞 Reels",
                     "story_mention": "📣 Клиент упомянул вас в истории", "animated_image": "GIF"}


def describe(message: dict[str, Any], attached: frozenset[str] = frozenset()) -> tuple[str, dict[str, Any]]:
    """An Instagram message as the agent reads it, plus what to keep in the message meta. `attached`: the
    media links whose file was fetched and attached (their expiring link is left out of the text)."""
    extra: dict[str, Any] = {"kind": "message"}
    lines: list[str] = []
    text = message.get("text")
    quick = as_dict(message.get("quick_reply"))
    if isinstance(quick.get("payload"), str) and quick["payload"]:
        text = quick["payload"]  # the full label behind a (20-character) quick-reply title
        extra["quick_reply"] = True
    if isinstance(text, str) and text.strip():
        lines.append(text.strip())
    story = as_dict(as_dict(message.get("reply_to")).get("story"))
    if story:
        url = _url(story.get("url"))
        lines.insert(0, f"↩️ Ответ на вашу историю {url}".strip())
        extra["story"] = {"id": str(story.get("id") or "")[:100], "url": url}
    reply_mid = as_dict(message.get("reply_to")).get("mid")
    if isinstance(reply_mid, str):
        extra["reply_to"] = reply_mid[:200]
    attachments = message.get("attachments")
    kept = []
    for item in (attachments if isinstance(attachments, list) else [])[:10]:
        if not isinstance(item, dict):
            continue
        kind = str(item.get("type") or "")[:32]
        url = _url(as_dict(item.get("payload")).get("url"))
        shown = "" if url in attached else url
        lines.append(f"{ATTACHMENT_LABELS.get(kind, f'(вложение {kind})')} {shown}".strip())
        kept.append({"type": kind, "url": url})
    if kept:
        extra["attachments"] = kept
    return "\n".join(lines) or "(пустое сообщение)", extra


def _stamp(value: Any) -> dt.datetime | None:
    if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 2**45:
        return dt.datetime.fromtimestamp(value / 1000 if value > 10**11 else value, dt.UTC)
    return None


def _store(session: Session, account: ChannelAccount, *, user_id: str, name: str, text: str, key: str,
           sent_at: dt.datetime | None, details: dict[str, Any], public: bool,
           attachment_ids: tuple[int, ...] = ()) -> bool:
    meta: dict[str, Any] = {"instagram": {"igsid": user_id, **details}, "account_id": account.id}
    if public:
        meta["kind"] = "comment"  # a public comment: the assistant hands it to a person (PUBLIC_KINDS)
    received = conversations.receive(session, account.workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind=KIND, identity_value=user_id, text=text[:conversations.MAX_BODY_CHARS],
        customer_name=name[:200], identity_verified=True, channel_message_id=key, sent_at=sent_at, meta=meta,
        attachment_ids=attachment_ids))
    if received.duplicate:
        return False
    if public:
        tag_conversation(session, account.workspace_id, received.conversation.id, PUBLIC_COMMENT_TAG)
    return True


MEDIA_KINDS = ("image", "video", "audio", "file")


def media_of(extra: dict[str, Any]) -> list[str]:
    """The links of a message's files worth keeping (story mentions and shares stay links)."""
    return [a["url"] for a in extra.get("attachments", []) if a.get("type") in MEDIA_KINDS and a.get("url")]


def _store_message(session: Session, account: ChannelAccount, event: dict[str, Any], *,
                   attachment_ids: tuple[int, ...] = (), attached: frozenset[str] = frozenset(),
                   notes: tuple[str, ...] = ()) -> bool:
    """A checked direct message (its files fetched, if any) as the customer's message; False: stored before."""
    message = as_dict(event.get("message"))
    sender = str(as_dict(event.get("sender")).get("id"))
    text, extra = describe(message, attached)
    if any(a.get("type") == "story_mention" for a in extra.get("attachments", [])):
        extra["kind"] = "story_mention"
    return _store(session, account, user_id=sender, name="", text="\n".join((text, *notes)),
                  key=vendor_key("ig:", message["mid"]), sent_at=_stamp(event.get("timestamp")),
                  details={**extra, "mid": message["mid"][:300]}, public=False, attachment_ids=attachment_ids)


class _MediaUnavailable(Exception):
    """Meta's link is gone or the file is too large: a retry cannot help; the message is stored with a note."""


def download_media(url: str) -> tuple[bytes, str]:
    """GET Meta's signed CDN link (no token needed; it expires), at most the attachment size limit."""
    cap = get_settings().max_attachment_bytes
    with httpx.stream("GET", url, timeout=TIMEOUT, follow_redirects=True) as response:
        if 400 <= response.status_code < 500 and response.status_code != 429:
            raise _MediaUnavailable(f"Meta: HTTP {response.status_code}")
        response.raise_for_status()
        data = bytearray()
        for chunk in response.iter_bytes():
            data += chunk
            if len(data) > cap:
                raise _MediaUnavailable("the file is larger than this server accepts")
        mime = response.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()
    return bytes(data), mime if mime != "application/octet-stream" else sniff(bytes(data[:16]))


def sniff(head: bytes) -> str:
    """A CDN that says only «octet-stream»: the type from the file's first bytes."""
    for magic, mime in ((b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG", "image/png"), (b"GIF8", "image/gif"),
                        (b"%PDF", "application/pdf"), (b"OggS", "audio/ogg")):
        if head.startswith(magic):
            return mime
    if head[4:8] == b"ftyp":
        return "video/mp4"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "image/gif": ".gif", "image/webp": ".webp",
              "video/mp4": ".mp4", "audio/mpeg": ".mp3", "audio/mp4": ".m4a", "audio/ogg": ".ogg",
              "application/pdf": ".pdf"}


def process_pending(event_id: int) -> None:
    """After the webhook answered: fetch a direct message's files from Meta's links, then store the message
    with them. Network trouble is retried by the channel sweep; the last attempt stores notes instead."""
    with session_scope(write=False) as session:
        row = session.get(ChannelEvent, event_id)
        if row is None or row.status != EventStatus.pending.value or not row.payload:
            return
        event, attempts = dict(row.payload.get("event") or {}), row.attempts
    _, extra = describe(as_dict(event.get("message")))
    fetched: list[tuple[str, bytes, str]] = []
    notes: list[str] = []
    for n, url in enumerate(media_of(extra), start=1):
        try:
            data, mime = download_media(url)
            fetched.append((url, data, mime))
        except _MediaUnavailable as exc:
            notes.append(f"[файл не загружен из Instagram: {exc}]")
        except httpx.HTTPError as exc:
            if attempts < MAX_EVENT_ATTEMPTS:
                raise  # the sweep tries again
            notes.append(f"[файл {n} не удалось загрузить из Instagram: {type(exc).__name__}]")

    def work(session: Session) -> None:
        row = session.get(ChannelEvent, event_id)
        account = session.get(ChannelAccount, row.account_id) if row is not None else None
        if row is None or account is None or row.status != EventStatus.pending.value:
            return
        ids: list[int] = []
        attached: set[str] = set()
        problems = list(notes)
        for n, (url, data, mime) in enumerate(fetched, start=1):
            name = f"instagram-{n}{EXTENSIONS.get(mime, '')}"
            try:
                stored = attachments.store(session, Actor.system(account.workspace_id, kind="customer"),
                                           filename=name, content_type=mime, chunks=[data])
            except DomainError as exc:
                problems.append(f"[файл {name} не сохранён: {exc.message}]")
                continue
            ids.append(stored.id)
            attached.add(url)
        _store_message(session, account, event, attachment_ids=tuple(ids), attached=frozenset(attached),
                       notes=tuple(problems))
        finish_event(row)

    run_transaction(work)


def _messaging(session: Session, account: ChannelAccount, own_id: str, event: dict[str, Any],
               counts: dict[str, int]) -> None:
    sender = _igsid(as_dict(event.get("sender")).get("id"), "messaging.sender.id")
    sent_at = _stamp(event.get("timestamp"))
    if "message" in event:
        message = event.get("message")
        if not isinstance(message, dict) or not isinstance(message.get("mid"), str) or not message["mid"]:
            raise Malformed("messaging.message needs a string `mid`")
        if message.get("is_echo") or sender == own_id or message.get("is_deleted") or message.get("is_unsupported"):
            counts["ignored"] += 1  # our own message echoed back, a deletion, or nothing to show
            return
        _, extra = describe(message)  # validates the shape before anything is stored
        key = vendor_key("ig:", message["mid"])
        if media_of(extra):
            # the files are fetched from Meta's (expiring) links after we answered; the message is stored then
            if session.scalar(select(Message.id).where(Message.workspace_id == account.workspace_id,
                                                       Message.channel == KIND, Message.channel_message_id == key)):
                counts["duplicates"] += 1
                return
            pending = record_event(session, account, f"media:{key}"[:200], pending=True, payload={"event": event})
            if pending is None:
                counts["duplicates"] += 1
                return
            enqueue_event_after_commit(session, pending.id)
            counts["messages"] += 1
            return
        stored = _store_message(session, account, event)
        counts["messages" if stored else "duplicates"] += 1
        return
    if "postback" in event:
        postback = as_dict(event.get("postback"))
        mid = postback.get("mid")
        if not isinstance(mid, str) or not mid:
            raise Malformed("messaging.postback needs a string `mid`")
        label = str(postback.get("title") or postback.get("payload") or "")[:500]
        stored = _store(session, account, user_id=sender, name="", text=f"Нажата кнопка: {label}",
                        key=vendor_key("ig:", mid), sent_at=sent_at,
                        details={"kind": "message", "mid": mid[:300], "postback": True}, public=False)
        counts["messages" if stored else "duplicates"] += 1
        return
    if "read" in event:
        mid = as_dict(event.get("read")).get("mid")
        if isinstance(mid, str) and mid:
            record_delivery_status(session, account.workspace_id, channel=KIND,
                                   channel_message_id=vendor_key("ig:", mid), status=DeliveryStatus.read)
            counts["statuses"] += 1
        return
    counts["ignored"] += 1  # reactions, referrals, typing...: nothing for an agent


def _comment(session: Session, account: ChannelAccount, own_id: str, value: dict[str, Any],
             counts: dict[str, int]) -> None:
    comment_id = value.get("id")
    if not isinstance(comment_id, str) or not comment_id.isdigit() or len(comment_id) > 40:
        raise Malformed("comments.value.id must be a comment id (digits)")
    author = as_dict(value.get("from"))
    user_id = _igsid(author.get("id"), "comments.value.from.id")
    if user_id == own_id:
        counts["ignored"] += 1  # our own public reply, echoed as a comment
        return
    text = value.get("text")
    media = as_dict(value.get("media"))
    username = str(author.get("username") or "")[:100]
    details: dict[str, Any] = {"kind": "comment", "comment_id": comment_id, "media_id": str(media.get("id") or "")[:40],
                               "media_type": str(media.get("media_product_type") or "")[:20], "username": username}
    if isinstance(value.get("parent_id"), str):
        details["parent_id"] = value["parent_id"][:40]
    body = f"💬 Комментарий к публикации: {text.strip() if isinstance(text, str) else ''}".strip()
    stored = _store(session, account, user_id=user_id, name=username, text=body,
                    key=f"ig:comment:{comment_id}", sent_at=None, details=details, public=True)
    counts["comments" if stored else "duplicates"] += 1


def handle_notification(session: Session, account: ChannelAccount, payload: dict[str, Any]) -> dict[str, int]:
    if payload.get("object") != "instagram":
        raise Malformed("`object` must be \"instagram\"")
    entries = payload.get("entry")
    if not isinstance(entries, list):
        raise Malformed("`entry` must be a list")
    own_id = str((account.config or {}).get("account_id") or "")
    counts = {"messages": 0, "comments": 0, "duplicates": 0, "statuses": 0, "ignored": 0}
    for entry in entries[:100]:
        if not isinstance(entry, dict):
            raise Malformed("every entry must be an object")
        if str(entry.get("id") or "") != own_id:
            counts["ignored"] += 1  # another professional account of the same app
            continue
        messaging, changes = entry.get("messaging") or [], entry.get("changes") or []
        if not isinstance(messaging, list) or not isinstance(changes, list):
            raise Malformed("entry.messaging and entry.changes must be lists")
        for event in messaging[:100]:
            if not isinstance(event, dict):
                raise Malformed("every messaging event must be an object")
            _messaging(session, account, own_id, event, counts)
        for change in changes[:100]:
            if not isinstance(change, dict):
                raise Malformed("every change must be an object")
            if change.get("field") == "comments":
                value = change.get("value")
                if not isinstance(value, dict):
                    raise Malformed("comments.value must be an object")
                _comment(session, account, own_id, value, counts)
            else:
                counts["ignored"] += 1  # mentions, story insights...
    return counts


router = APIRouter(tags=["channels"])


@router.get("/channels/instagram/webhook/{token}", include_in_schema=False)
def instagram_verify(token: str, request: Request) -> PlainTextResponse:
    return meta_graph.verify_handshake(KIND, token, request)


@router.post("/channels/instagram/webhook/{token}", include_in_schema=False)
async def instagram_notify(token: str, request: Request) -> dict[str, int]:
    return await meta_graph.receive_notification(KIND, "Instagram", token, request, handle_notification)


# -- the messaging window ------------------------------------------------------------------------------

def _account_config(session: Session, workspace_id: int, account_id: Any) -> dict[str, Any]:
    account = session.get(ChannelAccount, account_id) if isinstance(account_id, int) else None
    if account is None or account.workspace_id != workspace_id or account.kind != KIND:
        account = session.scalar(select(ChannelAccount).where(
            ChannelAccount.workspace_id == workspace_id, ChannelAccount.kind == KIND,
            ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id).limit(1))
    return dict(account.config or {}) if account is not None else {}


def _last_inbound(session: Session, conversation_id: int) -> tuple[dict[str, Any], dt.datetime | None]:
    """The newest Instagram customer message of the conversation: its meta (where a reply goes) and time."""
    row = session.execute(select(Message.meta, Message.created_at).where(
        Message.conversation_id == conversation_id, Message.channel == KIND,
        Message.direction == Direction.inbound.value).order_by(Message.id.desc()).limit(1)).first()
    if row is None:
        return {}, None
    meta, at = row
    if at is not None and at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return (meta if isinstance(meta, dict) else {}), at


def reply_problem(session: Session, conversation: Conversation, private: bool, now: dt.datetime) -> tuple[
        str | None, bool]:
    """(why a reply cannot go now, or None; whether it needs the HUMAN_AGENT tag)."""
    meta, at = _last_inbound(session, conversation.id)
    target = as_dict(meta.get("instagram"))
    if at is None:
        return None, False  # nothing from the customer yet: the sender says what is missing
    if target.get("kind") == "comment":
        if private and now - at > HUMAN_AGENT_WINDOW:
            return PRIVATE_REPLY_LATE, False
        return None, False  # a public reply to a comment has no window
    if now - at <= WINDOW:
        return None, False
    config = _account_config(session, conversation.workspace_id, meta.get("account_id"))
    if config.get("human_agent_tag") and now - at <= HUMAN_AGENT_WINDOW:
        return None, True
    return WINDOW_CLOSED, False


def window_check(session: Session, conversation: Conversation, meta: dict[str, Any]) -> str | None:
    problem, _ = reply_problem(session, conversation, bool(meta.get("instagram_private_reply")), utcnow())
    return problem


# -- outbound ------------------------------------------------------------------------------------------

def _graph_base(config: dict[str, Any]) -> str:
    return meta_graph.graph_base(config, "https://graph.instagram.com")


def graph_call(config: dict[str, Any], secrets: dict[str, str], method: str, path: str,
               body: dict[str, Any] | None = None, params: dict[str, str] | None = None) -> dict[str, Any]:
    """One Graph API call; a `DeliveryError` saying whether a retry can help."""
    token = secrets.get("access_token", "")
    if not token:
        raise DeliveryError("Instagram: the access token is not set", permanent=True)
    try:
        response = httpx.request(method, f"{_graph_base(config)}/{path}", json=body, params=params,
                                 headers={"Authorization": f"Bearer {token}"}, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise DeliveryError(f"Instagram unreachable: {type(exc).__name__}") from None
    try:
        data = response.json()
    except ValueError:
        data = {}
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict) or response.status_code >= 400:
        err = error if isinstance(error, dict) else {}
        raw_code = err.get("code")
        code: int = raw_code if isinstance(raw_code, int) and not isinstance(raw_code, bool) else response.status_code
        text = str(err.get("message") or "")[:300]
        if response.status_code == 429 or code in RETRY_CODES:
            retry = response.headers.get("retry-after", "")
            raise DeliveryError(f"Instagram rate limit ({code}): {text}".strip(),
                                retry_after=float(retry) if retry.isdigit() else RETRY_CODES.get(code, 60.0))
        permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 409)
        raise DeliveryError(f"Instagram error {code}: {text}".strip(), permanent=permanent)
    return data if isinstance(data, dict) else {}


def _quick_replies(labels: list[str]) -> list[dict[str, str]]:
    return [{"content_type": "text", "title": label[:20], "payload": label[:1000]} for label in labels[:13] if label]


def _attachment_type(file: OutgoingFile) -> str:
    if file.content_type in IMAGE_TYPES and file.size <= MAX_IMAGE_BYTES:
        return "image"
    if file.content_type.startswith("video/"):
        return "video"
    if file.content_type.startswith("audio/"):
        return "audio"
    return "file"


class InstagramSender:
    def __init__(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]):
        self.account = account
        self.config = config
        self.secrets = secrets

    def _send(self, body: dict[str, Any]) -> str | None:
        sender = self.config.get("page_id") or self.config["account_id"]
        result = graph_call(self.config, self.secrets, "POST", f"{sender}/messages", body)
        mid = result.get("message_id")
        return vendor_key("ig:", mid) if isinstance(mid, str) and mid else None

    def _reply_publicly(self, comment_id: str, text: str) -> str | None:
        result = graph_call(self.config, self.secrets, "POST", f"{comment_id}/replies", {"message": text})
        reply_id = result.get("id")
        return f"ig:comment:{reply_id}" if isinstance(reply_id, str) and reply_id else None

    def send(self, message: OutboundMessage) -> str | None:
        with session_scope(write=False) as session:
            conversation = session.get(Conversation, message.conversation_id)
            stored = session.get(Message, message.message_id)
            reply_meta = dict(stored.meta or {}) if stored is not None else {}
            if conversation is None:
                raise DeliveryError("Instagram: the conversation is gone", permanent=True)
            meta, _ = _last_inbound(session, conversation.id)
            private = bool(reply_meta.get("instagram_private_reply"))
            problem, tagged = reply_problem(session, conversation, private, utcnow())
            state = session.scalar(select(ChannelAccount.state).where(ChannelAccount.id == self.account.id))
        target = as_dict(meta.get("instagram"))
        if problem is not None:
            raise DeliveryError(problem, permanent=True)
        text = message.text.strip()
        files = files_of(message) if message.attachments else []
        if target.get("kind") == "comment":
            if files:
                raise DeliveryError("Instagram: files cannot go with a reply to a comment; answer in direct "
                                    "messages instead", permanent=True)
            if not text:
                raise DeliveryError("Instagram: an empty reply", permanent=True)
            if private:
                return self._send({"recipient": {"comment_id": target["comment_id"]},
                                   "message": {"text": text[:TEXT_LIMIT]}})
            return self._reply_publicly(str(target["comment_id"]), text[:2200])
        user_id = target.get("igsid") or next((v for k, v in message.recipients if k == KIND), None)
        if not user_id:
            raise DeliveryError("Instagram: the customer has not written in direct messages, so there is no one to "
                                "write to", permanent=True)
        for file in files:
            if file.size > MAX_FILE_BYTES:
                raise DeliveryError(f"Instagram takes files up to 25 MB; {file.filename} is larger", permanent=True)
        base: dict[str, Any] = {"recipient": {"id": user_id}}
        if tagged:
            base.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        else:
            base["messaging_type"] = "RESPONSE"
        buttons = reply_meta.get("buttons")
        labels = [str(b) for b in buttons] if isinstance(buttons, list) and buttons else \
            [str(q) for q in self.config.get("quick_replies") or []]
        from otklik.channels.telegram.outbound import split_text

        bodies = [{**base, "message": {"text": piece}} for piece in split_text(text, TEXT_LIMIT)]
        if labels and bodies:
            bodies[-1]["message"]["quick_replies"] = _quick_replies(labels)
        if files:
            public = media_links.public_base((state or {}).get("webhook_url"))
            ids = media_links.attachment_ids(message.workspace_id, message.message_id)
            for file, attachment_id in zip(files, ids, strict=True):
                url = media_links.link(public, message.workspace_id, file, attachment_id)
                bodies.append({**base, "message": {"attachment": {"type": _attachment_type(file),
                                                                  "payload": {"url": url}}}})
        if not bodies:
            raise DeliveryError("the reply has neither text nor files", permanent=True)
        parts: list[Callable[[], str | None]] = [partial(self._send, body) for body in bodies]
        if len(parts) == 1:
            return parts[0]()
        return send_parts(self.account, message, parts)


# -- the agent's choice: a private reply to a comment ---------------------------------------------------

class PrivateReplyIn(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=TEXT_LIMIT)]


class PrivateReplyOut(BaseModel):
    message_id: int
    conversation_id: int
    delivery_status: str


api_router = APIRouter(tags=["instagram"])


@api_router.post("/instagram/conversations/{conversation_id}/private-reply", response_model=PrivateReplyOut,
                 status_code=201)
def private_reply(conversation_id: int, body: PrivateReplyIn, actor: CurrentActor, db: DB) -> PrivateReplyOut:
    """Answer the customer's comment privately (in direct messages) instead of publicly under the post."""
    actor.require(Role.agent)
    conversation = conversations.get_conversation(db, actor, conversation_id)
    meta, _ = _last_inbound(db, conversation.id)
    if conversation.channel != KIND or as_dict(meta.get("instagram")).get("kind") != "comment":
        raise Conflict("a private reply answers an Instagram comment; this conversation's last message is not one",
                       code="not_a_comment")
    message = conversations.reply(db, actor, conversation_id, text=body.text, meta={"instagram_private_reply": True})
    return PrivateReplyOut(message_id=message.id, conversation_id=conversation_id,
                           delivery_status=message.delivery_status)


class InstagramPlugin(ChannelPlugin):
    kind = KIND
    title = "Instagram"
    description = "Директ и комментарии к публикациям (Meta Graph API): 24-часовое окно, ответы на комментарии"
    icon = "IG"
    Config = InstagramConfig
    secret_fields = ("access_token", "app_secret", "verify_token")
    secret_titles: ClassVar[dict[str, str]] = {
        "access_token": "Токен доступа (instagram_business_manage_messages, instagram_business_manage_comments)",
        "app_secret": "App Secret приложения (для X-Hub-Signature-256)",
        "verify_token": "Verify token (любая строка, та же в настройках вебхука Meta)"}
    has_webhook = True
    router = router

    def process_pending(self, event_id: int) -> None:
        process_pending(event_id)

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]
               ) -> InstagramSender | None:
        if not secrets.get("access_token") or not config.get("account_id"):
            return None
        return InstagramSender(account, config, secrets)

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        try:
            me = graph_call(config, secrets, "GET", str(config.get("account_id")), params={"fields": "username,name"})
        except DeliveryError as exc:
            raise VendorError(f"Instagram не ответил как ожидалось: {exc}") from None
        return f"Аккаунт @{str(me.get('username') or '')[:100]} на связи"

    def connect_webhook(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str],
                        url: str) -> str:
        """Subscribes the app to this account's messages and comments; the callback URL and the verify token
        are entered once in the Meta app's Webhooks settings (Meta has no per-account URL)."""
        try:
            graph_call(config, secrets, "POST", f"{config.get('account_id')}/subscribed_apps",
                       params={"subscribed_fields": "messages,messaging_postbacks,messaging_seen,comments"})
        except DeliveryError as exc:
            raise VendorError(f"Instagram не включил подписку: {exc}") from None
        return f"Подписка на сообщения и комментарии включена; в настройках вебхука приложения Meta укажите {url}"


PLUGIN = InstagramPlugin()


def register() -> None:
    add_plugin(PLUGIN)
    reply_checks.register(KIND, window_check)
