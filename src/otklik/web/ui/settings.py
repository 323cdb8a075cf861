"""Settings pages: users, teams, reply templates (with preview), workspace profile, API tokens, one's own
profile and password; and the signed-out password pages (forgot / reset).

Role rules are the services' own (admins manage users and the workspace, supervisors teams and templates);
the pages only hide what a role cannot use. Secrets (new API tokens, reset links) are shown once, never stored
in a page that can be reloaded, and never logged.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import BackgroundTasks, Form, Request
from fastapi.responses import Response
from markupsafe import Markup, escape
from sqlalchemy.orm import Session

from otklik.accounts import password_reset
from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.accounts.password_reset_api import request_and_mail
from otklik.accounts.security import new_token, same, verify_password
from otklik.accounts.workspace_profile import update_workspace
from otklik.conversations import service as conversations
from otklik.conversations import templates
from otklik.platform.config import get_settings
from otklik.platform.errors import DomainError, field_error
from otklik.platform.mailer import mail_configured
from otklik.web import i18n
from otklik.web.ui.deps import (
    AdminUser,
    CurrentUser,
    SupervisorUser,
    UIUser,
    redirect,
    render,
    translator,
    ui_router,
)

router = ui_router()
TIMEZONES = ("Europe/Kaliningrad", "Europe/Moscow", "Europe/Samara", "Asia/Yekaterinburg", "Asia/Omsk",
             "Asia/Novosibirsk", "Asia/Krasnoyarsk", "Asia/Irkutsk", "Asia/Yakutsk", "Asia/Vladivostok",
             "Asia/Magadan", "Asia/Kamchatka", "Europe/Minsk", "Asia/Almaty", "Asia/Tashkent", "UTC",
             "Europe/London", "Europe/Berlin")
RESET_CSRF_COOKIE = "otklik_reset_csrf"


def _role_choices() -> list[str]:
    return [r.value for r in Role]


# -- index and own profile -----------------------------------------------------------------------------

@router.get("/settings")
def index(request: Request, user: CurrentUser) -> Response:
    return render(request, "settings/index.html", is_admin=user.has_role(Role.admin),
                  is_supervisor=user.has_role(Role.supervisor))


@router.get("/settings/profile")
def profile(request: Request, user: CurrentUser) -> Response:
    return render(request, "settings/profile.html", saved=request.query_params.get("saved") == "1")


@router.post("/settings/profile")
def save_profile(request: Request, user: CurrentUser, db: DB, name: Annotated[str, Form(max_length=200)] = "",
                 language: Annotated[str, Form(max_length=8)] = "",
                 notify_team_new: Annotated[str, Form(max_length=8)] = "") -> Response:
    code = i18n.normalise(language)
    if code is None:
        raise field_error("language", f"one of: {', '.join(i18n.LANGUAGES)}")
    if not name.strip():
        raise field_error("name", translator(request)("Enter your name."))
    accounts.update_user(db, user.actor, user.id, name=name.strip(), language=code,
                         notify_team_new=bool(notify_team_new))
    return redirect("/settings/profile?saved=1", request)


@router.post("/settings/profile/password")
def change_password(request: Request, user: CurrentUser, db: DB,
                    current_password: Annotated[str, Form(max_length=1024)] = "",
                    new_password: Annotated[str, Form(max_length=1024)] = "",
                    confirm_password: Annotated[str, Form(max_length=1024)] = "") -> Response:
    _ = translator(request)
    error = None
    if not verify_password(user.user.password_hash, current_password):
        error = _("The current password is wrong.")
    elif new_password != confirm_password:
        error = _("The new passwords do not match.")
    else:
        try:
            accounts.update_user(db, user.actor, user.id, password=new_password,
                                 current_password=current_password)
        except DomainError as exc:
            error = exc.message
    if error:
        return render(request, "settings/profile.html", status_code=422, password_error=error)
    # every session of this user ended, this one too: sign in again with the new password
    return redirect("/login?next=/settings/profile", request)


# -- users ---------------------------------------------------------------------------------------------

def _users_page(request: Request, db: Session, user: UIUser, *, status_code: int = 200, error: str | None = None,
                issued: dict[str, Any] | None = None, form: dict[str, str] | None = None) -> Response:
    return render(request, "settings/users.html", status_code=status_code, users=accounts.list_users(db, user.actor),
                  roles=_role_choices(), error=error, issued=issued, form=form or {},
                  mail_ready=mail_configured())


@router.get("/settings/users")
def users(request: Request, user: AdminUser, db: DB) -> Response:
    return _users_page(request, db, user)


@router.post("/settings/users")
def create_user(request: Request, user: AdminUser, db: DB, email: Annotated[str, Form(max_length=254)] = "",
                name: Annotated[str, Form(max_length=200)] = "", role: Annotated[str, Form(max_length=16)] = "agent",
                password: Annotated[str, Form(max_length=1024)] = "",
                language: Annotated[str, Form(max_length=8)] = "ru") -> Response:
    form = {"email": email, "name": name, "role": role}
    try:
        if role not in _role_choices():
            raise field_error("role", f"one of: {', '.join(_role_choices())}")
        created = accounts.create_user(db, user.actor, email=email, name=name, role=Role(role),
                                       password=password or None, language=i18n.normalise(language) or "ru")
    except DomainError as exc:
        db.rollback()
        return _users_page(request, db, user, status_code=exc.status_code, error=exc.message, form=form)
    issued = None
    if not password:
        # no password given: hand the new user a one-time link to choose one
        link = password_reset.issue_reset_link(db, user.actor, created.id)
        issued = {"user": created, "url": password_reset.reset_link(str(request.base_url), link.token),
                  "expires_at": link.expires_at}
    return _users_page(request, db, user, status_code=201, issued=issued)


@router.post("/settings/users/{user_id}")
def update_user(request: Request, user_id: int, user: AdminUser, db: DB,
                role: Annotated[str, Form(max_length=16)] = "", active: Annotated[str, Form(max_length=5)] = "") -> Response:
    changes: dict[str, Any] = {}
    if role:
        if role not in _role_choices():
            raise field_error("role", f"one of: {', '.join(_role_choices())}")
        changes["role"] = Role(role)
    if active in ("true", "false"):
        changes["is_active"] = active == "true"
    try:
        accounts.update_user(db, user.actor, user_id, **changes)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _users_page(request, db, user, status_code=exc.status_code, error=exc.message)
    return redirect("/settings/users", request)


@router.post("/settings/users/{user_id}/reset-link")
def reset_link(request: Request, user_id: int, user: AdminUser, db: DB) -> Response:
    issued = password_reset.issue_reset_link(db, user.actor, user_id)
    target = accounts.get_user(db, user.actor, user_id)
    return _users_page(request, db, user, issued={
        "user": target, "url": password_reset.reset_link(str(request.base_url), issued.token),
        "expires_at": issued.expires_at})


# -- teams ---------------------------------------------------------------------------------------------

def _teams_page(request: Request, db: Session, user: UIUser, *, status_code: int = 200,
                error: str | None = None) -> Response:
    from otklik.conversations import routing

    teams = accounts.list_teams(db, user.actor)
    members = accounts.team_member_ids(db, user.actor, [t.id for t in teams])
    return render(request, "settings/teams.html", status_code=status_code, teams=teams, members=members,
                  users=accounts.list_users(db, user.actor), error=error, is_admin=user.has_role(Role.admin),
                  routing={t.id: routing.team_view(routing.team_routing(db, user.actor, t.id)) for t in teams},
                  routing_settings=routing.settings_view(routing.workspace_settings(db, user.actor.workspace_id)),
                  agents=routing.agents_view(db, user.actor.workspace_id))


def _member_ids(values: list[str]) -> list[int]:
    ids = []
    for value in values[:500]:
        if not value.isdigit() or len(value) > 18:
            raise field_error("member_ids", "user ids are numbers")
        ids.append(int(value))
    return ids


@router.get("/settings/teams")
def teams(request: Request, user: SupervisorUser, db: DB) -> Response:
    return _teams_page(request, db, user)


@router.post("/settings/teams")
def create_team(request: Request, user: SupervisorUser, db: DB, name: Annotated[str, Form(max_length=120)] = "",
                member_ids: Annotated[list[str] | None, Form()] = None) -> Response:
    try:
        accounts.create_team(db, user.actor, name=name, member_ids=_member_ids(member_ids or []))
    except DomainError as exc:
        db.rollback()
        return _teams_page(request, db, user, status_code=exc.status_code, error=exc.message)
    return redirect("/settings/teams", request)


@router.post("/settings/teams/{team_id}/members")
def team_members(request: Request, team_id: int, user: SupervisorUser, db: DB,
                 member_ids: Annotated[list[str] | None, Form()] = None) -> Response:
    accounts.set_team_members(db, user.actor, team_id, _member_ids(member_ids or []))
    return redirect("/settings/teams", request)


@router.post("/settings/teams/{team_id}/delete")
def delete_team(request: Request, team_id: int, user: SupervisorUser, db: DB) -> Response:
    accounts.delete_team(db, user.actor, team_id)
    return redirect("/settings/teams", request)


# -- reply templates -----------------------------------------------------------------------------------

def _marked(text: str) -> Markup:
    """The preview text, escaped, with the variables still to fill highlighted."""
    escaped = str(escape(text))
    return Markup(templates.VARIABLE.sub(lambda m: f'<mark class="unfilled">{m.group(0)}</mark>', escaped))  # noqa: S704 - built from escaped text


def preview(db: Session, user: UIUser, body: str, conversation_number: str) -> dict[str, Any]:
    if len(body) > templates.MAX_BODY:
        raise field_error("body", f"at most {templates.MAX_BODY} characters")
    number = conversation_number.strip().lstrip("#")
    if number:
        if not number.isdigit() or len(number) > 12:
            raise field_error("conversation", "a conversation number, e.g. 1024")
        conversation = conversations.get_by_number(db, user.actor, int(number))
        rendered = templates.render_body(db, user.actor, body, conversation_id=conversation.id)
        return {"text": _marked(rendered.text), "unresolved": rendered.unresolved, "conversation": conversation}
    text, unresolved = templates.substitute(body, templates.sample_values(db, user.actor))
    return {"text": _marked(text), "unresolved": unresolved, "conversation": None}


def _templates_page(request: Request, db: Session, user: UIUser, *, editing: templates.ReplyTemplate | None = None,
                    status_code: int = 200, error: str | None = None, form: dict[str, str] | None = None) -> Response:
    items = templates.list_templates(db, user.actor, limit=500)
    if form is None:
        form = ({"name": editing.name, "shortcut": editing.shortcut or "", "body": editing.body,
                 "language": editing.language or ""} if editing else {"name": "", "shortcut": "", "body": "", "language": ""})
    shown = None
    if form.get("body"):
        try:
            shown = preview(db, user, form["body"], "")
        except DomainError:
            shown = None
    return render(request, "settings/templates.html", status_code=status_code, items=items, editing=editing,
                  form=form, error=error, preview=shown, known=templates.KNOWN_VARIABLES)


@router.get("/settings/templates")
def template_list(request: Request, user: SupervisorUser, db: DB) -> Response:
    return _templates_page(request, db, user)


@router.get("/settings/templates/{template_id}")
def template_edit(request: Request, template_id: int, user: SupervisorUser, db: DB) -> Response:
    return _templates_page(request, db, user, editing=templates.get_template(db, user.actor, template_id))


@router.post("/settings/templates")
def template_create(request: Request, user: SupervisorUser, db: DB, name: Annotated[str, Form(max_length=200)] = "",
                    shortcut: Annotated[str, Form(max_length=60)] = "",
                    body: Annotated[str, Form(max_length=20_000)] = "",
                    language: Annotated[str, Form(max_length=8)] = "") -> Response:
    form = {"name": name, "shortcut": shortcut, "body": body, "language": language}
    try:
        templates.create_template(db, user.actor, name=name, body=body, shortcut=shortcut.strip() or None,
                                  language=i18n.normalise(language))
    except DomainError as exc:
        db.rollback()
        return _templates_page(request, db, user, status_code=exc.status_code, error=exc.message, form=form)
    return redirect("/settings/templates", request)


@router.post("/settings/templates/{template_id}")
def template_update(request: Request, template_id: int, user: SupervisorUser, db: DB,
                    name: Annotated[str, Form(max_length=200)] = "", shortcut: Annotated[str, Form(max_length=60)] = "",
                    body: Annotated[str, Form(max_length=20_000)] = "",
                    language: Annotated[str, Form(max_length=8)] = "") -> Response:
    editing = templates.get_template(db, user.actor, template_id)
    form = {"name": name, "shortcut": shortcut, "body": body, "language": language}
    try:
        templates.update_template(db, user.actor, template_id, {
            "name": name, "shortcut": shortcut.strip() or None, "body": body, "language": i18n.normalise(language)})
    except DomainError as exc:
        db.rollback()
        return _templates_page(request, db, user, editing=editing, status_code=exc.status_code, error=exc.message,
                               form=form)
    return redirect("/settings/templates", request)


@router.post("/settings/templates/{template_id}/delete")
def template_delete(request: Request, template_id: int, user: SupervisorUser, db: DB) -> Response:
    templates.delete_template(db, user.actor, template_id)
    return redirect("/settings/templates", request)


@router.post("/ui/settings/templates/preview")
def template_preview(request: Request, user: CurrentUser, db: DB, body: Annotated[str, Form(max_length=20_000)] = "",
                     conversation: Annotated[str, Form(max_length=20)] = "") -> Response:
    try:
        shown = preview(db, user, body, conversation)
        error = None
    except DomainError as exc:
        shown, error = None, exc.message
    return render(request, "settings/template_preview.html", preview=shown, error=error)


# -- workspace -----------------------------------------------------------------------------------------

@router.get("/settings/workspace")
def workspace(request: Request, user: AdminUser) -> Response:
    return render(request, "settings/workspace.html", timezones=TIMEZONES,
                  saved=request.query_params.get("saved") == "1", form=None, error=None)


@router.post("/settings/workspace")
def save_workspace(request: Request, user: AdminUser, db: DB, name: Annotated[str, Form(max_length=300)] = "",
                   language: Annotated[str, Form(max_length=8)] = "",
                   timezone: Annotated[str, Form(max_length=64)] = "") -> Response:
    try:
        update_workspace(db, user.actor, name=name, language=language, timezone=timezone)
    except DomainError as exc:
        db.rollback()
        return render(request, "settings/workspace.html", status_code=exc.status_code, timezones=TIMEZONES,
                      saved=False, error=exc.message, form={"name": name, "language": language, "timezone": timezone})
    return redirect("/settings/workspace?saved=1", request)


# -- API tokens ----------------------------------------------------------------------------------------

def _tokens_page(request: Request, db: Session, user: UIUser, *, status_code: int = 200,
                 created: str | None = None, error: str | None = None) -> Response:
    tokens = accounts.list_api_tokens(db, user.actor)
    names = {u.id: u.name for u in accounts.list_users(db, user.actor)}
    return render(request, "settings/api_tokens.html", status_code=status_code, tokens=tokens, names=names,
                  created=created, error=error, users=accounts.list_users(db, user.actor)
                  if user.has_role(Role.admin) else [], is_admin=user.has_role(Role.admin))


@router.get("/settings/api-tokens")
def api_tokens(request: Request, user: CurrentUser, db: DB) -> Response:
    return _tokens_page(request, db, user)


@router.post("/settings/api-tokens")
def create_api_token(request: Request, user: CurrentUser, db: DB, name: Annotated[str, Form(max_length=120)] = "",
                     user_id: Annotated[str, Form(max_length=20)] = "") -> Response:
    owner = int(user_id) if user_id.isdigit() and len(user_id) < 19 else None
    if not name.strip():
        return _tokens_page(request, db, user, status_code=422, error=translator(request)("Name the token."))
    raw, _token = accounts.create_api_token(db, user.actor, name=name, user_id=owner)
    # shown this once; the page answers no-store so the browser does not keep it
    return _tokens_page(request, db, user, status_code=201, created=raw)


@router.post("/settings/api-tokens/{token_id}/revoke")
def revoke_api_token(request: Request, token_id: int, user: CurrentUser, db: DB) -> Response:
    accounts.revoke_api_token(db, user.actor, token_id)
    return redirect("/settings/api-tokens", request)


# -- signed-out password pages -------------------------------------------------------------------------

def _anonymous_form(request: Request, template: str, *, status_code: int = 200, **context: Any) -> Response:
    token = request.cookies.get(RESET_CSRF_COOKIE) or new_token()
    response = render(request, template, status_code=status_code, csrf_token=token,
                      mail_ready=mail_configured(), **context)
    response.set_cookie(RESET_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=get_settings().cookie_secure, max_age=3600, path="/password")
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def _anonymous_csrf_ok(request: Request, sent: str) -> bool:
    cookie = request.cookies.get(RESET_CSRF_COOKIE, "")
    return bool(cookie and sent and same(cookie, sent))


@router.get("/password/forgot")
def forgot(request: Request) -> Response:
    return _anonymous_form(request, "settings/password_forgot.html", sent=False)


@router.post("/password/forgot")
def forgot_submit(request: Request, background: BackgroundTasks, db: DB,
                  email: Annotated[str, Form(max_length=254)] = "", workspace: Annotated[str, Form(max_length=64)] = "",
                  csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    _ = translator(request)
    if not _anonymous_csrf_ok(request, csrf_token):
        return _anonymous_form(request, "settings/password_forgot.html", status_code=403, sent=False,
                               error=_("The form has expired. Please try again."))
    if not email.strip() or "@" not in email:
        return _anonymous_form(request, "settings/password_forgot.html", status_code=422, sent=False,
                               error=_("Enter your email address."))
    try:
        request_and_mail(db, request, background, email, workspace.strip() or None)
    except DomainError as exc:
        message = {429: _("Too many attempts. Wait a minute and try again."),
                   409: _("Email is not set up on this server. Ask an administrator for a one-time reset link.")
                   }.get(exc.status_code, exc.message)
        return _anonymous_form(request, "settings/password_forgot.html", status_code=exc.status_code, sent=False,
                               error=message)
    return _anonymous_form(request, "settings/password_forgot.html", sent=True)


@router.get("/password/reset")
def reset_page(request: Request) -> Response:
    # The token is in the URL fragment; the page's script copies it into the form (never in our logs).
    return _anonymous_form(request, "settings/password_reset.html")


@router.post("/password/reset")
def reset_submit(request: Request, db: DB, token: Annotated[str, Form(max_length=200)] = "",
                 password: Annotated[str, Form(max_length=1024)] = "",
                 confirm_password: Annotated[str, Form(max_length=1024)] = "",
                 csrf_token: Annotated[str, Form(max_length=200)] = "") -> Response:
    _ = translator(request)
    if not _anonymous_csrf_ok(request, csrf_token):
        return _anonymous_form(request, "settings/password_reset.html", status_code=403,
                               error=_("The form has expired. Please try again."))
    if password != confirm_password:
        return _anonymous_form(request, "settings/password_reset.html", status_code=422,
                               error=_("The passwords do not match."))
    try:
        password_reset.complete_reset(db, token=token, password=password)
    except DomainError as exc:
        message = (_("The link is invalid, expired or already used. Ask for a new one.")
                   if exc.code == "invalid_token" else exc.message)
        return _anonymous_form(request, "settings/password_reset.html", status_code=exc.status_code, error=message,
                               token_failed=exc.code == "invalid_token")
    return _anonymous_form(request, "settings/password_reset.html", done=True)
