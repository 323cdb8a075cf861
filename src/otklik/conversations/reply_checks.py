"""Per-channel rules on whether a public reply can be sent now (WhatsApp's 24-hour customer-service window,
a phone conversation that takes no written replies...). Channels register a check; `reply()` refuses a reply
a check objects to with a 409, and the agent UI calls `explain()` to warn before the agent types.

Never imports a channel: the channels register themselves here (they sit above this domain).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from otklik.conversations.models import Conversation
from otklik.platform.errors import Conflict

# (session, conversation, reply meta) -> why this reply cannot be sent now, or None when it can
ReplyCheck = Callable[[Session, Conversation, dict[str, Any]], str | None]
_checks: dict[str, ReplyCheck] = {}


def register(channel: str, check: ReplyCheck) -> None:
    _checks[channel] = check


def explain(session: Session, conversation: Conversation, *, channel: str | None = None,
            meta: dict[str, Any] | None = None) -> str | None:
    """Why a free-form public reply in this conversation cannot be sent now (None: it can)."""
    check = _checks.get(channel or conversation.channel)
    return check(session, conversation, meta or {}) if check else None


def ensure_can_reply(session: Session, conversation: Conversation, *, channel: str | None = None,
                     meta: dict[str, Any] | None = None) -> None:
    reason = explain(session, conversation, channel=channel, meta=meta)
    if reason is not None:
        raise Conflict(reason, code="reply_refused")
