"""The personal-data pages (admins): a customer's «Персональные данные» page with the export download and the
erasure form, and Settings → «Персональные данные» with the retention period of closed conversations."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import Response

from otklik.accounts.deps import DB
from otklik.platform.db import session_scope
from otklik.platform.errors import DomainError
from otklik.privacy import service
from otklik.privacy.api import zip_response
from otklik.web.ui.deps import AdminUser, redirect, render, translator, ui_router

router = ui_router()


def _page(request: Request, user: AdminUser, db: DB, customer_id: int, *, status_code: int = 200,
          error: str | None = None, message: str | None = None) -> Response:
    customer, scope = service.scope_of(db, user.actor, customer_id)
    return render(request, "customers/privacy.html", status_code=status_code, customer=customer,
                  erased=service.is_erased(customer), counts={"customers": len(scope.customers),
                                                              "conversations": len(scope.conversations),
                                                              "messages": len(scope.messages)},
                  error=error, message=message)


@router.get("/customers/{customer_id}/privacy")
def privacy_page(request: Request, customer_id: int, user: AdminUser, db: DB, erased: int | None = None) -> Response:
    _ = translator(request)
    return _page(request, user, db, customer_id,
                 message=_("The customer's personal data were erased.") if erased else None)


@router.get("/customers/{customer_id}/privacy/export")
def privacy_export(customer_id: int, user: AdminUser, db: DB) -> Response:
    file, name, summary = service.export_customer(db, user.actor, customer_id)
    with session_scope() as audit:
        service.record_export(audit, user.actor, customer_id, summary)
    return zip_response(file, name)


@router.post("/customers/{customer_id}/privacy/erase")
def privacy_erase(request: Request, customer_id: int, user: AdminUser, db: DB,
                  confirm: Annotated[str, Form(max_length=10)] = "") -> Response:
    _ = translator(request)
    try:
        service.erase_customer(db, user.actor, customer_id, confirm=confirm == "yes")
    except DomainError as exc:
        db.rollback()
        message = _("Tick the box to confirm: erasure cannot be undone.") if exc.status_code == 422 else exc.message
        return _page(request, user, db, customer_id, status_code=exc.status_code, error=message)
    return redirect(f"/customers/{customer_id}/privacy?erased=1", request)


@router.get("/settings/privacy")
def privacy_settings(request: Request, user: AdminUser, db: DB, saved: int | None = None) -> Response:
    _ = translator(request)
    row = service.get_settings_row(db, user.actor.workspace_id)
    return render(request, "settings/privacy.html", days=row.closed_retention_days,
                  minimum=service.MIN_RETENTION_DAYS, maximum=service.MAX_RETENTION_DAYS,
                  message=_("Saved.") if saved else None, error=None)


@router.post("/settings/privacy")
def privacy_settings_save(request: Request, user: AdminUser, db: DB,
                          days: Annotated[str, Form(max_length=10)] = "") -> Response:
    _ = translator(request)
    value = days.strip()
    try:
        if value and not value.isdigit():
            raise DomainError(_("A whole number of days, or empty to keep everything."))
        service.set_retention(db, user.actor, int(value) if value else None)
    except DomainError as exc:
        db.rollback()
        return render(request, "settings/privacy.html", status_code=422, days=value,
                      minimum=service.MIN_RETENTION_DAYS, maximum=service.MAX_RETENTION_DAYS, message=None,
                      error=_("From %(min)s to %(max)s days, or empty to keep everything.",
                              min=service.MIN_RETENTION_DAYS, max=service.MAX_RETENTION_DAYS)
                      if "closed_retention_days" in exc.message or exc.fields else exc.message)
    return redirect("/settings/privacy?saved=1", request)
