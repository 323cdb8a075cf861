"""What Meta's two messaging APIs share: the webhook's verification handshake (`hub.mode=subscribe`), the
`X-Hub-Signature-256` check of a notification's raw body, and the Graph API base URL of an account.

WhatsApp Cloud API and the Instagram Messaging API both follow Meta's webhook protocol: a GET that echoes
`hub.challenge` when `hub.verify_token` matches, then signed POSTs. Each plugin keeps what differs (the payload's
shape, the sending rules, the host: graph.facebook.com vs graph.instagram.com) and calls these for the rest.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from otklik.channels.base import webhook_account
from otklik.channels.inbound_kit import BadSignature, Malformed, parse_json, unknown_account, wrong_secret
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.platform.db import run_transaction, session_scope

DEFAULT_API_VERSION = "v21.0"
MAX_CHALLENGE = 200  # Meta's challenge is a short number; anything longer is not Meta

Handler = Callable[[Session, ChannelAccount, dict[str, Any]], dict[str, int]]


def verify_signature(product: str, app_secret: str, raw: bytes, header: str | None) -> None:
    """`X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`."""
    if not app_secret:
        raise BadSignature(f"the {product} app secret is not configured")
    if not header or not header.startswith("sha256="):
        raise BadSignature("X-Hub-Signature-256 is missing")
    expected = hmac.new(app_secret.encode(), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(header.removeprefix("sha256=").strip().lower().encode(), expected.encode()):
        raise BadSignature("X-Hub-Signature-256 does not match the body")


def graph_base(config: dict[str, Any], default_host: str) -> str:
    """The account's Graph API root: its `api_base` (a local stand-in in tests) or Meta's host, and the version."""
    return f"{str(config.get('api_base') or default_host).rstrip('/')}/{config.get('api_version') or DEFAULT_API_VERSION}"


def verify_handshake(kind: str, token: str, request: Request) -> PlainTextResponse:
    """Answer Meta's subscription check: echo `hub.challenge` when `hub.verify_token` is the account's."""
    params = request.query_params
    mode, verify_token, challenge = (params.get("hub.mode"), params.get("hub.verify_token"),
                                     params.get("hub.challenge"))
    if mode != "subscribe" or not verify_token or not challenge or len(challenge) > MAX_CHALLENGE:
        raise Malformed("expected hub.mode=subscribe, hub.verify_token and hub.challenge")
    with session_scope(write=False) as session:
        account = webhook_account(session, kind, token)
        expected = decrypt_secrets(account.secret).get("verify_token", "") if account else ""
    if account is None:
        raise unknown_account()
    if not expected or not hmac.compare_digest(verify_token.encode(), expected.encode()):
        raise wrong_secret("hub.verify_token")
    return PlainTextResponse(challenge)


async def receive_notification(kind: str, product: str, token: str, request: Request,
                               handle: Handler) -> dict[str, int]:
    """A signed notification: the account by its webhook token, the signature over the raw body, then `handle`
    in one transaction (retried on a serialisation failure), so a 2xx means what it stored is committed."""
    raw = await request.body()
    signature = request.headers.get("x-hub-signature-256")

    def work(session: Session) -> dict[str, int]:
        account = webhook_account(session, kind, token)
        if account is None:
            raise unknown_account()
        verify_signature(product, decrypt_secrets(account.secret).get("app_secret", ""), raw, signature)
        return handle(session, account, parse_json(raw))

    return await run_in_threadpool(run_transaction, work)
