"""Pages of the third round of issue 15: Settings → «Опросы и отчёты» (/settings/surveys: the NPS schedule and its
texts, the weekly report's addresses, my own subscription) and «Тайный покупатель» (/mystery: scenarios, runs
with their QA score). The rules are the feedback and reports domains'; this module reads forms and renders."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.feedback import mystery, nps
from otklik.platform.errors import DomainError
from otklik.reports import weekly
from otklik.web.ui.deps import AdminUser, SupervisorUser, UIUser, redirect, render, ui_router

router = ui_router()


def _error(exc: DomainError) -> dict[str, str]:
    return exc.fields[0] if exc.fields else {"field": "", "message": exc.message}


# -- Settings → Surveys and reports -------------------------------------------------------------------------

def _surveys_page(request: Request, db: Session, user: UIUser, *, error: dict[str, str] | None = None,
                  saved: str | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "settings/surveys.html", status_code=status_code,
                  nps=nps.settings_data(nps.settings_of(db, user.workspace.id)), languages=nps.LANGUAGES,
                  defaults=nps.DEFAULT_TEXTS, weekly=weekly.settings_data(db, user.actor),
                  deliveries=weekly.deliveries(db, user.actor, limit=10), can_edit=user.has_role(Role.admin),
                  error=error, saved=saved)


@router.get("/settings/surveys")
def surveys_settings(request: Request, user: SupervisorUser, db: DB) -> HTMLResponse:
    return _surveys_page(request, db, user)


@router.post("/settings/surveys/nps")
async def surveys_nps_save(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    form = await request.form()
    get = lambda name: str(form.get(name) or "").strip()  # noqa: E731
    raw_delay = get("delay_days")
    if not raw_delay.isdigit():
        return _surveys_page(request, db, user, status_code=422,
                             error={"field": "delay_days", "message": "a whole number of days"})
    texts = {lang: {"question": get(f"question_{lang}"), "why": get(f"why_{lang}")} for lang in nps.LANGUAGES}
    try:
        nps.update_settings(db, user.actor, enabled=form.get("enabled") == "on", delay_days=int(raw_delay),
                            texts=texts)
    except DomainError as exc:
        db.rollback()
        return _surveys_page(request, db, user, error=_error(exc), status_code=422)
    return _surveys_page(request, db, user, saved="nps")


@router.post("/settings/surveys/weekly")
async def surveys_weekly_save(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    form = await request.form()
    try:
        weekly.update_settings(db, user.actor, addresses=str(form.get("addresses") or "")[:20000])
    except DomainError as exc:
        db.rollback()
        return _surveys_page(request, db, user, error=_error(exc), status_code=422)
    return _surveys_page(request, db, user, saved="weekly")


@router.post("/settings/surveys/weekly/me")
async def surveys_weekly_me(request: Request, user: SupervisorUser, db: DB) -> HTMLResponse:
    form = await request.form()
    weekly.subscribe(db, user.actor, form.get("subscribed") == "on")
    return _surveys_page(request, db, user, saved="me")


# -- Mystery shopper ------------------------------------------------------------------------------------------

def _mystery_page(request: Request, db: Session, user: UIUser, *, error: dict[str, str] | None = None,
                  form: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    return render(request, "reports/mystery.html", status_code=status_code,
                  scenarios=[mystery.scenario_data(s) for s in mystery.list_scenarios(db, user.actor)],
                  runs=mystery.list_runs(db, user.actor), error=error,
                  form=form or {"title": "", "opening": "", "expected": ""})


@router.get("/mystery")
def mystery_page(request: Request, user: SupervisorUser, db: DB) -> HTMLResponse:
    return _mystery_page(request, db, user)


@router.post("/mystery/scenarios")
async def mystery_create(request: Request, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    values = {k: str(form.get(k) or "") for k in ("title", "opening", "expected")}
    try:
        mystery.create_scenario(db, user.actor, **{k: v[:10000] for k, v in values.items()})
    except DomainError as exc:
        db.rollback()
        return _mystery_page(request, db, user, error=_error(exc), form=values, status_code=422)
    return redirect("/mystery", request)


@router.post("/mystery/scenarios/{scenario_id}/runs")
async def mystery_run(request: Request, scenario_id: int, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    language = str(form.get("language") or "ru")
    try:
        mystery.start_run(db, user.actor, scenario_id, language=language)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _mystery_page(request, db, user, error=_error(exc), status_code=exc.status_code)
    return redirect("/mystery", request)


@router.post("/mystery/scenarios/{scenario_id}/delete")
def mystery_delete(request: Request, scenario_id: int, user: SupervisorUser, db: DB) -> Response:
    mystery.delete_scenario(db, user.actor, scenario_id)
    return redirect("/mystery", request)
