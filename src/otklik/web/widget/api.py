"""HTTP and WebSocket surface of the chat widget: public visitor endpoints, the visitor socket and long-poll,
and the admin settings API.

A visitor authenticates with the token from POST /widget/session in the `X-Otklik-Visitor` header (or the first
socket frame); no cookies, so cross-site pages can embed the widget without opening a CSRF hole. Public
endpoints are rate-limited per visitor and per address, and refuse pages outside the workspace's allowed origins.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role, User
from otklik.accounts.service import Actor
from otklik.conversations import attachments as attachment_store
from otklik.conversations import outbox
from otklik.conversations import service as conversations
from otklik.conversations.models import Message as ChatMessage
from otklik.customers.models import Customer
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import DomainError, Forbidden, NotFound, TooLarge, field_error
from otklik.platform.events import Event, get_bus
from otklik.platform.jsonbody import SafeJSONRoute, loads, loads_object
from otklik.platform.ratelimit import SlidingWindow
from otklik.web import i18n
from otklik.web.widget import service
from otklik.web.widget.models import WidgetSettings, WidgetVisitor

log = logging.getLogger(__name__)
router = APIRouter(prefix="/widget", tags=["widget"], route_class=SafeJSONRoute)  # bodies: shared JSON limits
VISITOR_HEADER = "x-otklik-visitor"
PUBLIC_PREFIX = "/api/v1/widget/"
PRIVATE_PATHS = ("/api/v1/widget/settings", "/api/v1/widget/agent-typing", "/api/v1/widget/visits")
MAX_TEXT = 5000
POLL_SECONDS = 25.0

# Shared by every web process through Redis when it is configured (a visitor's polls and posts may reach any
# process behind the load balancer), per process otherwise (platform/ratelimit.py).
sessions_per_ip = SlidingWindow(30, 60, name="widget-sessions")
messages_per_visitor = SlidingWindow(30, 60, name="widget-messages")
pages_per_visitor = SlidingWindow(60, 60, name="widget-pages")
typing_per_visitor = SlidingWindow(60, 60, name="widget-typing")
uploads_per_visitor = SlidingWindow(20, 600, name="widget-uploads")
forms_per_ip = SlidingWindow(5, 600, name="widget-forms")


class WidgetCORS:
    """CORS for the public widget endpoints: any page may ask, the endpoint checks the workspace's origins.

    No credentials are ever allowed cross-site: visitors carry their token in a header, not a cookie.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(PUBLIC_PREFIX) or path.startswith(PRIVATE_PATHS):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        origin = headers.get(b"origin", b"").decode("latin-1")
        cors = [(b"access-control-allow-origin", origin.encode("latin-1") if origin else b"*"), (b"vary", b"Origin")]
        if scope["method"] == "OPTIONS" and b"access-control-request-method" in headers:
            await send({"type": "http.response.start", "status": 204, "headers": [
                *cors, (b"access-control-allow-methods", b"GET, POST"),
                (b"access-control-allow-headers", b"content-type, x-otklik-visitor"),
                (b"access-control-max-age", b"600")]})
            await send({"type": "http.response.body", "body": b""})
            return

        async def with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = [*message.get("headers", []), *cors]
            await send(message)

        await self.app(scope, receive, with_cors)


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "?"


def _check_origin(request: Request, row: WidgetSettings) -> None:
    if not service.origin_allowed(row, request.headers.get("origin"), request.headers.get("host", "")):
        raise Forbidden("this site is not in the widget's allowed origins", code="origin_not_allowed")


def _visitor(request: Request, db: Session, token: str | None) -> WidgetVisitor:
    visitor = service.visitor_by_token(db, token)
    row = db.get(WidgetSettings, visitor.workspace_id)
    if row is None or not row.enabled:
        raise NotFound("the widget is switched off", code="unknown_widget")
    _check_origin(request, row)
    return visitor


VisitorToken = Annotated[str | None, Header(alias="X-Otklik-Visitor", max_length=200)]


