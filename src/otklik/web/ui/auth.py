"""Sign-in and sign-out pages, the language switch, and `/` (to the inbox or the sign-in page).

The sign-in form carries a double-submit CSRF token (a cookie and a field) because no session exists yet.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response

from otklik.accounts import service as accounts
from otklik.accounts import signin
from otklik.accounts.deps import DB, SESSION_COOKIE
from otklik.accounts.security import new_token, same
from otklik.platform.config import get_settings
from otklik.platform.errors import DomainError
from otklik.web import i18n
from otklik.web.ui.deps import (
    LANG_COOKIE,
    CurrentUser,
    optional_user,
    redirect,
    render,
    safe_next,
    translator,
    ui_router,
)

router = ui_router()
LOGIN_CSRF_COOKIE = "otklik_login_csrf"


@router.get("/")
def home(request: Request, db: DB) -> Response:
    return redirect("/inbox" if optional_user(request, db) else "/login")


def _login_page(request: Request, *, status_code: int = 200, error: str | None = None, email: str = "",
                workspace: str = "", next_url: str = "/inbox") -> Response:
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or new_token()
    response = render(request, "login.html", status_code=status_code, error=error, email=email,
                      workspace=workspace, next_url=safe_next(next_url), csrf_token=token,
                      expired=request.query_params.get("expired") == "1")
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=get_settings().cookie_secure, max_age=3600, path="/login")
    return response


@router.get("/login")
def login_page(request: Request, db: DB, next: str = "/inbox") -> Response:
    if optional_user(request, db) is not None:
        return redirect(safe_next(next))
    return _login_page(request, next_url=next)


@router.post("/login")
def login(request: Request, db: DB, email: Annotated[str, Form(max_length=254)],
          password: Annotated[str, Form(max_length=1000)],
          csrf_token: Annotated[str, Form(max_length=200)] = "",
          workspace: Annotated[str, Form(max_length=64)] = "",
          otp: Annotated[str, Form(max_length=32)] = "",
          next: Annotated[str, Form(max_length=500)] = "/inbox") -> Response:
    _ = translator(request)
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not cookie or not csrf_token or not same(cookie, csrf_token):
        return _login_page(request, status_code=403, email=email, workspace=workspace, next_url=next,
                           error=_("The form has expired. Please try again."))
    try:
        raw, _row, _user = signin.sign_in(db, request, email=email, password=password,
                                          workspace=workspace.strip() or None, via="form",
                                          ttl_hours=get_settings().session_ttl_hours, otp=otp or None)
    except DomainError as exc:
        messages = {429: _("Too many attempts. Wait a minute and try again."),
                    401: _("Enter the one-time code from your authenticator app.") if exc.code == "otp_required"
                    else _("The one-time code is wrong or expired.") if exc.code == "otp_invalid"
                    else _("Wrong email or password.") if "several" not in exc.message
                    else _("This email is in several workspaces: enter the workspace too.")}
        return _login_page(request, status_code=exc.status_code, email=email, workspace=workspace,
                           next_url=next, error=messages.get(exc.status_code, exc.message))
    settings = get_settings()
    response = redirect(safe_next(next))
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax", secure=settings.cookie_secure,
                        max_age=settings.session_ttl_hours * 3600, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return response


@router.post("/logout")
def logout(request: Request, user: CurrentUser, db: DB) -> Response:
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        accounts.logout(db, cookie)
    response = redirect("/login", request)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/ui/language")
def set_language(request: Request, user: CurrentUser, db: DB,
                 language: Annotated[str, Form(max_length=8)]) -> Response:
    code = i18n.normalise(language)
    if code is None:
        raise DomainError(f"unknown language {language!r}; use one of {', '.join(i18n.LANGUAGES)}")
    accounts.update_user(db, user.actor, user.id, language=code)
    referer = request.headers.get("referer", "")
    path = "/" + referer.split("/", 3)[3] if referer.count("/") >= 3 else "/inbox"
    response = redirect(safe_next(path), request)
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.post("/login/language")
def set_login_language(request: Request, language: Annotated[str, Form(max_length=8)]) -> Response:
    """Before sign-in the language lives in a cookie only (no CSRF: it changes nothing stored)."""
    code = i18n.normalise(language) or i18n.DEFAULT_LANGUAGE
    response = redirect("/login")
    response.set_cookie(LANG_COOKIE, code, max_age=365 * 86400, samesite="lax", path="/")
    return response
