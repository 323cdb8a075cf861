"""Bookings in the agent workspace and for the customer.

- The conversation's «Визиты» block: the customer's visits (done / missed / cancel in place, the late-service
  penalty of a missed one), «Предложить 3 слота» for a service and area, «Записать» on one of them, and «Отправить
  клиенту» (the three slots and the link to pick one, as a message).
- The customer's pages, no sign-in, a signed link each: /book/<token> (pick a slot of the offered service) and
  /booking/<token> (the visit: reschedule, cancel, and after it «Всё ли удобно?»).
Pages call the bookings service; they never write SQL.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.accounts.service import Actor
from otklik.bookings import service
from otklik.bookings.models import Booking
from otklik.conversations.service import get_conversation
from otklik.platform.db import run_transaction, utcnow
from otklik.platform.errors import DomainError, NotFound, field_error
from otklik.web.ui.deps import CurrentUser, UIUser, environment, render, request_language, ui_router

agent = ui_router()  # signed-in agents, CSRF on every form
public = APIRouter(include_in_schema=False)  # the customer's signed links: no session, no CSRF cookie
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'none'; "
                                      "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _error_text(exc: DomainError) -> str:
    return "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message


def _slot_view(slot: service.Slot, tz: str, lang: str) -> dict[str, Any]:
    return {"installer_id": slot.installer_id, "start": slot.start, "text": service.slot_text(slot, tz, lang)}


def _visit_view(db: Session, row: Booking, lang: str, now: dt.datetime) -> dict[str, Any]:
    out = service.booking_out(db, row, now=now)
    out["when"] = service.slot_text(service.Slot(int(row.start_at.timestamp()), row.installer_id,
                                                 int(row.end_at.timestamp())), row.time_zone, lang)
    out["penalty_text"] = f"{out['late_penalty']:,.2f}".replace(",", " ") + " ₽"
    return out


def _panel(request: Request, db: Session, user: UIUser, conversation_id: int, *, offered: list[Any] | None = None,
           form: dict[str, str] | None = None, error: str | None = None, note: str | None = None,
           status_code: int = 200) -> HTMLResponse:
    conversation = get_conversation(db, user.actor, conversation_id)
    lang = user.language
    now = utcnow()
    visits = [_visit_view(db, b, lang, now)
              for b in service.bookings_of_customer(db, user.actor.workspace_id, conversation.customer_id, 10)]
    return render(request, "partials/bookings_panel.html", status_code=status_code, conversation=conversation,
                  visits=visits, services=service.list_services(db, user.actor.workspace_id, active_only=True),
                  offered=offered, form=form or {}, error=error, note=note)


@agent.get("/ui/conversations/{conversation_id}/bookings")
def bookings_panel(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _panel(request, db, user, conversation_id)


def _form_int(form: Any, name: str) -> int:
    value = str(form.get(name) or "").strip()
    if not value.isdigit() or len(value) > 12:
        raise field_error(name, "choose one")
    return int(value)


def _offer(db: Session, actor: Actor, service_id: int, area: str, lang: str) -> list[dict[str, Any]]:
    svc = service.get_service(db, actor.workspace_id, service_id, field="service_id")
    start = utcnow()
    found = service.find_slots(db, actor.workspace_id, svc, start, start + dt.timedelta(days=service.PUBLIC_DAYS),
                               area=area or None)
    tz = service.workspace_time_zone(db, actor.workspace_id)
    return [_slot_view(s, tz, lang) for s in service.offer(found, tz)]


@agent.post("/ui/conversations/{conversation_id}/bookings/offer")
async def offer_slots(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    typed = {k: str(form.get(k) or "")[:500] for k in ("service_id", "area", "address")}
    try:
        offered = _offer(db, user.actor, _form_int(form, "service_id"), typed["area"], user.language)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _panel(request, db, user, conversation_id, form=typed, error=_error_text(exc), status_code=422)
    return _panel(request, db, user, conversation_id, offered=offered, form=typed)


@agent.post("/ui/conversations/{conversation_id}/bookings/send-offer")
async def send_offer(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    typed = {k: str(form.get(k) or "")[:500] for k in ("service_id", "area", "address")}
    try:
        service_id = _form_int(form, "service_id")
        svc = service.get_service(db, user.actor.workspace_id, service_id, field="service_id")
        start = utcnow()
        found = service.find_slots(db, user.actor.workspace_id, svc, start,
                                   start + dt.timedelta(days=service.PUBLIC_DAYS), area=typed["area"] or None)
        tz = service.workspace_time_zone(db, user.actor.workspace_id)
        service.send_offer(db, user.actor, conversation_id, service_id, typed["area"], service.offer(found, tz),
                           time_zone=tz)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _panel(request, db, user, conversation_id, form=typed, error=_error_text(exc), status_code=422)
    return _panel(request, db, user, conversation_id, form=typed, note="sent")


@agent.post("/ui/conversations/{conversation_id}/bookings")
async def book(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    typed = {k: str(form.get(k) or "")[:500] for k in ("service_id", "area", "address")}
    conversation = get_conversation(db, user.actor, conversation_id)
    try:
        start = _moment(str(form.get("start") or ""))
        service.book(db, user.actor, service_id=_form_int(form, "service_id"), start=start,
                     installer_id=_form_int(form, "installer_id"), customer_id=conversation.customer_id,
                     conversation_id=conversation.id, area=typed["area"], address=typed["address"], confirm=True)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        text = _error_text(exc)
        return _panel(request, db, user, conversation_id, form=typed, error=text, status_code=422)
    return _panel(request, db, user, conversation_id, note="booked")


@agent.post("/ui/bookings/{booking_id}/{action}")
async def change(request: Request, booking_id: int, action: str, user: CurrentUser, db: DB) -> HTMLResponse:
    row = service.get_booking(db, user.actor.workspace_id, booking_id)
    sent = str((await request.form()).get("conversation_id") or "")
    conversation_id = int(sent) if sent.isdigit() and len(sent) < 12 else int(row.conversation_id or 0)
    try:
        if action == "cancel":
            service.cancel(db, user.actor, booking_id)
        elif action in ("done", "missed"):
            service.mark(db, user.actor, booking_id, action)
        else:
            raise NotFound(f"no action {action[:20]!r}")
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _panel(request, db, user, conversation_id, error=_error_text(exc), status_code=422)
    return _panel(request, db, user, conversation_id)


# -- the customer's pages -----------------------------------------------------------------------------------------


def _moment(raw: str) -> dt.datetime:
    """A slot button's value (UTC epoch seconds) as a moment; anything else is a 422 naming `start`."""
    try:
        if not raw.isdigit() or len(raw) > 11:
            raise ValueError
        return dt.datetime.fromtimestamp(int(raw), dt.UTC)
    except (ValueError, OverflowError, OSError):
        raise field_error("start", "choose a time") from None