# -- schemas ------------------------------------------------------------------------------------------

class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class IdentityIn(Strict):
    user_id: str = Field(min_length=1, max_length=200, pattern=r"^[\w.:@+-]+$")
    user_hash: str = Field(min_length=1, max_length=128)
    email: str | None = Field(None, max_length=254)
    name: str | None = Field(None, max_length=200)


class SessionIn(Strict):
    key: str = Field(min_length=1, max_length=40)
    token: str | None = Field(None, max_length=200)
    language: str | None = Field(None, max_length=35)
    identity: IdentityIn | None = None


class MessageIn(Strict):
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    text: str = Field("", max_length=MAX_TEXT)
    attachments: list[str] = Field(default_factory=list, max_length=5)


class ReadIn(Strict):
    up_to_id: int = Field(ge=1, le=2**62)
    status: str = Field("read", pattern=r"^(delivered|read)$")


class TypingIn(Strict):
    typing: bool


class AgentTypingIn(Strict):
    conversation_id: int = Field(ge=1, le=2**62)
    typing: bool = True


class PageIn(Strict):
    url: str = Field(min_length=1, max_length=service.MAX_URL)
    title: str = Field("", max_length=1000)


class CallbackIn(Strict):
    name: str = Field(min_length=1, max_length=100)
    phone: str = Field(min_length=3, max_length=40)
    preferred_time: str = Field("", max_length=100)
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class OfflineIn(Strict):
    name: str = Field("", max_length=100)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)
    text: str = Field(min_length=1, max_length=MAX_TEXT)
    client_id: str = Field(min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class SettingsIn(Strict):
    enabled: bool | None = None
    allowed_origins: list[str] | None = Field(None, max_length=50)
    config: service.WidgetConfig | None = None


def _language(raw: str | None, request: Request) -> str:
    return i18n.normalise(raw) or i18n.negotiate(request.headers.get("accept-language"))


# -- public visitor endpoints -------------------------------------------------------------------------

@router.get("/config")
def widget_config(request: Request, db: DB, key: Annotated[str, Query(min_length=1, max_length=40)],
                  lang: Annotated[str | None, Query(max_length=35)] = None) -> dict[str, Any]:
    """What the widget draws: colours, texts, launcher buttons, quick replies, whether anyone is on shift."""
    row = service.settings_by_key(db, key)
    _check_origin(request, row)
    return service.public_config(row, _language(lang, request), db)


@router.post("/session")
def start_session(body: SessionIn, request: Request, db: DB) -> dict[str, Any]:
    """Start or resume a visitor. Pass `identity` (user_id, user_hash = HMAC-SHA256(secret, user_id), email,
    name) to be recognised as a signed-in customer of the site; a bad signature is refused with 403."""
    sessions_per_ip.hit(_client_ip(request))
    row = service.settings_by_key(db, body.key)
    _check_origin(request, row)
    claim = service.SiteIdentity(**body.identity.model_dump()) if body.identity else None
    language = _language(body.language, request)
    visitor, new_token = service.start_session(db, row, token=body.token, language=language, claim=claim)
    return {"token": new_token or body.token, "new": new_token is not None, "verified": visitor.external_id is not None,
            "conversation_id": visitor.conversation_id, "messages": service.history(db, visitor),
            "config": service.public_config(row, language, db)}


@router.get("/messages")
def list_messages(request: Request, db: DB, token: VisitorToken = None,
                  after: Annotated[int, Query(ge=0, le=2**62)] = 0) -> dict[str, Any]:
    visitor = _visitor(request, db, token)
    return {"messages": service.history(db, visitor, after_id=after)}


def _send(token: str | None, request: Request | None, body: MessageIn) -> dict[str, Any]:
    def work(db: Session) -> dict[str, Any]:
        visitor = _visitor(request, db, token) if request is not None else service.visitor_by_token(db, token)
        messages_per_visitor.hit(visitor.public_id)
        received = service.send_message(db, visitor, client_id=body.client_id, text=body.text,
                                        attachments=body.attachments)
        return {"duplicate": received.duplicate, "conversation_id": received.conversation.id,
                "message": service.message_payload(db, received.message)}

    return run_transaction(work)


@router.post("/messages", status_code=201)
def send_message(body: MessageIn, request: Request, token: VisitorToken = None) -> dict[str, Any]:
    """A visitor's message; `client_id` makes a retry return the stored message instead of a second copy."""
    return _send(token, request, body)


@router.post("/attachments", status_code=201)
def upload(file: UploadFile, request: Request, db: DB, token: VisitorToken = None) -> dict[str, Any]:
    """An image or a PDF for the next message; returns a handle only this visitor can attach."""
    visitor = _visitor(request, db, token)
    uploads_per_visitor.hit(visitor.public_id)
    declared = (file.content_type or "").split(";")[0].strip().lower()
    if declared not in service.WIDGET_FILE_TYPES:
        raise attachment_store.UnsupportedType("the chat accepts images and PDF files",
                                               fields=[{"field": "file", "message": "type not allowed"}])
    limit = min(get_settings().max_attachment_bytes, 10 * 1_048_576)

    def chunks() -> Iterator[bytes]:
        seen = 0
        while True:
            chunk = file.file.read(65536)
            if not chunk:
                return
            seen += len(chunk)
            if seen > limit:
                raise TooLarge(f"a file may be at most {limit} bytes", fields=[{"field": "file", "message": "too large"}])
            yield chunk

    attachment = attachment_store.store(db, Actor.system(visitor.workspace_id, kind="customer"),
                                        filename=file.filename or "file", content_type=declared, chunks=chunks())
    return {"handle": service.upload_handle(visitor, attachment.id), "name": attachment.filename,
            "type": attachment.content_type, "size": attachment.size}


@router.get("/file", response_class=FileResponse)
def download(db: DB, a: Annotated[int, Query(ge=1, le=2**62)], w: Annotated[int, Query(ge=1, le=2**62)],
             s: Annotated[str, Query(min_length=1, max_length=64)]) -> FileResponse:
    """A file of a widget conversation, by the signed link the visitor received with the message."""
    if not service.check_file_signature(w, a, s):
        raise NotFound("file not found")
    att = service.attachment_for_file(db, w, a)
    path = get_settings().attachments_dir / att.storage_key
    if not path.is_file():
        raise NotFound("file not found")
    return FileResponse(path, media_type=att.content_type, filename=att.filename, content_disposition_type="inline",
                        headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "private, max-age=3600",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.post("/read")
def mark_read(body: ReadIn, request: Request, db: DB, token: VisitorToken = None) -> dict[str, int]:
    """Read receipts: the visitor's browser showed agents' replies up to `up_to_id`."""
    visitor = _visitor(request, db, token)
    return {"updated": service.mark_seen(db, visitor, up_to_id=body.up_to_id, status=body.status)}


def _typing_events(session: Session, visitor: WidgetVisitor, typing: bool) -> list[Event]:
    """`widget.typing` for API clients, and the agent workspace's own presence frame (negative user id: a
    visitor, never an agent), so the open conversation shows "<customer> печатает…" with no extra code."""
    if not visitor.conversation_id:
        return []
    customer = session.get(Customer, visitor.customer_id) if visitor.customer_id else None
    return [
        Event("widget.typing", visitor.workspace_id, {
            "conversation_id": visitor.conversation_id, "customer_id": visitor.customer_id, "typing": typing}),
        Event("presence", visitor.workspace_id, {
            "conversation_id": visitor.conversation_id, "user_id": -visitor.id,
            "name": (customer.name if customer and customer.name else "") or "Клиент",
            "state": "typing" if typing else "left", "ttl": 5 if typing else 0, "hello": False}),
    ]


@router.post("/typing", status_code=204)
def visitor_typing(body: TypingIn, request: Request, db: DB, token: VisitorToken = None) -> None:
    """The visitor is typing (agents' sockets get `widget.typing`)."""
    visitor = _visitor(request, db, token)
    typing_per_visitor.hit(visitor.public_id)
    for event in _typing_events(db, visitor, body.typing):
        get_bus().publish(event)


@router.post("/pages", status_code=201)
def page_view(body: PageIn, request: Request, db: DB, token: VisitorToken = None) -> dict[str, Any]:
    """Page tracking: the visitor opened `url`; answers with the proactive greeting for that page, if any."""
    visitor = _visitor(request, db, token)
    pages_per_visitor.hit(visitor.public_id)
    visit = service.record_page_view(db, visitor, url=body.url, title=body.title)
    row = db.get(WidgetSettings, visitor.workspace_id)
    assert row is not None
    return {"id": visit.id, "greeting": service.greeting_for(row.config or {}, visit.url, visitor.language or "ru")}


@router.post("/callback", status_code=201)
def callback(body: CallbackIn, request: Request, token: VisitorToken = None) -> dict[str, Any]:
    """A callback request (name + phone): a conversation on the phone channel and a task for an agent."""
    forms_per_ip.hit(_client_ip(request))

    def work(db: Session) -> dict[str, Any]:
        visitor = _visitor(request, db, token)
        received, task_id = service.request_callback(db, visitor, name=body.name, phone=body.phone,
                                                     preferred_time=body.preferred_time, client_id=body.client_id)
        return {"conversation_id": received.conversation.id, "task_id": task_id, "duplicate": received.duplicate}

    return run_transaction(work)


@router.post("/offline", status_code=201)
def offline(body: OfflineIn, request: Request, token: VisitorToken = None) -> dict[str, Any]:
    """The offline form (nobody on shift): a conversation with the contact the visitor left."""
    forms_per_ip.hit(_client_ip(request))

    def work(db: Session) -> dict[str, Any]:
        visitor = _visitor(request, db, token)
        received = service.leave_offline_message(db, visitor, name=body.name, email=body.email, phone=body.phone,
                                                 text=body.text, client_id=body.client_id)
        return {"conversation_id": received.conversation.id, "message": service.message_payload(db, received.message)}

    return run_transaction(work)


# -- agents and admins --------------------------------------------------------------------------------

@router.post("/agent-typing", status_code=204)
def agent_typing(body: AgentTypingIn, actor: CurrentActor, db: DB) -> None:
    """An agent is typing a reply: the visitor's widget shows the indicator."""
    conversation = conversations.get_conversation(db, actor, body.conversation_id)
    user = db.get(User, actor.user_id) if actor.user_id else None
    get_bus().publish(Event("widget.agent_typing", actor.workspace_id, {
        "conversation_id": conversation.id, "typing": body.typing,
        "name": (user.name or "").split(" ")[0] if user else ""}))


@router.get("/visits")
def visits(actor: CurrentActor, db: DB, customer_id: Annotated[int, Query(ge=1, le=2**62)],
           limit: Annotated[int, Query(ge=1, le=200)] = 20) -> list[dict[str, Any]]:
    """Pages the customer opened on the site (the widget's page tracking), newest first."""
    customer = service.get_visitor_customer(db, actor, customer_id)
    return service.recent_visits(db, actor.workspace_id, customer.id, limit)


def _settings_out(row: WidgetSettings) -> dict[str, Any]:
    return {"public_key": row.public_key, "enabled": row.enabled, "allowed_origins": row.allowed_origins or [],
            "config": row.config or {}, "identity_secret_set": bool(row.identity_secret)}


@router.get("/settings")
def get_widget_settings(actor: CurrentActor, db: DB) -> dict[str, Any]:
    actor.require(Role.supervisor)
    row = db.get(WidgetSettings, actor.workspace_id)
    if row is not None:
        return _settings_out(row)
    # first use creates the defaults: in a write transaction of its own, since a GET's session only reads
    # (on SQLite a read transaction that starts writing can fail at once under concurrent writers)
    with session_scope(write=True) as writer:
        return _settings_out(service.get_settings_row(writer, actor.workspace_id))


@router.put("/settings")
def put_widget_settings(body: SettingsIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Colours, texts (ru/en), launcher buttons, quick replies, greetings, working hours, allowed origins."""
    return _settings_out(service.update_settings(db, actor, config=body.config, allowed_origins=body.allowed_origins,
                                                 enabled=body.enabled))


@router.post("/settings/identity-secret")
def new_identity_secret(actor: CurrentActor, db: DB) -> dict[str, str]:
    """A new identity-verification secret, shown this once; the old one stops working."""
    return {"identity_secret": service.rotate_identity_secret(db, actor)}


# -- live delivery to visitors: one bus subscription per workspace per process --------------------------

class VisitorLink:
    """One open socket or waiting poll of a visitor."""

    def __init__(self, visitor_id: int, customer_id: int | None, conversation_ids: set[int]):
        self.visitor_id = visitor_id
        self.customer_id = customer_id
        self.conversation_ids = conversation_ids
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=200)

    def offer(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(frame)


def _load_messages(ids: list[int]) -> dict[int, dict[str, Any]]:
    with session_scope(write=False) as db:
        result = {}
        for message_id in ids:
            message = db.get(ChatMessage, message_id)
            if message is not None and service.visible_to_visitor(message):
                result[message_id] = service.message_payload(db, message)
        return result


class WorkspaceFeed:
    def __init__(self, workspace_id: int):
        self.workspace_id = workspace_id
        self.links: set[VisitorLink] = set()
        self.sub = get_bus().subscribe(workspace_id)
        self.task = asyncio.create_task(self._pump())

    def _targets(self, conversation_id: Any) -> list[VisitorLink]:
        return [link for link in self.links if conversation_id in link.conversation_ids]

    async def _pump(self) -> None:
        while True:
            event = await self.sub.queue.get()
            try:
                await self._handle(event)
            except Exception:
                log.exception("widget feed failed on %s", event.type)

    async def _handle(self, event: Event) -> None:
        data = event.data
        if event.type in ("conversation.created", "conversation.updated") and data.get("channel") == "widget":
            for link in self.links:
                if link.customer_id is not None and link.customer_id == data.get("customer_id"):
                    link.conversation_ids.add(data["id"])
            return
        targets = self._targets(data.get("conversation_id"))
        if not targets:
            return
        if event.type == "widget.agent_typing" or (event.type == "presence" and (data.get("user_id") or 0) > 0
                                                   and data.get("state") in ("typing", "left")):
            # an agent typing: the API call, or the agent workspace's own presence frames
            typing = bool(data.get("typing")) if event.type == "widget.agent_typing" else data.get("state") == "typing"
            name = str(data.get("name") or "").split(" ")[0]
            for link in targets:
                link.offer({"type": "typing", "typing": typing, "name": name})
        elif (event.type == "message.updated" and data.get("delivery_status") == "sent") or (
                event.type == "message.created" and data.get("direction") == "inbound"):
            loaded = await run_in_threadpool(_load_messages, [int(data["id"])])
            if data["id"] in loaded:
                for link in targets:
                    link.offer({"type": "message", "message": loaded[data["id"]]})
        elif event.type == "message.updated" and data.get("delivery_status") in ("delivered", "read"):
            for link in targets:
                link.offer({"type": "status", "id": data["id"], "status": data["delivery_status"]})

    def close(self) -> None:
        get_bus().unsubscribe(self.sub)
        self.task.cancel()


_feeds: dict[tuple[int, int], WorkspaceFeed] = {}


def _join(workspace_id: int, link: VisitorLink) -> None:
    key = (id(asyncio.get_running_loop()), workspace_id)
    feed = _feeds.get(key)
    if feed is None:
        feed = _feeds[key] = WorkspaceFeed(workspace_id)
    feed.links.add(link)


def _leave(workspace_id: int, link: VisitorLink) -> None:
    key = (id(asyncio.get_running_loop()), workspace_id)
    feed = _feeds.get(key)
    if feed is not None:
        feed.links.discard(link)
        if not feed.links:
            feed.close()
            del _feeds[key]


def _link_for(token: str | None, origin: str | None, host: str) -> tuple[int, VisitorLink]:
    with session_scope(write=False) as db:
        visitor = service.visitor_by_token(db, token)
        row = db.get(WidgetSettings, visitor.workspace_id)
        if row is None or not row.enabled:
            raise NotFound("the widget is switched off", code="unknown_widget")
        if not service.origin_allowed(row, origin, host):
            raise Forbidden("this site is not in the widget's allowed origins", code="origin_not_allowed")
        return visitor.workspace_id, VisitorLink(visitor.id, visitor.customer_id,
                                                 service.visitor_conversation_ids(db, visitor))


@router.get("/poll")
async def poll(request: Request, token: VisitorToken = None,
               after: Annotated[int, Query(ge=0, le=2**62)] = 0,
               wait: Annotated[float, Query(ge=0, le=POLL_SECONDS)] = POLL_SECONDS) -> dict[str, Any]:
    """Long-poll fallback for networks without WebSockets: new messages after `after`, or typing frames, or an
    empty answer after `wait` seconds."""
    workspace_id, link = await run_in_threadpool(_link_for, token, request.headers.get("origin"),
                                                 request.headers.get("host", ""))
    _join(workspace_id, link)
    try:
        messages = await run_in_threadpool(_history_after, token, after)
        frames: list[dict[str, Any]] = []
        if not messages:
            with contextlib.suppress(TimeoutError):
                frames.append(await asyncio.wait_for(link.queue.get(), timeout=wait))
                while not link.queue.empty():
                    frames.append(link.queue.get_nowait())
            if any(f["type"] == "message" for f in frames):
                messages = await run_in_threadpool(_history_after, token, after)
    finally:
        _leave(workspace_id, link)
    return {"messages": messages, "events": [f for f in frames if f["type"] != "message"] if not messages else []}


def _history_after(token: str | None, after: int) -> list[dict[str, Any]]:
    with session_scope(write=False) as db:
        return service.history(db, service.visitor_by_token(db, token), after_id=after)


def _error_frame(exc: DomainError) -> dict[str, Any]:
    return {"type": "error", "error": {"code": exc.code, "message": exc.message, "fields": exc.fields}}


def _ws_read(visitor_token: str, up_to: int) -> None:
    def work(db: Session) -> None:
        service.mark_seen(db, service.visitor_by_token(db, visitor_token), up_to_id=up_to, status="read")

    run_transaction(work)


def _ws_page(visitor_token: str, url: str, title: str) -> dict[str, Any] | None:
    def work(db: Session) -> dict[str, Any] | None:
        visitor = service.visitor_by_token(db, visitor_token)
        pages_per_visitor.hit(visitor.public_id)
        visit = service.record_page_view(db, visitor, url=url, title=title)
        row = db.get(WidgetSettings, visitor.workspace_id)
        return service.greeting_for(row.config if row else {}, visit.url, visitor.language or "ru")

    return run_transaction(work)


def _ws_typing(visitor_token: str, typing: bool) -> None:
    with session_scope(write=False) as db:
        visitor = service.visitor_by_token(db, visitor_token)
        typing_per_visitor.hit(visitor.public_id)
        events = _typing_events(db, visitor, typing)
    for event in events:
        get_bus().publish(event)


@router.websocket("/ws")
async def visitor_socket(ws: WebSocket) -> None:
    """The visitor's live channel. First frame `{"type": "auth", "token": ...}`; then `message` (client_id, text,
    attachments), `typing`, `read` (up_to), `page` (url, title), `ping`. The server sends `ready`, `ack`, `message`,
    `typing`, `status`, `greeting`, `error` frames."""
    await ws.accept()
    try:
        first = loads(await asyncio.wait_for(ws.receive_text(), timeout=10), what="the first frame", max_bytes=4096)
        token = first.get("token") if isinstance(first, dict) and first.get("type") == "auth" else None
        if not isinstance(token, str):
            raise ValueError
        workspace_id, link = await run_in_threadpool(_link_for, token, ws.headers.get("origin"),
                                                     ws.headers.get("host", ""))
    except (TimeoutError, ValueError, TooLarge, WebSocketDisconnect):  # MalformedJSON is a ValueError
        with contextlib.suppress(Exception):
            await ws.close(code=4400)
        return
    except DomainError as exc:
        with contextlib.suppress(Exception):
            await ws.send_json(_error_frame(exc))
            await ws.close(code=4401 if exc.status_code == 401 else 4403)
        return
    _join(workspace_id, link)
    await ws.send_json({"type": "ready", "conversation_ids": sorted(link.conversation_ids)})

    async def handle(frame: dict[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "ping":
            await ws.send_json({"type": "pong"})
        elif kind == "message":
            body = MessageIn.model_validate({k: frame.get(k) for k in ("client_id", "text", "attachments")
                                             if frame.get(k) is not None})
            result = await run_in_threadpool(_send, token, None, body)
            link.conversation_ids.add(result["conversation_id"])
            link.customer_id = link.customer_id or await run_in_threadpool(_customer_of, token)
            await ws.send_json({"type": "ack", "client_id": body.client_id, **result})
        elif kind == "typing":
            await run_in_threadpool(_ws_typing, token, bool(frame.get("typing")))
        elif kind == "read":
            up_to = ReadIn.model_validate({"up_to_id": frame.get("up_to")}).up_to_id
            await run_in_threadpool(_ws_read, token, up_to)
        elif kind == "page":
            page = PageIn.model_validate({"url": frame.get("url"), "title": frame.get("title") or ""})
            greeting = await run_in_threadpool(_ws_page, token, page.url, page.title)
            await ws.send_json({"type": "greeting", "greeting": greeting})
        else:
            raise field_error("type", "one of: message, typing, read, page, ping")

    async def reader() -> None:
        while True:
            raw = await ws.receive_text()
            if len(raw) > 4 * MAX_TEXT + 1000:
                await ws.send_json({"type": "error", "error": {"code": "too_large", "message": "frame too large",
                                                               "fields": []}})
                continue
            frame: dict[str, Any] = {}
            try:
                frame = loads_object(raw, what="the frame", max_bytes=4 * MAX_TEXT + 1000)
                await handle(frame)
            except DomainError as exc:  # MalformedJSON included: a precise error frame, the socket stays open
                await ws.send_json({**_error_frame(exc), "client_id": frame.get("client_id")})
            except ValueError as exc:  # a pydantic ValidationError
                await ws.send_json({"type": "error", "error": {"code": "invalid", "message": str(exc)[:500],
                                                               "fields": []}})

    async def writer() -> None:
        while True:
            await ws.send_json(await link.queue.get())

    tasks = {asyncio.create_task(reader()), asyncio.create_task(writer())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        _leave(workspace_id, link)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


def _customer_of(token: str) -> int | None:
    with session_scope(write=False) as db:
        return service.visitor_by_token(db, token).customer_id


# -- outbound: the "widget" channel's sender -----------------------------------------------------------

class WidgetSender:
    """The widget has no vendor to call: a reply is handed over once it is stored and marked sent, and the
    visitor's socket (or its next poll or page load) picks it up; the browser then reports delivered/read."""

    def send(self, message: outbox.OutboundMessage) -> str | None:
        return f"widget-{message.message_id}-{int(time.time())}"


outbox.register_sender("widget", lambda workspace_id: WidgetSender())
