"""Checks every public reply passes before it leaves, whichever path it takes (the UI, the API, a macro, an
automation rule, the assistant's own texts):

- per-channel rules on whether a reply can be sent now (WhatsApp's 24-hour customer-service window, a phone
  conversation that takes no written replies...): channels `register()` one; `reply()` refuses with a 409 and
  the agent UI calls `explain()` to warn before the agent types;
- content checks on the reply's text (the phrase checker's «never» phrases, an overdue legal deadline...):
  domains above this one `register_content()` a check that returns `Problem`s. A "block" problem refuses the
  reply (409 with the problem's code); a "confirm" problem refuses it unless the sender acknowledged that code
  (the UI asks «send anyway?» and resends with `acknowledge=[code]`). One precise 409 names the first problem
  and lists them all in `fields`.

Never imports a channel or a higher domain: they register themselves here (they sit above this domain).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from dataclasses import field as dc_field
from typing import Any, Literal

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


# -- content checks ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One objection to a reply's text. `severity`: "block" (never sent), "confirm" (sent only when the sender
    acknowledges `code`), "hint" (shown, never refuses)."""

    code: str
    message: str
    severity: Literal["block", "confirm", "hint"] = "confirm"
    field: str = "text"
    details: dict[str, Any] = dc_field(default_factory=dict)


# (session, conversation, the reply's plain text, context) -> problems; context: {"author": "agent"|"assistant",
# "meta": the reply's meta, "path": "ui"|"api"|"macro"|"rule"|"assistant"|None}
ContentCheck = Callable[[Session, Conversation, str, dict[str, Any]], list[Problem]]
_content_checks: dict[str, ContentCheck] = {}


def register_content(name: str, check: ContentCheck) -> None:
    _content_checks[name] = check


def content_problems(session: Session, conversation: Conversation, text: str,
                     context: dict[str, Any] | None = None) -> list[Problem]:
    """Every registered content check's problems with this text, in registration order."""
    out: list[Problem] = []
    for check in list(_content_checks.values()):
        out.extend(check(session, conversation, text, context or {}))
    return out


def ensure_content_ok(session: Session, conversation: Conversation, text: str, *,
                      context: dict[str, Any] | None = None, acknowledged: Collection[str] = ()) -> list[Problem]:
    """Refuse (409) a reply with a "block" problem, or a "confirm" one whose code was not acknowledged; return
    the problems that let it through (hints, acknowledged ones) for the caller to record."""
    problems = content_problems(session, conversation, text, context)
    refusing = [p for p in problems if p.severity == "block" or (p.severity == "confirm" and
                                                                  p.code not in set(acknowledged))]
    if refusing:
        first = refusing[0]
        raise Conflict(first.message, code=first.code,
                       fields=[{"field": p.field, "message": p.message, "code": p.code, "severity": p.severity}
                               for p in refusing])
    return problems
