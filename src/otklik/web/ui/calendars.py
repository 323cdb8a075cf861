"""Settings → Calendars: a workspace's business calendars with a visual week and the year's days off.

- `/settings/calendars`: the list (time zone, teams, default) and a form for a new calendar;
- `/settings/calendars/{id}`: edit hours (several intervals a day, typed as «09:00–13:00, 14:00–18:00»), the
  country's holidays, own days off and working days, the pre-holiday option, the default flag, which teams use
  it; a week drawn on a 24-hour scale and the list of this year's (or any year's) non-working and shortened days.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.calendars import service
from otklik.calendars.engine import WEEKDAYS, parse_time
from otklik.calendars.models import Calendar
from otklik.platform.errors import DomainError, field_error
from otklik.web.ui.deps import CurrentUser, SupervisorUser, UIUser, redirect, render, ui_router
from otklik.web.ui.settings import TIMEZONES

router = ui_router()
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
COUNTRIES = ("RU", "BY", "KZ", "UZ", "AM", "GE", "DE", "GB", "US")
_SPLIT = re.compile(r"\s*[–—-]\s*")


def hours_from_form(values: dict[str, str]) -> dict[str, list[list[str]]]:
    """«09:00–13:00, 14:00–18:00» per day -> {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], …}."""
    out: dict[str, list[list[str]]] = {}
    for day in WEEKDAYS:
        text = (values.get(day) or "").strip()
        pairs = []
        for chunk in filter(None, (c.strip() for c in re.split(r"[,;\n]", text))):
            parts = _SPLIT.split(chunk)
            if len(parts) != 2:
                raise field_error(f"hours.{day}", f"{chunk!r}: write an interval as 09:00–18:00")
            pairs.append([p.strip().zfill(5) for p in parts])
        out[day] = pairs
    return out


def hours_to_text(hours: dict[str, list[list[str]]]) -> dict[str, str]:
    return {day: ", ".join(f"{a}–{b}" for a, b in hours.get(day) or []) for day in WEEKDAYS}


def dates_from_text(text: str) -> list[str]:
    return [d for d in re.split(r"[\s,;]+", text.strip()) if d][:service.MAX_EXTRA_DAYS]


def week_bars(hours: dict[str, list[list[str]]]) -> list[dict[str, Any]]:
    """Each weekday's intervals as left/width percentages of 24 hours, for the drawn week."""
    rows = []
    for day, name in zip(WEEKDAYS, DAY_NAMES, strict=True):
        bars = []
        for a, b in hours.get(day) or []:
            start, end = parse_time(a), parse_time(b, end=True)
            bars.append({"left": round(start / 14.4, 2), "width": round((end - start) / 14.4, 2), "label": f"{a}–{b}"})
        rows.append({"key": day, "name": name, "bars": bars})
    return rows


