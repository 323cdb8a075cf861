"""Deadlines for a workspace: the calculator on the workspace's production calendar."""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from sqlalchemy.orm import Session

from otklik.accounts.service import Actor, record_audit
from otklik.calendars.engine import WEEKDAYS, CalendarSpec, compiled
from otklik.calendars.service import default_calendar
from otklik.conversations.models import Conversation
from otklik.conversations.service import get_conversation
from otklik.guardrails import deadlines
from otklik.guardrails.law import LAW_VERSION, SITUATIONS
from otklik.guardrails.models import LegalCase
from otklik.platform.db import utcnow
from otklik.platform.errors import field_error

# The shipped store contact reasons (the assistant's list) and the legal situation each starts from; the agent
# can pick another in the side bar.
REASON_SITUATIONS = {
    "return_good_quality": "return_distance_sale", "defective": "defect", "damaged_in_delivery": "defect",
    "missing_parts": "defect", "warranty_repair": "warranty_repair", "late_delivery": "late_delivery_prepaid",
    "installation": "late_service",
}

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


def _parse_inputs(raw: dict[str, Any]) -> dict[str, Any]:
    """Stored JSON (ISO dates, sums as strings, flags) -> the calculator's typed values; bad ones are 422s."""
    from decimal import Decimal, InvalidOperation

    out: dict[str, Any] = {}
    for name, value in (raw or {}).items():
        if value in (None, ""):
            continue
        if name in deadlines.DATE_FIELDS:
            try:
                out[name] = dt.date.fromisoformat(str(value))
            except ValueError:
                raise field_error(f"inputs.{name}", "an ISO date YYYY-MM-DD") from None
        elif name in deadlines.MONEY_FIELDS:
            try:
                out[name] = Decimal(str(value).replace(",", ".").replace(" ", ""))
            except InvalidOperation:
                raise field_error(f"inputs.{name}", "a sum in roubles") from None
        elif name in deadlines.FLAG_FIELDS:
            if not isinstance(value, bool):
                raise field_error(f"inputs.{name}", "true, false or null")
            out[name] = value
        else:
            raise field_error(f"inputs.{name}", "unknown input")
    return out


def case_view(session: Session, actor: Actor, conversation: Conversation) -> dict[str, Any]:
    """The conversation's situation (chosen, else from its contact reason), the inputs and what is owed."""
    case = session.get(LegalCase, conversation.id)
    situation = (case.situation if case is not None else None) or REASON_SITUATIONS.get(conversation.category or "")
    inputs = dict(case.inputs or {}) if case is not None else {}
    view: dict[str, Any] = {"situation": situation, "chosen": bool(case and case.situation), "inputs": inputs,
                            "obligations": [], "missing": [], "law_version": LAW_VERSION}
    if situation:
        try:
            view.update(compute(session, actor.workspace_id, situation, _parse_inputs(inputs)))
        except Exception:  # stored inputs that no longer pass (a rule changed): show them, ask again
            view["missing"] = ["inputs"]
    return view


def save_case(session: Session, actor: Actor, conversation_id: int, situation: str | None,
              inputs: dict[str, Any]) -> dict[str, Any]:
    conversation = get_conversation(session, actor, conversation_id)
    if situation is not None and situation not in SITUATIONS:
        raise field_error("situation", f"one of: {', '.join(SITUATIONS)}")
    clean = {k: v for k, v in (inputs or {}).items() if v not in (None, "")}
    typed = _parse_inputs(clean)
    effective = situation or REASON_SITUATIONS.get(conversation.category or "")
    if effective:
        compute(session, actor.workspace_id, effective, typed)  # impossible dates are a 422 now, not later
    case = session.get(LegalCase, conversation.id)
    before = None if case is None else {"situation": case.situation, "inputs": case.inputs}
    if case is None:
        case = LegalCase(conversation_id=conversation.id, workspace_id=conversation.workspace_id)
        session.add(case)
    case.situation, case.inputs, case.updated_at, case.updated_by = situation, clean, utcnow(), actor.user_id
    session.flush()
    record_audit(session, actor, entity_type="conversation", entity_id=conversation.id, action="legal_case_changed",
                 before=before, after={"situation": situation, "inputs": clean})
    return case_view(session, actor, conversation)
