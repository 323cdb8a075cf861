"""HTTP surface of business calendars: CRUD, a team's calendar, and business-time arithmetic.

Contract that outside checks call (keep names): POST /calendars {name, time_zone, hours, holidays, days_off,
working_days}; GET /calendars/{id}/add?start=&minutes= -> {"due"}; GET /calendars/{id}/between?start=&end= ->
{"minutes"}. Bad input is a 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.calendars import service
from otklik.calendars.engine import LAST_YEAR
from otklik.calendars.models import Calendar

router = APIRouter(tags=["calendars"])

Hours = dict[str, list[list[str]]]
HOURS_EXAMPLE = {"mon": [["09:00", "13:00"], ["14:00", "18:00"]], "tue": [["09:00", "18:00"]],
                 "wed": [["09:00", "18:00"]], "thu": [["09:00", "18:00"]], "fri": [["09:00", "17:00"]],
                 "sat": [], "sun": []}
# ten years of calendar minutes: more than any deadline or SLA target counts
MAX_MINUTES = 10 * 366 * 24 * 60


class CalendarIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    time_zone: str = Field(max_length=64, description="IANA time zone, e.g. Europe/Moscow")
    hours: Hours | None = Field(default=None, description='Weekly hours; several intervals a day; "24:00" ends a '
                                "day. Default Monday–Friday 09:00–18:00.", examples=[HOURS_EXAMPLE])
    holidays: str | None = Field(default=None, max_length=8, description="Country code of public holidays with "
                                 "that year's transfers (RU: the Russian production calendar), or null")
    days_off: list[str] = Field(default_factory=list, max_length=service.MAX_EXTRA_DAYS)
    working_days: list[str] = Field(default_factory=list, max_length=service.MAX_EXTRA_DAYS)
    shortened_preholiday: bool = Field(default=False, description="The working day before a public holiday is "
                                       "one hour shorter (ст. 95 ТК РФ)")
    is_default: bool = False


class CalendarPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    time_zone: str | None = Field(default=None, max_length=64)
    hours: Hours | None = None
    holidays: str | None = Field(default=None, max_length=8)
    days_off: list[str] | None = Field(default=None, max_length=service.MAX_EXTRA_DAYS)
    working_days: list[str] | None = Field(default=None, max_length=service.MAX_EXTRA_DAYS)
    shortened_preholiday: bool | None = None
    is_default: bool | None = None


class CalendarOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    time_zone: str
    hours: Hours
    holidays: str | None
    days_off: list[str]
    working_days: list[str]
    shortened_preholiday: bool
    is_default: bool
    teams: list[str] = []
    created_at: dt.datetime
    updated_at: dt.datetime


class DueOut(BaseModel):
    due: dt.datetime


class MinutesOut(BaseModel):
    minutes: int


class OpenOut(BaseModel):
    open: bool
    next_open: dt.datetime | None


class DayOut(BaseModel):
    date: str
    weekday: int  # 0 = Monday
    kind: str  # holiday / day_off / extra_working / shortened
    name: str
    hours: list[list[str]]


class TeamCalendarIn(Strict):
    calendar_id: int | None = Field(ge=1)


class TeamCalendarOut(BaseModel):
    team_id: int
    calendar_id: int | None


def _out(row: Calendar, teams: dict[int, list[str]] | None = None) -> CalendarOut:
    out = CalendarOut.model_validate(row)
    out.teams = (teams or {}).get(row.id, [])
    return out


@router.get("/calendars", response_model=list[CalendarOut])
def list_calendars(actor: CurrentActor, db: DB) -> list[CalendarOut]:
    teams = service.teams_by_calendar(db, actor)
    return [_out(row, teams) for row in service.list_calendars(db, actor)]


@router.post("/calendars", response_model=CalendarOut, status_code=201)
def create_calendar(body: CalendarIn, actor: CurrentActor, db: DB) -> CalendarOut:
    data: dict[str, Any] = body.model_dump()
    if data["hours"] is None:
        data.pop("hours")
    return _out(service.create_calendar(db, actor, data))


@router.get("/calendars/{calendar_id}", response_model=CalendarOut)
def get_calendar(calendar_id: int, actor: CurrentActor, db: DB) -> CalendarOut:
    return _out(service.get_calendar(db, actor, calendar_id), service.teams_by_calendar(db, actor))


@router.patch("/calendars/{calendar_id}", response_model=CalendarOut)
def update_calendar(calendar_id: int, body: CalendarPatch, actor: CurrentActor, db: DB) -> CalendarOut:
    row = service.update_calendar(db, actor, calendar_id, body.model_dump(exclude_unset=True))
    return _out(row, service.teams_by_calendar(db, actor))


@router.delete("/calendars/{calendar_id}", status_code=204)
def delete_calendar(calendar_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_calendar(db, actor, calendar_id)
    return Response(status_code=204)


@router.get("/calendars/{calendar_id}/add", response_model=DueOut)
def add(calendar_id: int, actor: CurrentActor, db: DB,
        start: Annotated[str, Query(max_length=40, description="ISO 8601 with a UTC offset")],
        minutes: Annotated[int, Query(ge=0, le=MAX_MINUTES, description="Working minutes to add")]) -> DueOut:
    """The moment `minutes` working minutes after `start`, in UTC."""
    row = service.get_calendar(db, actor, calendar_id)
    return DueOut(due=service.add(row, service.parse_moment(start, "start"), minutes))


@router.get("/calendars/{calendar_id}/between", response_model=MinutesOut)
def between(calendar_id: int, actor: CurrentActor, db: DB,
            start: Annotated[str, Query(max_length=40, description="ISO 8601 with a UTC offset")],
            end: Annotated[str, Query(max_length=40, description="ISO 8601 with a UTC offset")]) -> MinutesOut:
    """Working minutes from `start` to `end` (whole minutes, rounded down)."""
    row = service.get_calendar(db, actor, calendar_id)
    return MinutesOut(minutes=service.between(row, service.parse_moment(start, "start"),
                                              service.parse_moment(end, "end")))


@router.get("/calendars/{calendar_id}/open", response_model=OpenOut)
def is_open(calendar_id: int, actor: CurrentActor, db: DB,
            at: Annotated[str | None, Query(max_length=40, description="ISO 8601 with a UTC offset; "
                                                                        "default now")] = None) -> OpenOut:
    row = service.get_calendar(db, actor, calendar_id)
    moment = service.parse_moment(at, "at") if at else dt.datetime.now(dt.UTC)
    nxt = service.add(row, moment, 0)
    return OpenOut(open=nxt <= moment, next_open=None if nxt <= moment else nxt)


@router.get("/calendars/{calendar_id}/days", response_model=list[DayOut])
def year_days(calendar_id: int, actor: CurrentActor, db: DB,
              year: Annotated[int, Query(ge=1971, le=LAST_YEAR)]) -> list[dict[str, Any]]:
    """Days of a year that differ from the weekly hours: holidays and transfers, the workspace's own days off,
    working weekend days, shortened pre-holiday days."""
    return service.year_days(service.get_calendar(db, actor, calendar_id), year)


@router.put("/teams/{team_id}/calendar", response_model=TeamCalendarOut, tags=["teams"])
def set_team_calendar(team_id: int, body: TeamCalendarIn, actor: CurrentActor, db: DB) -> TeamCalendarOut:
    team = service.set_team_calendar(db, actor, team_id, body.calendar_id)
    return TeamCalendarOut(team_id=team.id, calendar_id=team.calendar_id)