def _list_page(request: Request, db: Session, user: UIUser, *, error: str | None = None,
               form: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    return render(request, "settings/calendars.html", status_code=status_code,
                  calendars=service.list_calendars(db, user.actor), teams=service.teams_by_calendar(db, user.actor),
                  timezones=TIMEZONES, countries=COUNTRIES, error=error, form=form or {},
                  can_edit=user.has_role(Role.supervisor))


@router.get("/settings/calendars")
def calendars_page(request: Request, user: CurrentUser, db: DB) -> Response:
    return _list_page(request, db, user)


@router.post("/settings/calendars")
def create_calendar(request: Request, user: SupervisorUser, db: DB,
                    name: Annotated[str, Form(max_length=120)] = "",
                    time_zone: Annotated[str, Form(max_length=64)] = "Europe/Moscow",
                    holidays: Annotated[str, Form(max_length=8)] = "RU",
                    preset: Annotated[str, Form(max_length=16)] = "9-18") -> Response:
    hours = {"9-18": service.WORKWEEK_9_TO_18, "24/7": {d: [["00:00", "24:00"]] for d in WEEKDAYS},
             "9-21": {d: [["09:00", "21:00"]] for d in WEEKDAYS}}.get(preset, service.WORKWEEK_9_TO_18)
    try:
        row = service.create_calendar(db, user.actor, {"name": name, "time_zone": time_zone, "hours": hours,
                                                       "holidays": holidays or None})
    except DomainError as exc:
        db.rollback()
        return _list_page(request, db, user, error=exc.message, status_code=exc.status_code,
                          form={"name": name, "time_zone": time_zone, "holidays": holidays})
    return redirect(f"/settings/calendars/{row.id}", request)


def _edit_page(request: Request, db: Session, user: UIUser, row: Calendar, *, year: int | None = None,
               error: str | None = None, saved: bool = False, hours_text: dict[str, str] | None = None,
               status_code: int = 200) -> Response:
    zone_now = dt.datetime.now(service.engine_of(row).zone)
    year = year or zone_now.year
    return render(request, "settings/calendar.html", status_code=status_code, cal=row, year=year,
                  days=service.year_days(row, year), bars=week_bars(row.hours or {}), day_names=DAY_NAMES,
                  hours_text=hours_text or hours_to_text(row.hours or {}), timezones=TIMEZONES,
                  countries=COUNTRIES, teams=accounts.list_teams(db, user.actor), error=error, saved=saved,
                  open_now=service.engine_of(row).is_open(zone_now), local_now=zone_now,
                  can_edit=user.has_role(Role.supervisor))


@router.get("/settings/calendars/{calendar_id}")
def calendar_page(request: Request, calendar_id: int, user: CurrentUser, db: DB,
                  year: Annotated[int | None, Query(ge=1972, le=2198)] = None, saved: bool = False) -> Response:
    return _edit_page(request, db, user, service.get_calendar(db, user.actor, calendar_id), year=year, saved=saved)


@router.post("/settings/calendars/{calendar_id}")
async def save_calendar(request: Request, calendar_id: int, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    values = {k: str(v)[:2000] for k, v in form.items() if isinstance(v, str)}
    row = service.get_calendar(db, user.actor, calendar_id)
    hours_text = {day: values.get(f"hours_{day}", "") for day in WEEKDAYS}
    try:
        changes: dict[str, Any] = {
            "name": values.get("name", row.name), "time_zone": values.get("time_zone", row.time_zone),
            "holidays": values.get("holidays") or None,
            "hours": hours_from_form(hours_text),
            "days_off": dates_from_text(values.get("days_off", "")),
            "working_days": dates_from_text(values.get("working_days", "")),
            "shortened_preholiday": values.get("shortened_preholiday") == "on",
        }
        if values.get("is_default") == "on":
            changes["is_default"] = True
        service.update_calendar(db, user.actor, calendar_id, changes)
        chosen = {int(v) for k, v in form.multi_items() if k == "team_ids" and isinstance(v, str) and v.isdigit()}
        for team in accounts.list_teams(db, user.actor):
            if team.id in chosen and team.calendar_id != row.id:
                service.set_team_calendar(db, user.actor, team.id, row.id)
            elif team.id not in chosen and team.calendar_id == row.id:
                service.set_team_calendar(db, user.actor, team.id, None)
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        row = service.get_calendar(db, user.actor, calendar_id)
        return _edit_page(request, db, user, row, error=detail, hours_text=hours_text, status_code=422)
    return redirect(f"/settings/calendars/{calendar_id}?saved=1", request)


@router.post("/settings/calendars/{calendar_id}/delete")
def delete_calendar(request: Request, calendar_id: int, user: SupervisorUser, db: DB) -> Response:
    try:
        service.delete_calendar(db, user.actor, calendar_id)
    except DomainError as exc:
        db.rollback()
        return _list_page(request, db, user, error=exc.message, status_code=exc.status_code)
    return redirect("/settings/calendars", request)
