"""Rules of the calendars domain: create and change a workspace's calendars, point teams at them, and the
business-time arithmetic (`add`, `between`, `next_open`) the assistant, SLA and the widget share."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence
from typing import Any
from zoneinfo import available_timezones

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, Team
from otklik.accounts.service import Actor, record_audit
from otklik.calendars.engine import (
    FIRST_YEAR,
    LAST_YEAR,
    WEEKDAYS,
    BusinessCalendar,
    CalendarRangeError,
    CalendarSpec,
    DayKind,
    compiled,
    format_minutes,
    parse_hours,
)
from otklik.calendars.models import Calendar
from otklik.platform.errors import Conflict, NotFound, field_error

MAX_CALENDARS = 50  # per workspace
# Bumped on every change of a calendar or of a team's calendar in this process: caches of "which calendar does
# this team count on" (conversations/sla.py) compare it and drop what they hold.
GENERATION = [0]


def _changed() -> None:
    GENERATION[0] += 1
MAX_EXTRA_DAYS = 1000  # days_off / working_days per calendar
WORKWEEK_9_TO_18 = {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]} | {"sat": [], "sun": []}


@functools.lru_cache(maxsize=1)
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


@functools.lru_cache(maxsize=1)
def _countries() -> frozenset[str]:
    import holidays

    return frozenset(holidays.list_supported_countries())


def check_time_zone(value: Any, field: str = "time_zone") -> str:
    if not isinstance(value, str) or value not in _zones():
        raise field_error(field, f"{str(value)[:64]!r} is not an IANA time zone (e.g. Europe/Moscow)")
    return value


def check_hours(value: Any, field: str = "hours") -> dict[str, list[list[str]]]:
    if not isinstance(value, dict):
        raise field_error(field, 'an object {"mon": [["09:00", "18:00"]], …, "sun": []}')
    try:
        week = parse_hours(value)
    except (ValueError, TypeError) as exc:
        day = str(exc).split(":", 1)[0]
        raise field_error(f"{field}.{day}" if day in WEEKDAYS else field, str(exc)) from None
    return {day: [[format_minutes(s), format_minutes(e)] for s, e in week[i]] for i, day in enumerate(WEEKDAYS)}


def check_country(value: Any, field: str = "holidays") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.upper() not in _countries():
        raise field_error(field, f"{str(value)[:16]!r} is not a country code with a holiday calendar (e.g. RU)")
    return value.upper()


def check_dates(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise field_error(field, "a list of ISO dates YYYY-MM-DD")
    if len(value) > MAX_EXTRA_DAYS:
        raise field_error(field, f"at most {MAX_EXTRA_DAYS} dates")
    out: set[str] = set()
    for i, item in enumerate(value):
        try:
            if not isinstance(item, str) or len(item) != 10:
                raise ValueError
            out.add(dt.date.fromisoformat(item).isoformat())
        except ValueError:
            raise field_error(f"{field}.{i}", f"{str(item)[:32]!r} is not an ISO date YYYY-MM-DD") from None
    return sorted(out)


def spec_of(row: Calendar) -> CalendarSpec:
    return CalendarSpec.from_mapping(row.time_zone, row.hours or {}, row.holidays, row.days_off or (),
                                     row.working_days or (), bool(row.shortened_preholiday))


def engine_of(row: Calendar) -> BusinessCalendar:
    return compiled(spec_of(row))


# -- CRUD ---------------------------------------------------------------------------------------------------------


def list_calendars(session: Session, actor: Actor) -> Sequence[Calendar]:
    return session.scalars(select(Calendar).where(Calendar.workspace_id == actor.workspace_id)
                           .order_by(Calendar.id)).all()


def get_calendar(session: Session, actor: Actor, calendar_id: int) -> Calendar:
    row = session.get(Calendar, calendar_id)
    if row is None or row.workspace_id != actor.workspace_id:
        raise NotFound(f"calendar {calendar_id} not found")
    return row


def _snapshot(row: Calendar) -> dict[str, Any]:
    return {"name": row.name, "time_zone": row.time_zone, "hours": row.hours, "holidays": row.holidays,
            "days_off": row.days_off, "working_days": row.working_days,
            "shortened_preholiday": row.shortened_preholiday, "is_default": row.is_default}


def _apply(row: Calendar, data: dict[str, Any]) -> None:
    if "name" in data:
        name = str(data["name"] or "").strip()
        if not name:
            raise field_error("name", "must not be empty")
        row.name = name[:120]
    if "time_zone" in data:
        row.time_zone = check_time_zone(data["time_zone"])
    if "hours" in data:
        row.hours = check_hours(data["hours"])
    if "holidays" in data:
        row.holidays = check_country(data["holidays"])
    if "days_off" in data:
        row.days_off = check_dates(data["days_off"], "days_off")
    if "working_days" in data:
        row.working_days = check_dates(data["working_days"], "working_days")
    both = set(row.days_off or ()) & set(row.working_days or ())
    if both:
        raise field_error("working_days", f"{min(both)} is also in days_off")
    if "shortened_preholiday" in data:
        row.shortened_preholiday = bool(data["shortened_preholiday"])


def _make_default(session: Session, row: Calendar) -> None:
    session.execute(update(Calendar).where(Calendar.workspace_id == row.workspace_id, Calendar.id != row.id)
                    .values(is_default=False))
    row.is_default = True


def create_calendar(session: Session, actor: Actor, data: dict[str, Any]) -> Calendar:
    actor.require(Role.supervisor)
    count = len(list_calendars(session, actor))
    if count >= MAX_CALENDARS:
        raise Conflict(f"a workspace has at most {MAX_CALENDARS} calendars")
    name = str(data.get("name") or "").strip()
    if session.scalar(select(Calendar.id).where(Calendar.workspace_id == actor.workspace_id,
                                                Calendar.name == name)):
        raise field_error("name", f"a calendar named {name!r} exists")
    row = Calendar(workspace_id=actor.workspace_id, name=name, time_zone="", hours={}, holidays=None, days_off=[],
                   working_days=[], shortened_preholiday=False, is_default=False)
    _apply(row, {"hours": WORKWEEK_9_TO_18, **data})
    if not row.time_zone:
        raise field_error("time_zone", "required: an IANA time zone (e.g. Europe/Moscow)")
    session.add(row)
    session.flush()
    if data.get("is_default") or count == 0:  # a workspace's first calendar is its default
        _make_default(session, row)
    record_audit(session, actor, entity_type="calendar", entity_id=row.id, action="created", after=_snapshot(row))
    _changed()
    return row


def update_calendar(session: Session, actor: Actor, calendar_id: int, data: dict[str, Any]) -> Calendar:
    actor.require(Role.supervisor)
    row = get_calendar(session, actor, calendar_id)
    before = _snapshot(row)
    if "name" in data and data["name"] != row.name and session.scalar(select(Calendar.id).where(
            Calendar.workspace_id == actor.workspace_id, Calendar.name == str(data["name"]).strip())):
        raise field_error("name", f"a calendar named {data['name']!r} exists")
    _apply(row, data)
    if data.get("is_default"):
        _make_default(session, row)
    elif data.get("is_default") is False and row.is_default:
        raise field_error("is_default", "make another calendar the default instead")
    record_audit(session, actor, entity_type="calendar", entity_id=row.id, action="updated", before=before,
                 after=_snapshot(row))
    _changed()
    return row


def delete_calendar(session: Session, actor: Actor, calendar_id: int) -> None:
    actor.require(Role.supervisor)
    row = get_calendar(session, actor, calendar_id)
    others = [c for c in list_calendars(session, actor) if c.id != row.id]
    if row.is_default and others:
        raise Conflict("this is the workspace's default calendar: make another one the default first")
    session.execute(update(Team).where(Team.calendar_id == row.id).values(calendar_id=None))
    record_audit(session, actor, entity_type="calendar", entity_id=row.id, action="deleted", before=_snapshot(row))
    _changed()
    session.delete(row)


def set_team_calendar(session: Session, actor: Actor, team_id: int, calendar_id: int | None) -> Team:
    actor.require(Role.supervisor)
    team = session.get(Team, team_id)
    if team is None or team.workspace_id != actor.workspace_id:
        raise NotFound(f"team {team_id} not found")
    if calendar_id is not None:
        get_calendar(session, actor, calendar_id)
    before = team.calendar_id
    team.calendar_id = calendar_id
    record_audit(session, actor, entity_type="team", entity_id=team.id, action="calendar_changed",
                 before={"calendar_id": before}, after={"calendar_id": calendar_id})
    _changed()
    return team


def teams_by_calendar(session: Session, actor: Actor) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for team in session.scalars(select(Team).where(Team.workspace_id == actor.workspace_id,
                                                   Team.calendar_id.is_not(None)).order_by(Team.name)):
        out.setdefault(int(team.calendar_id or 0), []).append(team.name)
    return out


# -- which calendar applies ---------------------------------------------------------------------------------------


def default_calendar(session: Session, workspace_id: int) -> Calendar | None:
    return session.scalar(select(Calendar).where(Calendar.workspace_id == workspace_id, Calendar.is_default)
                          .order_by(Calendar.id).limit(1))


def calendar_for(session: Session, workspace_id: int, team_id: int | None = None) -> Calendar | None:
    """The team's calendar, else the workspace's default, else None (no business hours set: always open)."""
    if team_id is not None:
        row = session.scalar(select(Calendar).join(Team, Team.calendar_id == Calendar.id)
                             .where(Team.id == team_id, Team.workspace_id == workspace_id))
        if row is not None:
            return row
    return default_calendar(session, workspace_id)


def open_calendars(session: Session, workspace_id: int, at: dt.datetime) -> list[Calendar]:
    """The workspace's calendars open at `at` (for sending out-of-hours work where the day is still on)."""
    rows = session.scalars(select(Calendar).where(Calendar.workspace_id == workspace_id).order_by(Calendar.id))
    return [row for row in rows if engine_of(row).is_open(at)]


