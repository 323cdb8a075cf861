"""Widget pages: the widget's JS file, the admin's /settings/widget (form, preview, embed snippet) and a demo
shop page that embeds the widget the way a customer's site does. Pages call the widget service, never SQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from pydantic import ValidationError

from otklik.accounts.deps import DB
from otklik.calendars.service import list_calendars
from otklik.web.ui.deps import (
    AdminUser,
    environment,
    optional_user,
    redirect,
    render,
    request_language,
    ui_router,
)
from otklik.web.widget import service
from otklik.web.widget.texts import translator

WIDGET_JS = Path(__file__).resolve().parent.parent / "static" / "widget" / "otklik-widget.js"
router = ui_router()
public = APIRouter(include_in_schema=False)
KINDS = service.BUTTON_KINDS
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@public.get("/widget/otklik-widget.js")
def widget_js() -> FileResponse:
    return FileResponse(WIDGET_JS, media_type="text/javascript; charset=utf-8",
                        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*",
                                 "X-Content-Type-Options": "nosniff"})


@public.get("/widget/demo", response_class=HTMLResponse)
def demo(request: Request, db: DB, key: str = "", as_: str = Query("", alias="as", max_length=200)) -> Response:
    """A shop page with the widget embedded: `?key=wk_...`, or the signed-in user's workspace. `&as=<the shop's
    customer id>`: a signed-in member of the workspace previews it as that customer signed in on the shop's site
    (the page signs the id with the workspace's identity secret, as the shop's server would)."""
    if not key:
        user = optional_user(request, db)
        if user is None:
            return HTMLResponse("Pass ?key=wk_... (the widget key from /settings/widget) or sign in.", 404)
        key = service.get_settings_row(db, user.workspace.id).public_key
    row = service.settings_by_key(db, key)
    html = environment(request_language(request)).get_template("widget/demo.html").render(
        key=row.public_key, base=str(request.base_url).rstrip("/"), lang=request_language(request),
        signed_in=_preview_as(request, db, row, as_) if as_ else None)
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _preview_as(request: Request, db: Any, row: Any, external_id: str) -> dict[str, str] | None:
    """The site's signed claim for customer `external_id` (their verified `external` identity), for a signed-in
    member of the widget's workspace only, and only when the workspace has an identity secret."""
    from otklik.customers.service import find_by_identity, identities_of
    from otklik.platform import crypto
    from otklik.platform.errors import DomainError

    user = optional_user(request, db)
    if user is None or user.workspace.id != row.workspace_id or not row.identity_secret:
        return None
    try:
        customer = find_by_identity(db, row.workspace_id, "external", external_id)
    except DomainError:
        return None
    if customer is None:
        return None
    email = next((i.external_id for i in identities_of(db, [customer.id])[customer.id] if i.kind == "email"), None)
    secret = crypto.decrypt(row.identity_secret, purpose=service.SECRET_PURPOSE)
    claim = {"user_id": external_id, "user_hash": service.identity_signature(secret, external_id),
             "name": customer.name}
    return {**claim, "email": email} if email else claim


def _lines(value: str, limit: int = 50) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()][:limit]


def _config_from_form(form: Any, current: dict[str, Any]) -> dict[str, Any]:
    get = lambda name: str(form.get(name) or "")  # noqa: E731
    buttons = [{"kind": kind, "enabled": form.get(f"button_{kind}") == "on", "target": get(f"target_{kind}")}
               for kind in KINDS if form.get(f"button_{kind}") == "on" or get(f"target_{kind}").strip()]
    greetings = []
    for i, line in enumerate(_lines(get("greetings"), 30)):
        parts = [p.strip() for p in line.split("|")]
        parts += [""] * (4 - len(parts))
        delay = int(parts[1]) if parts[1].isdigit() else -1
        message = {k: v for k, v in (("ru", parts[2]), ("en", parts[3])) if v}
        old = (current.get("greetings") or [])
        greetings.append({"id": old[i]["id"] if i < len(old) and old[i].get("url_pattern") == parts[0] else "",
                          "url_pattern": parts[0], "delay_seconds": delay, "message": message})
    days = {str(d): [(get("hours_start"), get("hours_end"))] for d in range(7) if form.get(f"day_{d}") == "on"}
    return {
        "color": get("color"), "text_color": get("text_color"), "position": get("position") or "right",
        "texts": {lang: {"title": get(f"title_{lang}"), "welcome": get(f"welcome_{lang}"),
                         "offline": get(f"offline_{lang}")} for lang in service.LANGUAGES},
        "buttons": buttons,
        "quick_replies": {lang: _lines(get(f"quick_{lang}"), 8) for lang in service.LANGUAGES},
        "greetings": greetings,
        "hours": {"mode": get("hours_mode") or "always", "timezone": get("timezone") or "Europe/Moscow",
                  "days": days if get("hours_mode") == "schedule" else {},
                  "calendar_id": int(get("calendar_id")) if get("calendar_id").isdigit() else None},
    }


def _page(request: Request, user: Any, db: Any, *, errors: list[str] | None = None, secret: str | None = None,
          saved: bool = False, status_code: int = 200) -> HTMLResponse:
    row = service.get_settings_row(db, user.workspace.id)
    config = row.config or {}
    base = str(request.base_url).rstrip("/")
    snippet = f'<script src="{base}/widget/otklik-widget.js" data-key="{row.public_key}" async></script>'
    greetings = "\n".join(" | ".join([g["url_pattern"], str(g.get("delay_seconds", 10)), g["message"].get("ru", ""),
                                      g["message"].get("en", "")]) for g in config.get("greetings") or [])
    buttons = {b["kind"]: b for b in config.get("buttons") or []}
    hours = config.get("hours") or {}
    first_range = next(iter((hours.get("days") or {}).values()), [("09:00", "18:00")])[0]
    return render(request, "widget/settings.html", status_code=status_code, t=translator(request_language(request)),
                  row=row, config=config, snippet=snippet,
                  base=base, kinds=KINDS, buttons=buttons, greetings=greetings, hours=hours,
                  hours_range=first_range, weekdays=WEEKDAYS, errors=errors or [], secret=secret, saved=saved,
                  calendars=list_calendars(db, user.actor),
                  texts={lang: {**service.DEFAULT_TEXTS[lang], **(config.get("texts") or {}).get(lang, {})}
                         for lang in service.LANGUAGES})


@router.get("/settings/widget", response_class=HTMLResponse)
def settings_page(request: Request, user: AdminUser, db: DB, saved: int = 0) -> HTMLResponse:
    return _page(request, user, db, saved=bool(saved))


@router.post("/settings/widget", response_class=HTMLResponse)
async def save_settings(request: Request, user: AdminUser, db: DB) -> Response:
    form = await request.form()
    row = service.get_settings_row(db, user.workspace.id)
    try:
        config = service.WidgetConfig.model_validate(_config_from_form(form, row.config or {}))
    except ValidationError as exc:
        errors = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:8]]
        return _page(request, user, db, errors=errors, status_code=422)
    service.update_settings(db, user.actor, config=config, enabled=form.get("enabled") == "on",
                            allowed_origins=_lines(str(form.get("allowed_origins") or "")))
    return redirect("/settings/widget?saved=1", request)


@router.post("/settings/widget/secret", response_class=HTMLResponse)
def rotate_secret(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    secret = service.rotate_identity_secret(db, user.actor)
    return _page(request, user, db, secret=secret)
