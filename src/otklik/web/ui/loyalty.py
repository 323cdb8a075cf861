"""Loyalty in the agent's workspace: the customer panel's «Loyalty» block (tier, purchases, the way to the next
tier, the referral code, who referred the customer) and Settings → Loyalty (admins: the tiers editor, the shop's
webhook for referral rewards, the latest referrals)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.orders import loyalty
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import AdminUser, CurrentUser, UIUser, render, ui_router

router = ui_router()


def _block(request: Request, db: Session, user: UIUser, customer_id: int, *, error: str | None = None,
           status_code: int = 200) -> HTMLResponse:
    info = loyalty.customer_loyalty(db, user.actor, customer_id)
    return render(request, "partials/customer_loyalty.html", status_code=status_code, info=info,
                  customer_id=customer_id, error=error)


@router.get("/ui/customers/{customer_id}/loyalty")
def customer_loyalty(request: Request, customer_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _block(request, db, user, customer_id)


@router.post("/ui/customers/{customer_id}/referral-code")
def create_code(request: Request, customer_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    loyalty.ensure_code(db, user.actor, customer_id)
    return _block(request, db, user, customer_id)


@router.post("/ui/customers/{customer_id}/referrer")
async def attach_referrer(request: Request, customer_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    try:
        loyalty.attach(db, user.actor, customer_id, str(form.get("code") or ""), source="ui")
    except DomainError as exc:
        db.rollback()
        # htmx swaps only 2xx answers: the panel shows the error in place; a plain form post gets the 422
        status = 200 if request.headers.get("hx-request") else 422
        return _block(request, db, user, customer_id, error=exc.message, status_code=status)
    return _block(request, db, user, customer_id)


# -- Settings → Loyalty ----------------------------------------------------------------------------------

def _page(request: Request, db: Session, *, error: str | None = None, saved: str | None = None,
          status_code: int = 200) -> HTMLResponse:
    user: UIUser = request.state.ui_user
    ws = user.workspace.id
    return render(request, "settings/loyalty.html", status_code=status_code,
                  tiers=[loyalty.tier_out(t) for t in loyalty.list_tiers(db, ws)],
                  settings=loyalty.settings_out(db, ws), metrics=loyalty.METRICS,
                  referrals=loyalty.list_referrals(db, ws, limit=50), error=error, saved=saved)


def _tier_form(form: Any) -> dict[str, Any]:
    get = lambda name: str(form.get(name) or "").strip()  # noqa: E731
    data: dict[str, Any] = {"name": get("name"), "metric": get("metric") or "purchases",
                            "threshold": get("threshold")}
    days, rank = get("period_days"), get("rank")
    data["period_days"] = int(days) if days.isdigit() else (days or None)
    if rank:
        data["rank"] = int(rank) if rank.isdigit() else rank
    return data


@router.get("/settings/loyalty")
def loyalty_settings(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    return _page(request, db)


@router.post("/settings/loyalty/tiers")
async def add_tier(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    try:
        loyalty.create_tier(db, user.actor, _tier_form(await request.form()))
    except DomainError as exc:
        db.rollback()
        return _page(request, db, error=exc.message, status_code=422)
    return _page(request, db, saved="tier")


@router.post("/settings/loyalty/tiers/{tier_id}")
async def save_tier(request: Request, tier_id: int, user: AdminUser, db: DB) -> HTMLResponse:
    form = await request.form()
    try:
        if form.get("delete") == "1":
            loyalty.delete_tier(db, user.actor, tier_id)
        else:
            loyalty.update_tier(db, user.actor, tier_id, _tier_form(form))
    except DomainError as exc:
        db.rollback()
        if exc.status_code == 404:
            raise
        return _page(request, db, error=exc.message, status_code=422)
    return _page(request, db, saved="tier")


@router.post("/settings/loyalty/webhook")
async def save_webhook(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    form = await request.form()
    data = {"webhook_url": str(form.get("webhook_url") or "").strip(), "reward": str(form.get("reward") or "")}
    if str(form.get("secret") or ""):
        data["secret"] = str(form.get("secret"))
    try:
        loyalty.update_settings(db, user.actor, data)
    except DomainError as exc:
        db.rollback()
        return _page(request, db, error=exc.message, status_code=422)
    return _page(request, db, saved="webhook")
