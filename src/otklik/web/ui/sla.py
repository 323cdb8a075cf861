"""Settings → SLA: the workspace's SLA policies in order (the first that matches a conversation applies), each
with its conditions, targets (entered in minutes or hours), calendar, warning share and escalation."""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.calendars import service as calendars
from otklik.conversations import sla
from otklik.conversations.models import Priority
from otklik.conversations.service import CHANNELS
from otklik.platform.errors import DomainError, field_error
from otklik.web.ui.deps import CurrentUser, SupervisorUser, UIUser, redirect, render, ui_router

router = ui_router()
_DURATION = re.compile(r"^\s*(\d{1,6})\s*(m|min|мин|h|ч|час|часа|часов|d|д|дн|дня|дней)?\s*$", re.IGNORECASE)


def minutes_from_text(text: str, field: str) -> int | None:
    """«90», «90 мин», «4 ч», «3 д» (a day = 24 h of calendar time, or 24 h of working time on a 24/7 calendar:
    with business hours, write working days as hours, e.g. 27 ч for three 9-hour days) -> minutes; empty -> None."""
    text = (text or "").strip()
    if not text:
        return None
    m = _DURATION.match(text)
    if not m:
        raise field_error(field, f"{text[:20]!r}: write minutes (90), hours (4 ч) or days (2 д)")
    value, unit = int(m.group(1)), (m.group(2) or "m").lower()
    return value * (60 if unit[0] in "hч" else 1440 if unit[0] in "dд" else 1)


def minutes_to_text(minutes: int | None, language: str = "ru") -> str:
    if not minutes:
        return ""
    hours, mins = ("ч", "мин") if language == "ru" else ("h", "min")
    if minutes % 60 == 0:
        return f"{minutes // 60} {hours}"
    return f"{minutes} {mins}"


def _policy_from_form(form: Any) -> dict[str, Any]:
    def many(key: str) -> list[str]:
        return [str(v)[:64] for k, v in form.multi_items() if k == key and isinstance(v, str) and v][:100]

    def words(key: str) -> list[str]:
        return [w for w in re.split(r"[\s,;]+", str(form.get(key) or "").strip()) if w][:100]

    attr_key = str(form.get("attr_key") or "").strip()[:64]
    team_ids = [int(v) for v in many("team_ids") if v.isdigit()]
    reassign = str(form.get("reassign_team_id") or "")
    calendar = str(form.get("calendar_id") or "")
    try:
        share = float(str(form.get("warn_percent") or "75").replace(",", ".")) / 100
    except ValueError:
        raise field_error("warn_share", "a percentage, e.g. 75") from None
    return {
        "name": str(form.get("name") or "").strip()[:120],
        "enabled": form.get("enabled") == "on",
        "conditions": {"channels": many("channels"), "priorities": many("priorities"),
                       "categories": words("categories"), "languages": words("languages"), "team_ids": team_ids,
                       "customer_attribute": {"key": attr_key, "values": words("attr_values")} if attr_key else None,
                       "loyalty_tiers": [t.strip()[:64] for t in str(form.get("loyalty_tiers") or "").split(",")
                                         if t.strip()][:100]},
        "first_response_minutes": minutes_from_text(str(form.get("first") or ""), "first_response_minutes"),
        "next_response_minutes": minutes_from_text(str(form.get("next") or ""), "next_response_minutes"),
        "resolution_minutes": minutes_from_text(str(form.get("resolution") or ""), "resolution_minutes"),
        "business_hours": form.get("business_hours") == "on",
        "calendar_id": int(calendar) if calendar.isdigit() else None,
        "warn_share": share,
        "escalation": {"raise_priority": form.get("raise_priority") == "on",
                       "notify_team_lead": form.get("notify_team_lead") == "on",
                       "reassign_team_id": int(reassign) if reassign.isdigit() else None},
    }


def _page(request: Request, db: Session, user: UIUser, *, error: str | None = None, error_id: int | None = None,
          status_code: int = 200) -> Response:
    policies = sla.list_policies(db, user.actor)
    return render(request, "settings/sla.html", status_code=status_code, policies=policies,
                  teams=accounts.list_teams(db, user.actor), calendars=calendars.list_calendars(db, user.actor),
                  channels=CHANNELS, priorities=[p.value for p in Priority], error=error, error_id=error_id,
                  as_text=lambda m: minutes_to_text(m, user.language), can_edit=user.has_role(Role.supervisor))


@router.get("/settings/sla")
def sla_page(request: Request, user: CurrentUser, db: DB) -> Response:
    return _page(request, db, user)


@router.post("/settings/sla")
async def create_policy(request: Request, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    try:
        sla.create_policy(db, user.actor, _policy_from_form(form))
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _page(request, db, user, error=detail, status_code=422)
    return redirect("/settings/sla", request)


@router.post("/settings/sla/{policy_id}")
async def update_policy(request: Request, policy_id: int, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    try:
        data = _policy_from_form(form)
        position = str(form.get("position") or "")
        if position.isdigit():
            data["position"] = int(position)
        sla.update_policy(db, user.actor, policy_id, data)
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _page(request, db, user, error=detail, error_id=policy_id, status_code=422)
    return redirect(f"/settings/sla#policy-{policy_id}", request)


@router.post("/settings/sla/{policy_id}/delete")
def delete_policy(request: Request, policy_id: int, user: SupervisorUser, db: DB) -> Response:
    sla.delete_policy(db, user.actor, policy_id)
    return redirect("/settings/sla", request)
