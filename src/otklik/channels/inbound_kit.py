"""Small pieces shared by the webhook channels (VK, WhatsApp, phone, web forms): reading a vendor's body,
precise 4xx errors, tagging a conversation, and finding where a reply should go.

Speaks no vendor's protocol; never touches tables the conversations domain owns except through its service.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.conversations import service as conversations
from otklik.conversations.models import Direction, Message
from otklik.platform.errors import DomainError, Forbidden, NotFound


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
    try:
        payload = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Malformed("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise Malformed("the body must be a JSON object")
    return payload


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