def _page(request: Request, status_code: int = 200, **context: Any) -> Response:
    html = environment(request_language(request)).get_template("booking_public.html").render(**context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def _days(slots: list[service.SlotRow], tz: str, lang: str) -> list[dict[str, Any]]:
    """The free times grouped by day, for the customer's page."""
    from zoneinfo import ZoneInfo

    from babel.dates import format_date

    zone = ZoneInfo(tz)
    days: list[dict[str, Any]] = []
    for row in service.distinct_times(slots):
        slot = service.Slot._make(row)
        start = slot.start_at.astimezone(zone)
        label = format_date(start.date(), "EEEE, d MMMM", locale=lang)
        if not days or days[-1]["label"] != label:
            days.append({"label": label, "times": []})
        days[-1]["times"].append({"start": slot.start, "text": f"{start:%H:%M}–{slot.end_at.astimezone(zone):%H:%M}"})
    return days


def _free(db: Session, workspace_id: int, service_id: int, area: str, exclude: int | None = None
          ) -> tuple[list[service.SlotRow], str]:
    svc = service.get_service(db, workspace_id, service_id)
    start = utcnow()
    found = service.find_slots(db, workspace_id, svc, start, start + dt.timedelta(days=service.PUBLIC_DAYS),
                               area=area or None, exclude_booking_id=exclude)
    return found, service.workspace_time_zone(db, workspace_id)


@public.get("/book/{token}")
def pick_page(request: Request, token: str, db: DB) -> Response:
    try:
        link = service.read_offer_token(token)
        found, tz = _free(db, link.workspace_id, link.service_id, link.area)
        svc = service.get_service(db, link.workspace_id, link.service_id)
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    return _page(request, mode="pick", token=token, service=svc, days=_days(found, tz, request_language(request)),
                 visit=None, error=None)


@public.post("/book/{token}")
async def pick(request: Request, token: str) -> Response:
    form = await request.form()
    raw = str(form.get("start") or "")

    def work(session: Session) -> str:
        link = service.read_offer_token(token)
        row = service.book(session, Actor.system(link.workspace_id, kind="customer"), service_id=link.service_id,
                           start=_moment(raw), customer_id=link.customer_id,
                           conversation_id=link.conversation_id, area=link.area, created_by="customer",
                           confirm=True)
        return service.booking_token(row)

    try:
        booking_token = run_transaction(work)
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    except DomainError as exc:
        with_db = run_transaction(lambda s: _pick_again(s, token, request_language(request)))
        return _page(request, 409 if exc.status_code == 409 else 422, mode="pick", token=token,
                     error=exc.code, **with_db)
    return RedirectResponse(f"/booking/{booking_token}", status_code=303)


def _pick_again(session: Session, token: str, lang: str) -> dict[str, Any]:
    link = service.read_offer_token(token)
    found, tz = _free(session, link.workspace_id, link.service_id, link.area)
    return {"service": service.get_service(session, link.workspace_id, link.service_id),
            "days": _days(found, tz, lang), "visit": None}


def _visit_context(session: Session, row: Booking, lang: str, with_slots: bool) -> dict[str, Any]:
    now = utcnow()
    visit = _visit_view(session, row, lang, now)
    days: list[dict[str, Any]] = []
    if with_slots and row.status in ("booked", "missed"):
        found, tz = _free(session, row.workspace_id, row.service_id, row.area, exclude=row.id)
        days = _days([s for s in found if s[0] != int(row.start_at.timestamp())], tz, lang)
    return {"visit": visit, "days": days, "service": service.get_service(session, row.workspace_id,
                                                                          row.service_id)}


@public.get("/booking/{token}")
def visit_page(request: Request, token: str, score: str = "", done: str = "") -> Response:
    lang = request_language(request)

    def work(session: Session) -> dict[str, Any]:
        row = service.booking_for_token(session, token)
        if score.isdigit() and row.status == "done":  # the one-click rating of «Всё ли удобно?»
            service.record_feedback(session, row, score=int(score[:2]))
        return _visit_context(session, row, lang, with_slots=True)

    try:
        context = run_transaction(work)
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    except DomainError:
        context = run_transaction(lambda s: _visit_context(s, service.booking_for_token(s, token), lang, True))
    return _page(request, mode="visit", token=token, error=None, saved=bool(score) or done == "feedback",
                 changed=done if done in ("cancel", "reschedule") else None, **context)


@public.post("/booking/{token}/{action}")
async def visit_action(request: Request, token: str, action: str) -> Response:
    form = await request.form()
    lang = request_language(request)
    raw = str(form.get("start") or "")

    def work(session: Session) -> None:
        row = service.booking_for_token(session, token)
        actor = Actor.system(row.workspace_id, kind="customer")
        if action == "cancel":
            service.cancel(session, actor, row.id)
        elif action == "reschedule":
            service.reschedule(session, actor, row.id, start=_moment(raw))
        elif action == "feedback":
            score = str(form.get("score") or "")
            service.record_feedback(session, row, score=int(score) if score.isdigit() and len(score) < 3 else None,
                                    comment=str(form.get("comment") or "")[:2000])
        else:
            raise NotFound("no such action")

    try:
        run_transaction(work)
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    except DomainError as exc:
        context = run_transaction(lambda s: _visit_context(s, service.booking_for_token(s, token), lang, True))
        return _page(request, exc.status_code, mode="visit", token=token, error=exc.code, saved=False,
                     changed=None, **context)
    return RedirectResponse(f"/booking/{token}?done={action}", status_code=303)


router = APIRouter(include_in_schema=False)
router.include_router(agent)
router.include_router(public)
