"""Settings → Integrations: the shop's CRM connections (amoCRM, Bitrix24, RetailCRM), admin only.

Server-rendered forms generated from each connector's `Config` (a text box, a number or a checkbox per
field, labelled by the field's title and description) plus a password box per secret (never filled back:
"saved" or "not set"). Each connection has its status line (connected / the last error and when), the
webhook address to paste into the CRM, test, retry and bulk-sync buttons. The pages call the crm service and
its jobs; they write no SQL.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response

from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.crm import jobs as crm_jobs
from otklik.crm import service as crm
from otklik.crm.base import CrmConnector, connectors
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import (
    AdminUser,
    RoleRequired,
    UIUser,
    _current_user,
    _sent_csrf,
    redirect,
    render,
    translator,
    ui_router,
)

router = ui_router()
MAX_FIELDS = 60


@dataclass
class FormField:
    name: str
    kind: str          # text / number / checkbox
    title: str
    description: str
    value: Any


def form_fields(cls: type[CrmConnector], values: dict[str, Any] | None = None) -> list[FormField]:
    """The settings form of a connector, from its Config model (the same model that validates the input)."""
    out = []
    for name, field in cls.Config.model_fields.items():
        annotation = field.annotation
        kind = "checkbox" if annotation is bool else "number" if annotation is int else "text"
        value = (values or {}).get(name, field.default)
        out.append(FormField(name, kind, field.title or name, field.description or "", value))
    return out


async def posted(request: Request) -> dict[str, str]:
    form = await request.form(max_fields=MAX_FIELDS, max_files=0)
    return {k: v for k, v in form.items() if isinstance(v, str)}


Posted = Annotated[dict[str, str], Depends(posted)]


def _signed_in_apart(request: Request, sent_csrf: Annotated[str, Depends(_sent_csrf)]) -> UIUser:
    """The signed-in user, read in a short session of its own: the buttons below call the CRM and run jobs
    that write, so the request holds no transaction (SQLite has one writer) while they run."""
    with session_scope() as db:
        return _current_user(request, db, sent_csrf)


def _admin_apart(user: Annotated[UIUser, Depends(_signed_in_apart)]) -> UIUser:
    if not user.has_role(Role.admin):
        raise RoleRequired(Role.admin)
    return user


UserApart = Annotated[UIUser, Depends(_signed_in_apart)]
AdminApart = Annotated[UIUser, Depends(_admin_apart)]


def _config_from(cls: type[CrmConnector], fields: dict[str, str]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for field in form_fields(cls):
        key = f"cfg.{field.name}"
        if field.kind == "checkbox":
            config[field.name] = key in fields
        elif key in fields:
            config[field.name] = fields[key].strip()
    return config


def _secrets_from(cls: type[CrmConnector], fields: dict[str, str]) -> dict[str, str]:
    return {name: fields.get(f"secret.{name}", "") for name in cls.secret_fields if fields.get(f"secret.{name}")}


def page(request: Request, user: Any, db: Any, *, status_code: int = 200, message: str | None = None,
         error: str | None = None, error_for: int | str | None = None) -> Response:
    kinds = sorted(connectors().values(), key=lambda c: c.title)
    summaries = crm.summaries(db, user.actor)
    base = (get_settings().public_url or str(request.base_url)).rstrip("/")
    cards = []
    for s in summaries:
        cls = connectors()[s.connection.kind]
        cards.append({"s": s, "cls": cls, "fields": form_fields(cls, s.connection.config),
                      "webhook_url": base + crm.webhook_path(s.connection), "oauth_url": crm.oauth_url(s.connection),
                      "failed": crm.failed_notes(db, user.actor, s.connection.id, limit=5) if s.notes_failed else []})
    return render(request, "settings/integrations.html", status_code=status_code, kinds=kinds, cards=cards,
                  new_forms={c.kind: form_fields(c, c.example_config) for c in kinds}, message=message,
                  error=error, error_for=error_for, public_base=base)


@router.get("/settings/integrations")
def integrations(request: Request, user: AdminUser, db: DB, connected: int | None = None) -> Response:
    _ = translator(request)
    return page(request, user, db, message=_("Connected.") if connected else None)


@router.post("/settings/integrations")
def create(request: Request, user: AdminUser, db: DB, fields: Posted) -> Response:
    _ = translator(request)
    kind = fields.get("kind", "")
    cls = connectors().get(kind)
    try:
        if cls is None:
            raise DomainError(_("Pick a CRM."))
        crm.create_connection(db, user.actor, kind=kind, name=fields.get("name", "") or "default",
                              config=_config_from(cls, fields), secrets=_secrets_from(cls, fields))
    except DomainError as exc:
        db.rollback()
        return page(request, user, db, status_code=exc.status_code, error=exc.message, error_for=kind)
    return page(request, user, db, status_code=201, message=_("Saved."))


@router.post("/settings/integrations/{connection_id}")
def update(request: Request, connection_id: int, user: AdminUser, db: DB, fields: Posted) -> Response:
    _ = translator(request)
    connection = crm.get_connection(db, user.actor, connection_id)
    cls = connectors()[connection.kind]
    try:
        crm.update_connection(db, user.actor, connection_id, name=fields.get("name") or None,
                              config=_config_from(cls, fields), secrets=_secrets_from(cls, fields),
                              enabled="enabled" in fields)
    except DomainError as exc:
        db.rollback()
        return page(request, user, db, status_code=exc.status_code, error=exc.message, error_for=connection_id)
    return page(request, user, db, message=_("Saved."))


def _action(request: Request, user: UIUser, connection_id: int, run: Any, done: str) -> Response:
    with session_scope(write=False) as session:
        crm.get_connection(session, user.actor, connection_id)  # 404 for another workspace's
    message, error = None, None
    try:
        result = run()
        message = f"{done} {result}".strip() if result else done
    except DomainError as exc:
        error = exc.message
    with session_scope(write=False) as session:
        return page(request, user, session, message=message, error=error, error_for=connection_id if error else None)


@router.post("/settings/integrations/{connection_id}/test")
def test(request: Request, connection_id: int, user: AdminApart) -> Response:
    _ = translator(request)
    return _action(request, user, connection_id, lambda: crm.test_connection(user.actor, connection_id),
                   _("Connection works:"))


@router.post("/settings/integrations/{connection_id}/retry")
def retry(request: Request, connection_id: int, user: AdminApart) -> Response:
    _ = translator(request)
    return _action(request, user, connection_id, lambda: str(crm_jobs.retry_failed(user.actor, connection_id)),
                   _("Queued again:"))


@router.post("/settings/integrations/{connection_id}/sync")
def sync(request: Request, connection_id: int, user: AdminApart, fields: Posted) -> Response:
    _ = translator(request)
    create_missing = "create_missing" in fields
    return _action(request, user, connection_id,
                   lambda: (crm_jobs.begin_sync(user.actor, connection_id, create_missing), "")[1],
                   _("Sync started."))


@router.post("/settings/integrations/{connection_id}/delete")
def delete(request: Request, connection_id: int, user: AdminUser, db: DB) -> Response:
    _ = translator(request)
    crm.delete_connection(db, user.actor, connection_id)
    return page(request, user, db, message=_("Deleted."))


# -- the customer page: refresh the CRM's deals of one customer --------------------------------------------

@router.post("/ui/customers/{customer_id}/crm/refresh")
def refresh_customer(request: Request, customer_id: int, user: UserApart) -> Response:
    crm_jobs.refresh_all(user.actor, customer_id)
    return redirect(f"/customers/{customer_id}?tab=orders", request)
