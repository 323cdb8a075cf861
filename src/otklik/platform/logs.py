"""Logging: one line per record, plain text by default or JSON (`OTKLIK_LOG_FORMAT=json`), each carrying the
request id of the HTTP request it serves (or of the request whose after-commit job it runs), so one message can
be followed from its webhook to its outbox delivery. Owns the request-id middleware and the logging setup;
it must never log a request's body, query string, headers or any secret (paths are logged as route templates).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json
import logging
import os
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

HEADER = "X-Request-ID"
_SANE = re.compile(r"[A-Za-z0-9._:@-]{1,64}")  # a proxy's id is kept when it is this; otherwise a new one
REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("otklik_request_id", default=None)
access_log = logging.getLogger("otklik.access")
# Libraries that log a full URL at INFO: an outgoing Telegram call's URL holds the bot token
# (…/bot<token>/sendMessage), and some vendors take their key in the query string.
QUIET = ("httpx", "httpcore", "telegram", "hpack", "urllib3", "mail.log", "aiosmtpd", "websockets", "huey")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(raw: str | bytes | None) -> str | None:
    """The caller's id when it is short and plain (a proxy's, a client's retry id); None otherwise."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("ascii")
        except UnicodeDecodeError:
            return None
    return raw if raw is not None and _SANE.fullmatch(raw) else None


@contextlib.contextmanager
def bound_request_id(request_id: str | None) -> Iterator[None]:
    """Every record logged inside carries `request_id` (a job running for a request binds the request's)."""
    token = REQUEST_ID.set(request_id)
    try:
        yield
    finally:
        REQUEST_ID.reset(token)


class RequestIdFilter(logging.Filter):
    """Puts `record.request_id` on every record a handler emits ("-" outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, request_id, and the
    traceback when there is one; extra fields given with `log.info(..., extra={...})` are kept."""

    _STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id",
                                                                              "taskName", "color_message"}

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": None,
        }
        stamped = getattr(record, "request_id", "-")
        entry["request_id"] = REQUEST_ID.get() if stamped == "-" else stamped
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


PLAIN_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"


def log_format() -> str:
    """`OTKLIK_LOG_FORMAT`: "plain" (the default: a person reads the console) or "json" (a log shipper)."""
    value = os.environ.get("OTKLIK_LOG_FORMAT", "plain").strip().lower()
    return "json" if value == "json" else "plain"


def log_level() -> str:
    return os.environ.get("OTKLIK_LOG_LEVEL", "info").strip().upper() or "INFO"


def dict_config(fmt: str | None = None, level: str | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` for every Otklik process (uvicorn applies it in each web worker)."""
    fmt = fmt or log_format()
    level = (level or log_level()).upper()
    formatter: dict[str, Any] = ({"()": "otklik.platform.logs.JsonFormatter"} if fmt == "json"
                                 else {"format": PLAIN_FORMAT})
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": "otklik.platform.logs.RequestIdFilter"}},
        "formatters": {"otklik": formatter},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "otklik",
                                 "filters": ["request_id"], "stream": "ext://sys.stderr"}},
        "root": {"level": level, "handlers": ["console"]},
        "loggers": {
            # uvicorn's own access log prints the raw path and query string (webhook secrets, form tokens):
            # RequestLog below writes one line per request with the route template instead
            "uvicorn": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.error": {"level": level, "handlers": [], "propagate": True},
            "uvicorn.access": {"level": "WARNING", "handlers": [], "propagate": False},
            **{name: {"level": "WARNING"} for name in QUIET},
        },
    }


def configure(fmt: str | None = None, level: str | None = None) -> None:
    """Set up the process's logging (`otklik worker`, `otklik smtpd`; `otklik serve` hands it to uvicorn)."""
    import logging.config

    logging.config.dictConfig(dict_config(fmt, level))


def quiet_libraries() -> None:
    """Libraries that log URLs with tokens at INFO log at WARNING and up only, however logging was set up."""
    for name in QUIET:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)


class RequestLog:
    """Binds a request id to each HTTP request and WebSocket (the caller's `X-Request-ID` when sane, else a
    new one), returns it in the `X-Request-ID` response header, and logs one line per HTTP request at INFO:
    method, route template (never the raw path: webhook and form paths hold secrets), status, milliseconds."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers") or []:
            if name == b"x-request-id":
                given = sane_request_id(value)
                break
        request_id = given or new_request_id()
        token = REQUEST_ID.set(request_id)
        if scope["type"] == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                REQUEST_ID.reset(token)
            return
        status = 500
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO) and scope.get("path") != "/metrics":
                from otklik.platform.metrics import route_label

                access_log.info("%s %s %s %.1f ms", scope.get("method", "GET"), route_label(scope), status,
                                (time.perf_counter() - started) * 1000)
            REQUEST_ID.reset(token)
