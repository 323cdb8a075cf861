"""Prometheus metrics (`prometheus-client`): the counters and histograms every process updates, the ASGI
middleware that times each HTTP request by its route template, and the text a scrape of `/metrics` returns.

With PROMETHEUS_MULTIPROC_DIR set (`otklik serve --workers N` sets it itself; set it for `otklik worker`s on
the same machine too) every process writes its samples to files in that folder and a scrape of any web process
sums them all. Labels are bounded on purpose: a route template, never a raw path; an outcome, never an id.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as prom_multiprocess
from prometheus_client.registry import REGISTRY, Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

HTTP_REQUESTS = Counter("otklik_http_requests", "HTTP requests answered, by route template and status",
                        ["method", "route", "status"])
HTTP_LATENCY = Histogram("otklik_http_request_duration_seconds", "Time to answer an HTTP request, by route template",
                         ["method", "route"], buckets=LATENCY_BUCKETS)
WEBSOCKETS = Gauge("otklik_websocket_connections", "Open WebSocket connections (agents' and the widget's)",
                   ["route"], multiprocess_mode="livesum")
INBOUND_MESSAGES = Counter("otklik_inbound_messages", "Customer messages received, by channel", ["channel"])
ASSISTANT_DECISIONS = Histogram("otklik_assistant_decision_seconds",
                                "Time the assistant took over one customer message, by outcome (answer, clarify, "
                                "handoff, silent, skipped, duplicate, gave_up, error)",
                                ["outcome"], buckets=LATENCY_BUCKETS)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render(extra: Iterable[Collector] = ()) -> bytes:
    """The exposition text: this process's metrics (or every process's, in multiprocess mode) plus `extra`
    collectors computed now (queue depths read from the database at scrape time)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        prom_multiprocess.MultiProcessCollector(registry)
        for collector in extra:
            registry.register(collector)
        return generate_latest(registry)
    scrape = CollectorRegistry()
    for collector in (REGISTRY, *extra):
        scrape.register(collector)
    return generate_latest(scrape)


def _route_label(scope: Scope) -> str:
    """The matched route's template with the prefix it was included under: «/api/v1/conversations/{id}».

    FastAPI leaves the route's own path (without the router's prefix) in the scope, so the prefix is taken
    from the request path, segment by segment, with any parameter values in it put back as their names."""
    raw: str = scope.get("path", "")
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str):
        own = path.strip("/").split("/") if path.strip("/") else []
        segments = raw.strip("/").split("/") if raw.strip("/") else []
        if len(segments) < len(own) or any(":path}" in s for s in own):
            return path
        values = {str(v): "{" + k + "}" for k, v in (scope.get("path_params") or {}).items()}
        prefix = [values.get(s, s) for s in segments[: len(segments) - len(own)]]
        return "/" + "/".join(prefix + own) if prefix or own else "/"
    for mount in ("/static/", "/api/docs/assets/"):
        if raw.startswith(mount):
            return mount + "*"
    return "unmatched"  # a 404: the raw path would let any client grow the label set without bound


route_label = _route_label  # the request log (platform/logs.py) names a request by the same template


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template, and keeps the open WebSockets' gauge."""

    def __init__(self, app: ASGIApp, skip: Callable[[str], bool] = lambda path: path == "/metrics"):
        self.app = app
        self.skip = skip

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http" or self.skip(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def tracked_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            route = _route_label(scope)
            method = scope.get("method", "GET")
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        opened: Any = None

        async def tracked_send(message: Message) -> None:
            nonlocal opened
            if message["type"] == "websocket.accept" and opened is None:
                opened = WEBSOCKETS.labels(_route_label(scope))
                opened.inc()
            await send(message)

        try:
            await self.app(scope, receive, tracked_send)
        finally:
            if opened is not None:
                opened.dec()


def _count_inbound(event: Any) -> None:
    data = event.data
    if data.get("direction") == "inbound" and data.get("author_kind") == "customer":
        INBOUND_MESSAGES.labels(str(data.get("channel") or "unknown")[:16]).inc()
        # ids only, never the text: the line that starts a message's trail (its request id is on the record)
        log.info("inbound message %s in conversation %s via %s (workspace %s)", data.get("id"),
                 data.get("conversation_id"), str(data.get("channel") or "unknown")[:16], event.workspace_id)


def install() -> None:
    """Count inbound messages on this process's bus (web processes and workers: a channel poller's messages
    are published where they arrive). `Bus.on` keeps a handler once."""
    from otklik.platform.events import get_bus

    get_bus().on("message.created", _count_inbound)
