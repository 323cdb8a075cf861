"""WebSocket stream of conversation and message events for signed-in agents.

Browsers authenticate with their session cookie (and a same-origin check against cross-site WebSocket
hijacking); API clients send `{"type": "auth", "token": "otk_..."}` as their first frame.

Presence: a client sends `{"type": "presence", "conversation_id": N, "state": "viewing" | "typing" | "left"}`;
everyone in the workspace gets `{"type": "presence", "data": {conversation_id, user_id, name, state, ttl}}`
through the same bus (so it crosses web processes on Redis). Nothing is stored: a client forgets a peer
whose presence was not repeated within `ttl` seconds; clients repeat "viewing" every PRESENCE_REPEAT seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from otklik.accounts import service as accounts
from otklik.accounts.deps import SESSION_COOKIE
from otklik.accounts.models import User
from otklik.accounts.service import Actor
from otklik.conversations.routing_api import seen
from otklik.platform.db import session_scope
from otklik.platform.errors import TooLarge
from otklik.platform.events import Event, get_bus
from otklik.platform.jsonbody import loads

router = APIRouter()
AUTH_TIMEOUT = 10.0
PRESENCE_STATES = {"viewing": 12, "typing": 4, "left": 0}  # state -> seconds it holds unless repeated
PRESENCE_REPEAT = 5
PRESENCE_PER_SECOND = 5  # a client sending more is ignored, not disconnected


def _actor_from_cookie(raw: str) -> Actor | None:
    with session_scope(write=False) as session:
        found = accounts.resolve_session(session, raw)
        return accounts.actor_for(found[1]) if found else None


def _actor_from_token(raw: str) -> Actor | None:
    with session_scope(write=False) as session:
        found = accounts.resolve_api_token(session, raw)
        return accounts.actor_for(found[1]) if found else None


def _user_name(user_id: int | None) -> str:
    if user_id is None:
        return ""
    with session_scope(write=False) as session:
        user = session.get(User, user_id)
        return user.name if user else ""


def _presence_event(actor: Actor, name: str, frame: dict[str, Any]) -> Event | None:
    """A presence frame from a client, checked; None when it is malformed."""
    conversation_id, state = frame.get("conversation_id"), frame.get("state")
    if (not isinstance(conversation_id, int) or isinstance(conversation_id, bool) or not 0 < conversation_id < 2**63
            or state not in PRESENCE_STATES or actor.user_id is None):
        return None
    return Event("presence", actor.workspace_id, {
        "conversation_id": conversation_id, "user_id": actor.user_id, "name": name, "state": state,
        "ttl": PRESENCE_STATES[state], "hello": frame.get("hello") is True})


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser
    return urlparse(origin).netloc == ws.headers.get("host", "")


async def _authenticate(ws: WebSocket) -> Actor | None:
    cookie = ws.cookies.get(SESSION_COOKIE)
    if cookie and _same_origin(ws):
        actor = await run_in_threadpool(_actor_from_cookie, cookie)
        if actor is not None:
            return actor
    try:
        first = await asyncio.wait_for(ws.receive_text(), timeout=AUTH_TIMEOUT)
        frame = loads(first, what="the first frame", max_bytes=4096)
    except (TimeoutError, ValueError, TooLarge, WebSocketDisconnect):  # MalformedJSON is a ValueError
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("token"), str):
        return None
    return await run_in_threadpool(_actor_from_token, frame["token"][:200])


async def _seen(actor: Actor) -> None:
    """A frame from an agent: they are at their desk (routing counts an idle agent as away)."""
    await seen(actor.workspace_id, actor.user_id)


@router.websocket("/api/v1/ws")
async def stream(ws: WebSocket) -> None:
    await ws.accept()
    actor = await _authenticate(ws)
    if actor is None:
        await ws.send_json({"type": "error", "error": {"code": "unauthorized",
                                                       "message": "sign in or send {type: auth, token}"}})
        await ws.close(code=4401)
        return
    bus = get_bus()
    sub = bus.subscribe(actor.workspace_id)
    await ws.send_json({"type": "ready", "workspace_id": actor.workspace_id, "user_id": actor.user_id})

    name = await run_in_threadpool(_user_name, actor.user_id)
    await _seen(actor)
    window_start, sent_in_window = time.monotonic(), 0

    async def reader() -> None:
        nonlocal window_start, sent_in_window
        while True:
            raw = await ws.receive_text()
            with contextlib.suppress(ValueError, AttributeError):  # MalformedJSON is a ValueError: ignored
                frame = loads(raw[:2000], what="the frame")
                kind = frame.get("type")
                await _seen(actor)
                if kind == "ping":
                    await ws.send_json({"type": "pong"})
                elif kind == "presence":
                    event = _presence_event(actor, name, frame)
                    now = time.monotonic()
                    if now - window_start >= 1:
                        window_start, sent_in_window = now, 0
                    sent_in_window += event is not None
                    if event is not None and sent_in_window <= PRESENCE_PER_SECOND:
                        # Redis publishing is a blocking call: keep it off the event loop.
                        await run_in_threadpool(bus.publish, event)

    async def writer() -> None:
        while True:
            event = await sub.queue.get()
            await ws.send_text(event.wire)

    # Two long-lived tasks per socket: an event costs one queue hand-off, no task creation per event.
    tasks = {asyncio.create_task(reader()), asyncio.create_task(writer())}
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        bus.unsubscribe(sub)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
