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


# -- what a channel can carry: files on a public reply ----------------------------------------------------------


@dataclass(frozen=True)
class FileLimits:
    """A channel's limits on the files of one reply (the vendor's, as its documentation states them):
    `max_bytes` per file, by content-type prefix where the vendor differs by kind (`by_type`, e.g. WhatsApp's
    5 MB images and 16 MB video), `max_files` per reply, `total_bytes` for all of them (e-mail)."""

    max_bytes: int | None = None
    max_files: int | None = None
    total_bytes: int | None = None
    by_type: tuple[tuple[str, int], ...] = ()
    note: str = ""

    def limit_for(self, content_type: str) -> int | None:
        for prefix, cap in self.by_type:
            if content_type.startswith(prefix):
                return cap
        return self.max_bytes

    def view(self) -> dict[str, Any]:
        return {"max_bytes": self.max_bytes, "max_files": self.max_files, "total_bytes": self.total_bytes,
                "by_type": dict(self.by_type), "note": self.note}


_file_limits: dict[str, FileLimits] = {}


def register_file_limits(channel: str, limits: FileLimits) -> None:
    _file_limits[channel] = limits


def file_limits(channel: str) -> FileLimits | None:
    return _file_limits.get(channel)


def _mb(size: int) -> str:
    return f"{size / 1_048_576:.0f} MB" if size >= 1_048_576 else f"{size // 1024} KB"


def check_files(channel: str, files: list[tuple[str, str, int]]) -> None:
    """Refuse (422 naming `attachment_ids.<i>`) files this channel cannot carry: (filename, content type, size)."""
    limits = _file_limits.get(channel)
    if limits is None or not files:
        return
    from otklik.platform.errors import field_error

    if limits.max_files is not None and len(files) > limits.max_files:
        raise field_error("attachment_ids", f"{channel} takes at most {limits.max_files} files in one reply")
    for i, (name, content_type, size) in enumerate(files):
        cap = limits.limit_for(content_type)
        if cap is not None and size > cap:
            raise field_error(f"attachment_ids.{i}", f"{name}: {_mb(size)} is more than {channel} takes "
                                                     f"({_mb(cap)} for {content_type})")
    total = sum(size for _, _, size in files)
    if limits.total_bytes is not None and total > limits.total_bytes:
        raise field_error("attachment_ids", f"the files come to {_mb(total)}; {channel} takes at most "
                                            f"{_mb(limits.total_bytes)} in one message")
