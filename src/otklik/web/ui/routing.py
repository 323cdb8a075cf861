"""Routing in the agent workspace: the agent's availability switch in the top bar, a team's auto-assignment form
on Settings → Teams and the workspace's routing settings (out-of-hours hand-over, idle minutes)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request, Response

from otklik.accounts.deps import DB
from otklik.conversations import routing
from otklik.platform.errors import DomainError, field_error
from otklik.web.ui.deps import AdminUser, CurrentUser, SupervisorUser, redirect, safe_next, ui_router

router = ui_router()


def _back(request: Request, default: str) -> str:
    referer = request.headers.get("referer", "")
    path = "/" + referer.split("/", 3)[3] if referer.count("/") >= 3 else default
    return safe_next(path)


@router.post("/ui/availability")
def set_availability(request: Request, user: CurrentUser, db: DB,
                     state: Annotated[str, Form(max_length=16)]) -> Response:
    routing.set_availability(db, user.actor, state)
    return redirect(_back(request, "/inbox"), request)


def _whole(value: str, field: str) -> int:
    value = value.strip()
    if not value.isdigit() or len(value) > 6:
        raise field_error(field, "a whole number")
    return int(value)


@router.post("/settings/teams/{team_id}/routing")
def team_routing(request: Request, team_id: int, user: SupervisorUser, db: DB,
                 auto_assign: Annotated[str, Form(max_length=8)] = "",
                 method: Annotated[str, Form(max_length=16)] = routing.ROUND_ROBIN,
                 capacity_chat: Annotated[str, Form(max_length=8)] = "5",
                 capacity_email: Annotated[str, Form(max_length=8)] = "10") -> Response:
    from otklik.web.ui.settings import _teams_page

    try:
        routing.update_team_routing(db, user.actor, team_id, {
            "auto_assign": bool(auto_assign), "method": method,
            "capacity_chat": _whole(capacity_chat, "capacity_chat"),
            "capacity_email": _whole(capacity_email, "capacity_email")})
    except DomainError as exc:
        if exc.status_code != 422:
            raise
        db.rollback()
        field = exc.fields[0]["field"] if exc.fields else ""
        return _teams_page(request, db, user, status_code=422, error=f"{field}: {exc.message}" if field else exc.message)
    return redirect("/settings/teams", request)


@router.post("/settings/routing")
def workspace_routing(request: Request, user: AdminUser, db: DB,
                      out_of_hours_to_open_team: Annotated[str, Form(max_length=8)] = "",
                      away_after_minutes: Annotated[str, Form(max_length=8)] = "15") -> Response:
    from otklik.web.ui.settings import _teams_page

    try:
        routing.update_workspace_settings(db, user.actor, {
            "out_of_hours_to_open_team": bool(out_of_hours_to_open_team),
            "away_after_minutes": _whole(away_after_minutes, "away_after_minutes")})
    except DomainError as exc:
        if exc.status_code != 422:
            raise
        db.rollback()
        return _teams_page(request, db, user, status_code=422, error=exc.message)
    return redirect("/settings/teams", request)


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


@router.post("/settings/users/{user_id}/skills")
def user_skills(request: Request, user_id: int, user: SupervisorUser, db: DB,
                languages: Annotated[str, Form(max_length=1000)] = "",
                categories: Annotated[str, Form(max_length=4000)] = "") -> Response:
    from otklik.web.ui.settings import _teams_page

    try:
        routing.set_skills(db, user.actor, user_id, {"languages": _names(languages),
                                                     "categories": _names(categories)})
    except DomainError as exc:
        if exc.status_code != 422:
            raise
        db.rollback()
        field = exc.fields[0]["field"] if exc.fields else ""
        return _teams_page(request, db, user, status_code=422, error=f"{field}: {exc.message}" if field else exc.message)
    return redirect("/settings/teams#agents-routing", request)