# -- arithmetic with field errors ---------------------------------------------------------------------------------


def _check_year(moment: dt.datetime, field: str) -> None:
    if not FIRST_YEAR + 1 <= moment.astimezone(dt.UTC).year <= LAST_YEAR - 1:
        raise field_error(field, f"a calendar counts the years {FIRST_YEAR + 1}–{LAST_YEAR - 1}")


def add(row: Calendar, start: dt.datetime, minutes: int) -> dt.datetime:
    if minutes < 0:
        raise field_error("minutes", "must not be negative")
    _check_year(start, "start")
    try:
        return engine_of(row).add(start, minutes)
    except CalendarRangeError as exc:
        raise field_error("minutes", str(exc)) from None


def between(row: Calendar, start: dt.datetime, end: dt.datetime) -> int:
    if end < start:
        raise field_error("end", "is before start")
    _check_year(start, "start")
    _check_year(end, "end")
    try:
        return engine_of(row).between(start, end)
    except CalendarRangeError as exc:
        raise field_error("start", str(exc)) from None


def year_days(row: Calendar, year: int) -> list[dict[str, Any]]:
    """The days of a year that differ from the plain weekly hours: holidays and transfers, the workspace's own
    days off, working weekend days, shortened days; with their hours. For the settings page and the API."""
    engine = engine_of(row)
    names: dict[dt.date, str] = {}
    if row.holidays:
        import holidays

        names = dict(holidays.country_holidays(row.holidays, years=year, language="ru" if row.holidays == "RU"
                                               else None))
    out = []
    date = dt.date(year, 1, 1)
    while date.year == year:
        kind, intervals = engine.day(date)
        if kind not in (DayKind.WORKING, DayKind.WEEKEND):
            out.append({"date": date.isoformat(), "weekday": date.weekday(), "kind": kind,
                        "name": str(names.get(date, "")),
                        "hours": [[format_minutes(s), format_minutes(e)] for s, e in intervals]})
        date += dt.timedelta(days=1)
    return out


def parse_moment(value: str, field: str) -> dt.datetime:
    """An ISO 8601 moment with a UTC offset. A '+' that a query string turned into a space is taken back."""
    text = (value or "").strip()
    if len(text) > 40:
        raise field_error(field, "too long for an ISO 8601 date-time")
    if " " in text and text.rsplit(" ", 1)[1][:2].isdigit() and "T" in text:
        head, tail = text.rsplit(" ", 1)
        text = f"{head}+{tail}"
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise field_error(field, f"{text[:40]!r} is not an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise field_error(field, "needs a UTC offset (e.g. 2026-03-06T17:30:00+03:00 or …Z)")
    return moment
