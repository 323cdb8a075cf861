"""What every agent-workspace page stands on: the signed-in user, CSRF, role checks, and `render()`.

How to add a page (other engineers): create a module `otklik/web/ui/<name>.py` with

    from otklik.web.ui.deps import CurrentUser, SupervisorUser, render, ui_router
    router = ui_router()

    @router.get("/settings/teams")
    def teams(request: Request, user: SupervisorUser, db: DB) -> HTMLResponse:
        return render(request, "settings/teams.html", teams=...)

and add the module to the `PAGES` tuple in `web/ui/__init__.py`. Routes made with `ui_router()` stay out of the
OpenAPI schema, redirect to /login when the session is absent or expired (HTMX requests get `HX-Redirect`),
verify the CSRF token on every unsafe method (the `csrf_token` form field or the `X-CSRF-Token` header,
which base.html sends on every HTMX request), and turn domain errors into an HTML page (or, for HTMX, a short
text that app.js shows as a toast). Templates extend `base.html` and fill `{% block content %}`; wrap UI
text in `_("English text")` and add the Russian to `web/locale/ru/LC_MESSAGES/messages.po`. Never mark
customer text `|safe`. This module never writes SQL itself: it calls the accounts service.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException as StarletteHTTPException

from otklik import __version__
from otklik.accounts import service as accounts
from otklik.accounts.deps import CSRF_HEADER, DB, SAFE_METHODS, SESSION_COOKIE
from otklik.accounts.models import ROLE_RANK, Role, User, Workspace
from otklik.accounts.security import same
from otklik.accounts.service import Actor
from otklik.platform.errors import DomainError, Forbidden
from otklik.web import i18n
from otklik.web.security import csp_nonce

log = logging.getLogger(__name__)

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
LANG_COOKIE = "otklik_lang"
CSRF_FIELD = "csrf_token"


@dataclass
class UIUser:
    """The signed-in agent of this request."""

    actor: Actor
    user: User
    workspace: Workspace
    csrf_token: str
    session_expires_at: dt.datetime
    availability: str = "online"  # routing: online / away (chosen or idle) / offline, for the top bar's switch

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def role(self) -> Role:
        return Role(self.user.role)

    @property
    def language(self) -> str:
        return i18n.normalise(self.user.language) or i18n.DEFAULT_LANGUAGE

    def has_role(self, role: Role) -> bool:
        return ROLE_RANK[self.role] >= ROLE_RANK[role]


class LoginRequired(Exception):
    def __init__(self, expired: bool):
        self.expired = expired


class RoleRequired(Exception):
    def __init__(self, role: Role):
        self.role = role


# -- the signed-in user --------------------------------------------------------------------------------

def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


async def _sent_csrf(request: Request) -> str:
    """The CSRF token the browser sent: the header (HTMX, fetch) or the form field (plain HTML forms)."""
    if request.method in SAFE_METHODS:
        return ""
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # cached by Starlette: the route's Form() parameters read it again
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else ""
    return ""


def _current_user(request: Request, db: DB, sent_csrf: Annotated[str, Depends(_sent_csrf)]) -> UIUser:
    cookie = request.cookies.get(SESSION_COOKIE)
    resolved = accounts.resolve_session(db, cookie) if cookie else None
    if resolved is None:
        raise LoginRequired(expired=bool(cookie))
    login_session, user = resolved
    if request.method not in SAFE_METHODS and (not sent_csrf or not same(sent_csrf, login_session.csrf_token)):
        raise Forbidden("missing or wrong CSRF token; reload the page and try again", code="csrf")
    workspace = accounts.get_workspace(db, user.workspace_id)
    ui_user = UIUser(actor=accounts.actor_for(user), user=user, workspace=workspace,
                     csrf_token=login_session.csrf_token, session_expires_at=login_session.expires_at,
                     availability=_availability(db, user.workspace_id, user.id))
    request.state.ui_user = ui_user
    return ui_user


def _availability(db: Session, workspace_id: int, user_id: int) -> str:
    """The availability the agent chose (this very request ends any idle «away»: routing.touch)."""
    from otklik.conversations import routing

    row = db.get(routing.AgentRouting, user_id)
    return row.availability if row is not None and row.workspace_id == workspace_id else routing.ONLINE


CurrentUser = Annotated[UIUser, Depends(_current_user)]


def require_role(role: Role) -> Callable[[UIUser], UIUser]:
    """`Depends(require_role(Role.admin))`: the signed-in user, if their role is at least `role`."""

    def check(user: CurrentUser) -> UIUser:
        if not user.has_role(role):
            raise RoleRequired(role)
        return user

    return check


SupervisorUser = Annotated[UIUser, Depends(require_role(Role.supervisor))]
AdminUser = Annotated[UIUser, Depends(require_role(Role.admin))]


def optional_user(request: Request, db: Session) -> UIUser | None:
    """The signed-in user if any (for /login and /); never raises, never checks CSRF."""
    cookie = request.cookies.get(SESSION_COOKIE)
    resolved = accounts.resolve_session(db, cookie) if cookie else None
    if resolved is None:
        return None
    login_session, user = resolved
    ui_user = UIUser(actor=accounts.actor_for(user), user=user,
                     workspace=accounts.get_workspace(db, user.workspace_id),
                     csrf_token=login_session.csrf_token, session_expires_at=login_session.expires_at)
    request.state.ui_user = ui_user
    return ui_user


# -- rendering -----------------------------------------------------------------------------------------

@cache
def environment(language: str) -> Environment:
    """One Jinja environment per language, each with its catalog installed (thread-safe, compiled once)."""
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=select_autoescape(default=True),
                      extensions=["jinja2.ext.i18n"], trim_blocks=True, lstrip_blocks=True,
                      auto_reload=False)
    env.install_gettext_translations(i18n.gettext_for(language), newstyle=True)  # type: ignore[attr-defined]
    env.globals["static"] = static_url
    env.globals["csp_nonce"] = csp_nonce  # this request's, for inline <script>/<style> (otklik.web.security)
    env.globals["LANGUAGE_NAMES"] = i18n.LANGUAGE_NAMES
    env.globals["CATEGORY_LABELS"] = i18n.CATEGORY_LABELS
    env.globals["coded"] = lambda prefix, value: i18n.coded(language, prefix, value)
    env.filters["wait"] = lambda seconds: i18n.wait_text(seconds, language)
    env.filters["datetime"] = lambda value, tz="Europe/Moscow": i18n.datetime_text(value, language, tz)
    return env


def static_url(path: str) -> str:
    # The version in the query string busts browser caches on upgrade.
    return f"/static/{path}?v={quote(__version__)}"


def request_language(request: Request) -> str:
    user: UIUser | None = getattr(request.state, "ui_user", None)
    if user is not None:
        return user.language
    return (i18n.normalise(request.cookies.get(LANG_COOKIE))
            or i18n.negotiate(request.headers.get("accept-language")))


def translator(request: Request) -> Callable[..., str]:
    """`_ = translator(request)` for text produced in Python (flash messages, toasts)."""
    translations = i18n.gettext_for(request_language(request))

    def gettext(message: str, **params: Any) -> str:
        text = translations.gettext(message)
        return text % params if params else text

    return gettext


NAV = (
    # (path, label, minimum role)
    ("/inbox", "Inbox", Role.agent),
    ("/search", "Search", Role.agent),
    ("/customers", "Customers", Role.agent),
    ("/knowledge", "Knowledge base", Role.agent),
    ("/approvals", "Approvals", Role.agent),
    ("/proactive", "Proactive", Role.supervisor),
    ("/reports", "Reports", Role.supervisor),
    ("/settings", "Settings", Role.supervisor),
)


def render(request: Request, template: str, *, status_code: int = 200,
           headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    """Render a template with the user, language, CSRF token and navigation already in the context."""
    language = request_language(request)
    user: UIUser | None = getattr(request.state, "ui_user", None)
    csrf = user.csrf_token if user else context.pop("csrf_token", "")
    nav = [(path, label) for path, label, role in NAV if user is not None and user.has_role(role)]
    html = environment(language).get_template(template).render(
        request=request, user=user, lang=language, csrf_token=csrf,
        csrf_input=Markup('<input type="hidden" name="csrf_token" value="%s">') % escape(csrf),
        nav=nav, current_path=request.url.path, htmx=is_htmx(request), **context)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def redirect(url: str, request: Request | None = None) -> Response:
    """A 303 for plain forms; for HTMX an `HX-Redirect` (HTMX would otherwise swap the next page in)."""
    if request is not None and is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def safe_next(value: str | None) -> str:
    """Only local paths may be a post-login target (no open redirect through //evil.example)."""
    if value and value.startswith("/") and not value.startswith(("//", "/\\")) and len(value) < 500:
        return value
    return "/inbox"


# -- routes that speak HTML ----------------------------------------------------------------------------

def _error_response(request: Request, status: int, message: str) -> Response:
    if is_htmx(request):
        # app.js shows this text (as text) in a toast; HTMX does not swap 4xx responses.
        return PlainTextResponse(message, status_code=status)
    return render(request, "error.html", status_code=status, status=status, message=message)


class UIRoute(APIRoute):
    """An HTML route: login redirects, role pages and domain errors as pages, never JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except LoginRequired as exc:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method not in SAFE_METHODS or is_htmx(request):
                    target = request.headers.get("hx-current-url", "") or "/inbox"
                    target = "/" + target.split("/", 3)[3] if target.count("/") >= 3 else "/inbox"
                url = "/login?next=" + quote(safe_next(target), safe="") + ("&expired=1" if exc.expired else "")
                return redirect(url, request)
            except RoleRequired as exc:
                _ = translator(request)
                return _error_response(request, 403, _("This page needs the %(role)s role.",
                                                       role=_(exc.role.value)))
            except DomainError as exc:
                return _error_response(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                fields = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg')}"
                                   for e in exc.errors()[:3])
                return _error_response(request, 422, fields or "invalid request")
            except StarletteHTTPException as exc:
                return _error_response(request, exc.status_code, str(exc.detail))

        return handler


def ui_router(**kwargs: Any) -> APIRouter:
    """The router every UI module uses: HTML errors, login redirects, out of the OpenAPI schema."""
    return APIRouter(route_class=UIRoute, include_in_schema=False, **kwargs)
