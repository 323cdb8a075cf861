"""My profile → «Notifications on my phone»: link my Telegram with a one-time code, unlink it, and choose what
reaches me. The block loads into the profile page by HTMX and swaps itself after every action. Pages call the
notifications service; they never write SQL."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import Response

from otklik.accounts.deps import DB
from otklik.notifications import service
from otklik.notifications.models import KINDS
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import CurrentUser, UIUser, is_htmx, redirect, render, ui_router

router = ui_router()
TEMPLATE = "partials/agent_notifications.html"


def _block(request: Request, db: DB, user: UIUser, **extra: Any) -> Response:
    link = service.link_of(db, user.id)
    return render(request, TEMPLATE, prefs=service.preferences(db, user.actor), link=link, kinds=KINDS,
                  bot_connected=bool(service.telegram_bots(db, user.actor.workspace_id)), **extra)


def _done(request: Request, db: DB, user: UIUser, **extra: Any) -> Response:
    if not is_htmx(request):  # a plain form (no JavaScript): back to the profile
        return redirect("/settings/profile?saved=1", request)
    return _block(request, db, user, **extra)


@router.get("/ui/profile/notifications")
def notifications_block(request: Request, user: CurrentUser, db: DB) -> Response:
    return _block(request, db, user)


@router.post("/ui/profile/notifications/preferences")
def save_preferences(request: Request, user: CurrentUser, db: DB,
                     kinds: Annotated[list[str], Form(max_length=len(KINDS))] = []) -> Response:  # noqa: B006
    unknown = [k for k in kinds if k not in KINDS]
    if unknown:
        from otklik.platform.errors import field_error

        raise field_error("kinds", f"unknown kind {unknown[0]!r}; one of: {', '.join(KINDS)}")
    service.update_preferences(db, user.actor, {kind: kind in kinds for kind in KINDS})
    return _done(request, db, user, saved=True)


@router.post("/ui/profile/notifications/telegram/code")
def new_code(request: Request, user: CurrentUser, db: DB) -> Response:
    try:
        code, _expires_at = service.issue_link_code(db, user.actor)
    except DomainError as exc:
        return _block(request, db, user, error=exc.message)
    minutes = int(service.CODE_TTL.total_seconds() // 60)
    username = service.bot_username(db, user.actor.workspace_id)
    return _block(request, db, user, code=code, minutes=minutes, bot_username=username,
                  start_link=service.start_link(username, code))


@router.post("/ui/profile/notifications/telegram/unlink")
def unlink(request: Request, user: CurrentUser, db: DB) -> Response:
    service.unlink(db, user.actor)
    return _done(request, db, user, unlinked=True)
