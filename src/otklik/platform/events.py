"""The event bus: domain events published after commit, fanned out to WebSocket clients and handlers.

In-process by default; with `OTKLIK_REDIS_URL` every web process publishes to and listens on one Redis
pub/sub channel, so an event raised in process A reaches a browser connected to process B. The channel is
named after the URL's database number: Redis delivers a publish to subscribers on every database number, and
two installations sharing a Redis server (one database each) must not see each other's events.
Events are never published from inside a transaction: a rolled-back change must not be announced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session

log = logging.getLogger(__name__)
CHANNEL = "otklik:events"  # on Redis database 0; "otklik:events:<n>" on database n


def channel_for(db: int) -> str:
    return CHANNEL if db == 0 else f"{CHANNEL}:{db}"


@dataclass(frozen=True)
class Event:
    type: str
    workspace_id: int
    data: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def wire(self) -> str:
        """The frame sent to WebSocket clients, encoded once however many clients receive it."""
        return json.dumps({"type": self.type, "data": self.data}, ensure_ascii=False, default=str)

    def to_json(self) -> str:
        return json.dumps({"type": self.type, "workspace_id": self.workspace_id, "data": self.data},
                          ensure_ascii=False, default=str)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Event:
        obj = json.loads(raw)
        return cls(type=obj["type"], workspace_id=int(obj["workspace_id"]), data=obj.get("data") or {})


class Subscription:
    """One listener (a WebSocket) on one workspace; events arrive on an asyncio queue in its own loop."""

    def __init__(self, workspace_id: int, loop: asyncio.AbstractEventLoop, maxsize: int = 1000):
        self.workspace_id = workspace_id
        self.loop = loop
        self.queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: Event) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # a stalled client must not hold up everyone else


def _offer_all(subs: list[Subscription], event: Event) -> None:
    for sub in subs:
        sub.offer(event)


class EventBus:
    def __init__(self) -> None:
        self._subs: dict[int, set[Subscription]] = {}
        self._lock = threading.Lock()
        self._handlers: dict[str, list[Callable[[Event], None]]] = {}

    # -- listeners -------------------------------------------------------------------------------
    def subscribe(self, workspace_id: int) -> Subscription:
        sub = Subscription(workspace_id, asyncio.get_running_loop())
        with self._lock:
            self._subs.setdefault(workspace_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.get(sub.workspace_id, set()).discard(sub)

    def on(self, event_type: str, handler: Callable[[Event], None]) -> None:
        """A synchronous reaction in this process (e.g. enqueue a job); runs after commit. Registering the same
        handler for the same event again changes nothing, so a domain's `install()` may be called freely."""
        handlers = self._handlers.setdefault(event_type, [])
        if handler not in handlers:
            handlers.append(handler)

    def subscriber_count(self) -> int:
        with self._lock:
            return sum(len(s) for s in self._subs.values())

    # -- delivery --------------------------------------------------------------------------------
    def _dispatch_local(self, event: Event) -> None:
        with self._lock:
            subs = list(self._subs.get(event.workspace_id, ()))
        by_loop: dict[asyncio.AbstractEventLoop, list[Subscription]] = {}
        for sub in subs:
            by_loop.setdefault(sub.loop, []).append(sub)
        event.wire  # noqa: B018 - encode once, here, not once per client
        for loop, loop_subs in by_loop.items():
            # one wake-up per event loop, not one per client
            try:
                loop.call_soon_threadsafe(_offer_all, loop_subs, event)
            except RuntimeError:  # loop closed: its sockets are gone
                for sub in loop_subs:
                    self.unsubscribe(sub)

    def _run_handlers(self, event: Event) -> None:
        for handler in self._handlers.get(event.type, []):
            try:
                handler(event)
            except Exception:
                log.exception("event handler %s failed for %s", handler, event.type)

    def publish(self, event: Event) -> None:
        self._run_handlers(event)
        self._fanout(event)

    def _fanout(self, event: Event) -> None:
        self._dispatch_local(event)

    async def start(self) -> None:
        """Start background listening (only the Redis bus needs it)."""

    async def stop(self) -> None:
        """Stop background listening."""


class RedisEventBus(EventBus):
    def __init__(self, url: str):
        super().__init__()
        import redis

        self._url = url
        self._redis = redis.Redis.from_url(url)
        self.channel = channel_for(int(self._redis.connection_pool.connection_kwargs.get("db") or 0))
        self._task: asyncio.Task[None] | None = None
        # how many started lifespans use the listener: a second app lifespan in the same process (a test's own
        # `with TestClient(app)`) must not stop the listener the first one still relies on when it ends
        self._users = 0

    def _fanout(self, event: Event) -> None:
        # Every process, this one included, receives it back from Redis and dispatches locally.
        self._redis.publish(self.channel, event.to_json())

    async def start(self) -> None:
        self._users += 1
        if self._task is None:
            ready = asyncio.Event()
            self._task = asyncio.create_task(self._listen(ready))
            await asyncio.wait_for(ready.wait(), timeout=10)

    async def stop(self) -> None:
        self._users = max(0, self._users - 1)
        if self._users:
            return
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def _listen(self, ready: asyncio.Event) -> None:
        import redis.asyncio as aioredis

        while True:
            client = aioredis.Redis.from_url(self._url)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                ready.set()
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        self._dispatch_local(Event.from_json(message["data"]))
                    except (ValueError, KeyError):
                        log.warning("ignored a malformed event on %s", self.channel)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("redis event listener lost its connection; reconnecting")
                await asyncio.sleep(1)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
                    await client.aclose()


_bus: EventBus | None = None


def get_bus() -> EventBus:
    global _bus
    if _bus is None:
        from otklik.platform.config import get_settings

        url = get_settings().redis_url
        _bus = RedisEventBus(url) if url else EventBus()
    return _bus


def reset_bus() -> None:
    global _bus
    _bus = None


# -- after-commit plumbing ---------------------------------------------------------------------------

def after_commit(session: Session, action: Event | Callable[[], None]) -> None:
    """Queue an event to publish (or a callable to run, e.g. enqueue a job) once `session` commits."""
    session.info.setdefault("after_commit", []).append(action)


def flush_after_commit(session: Session) -> None:
    actions = session.info.pop("after_commit", [])
    bus = get_bus() if actions else None
    for action in actions:
        try:
            if isinstance(action, Event):
                assert bus is not None
                bus.publish(action)
            else:
                action()
        except Exception:
            # The change is committed; a lost notification is recovered by the outbox sweep / a reload.
            log.exception("after-commit action failed")


def discard_after_commit(session: Session) -> None:
    session.info.pop("after_commit", None)
