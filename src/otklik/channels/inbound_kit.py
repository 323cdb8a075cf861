"""Small pieces shared by the webhook channels (VK, WhatsApp, phone, web forms, and the Telegram / MAX bot
webhooks): reading a vendor's body, precise 4xx errors, tagging a conversation, and finding where a reply
should go.

Speaks no vendor's protocol; never touches tables the conversations domain owns except through its service.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.conversations import service as conversations
from otklik.conversations.models import Direction, Message
from otklik.platform.db import run_transaction
from otklik.platform.errors import DomainError, Forbidden, NotFound, Unauthorized
from otklik.platform.jsonbody import loads, loads_object


class Malformed(DomainError):
    status_code = 400
    code = "malformed"


class BadSignature(DomainError):
    status_code = 401
    code = "bad_signature"


def unknown_account() -> NotFound:
    return NotFound("no enabled channel account behind this URL")


def wrong_secret(what: str) -> Forbidden:
    return Forbidden(f"{what} does not match this channel's settings", code="bad_secret")


def parse_json(raw: bytes) -> dict[str, Any]:
    """A webhook's JSON object, read with the shared limits (otklik.platform.jsonbody): deep nesting, lone
    surrogates, bytes that are not UTF-8 and a non-object top level are a 400 `malformed_json`."""
    return loads_object(raw)


async def raw_body(request: Request) -> bytes:
    return await request.body()


def tag_conversation(session: Session, workspace_id: int, conversation_id: int, tag: str) -> None:
    tags = conversations.tags_of(session, [conversation_id])[conversation_id]
    if tag not in tags:
        conversations.update_conversation(session, Actor.system(workspace_id), conversation_id,
                                          {"tags": [*tags, tag]})


def latest_inbound_meta(session: Session, conversation_id: int, channel: str, key: str) -> dict[str, Any]:
    """`meta[key]` of the newest customer message of this channel in the conversation (where to reply)."""
    rows = session.scalars(select(Message.meta).where(
        Message.conversation_id == conversation_id, Message.channel == channel,
        Message.direction == Direction.inbound.value).order_by(Message.id.desc()).limit(20))
    for meta in rows:
        value = (meta or {}).get(key)
        if isinstance(value, dict):
            return value
    return {}


def require_str(obj: dict[str, Any], key: str, where: str, *, max_len: int = 4096) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise Malformed(f"{where}.{key} must be a non-empty string")
    return value


def require_int(obj: dict[str, Any], key: str, where: str) -> int:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) >= 2**62:
        raise Malformed(f"{where}.{key} must be an integer")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    """A vendor's nested object, or {} when it is missing or of another type (hostile or odd payloads)."""
    return value if isinstance(value, dict) else {}


def as_int(value: Any, default: int = 0) -> int:
    """A vendor's number that only decorates what we show (a size, a duration): never fails."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value if abs(value) < 2**62 else default
    if isinstance(value, str) and value.isdigit() and len(value) < 18:
        return int(value)
    return default


# -- bot webhooks (Telegram, MAX): a secret header, a JSON update, an answer the bot platform reads ---------

def bot_answer(status: int, result: str, message: str = "") -> JSONResponse:
    body: dict[str, Any] = {"ok": status == 200, "result": result}
    if message:
        body["error"] = {"code": result, "message": message, "fields": []}
    return JSONResponse(body, status_code=status)


def handle_bot_webhook(kind: str, title: str, header_name: str, token: str, secret_header: str, body: bytes,
                       handle: Callable[[Session, Any, dict[str, Any], dict[str, str]], str],
                       invalid: type[Exception], malformed: tuple[type[Exception], ...]) -> JSONResponse:
    """The account behind the webhook address, its secret header checked in constant time, the body parsed,
    then `handle(session, account, update, secrets)` -> outcome, in one transaction. `invalid` is the channel's
    own "not an update" error (its message is shown); `malformed` are the errors a wrong-typed field deep inside
    an update raises. The body is read with the shared JSON limits only after the secret matched. Every failure
    is a precise 4xx (503 while the secrets cannot be read: the platform retries)."""
    from otklik.channels.base import webhook_account
    from otklik.channels.secrets import decrypt_secrets

    def work(session: Session) -> JSONResponse:
        account = webhook_account(session, kind, token)
        if account is None:
            return bot_answer(404, "not_found", f"no enabled {title} bot has this webhook address")
        try:
            secrets = decrypt_secrets(account.secret)
        except ValueError as exc:  # OTKLIK_SECRET_KEY changed: the platform retries while the admin fixes it
            return bot_answer(503, "secrets_unreadable", str(exc))
        expected = secrets.get("webhook_secret", "")
        if not expected or not hmac.compare_digest(expected.encode(), secret_header.encode()):
            raise Unauthorized(f"the {header_name} header is missing or wrong")
        data = loads(body)  # MalformedJSON (a DomainError): answered below as a 400 `malformed_json`
        try:
            with session.begin_nested():
                return bot_answer(200, handle(session, account, data, secrets))
        except invalid as exc:
            return bot_answer(400, "invalid_update", str(exc))
        except malformed as exc:
            return bot_answer(400, "invalid_update", f"not a {title} update: {type(exc).__name__}")

    try:
        return run_transaction(work)
    except DomainError as exc:
        return bot_answer(exc.status_code, exc.code, exc.message)
