"""Deadlines for a workspace: the calculator on the workspace's production calendar."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy.orm import Session

from otklik.calendars.engine import WEEKDAYS, CalendarSpec, compiled
from otklik.calendars.service import default_calendar
from otklik.guardrails import deadlines
from otklik.guardrails.law import LAW_VERSION
from otklik.platform.errors import field_error

# Which days are working for ГК ст. 193 is the production calendar's question, not the support team's hours:
# Monday to Friday, minus the country's holidays and transfers and the workspace's own days off.
_OFFICE_WEEK = {d: [["09:00", "18:00"]] for d in WEEKDAYS[:5]}


@functools.lru_cache(maxsize=256)
def _production(country: str | None, days_off: tuple[str, ...], working_days: tuple[str, ...]) -> Any:
    return compiled(CalendarSpec.from_mapping("Europe/Moscow", _OFFICE_WEEK, country, days_off, working_days))


def non_working_for(session: Session, workspace_id: int) -> tuple[Any, str]:
    """(date -> non-working?, the calendar's time zone) of the workspace's default calendar; the Russian
    production calendar when it has none."""
    row = default_calendar(session, workspace_id)
    if row is None:
        cal, zone = _production("RU", (), ()), "Europe/Moscow"
    else:
        cal = _production(row.holidays or None, tuple(row.days_off or ()), tuple(row.working_days or ()))
        zone = row.time_zone
    return (lambda day: not cal.day(day)[1]), zone


def compute(session: Session, workspace_id: int, situation: str, data: dict[str, Any]) -> dict[str, Any]:
    inputs = deadlines.inputs_from(data)
    non_working, zone = non_working_for(session, workspace_id)
    from zoneinfo import ZoneInfo

    today = inputs.today or dt.datetime.now(ZoneInfo(zone)).date()
    try:
        found, missing = deadlines.obligations(situation, inputs, non_working, today)
    except deadlines.InputError as exc:
        raise field_error(exc.field, exc.message) from None
    return {"situation": situation, "today": today.isoformat(), "law_version": LAW_VERSION,
            "obligations": found, "missing": missing}
