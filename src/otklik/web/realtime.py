"""WebSocket stream of conversation and message events for signed-in agents.

Browsers authenticate with their session cookie (and a same-origin check against cross-site WebSocket
hijacking); API clients send `{"type": "auth", "token": "otk_..."}` as their first frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import urlparse

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from otklik.accounts import service as accounts
from otklik.accounts.deps import SESSION_COOKIE
from otklik.accounts.service import Actor
from otklik.platform.db import session_scope
from otklik.platform.events import get_bus

router = APIRouter()
AUTH_TIMEOUT = 10.0


def _actor_from_cookie(raw: str) -> Actor | None:
    with session_scope(write=False) as session:
        found = accounts.resolve_session(session, raw)
        return accounts.actor_for(found[1]) if found else None


def _actor_from_token(raw: str) -> Actor | None:
    with session_scope(write=False) as session:
        found = accounts.resolve_api_token(session, raw)
        return accounts.actor_for(found[1]) if found else None


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
        frame = json.loads(first)
    except (TimeoutError, ValueError, WebSocketDisconnect):
        return None
    if not isinstance(frame, dict) or frame.get("type") != "auth" or not isinstance(frame.get("token"), str):
        return None
    return await run_in_threadpool(_actor_from_token, frame["token"][:200])


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

    async def reader() -> None:
        while True:
            raw = await ws.receive_text()
            with contextlib.suppress(ValueError, AttributeError):
                if json.loads(raw).get("type") == "ping":
                    await ws.send_json({"type": "pong"})

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
