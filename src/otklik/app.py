"""The ASGI application: mounts every domain's API under /api/v1, the WebSocket, error handling, lifespan."""

from __future__ import annotations

import contextlib
import html
import logging
from collections.abc import AsyncIterator
from typing import Any

import swagger_ui_bundle
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DataError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otklik import __version__
from otklik.accounts.api import router as accounts_router
from otklik.channels.registry import load_channels
from otklik.conversations import jobs as conversation_jobs
from otklik.conversations.api import router as conversations_router
from otklik.customers.api import router as customers_router
from otklik.knowledge.api import router as knowledge_router
from otklik.platform.config import get_settings
from otklik.platform.db import RetryTransaction
from otklik.platform.errors import DomainError
from otklik.platform.events import get_bus
from otklik.platform.jobs import Periodic, start_embedded_consumer
from otklik.web.realtime import router as realtime_router

log = logging.getLogger(__name__)
UPLOAD_PATHS = ("/api/v1/attachments",)


def _error(status: int, code: str, message: str, fields: list[dict[str, str]] | None = None,
           headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, "fields": fields or []}}, status_code=status,
                        headers=headers)


class BodyLimit:
    """Refuses bodies over the limit with a 413 before the app reads them (and while it reads them)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        path: str = scope.get("path", "")
        limit = settings.max_attachment_bytes + 65536 if path.startswith(UPLOAD_PATHS) else settings.max_request_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                response = _error(400, "bad_request", "Content-Length is not a number")
                await response(scope, receive, send)
                return
            if too_big:
                response = _error(413, "too_large", f"the request body may be at most {limit} bytes")
                await response(scope, receive, send)
                return
        seen = 0
        rejected = False

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        async def limited_receive() -> Message:
            nonlocal seen, rejected
            if rejected:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    # Answer now and tell the app the client left, so it stops reading and its reply is dropped.
                    response = _error(413, "too_large", f"the request body may be at most {limit} bytes")
                    await response(scope, receive, send)
                    rejected = True
                    return {"type": "http.disconnect"}
            return message

        await self.app(scope, limited_receive, guarded_send)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def domain_error(_: Request, exc: DomainError) -> JSONResponse:
        return _error(exc.status_code, exc.code, exc.message, exc.fields)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = []
        for err in exc.errors():
            if err.get("type") == "json_invalid":
                return _error(400, "malformed_json", "the body is not valid JSON: " + str(err.get("msg")))
            fields.append({"field": _field_name(tuple(err.get("loc", ()))), "message": str(err.get("msg"))})
        summary = "; ".join(f"{f['field']}: {f['message']}" for f in fields[:3])
        return _error(422, "invalid", summary or "invalid request", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}.get(
            exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(IntegrityError)
    async def integrity_error(_: Request, exc: IntegrityError) -> JSONResponse:
        log.info("integrity conflict: %s", exc.orig.__class__.__name__)
        return _error(409, "conflict", "the change conflicts with existing data (a duplicate or a missing "
                                       "reference); reload and try again")

    @app.exception_handler(OverflowError)
    @app.exception_handler(DataError)
    async def out_of_range(_: Request, exc: Exception) -> JSONResponse:
        # e.g. an id of 2**64 in a path: no such object can exist, and the database refuses the number
        return _error(422, "out_of_range", "a number in the request is outside the range the database can "
                                           "store (ids are 64-bit integers)")

    @app.exception_handler(RetryTransaction)
    @app.exception_handler(OperationalError)
    async def busy_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database busy: %s", type(getattr(exc, "orig", exc)).__name__)
        return _error(503, "busy", "the database is busy; retry shortly", headers={"Retry-After": "1"})


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    bus = get_bus()
    await bus.start()
    consumer = sweeper = None
    if settings.embedded_worker:
        consumer = start_embedded_consumer()
        sweeper = Periodic(conversation_jobs.sweep_outbox, settings.outbox_sweep_seconds).start()
    try:
        yield
    finally:
        if sweeper:
            sweeper.stop()
        if consumer:
            consumer.stop(graceful=True)
        await bus.stop()


LANDING = """<!doctype html><html lang="ru"><head><meta charset="utf-8"><title>Otklik</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:16px/1.5 system-ui,sans-serif;max-width:42rem;margin:3rem auto;padding:0 1rem;color:#1d2330}}
code{{background:#f1f3f7;padding:.1rem .3rem;border-radius:4px}}a{{color:#2952cc}}</style></head><body>
<h1>Отклик / Otklik {version}</h1>
<p>Сервер работает. The server is running.</p>
<ul><li><a href="/api/docs">REST API documentation</a> (OpenAPI: <a href="/api/v1/openapi.json">
/api/v1/openapi.json</a>)</li><li>WebSocket events: <code>/api/v1/ws</code></li>
<li>Health: <a href="/healthz">/healthz</a></li></ul>
<p>The agent workspace pages are not built yet; everything is available through the API.</p>
</body></html>"""


def create_app() -> FastAPI:
    app = FastAPI(title="Otklik API", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/v1/openapi.json",
                  description="Omnichannel customer support. Authenticate with `Authorization: Bearer <token>` "
                              "(create one at POST /api/v1/api-tokens) or a session cookie + `X-CSRF-Token`.")
    install_error_handlers(app)
    for router in (accounts_router, customers_router, conversations_router, knowledge_router,
                   *load_channels()):
        app.include_router(router, prefix="/api/v1")
    app.include_router(realtime_router)

    app.mount("/api/docs/assets", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # Swagger UI from a PyPI package, not a CDN: the docs work on a server with no internet.
        return get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="Otklik API",
                                   swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/api/docs/assets/favicon-32x32.png")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    def landing() -> str:
        return LANDING.format(version=html.escape(__version__))

    app.add_middleware(BodyLimit)
    return app
