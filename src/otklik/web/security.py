"""Security headers on every response (issue 17 §5–§6): a Content-Security-Policy without 'unsafe-inline'
(scripts and styles from this server, inline <script>/<style> blocks only with the request's nonce), no
framing by anyone (frame-ancestors 'none' and X-Frame-Options: DENY — the chat widget is a script on the
shop's page, not a frame, so nothing of ours needs to be framed), HSTS when the request came over HTTPS.

Templates write `nonce="{{ csp_nonce() }}"` on their inline blocks; no template may carry an inline event
handler (onclick=…) or a style="" attribute, which no nonce can allow (app.js handles data-confirm forms).
"""

from __future__ import annotations

import secrets
from contextvars import ContextVar

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from otklik.platform.config import get_settings

_nonce: ContextVar[str] = ContextVar("otklik_csp_nonce", default="")
HSTS = "max-age=31536000; includeSubDomains"
# our own pages that our own pages frame (the widget settings' live preview); never another origin
SAME_ORIGIN_FRAMES = ("/widget/demo",)


def csp_nonce() -> str:
    """This request's nonce, for the templates' inline <script> and <style> blocks."""
    return _nonce.get()


def policy(nonce: str, frame_ancestors: str = "'none'") -> str:
    return "; ".join((
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' data: blob: https:",  # images in customers' e-mails may come from their servers
        "media-src 'self' blob:",
        "font-src 'self' data:",
        "connect-src 'self'",  # the API and the WebSocket of this origin
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ))


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(16)
        token = _nonce.set(nonce)
        https = scope.get("scheme") == "https" or (get_settings().public_url or "").startswith("https://")
        same_origin = scope.get("path", "") in SAME_ORIGIN_FRAMES

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy",
                                   policy(nonce, "'self'" if same_origin else "'none'"))
                headers.setdefault("X-Frame-Options", "SAMEORIGIN" if same_origin else "DENY")
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                if https:
                    headers.setdefault("Strict-Transport-Security", HSTS)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            _nonce.reset(token)
