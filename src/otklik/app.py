"""The ASGI application: mounts every domain's API under /api/v1, the WebSocket, error handling, lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

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
from otklik.accounts.password_reset_api import router as password_reset_router
from otklik.accounts.workspace_profile import router as workspace_profile_router
from otklik.assistant import jobs as assistant_jobs
from otklik.assistant.api import router as assistant_router
from otklik.bookings import jobs as booking_jobs
from otklik.bookings.api import router as bookings_router
from otklik.calendars.api import router as calendars_router
from otklik.channels.registry import load_channels
from otklik.conversations import jobs as conversation_jobs
from otklik.conversations.api import router as conversations_router
from otklik.conversations.bulk import router as bulk_router
from otklik.conversations.routing_api import SeenAgents
from otklik.conversations.routing_api import router as routing_router
from otklik.conversations.sla_api import router as sla_router
from otklik.conversations.templates_api import router as templates_router
from otklik.crm import jobs as crm_jobs
from otklik.crm.api import router as crm_router
from otklik.crm.api import webhook_router as crm_webhook_router
from otklik.customers.api import router as customers_router
from otklik.customers.tasks_api import router as tasks_router
from otklik.feedback import jobs as feedback_jobs
from otklik.feedback.api import router as feedback_router
from otklik.feedback.qa_api import router as qa_router
from otklik.feedback.reviews_api import router as reviews_router
from otklik.guardrails.api import router as guardrails_router
from otklik.guardrails.compensations_api import router as compensations_router
from otklik.guardrails.phrase_api import router as phrases_router  # also registers the phrase reply check
from otklik.knowledge.api import router as knowledge_router
from otklik.notifications import jobs as notification_jobs
from otklik.notifications.api import router as notifications_router
from otklik.orders.api import router as orders_router
from otklik.platform import metrics
from otklik.platform.config import DEV_SECRET_KEY, get_settings
from otklik.platform.db import RetryTransaction
from otklik.platform.errors import DomainError
from otklik.platform.events import get_bus
from otklik.platform.jobs import Periodic, start_embedded_consumer
from otklik.platform.logs import RequestLog, quiet_libraries
from otklik.platform.metrics import MetricsMiddleware
from otklik.proactive import jobs as proactive_jobs
from otklik.proactive.api import router as proactive_router
from otklik.reports.api import router as reports_router
from otklik.service_levels import jobs as rule_jobs
from otklik.service_levels.api import router as rules_router
from otklik.web.operations import router as operations_router
from otklik.web.realtime import router as realtime_router
from otklik.web.security import SecurityHeaders, csp_nonce
from otklik.web.ui import install as install_ui
from otklik.web.widget.api import WidgetCORS
from otklik.web.widget.api import router as widget_router
from otklik.web.widget.pages import public as widget_public_pages
from otklik.web.widget.pages import router as widget_pages

log = logging.getLogger(__name__)
UPLOAD_PATHS = ("/api/v1/attachments", "/api/v1/widget/attachments", "/api/v1/orders/batch",
                "/api/v1/orders/import")  # order batches: up to 10,000 orders
DOCS_ASSETS = Path(__file__).parent / "web" / "static" / "vendor" / "swagger-ui-5.36.0"  # GET /api/docs


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

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSONResponse:
        # A safety net: bodies are read with otklik.platform.jsonbody, which refuses deep nesting itself.
        # One line, no traceback: an anonymous client must not be able to fill the log.
        log.warning("refused %s %s: RecursionError", request.method, request.url.path[:200])
        return _error(400, "too_deep", "the request is nested too deeply to process")

    @app.exception_handler(UnicodeError)
    async def bad_text(request: Request, exc: UnicodeError) -> JSONResponse:
        # A safety net for text that cannot be encoded or decoded (a lone surrogate such as \ud800, bytes
        # that are not UTF-8) wherever it turns up; one line, no traceback.
        log.warning("refused %s %s: %s", request.method, request.url.path[:200], type(exc).__name__)
        return _error(400, "bad_text", "the request contains text that is not valid Unicode "
                                       "(e.g. a lone surrogate such as \\ud800, or bytes that are not UTF-8)")

    @app.exception_handler(RetryTransaction)
    @app.exception_handler(OperationalError)
    async def busy_error(_: Request, exc: Exception) -> JSONResponse:
        log.warning("database busy: %s", type(getattr(exc, "orig", exc)).__name__)
        return _error(503, "busy", "the database is busy; retry shortly", headers={"Retry-After": "1"})


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    if settings.secret_key.get_secret_value() == DEV_SECRET_KEY:
        log.warning("OTKLIK_SECRET_KEY is not set: channel secrets are encrypted with the development key; "
                    "set a long random OTKLIK_SECRET_KEY before connecting real channels")
    bus = get_bus()
    assistant_jobs.install()
    rule_jobs.install()
    feedback_jobs.install()
    crm_jobs.install()
    proactive_jobs.install()
    notification_jobs.install()
    await bus.start()
    consumer = sweeper = assistant_sweeper = sla_sweeper = rules_sweeper = crm_sweeper = rollup_sweeper = None
    retention_sweeper = None
    proactive_sweeper = None
    booking_sweeper = None
    notification_sweeper = None
    loyalty_sweeper = None
    if settings.embedded_worker:
        consumer = start_embedded_consumer()
        sweeper = Periodic(conversation_jobs.sweep_outbox, settings.outbox_sweep_seconds).start()
        assistant_sweeper = Periodic(assistant_jobs.sweep_pending, 60.0).start()
        sla_sweeper = Periodic(conversation_jobs.sweep_sla, settings.sla_sweep_seconds).start()
        rules_sweeper = Periodic(rule_jobs.sweep_time_rules, 60.0).start()
        from otklik.reports import jobs as report_jobs

        rollup_sweeper = Periodic(report_jobs.sweep_rollup, 60.0).start()  # the reports' daily rollup
        crm_sweeper = Periodic(crm_jobs.sweep, 60.0).start()  # CRM notes, syncs, change feeds
        from otklik.privacy.service import sweep_retention

        retention_sweeper = Periodic(sweep_retention, 3600.0).start()  # closed conversations past retention (152-ФЗ)
        proactive_sweeper = Periodic(proactive_jobs.sweep, 60.0).start()  # late orders, due sends, campaigns
        notification_sweeper = Periodic(notification_jobs.sweep, 30.0).start()  # held digests, crashed sends
        booking_sweeper = Periodic(booking_jobs.sweep, 60.0).start()  # visits: missed, reminders, «Всё ли удобно?»
        from otklik.orders import loyalty_jobs

        loyalty_sweeper = Periodic(loyalty_jobs.sweep, 60.0).start()  # referral webhooks due; daily period tiers
    from otklik.channels.registry import start_background

    channel_loops = start_background() if settings.embedded_worker else []  # Telegram polling, event sweep
    from otklik.channels.email.smtp_in import start_if_configured

    smtpd = start_if_configured()  # the email channel's inbound SMTP endpoint, with OTKLIK_SMTPD_ENABLED=true
    try:
        yield
    finally:
        if smtpd is not None:
            smtpd.stop()
        for loop in channel_loops:
            loop.stop()  # type: ignore[attr-defined]
        if sweeper:
            sweeper.stop()
        if assistant_sweeper:
            assistant_sweeper.stop()
        if sla_sweeper:
            sla_sweeper.stop()
        if rules_sweeper:
            rules_sweeper.stop()
        if rollup_sweeper:
            rollup_sweeper.stop()
        if crm_sweeper:
            crm_sweeper.stop()
        if retention_sweeper:
            retention_sweeper.stop()
        if proactive_sweeper:
            proactive_sweeper.stop()
        if notification_sweeper:
            notification_sweeper.stop()
        if loyalty_sweeper:
            loyalty_sweeper.stop()
        if booking_sweeper:
            booking_sweeper.stop()
        if consumer:
            consumer.stop(graceful=True)
        await bus.stop()


def create_app() -> FastAPI:
    app = FastAPI(title="Otklik API", version=__version__, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/api/v1/openapi.json",
                  description="Omnichannel customer support. Authenticate with `Authorization: Bearer <token>` "
                              "(create one at POST /api/v1/api-tokens) or a session cookie + `X-CSRF-Token`.")
    install_error_handlers(app)
    assistant_jobs.install()  # the AI operator reacts to every inbound customer message
    rule_jobs.install()  # automation rules react to conversation, message, SLA and hand-off events
    feedback_jobs.install()  # a solved conversation gets its CSAT survey
    crm_jobs.install()  # a solved conversation's summary goes to the connected CRMs (issue 18)
    proactive_jobs.install()  # order events and «стоп» replies (proactive messages, issue 16)
    notification_jobs.install()  # agents' Telegram notifications (issue 16)
    app.include_router(notifications_router, prefix="/api/v1")  # /me/notifications
    for router in (accounts_router, customers_router, bulk_router, conversations_router, knowledge_router,
                   assistant_router,
                   password_reset_router, workspace_profile_router, templates_router, tasks_router, calendars_router,
                   sla_router, routing_router, rules_router, guardrails_router, compensations_router,
                   phrases_router, reports_router, feedback_router, reviews_router, qa_router, orders_router,
                   bookings_router,
                   *load_channels()):
        app.include_router(router, prefix="/api/v1")
    app.include_router(realtime_router)
    from otklik.channels.webforms.plugin import public_router as web_forms  # POST /forms/<token>
    from otklik.customers.suggestions_api import router as suggestions_router

    app.include_router(web_forms)
    app.include_router(suggestions_router, prefix="/api/v1")  # probable duplicate customers
    app.include_router(crm_router, prefix="/api/v1")  # CRM connections (issue 18)
    app.include_router(proactive_router, prefix="/api/v1")  # proactive messages (issue 16)
    app.include_router(crm_webhook_router, prefix="/api/v1")  # the CRMs' outgoing webhooks
    app.include_router(widget_router, prefix="/api/v1")  # the chat widget: visitors' API, socket, settings
    app.include_router(widget_pages)
    app.include_router(widget_public_pages)

    app.mount("/api/docs/assets", StaticFiles(directory=DOCS_ASSETS), name="docs-assets")

    @app.get("/api/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        # Swagger UI 5 vendored (static/vendor/README.md), not a CDN: the docs work on a server with no internet;
        # 5.x reads the OpenAPI 3.1 schema FastAPI writes (4.x showed «Unable to render this definition»)
        page = get_swagger_ui_html(openapi_url="/api/v1/openapi.json", title="Otklik API",
                                   swagger_js_url="/api/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/api/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/api/docs/assets/favicon-32x32.png")
        # its one inline <script> (the page's own, no user content) carries the request's CSP nonce
        body = bytes(page.body).replace(b"<script>", f'<script nonce="{csp_nonce()}">'.encode())
        return HTMLResponse(body)

    app.include_router(operations_router)  # /healthz, /readyz, /metrics
    from otklik.privacy.api import router as privacy_router

    app.include_router(privacy_router, prefix="/api/v1")  # a customer's export and erasure (152-ФЗ)
    from otklik.privacy.ui import router as privacy_pages

    app.include_router(privacy_pages)  # the customer's «Персональные данные» page, Settings → «Персональные данные»
    metrics.install()  # inbound messages by channel

    install_ui(app)  # the agent workspace pages, `/` and /static

    app.add_middleware(WidgetCORS)
    app.add_middleware(BodyLimit)
    app.add_middleware(SeenAgents)  # an agent's activity: routing counts an idle agent as away
    app.add_middleware(SecurityHeaders)  # CSP with a nonce, no framing, HSTS over HTTPS: every response
    app.add_middleware(MetricsMiddleware)  # times every request, a 413 and a 500 included
    app.add_middleware(RequestLog)  # outermost: a request id on every log line, X-Request-ID, one access line
    quiet_libraries()  # httpx & co. log full URLs (a Telegram bot token) at INFO
    return app
