"""Authority limits in the agent workspace: the conversation side bar's «Компенсации» block (give one; approve or
reject a pending one in place), the «Ждут согласования» queue, and Settings → «Полномочия» (admins). Pages call
the guardrails service; they never write SQL."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.conversations.service import customer_names, get_conversation
from otklik.guardrails import compensations as service
from otklik.guardrails.compensation_models import Compensation
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import AdminUser, CurrentUser, UIUser, redirect, render, ui_router

router = ui_router()


def _error_text(exc: DomainError) -> str:
    return "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message


def _views(db: Session, actor: Actor, items: list[Compensation]) -> list[dict[str, Any]]:
    names = {u.id: u.name for u in accounts.list_users(db, actor)}
    customers = customer_names(db, list({c.customer_id for c in items}))
    table = service.limit_table(db, actor.workspace_id)
    return [{"c": c, "amount": service.rub(c.amount),
             "requester": names.get(c.requested_by or 0, "") if c.requested_by_kind == "user" else "assistant",
             "decider": names.get(c.decided_by or 0, ""), "customer": customers.get(c.customer_id, ""),
             "can_decide": c.status == service.PENDING and service.can_decide(db, actor, c, table),
             "webhook": service.webhook_status(db, c)} for c in items]


def _panel(request: Request, db: Session, user: UIUser, conversation_id: int, *, error: str | None = None,
           typed: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    conversation = get_conversation(db, user.actor, conversation_id)
    items = service.list_for_conversation(db, user.actor, conversation.id)
    authority = [{**a, **{f"{k}_text": service.rub(Decimal(a[k])) if a.get(k) is not None else None
                          for k in ("per_case", "per_day", "used_today", "case_sum")}}
                 for a in service.my_authority(db, user.actor, conversation.id)]
    return render(request, "partials/compensations.html", status_code=status_code, conversation=conversation,
                  items=_views(db, user.actor, items), kinds=service.KINDS,
                  authority=authority, error=error, typed=typed or {})


@router.get("/ui/conversations/{conversation_id}/compensations")
def compensations_fragment(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _panel(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/compensations")
async def give(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    typed = {k: str(form.get(k) or "")[:600] for k in ("kind", "amount", "reason")}
    try:
        service.request_compensation(db, user.actor, conversation_id, kind=typed["kind"], amount=typed["amount"],
                                     reason=typed["reason"])
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _panel(request, db, user, conversation_id, error=_error_text(exc), typed=typed, status_code=422)
    return _panel(request, db, user, conversation_id)


@router.post("/ui/compensations/{compensation_id}/decide")
async def decide(request: Request, compensation_id: int, user: CurrentUser, db: DB) -> Response:
    """Approve or reject (from the side bar: the panel again; from the queue: back to the queue)."""
    form = await request.form()
    approve = form.get("decision") == "approve"
    comment = str(form.get("comment") or "")[:600]
    compensation = service.get_compensation(db, user.actor, compensation_id)
    conversation_id = compensation.conversation_id
    error = None
    try:
        service.decide(db, user.actor, compensation_id, approve=approve, comment=comment)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        error = _error_text(exc)
    if form.get("back") == "queue":
        if error:
            return _queue(request, db, user, error=error, status_code=422)
        return redirect("/approvals", request)
    return _panel(request, db, user, conversation_id, error=error, status_code=422 if error else 200)


@router.get("/ui/customers/{customer_id}/compensations")
def customer_compensations(request: Request, customer_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    """The customer panel's «Компенсации»: what this customer was given or asked for, across conversations."""
    items = service.list_for_customer(db, user.actor, customer_id)
    total = sum((c.amount for c in items if c.status == service.APPLIED), Decimal("0"))
    numbers = {c.conversation_id: get_conversation(db, user.actor, c.conversation_id).number for c in items[:5]}
    return render(request, "partials/customer_compensations.html", items=_views(db, user.actor, items),
                  applied_total=service.rub(total), numbers=numbers)


def _queue(request: Request, db: Session, user: UIUser, *, error: str | None = None,
           status_code: int = 200) -> HTMLResponse:
    actor = user.actor
    pending = service.pending_for(db, actor)
    mine = service.requested_by(db, actor, limit=30)
    decided = service.recent_decisions(db, actor, limit=30) if user.has_role(Role.supervisor) else []
    numbers = {c.conversation_id: get_conversation(db, actor, c.conversation_id).number
               for c in (*pending, *mine, *decided)}
    return render(request, "approvals.html", status_code=status_code, pending=_views(db, actor, pending),
                  mine=_views(db, actor, mine), decided=_views(db, actor, decided), numbers=numbers, error=error)


@router.get("/approvals")
def approvals(request: Request, user: CurrentUser, db: DB) -> HTMLResponse:
    return _queue(request, db, user)


@router.get("/ui/approvals/count")
def approvals_count(user: CurrentUser, db: DB) -> JSONResponse:
    """The nav counter: pending requests the signed-in user may decide."""
    return JSONResponse({"count": service.pending_count(db, user.actor)}, headers={"Cache-Control": "no-store"})


# -- Settings → «Полномочия» ------------------------------------------------------------------------------------

def _settings(request: Request, db: Session, user: UIUser, *, error: str | None = None,
              status_code: int = 200) -> HTMLResponse:
    users = accounts.list_users(db, user.actor)
    return render(request, "settings/authority.html", status_code=status_code,
                  limits=service.list_limits(db, user.actor), kinds=service.KINDS, roles=service.LIMIT_ROLES,
                  users=users, user_names={f"user:{u.id}": u.name for u in users},
                  webhook_url=service.webhook_url(db, user.actor.workspace_id), error=error)


@router.get("/settings/authority")
def authority(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    return _settings(request, db, user)


@router.post("/settings/authority/limits")
async def save_limit(request: Request, user: AdminUser, db: DB) -> Response:
    form = await request.form()
    try:
        service.set_limit(db, user.actor, subject=str(form.get("subject") or ""), kind=str(form.get("kind") or ""),
                          per_case=str(form.get("per_case") or "").strip()[:40] or None,
                          per_day=str(form.get("per_day") or "").strip()[:40] or None)
    except DomainError as exc:
        db.rollback()
        return _settings(request, db, user, error=_error_text(exc), status_code=422)
    return redirect("/settings/authority", request)


@router.post("/settings/authority/limits/{limit_id}/delete")
def remove_limit(request: Request, limit_id: int, user: AdminUser, db: DB) -> Response:
    service.delete_limit(db, user.actor, limit_id)
    return redirect("/settings/authority", request)


@router.post("/settings/authority/webhook")
async def save_webhook(request: Request, user: AdminUser, db: DB) -> Response:
    form = await request.form()
    try:
        service.set_webhook(db, user.actor, url=str(form.get("url") or "")[:2000],
                            secret=str(form.get("secret") or "")[:2000] or None)
    except DomainError as exc:
        db.rollback()
        return _settings(request, db, user, error=_error_text(exc), status_code=422)
    return redirect("/settings/authority", request)
