"""The Proactive page: the triggers (switch each on or off) and the campaigns with their figures (sent /
delivered / replied / converted), a form to create a campaign, and a campaign's page to edit, schedule or
cancel it. Everything goes through `proactive.service`; nothing here writes SQL."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.conversations.service import CHANNELS
from otklik.platform.errors import DomainError, field_error
from otklik.proactive import service
from otklik.web.ui.deps import SupervisorUser, UIUser, redirect, render, ui_router

router = ui_router()
CAMPAIGN_CHANNELS = [c for c in CHANNELS if c not in service.CANNOT_START]
TRIGGER_LABELS = {"order_delayed": "Order delayed", "order_delivered": "Order delivered",
                  "order_returned": "Order returned", "cart_abandoned": "Cart abandoned",
                  "replenishment": "Replenishment due"}
STATUS_LABELS = {"draft": "Draft", "scheduled": "Scheduled", "running": "Sending", "done": "Sent out",
                 "cancelled": "Cancelled"}
REASON_LABELS = {"opted_out": "Opted out", "no_consent": "No marketing consent", "frequency_cap": "Frequency cap",
                 "no_channel": "No channel to write through", "channel_cannot_start": "Channel cannot write first",
                 "customer_not_written": "Customer never wrote to this channel",
                 "whatsapp_window_closed": "WhatsApp window closed, no template", "channel_refused": "Channel refused",
                 "trigger_off": "Trigger off", "campaign_cancelled": "Campaign cancelled",
                 "ordered_meanwhile": "Ordered meanwhile", "customer_gone": "Customer merged or deleted"}
LABELS = {"trigger_labels": TRIGGER_LABELS, "status_labels": STATUS_LABELS, "reason_labels": REASON_LABELS}


def _error_text(exc: DomainError) -> str:
    return "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message


def _page(request: Request, db: Session, user: UIUser, *, error: str | None = None, form: dict[str, Any] | None = None,
          status_code: int = 200) -> Response:
    ws = user.actor.workspace_id
    by_trigger, by_campaign, reasons = service.measure(db, ws)
    triggers = [service.trigger_out(t, by_trigger.get(k)) for k, t in service.triggers(db, ws).items()]
    campaigns = [service.campaign_out(c, by_campaign.get(c.id)) for c in service.list_campaigns(db, ws)]
    return render(request, "proactive/index.html", status_code=status_code, triggers=triggers, campaigns=campaigns,
                  reasons=reasons, limits=service.limits(db, ws), error=error, form=form or {},
                  channels=CAMPAIGN_CHANNELS, **LABELS)


@router.get("/proactive")
def proactive_page(request: Request, user: SupervisorUser, db: DB) -> Response:
    return _page(request, db, user)


@router.post("/proactive/triggers/{kind}/toggle")
def toggle_trigger(request: Request, kind: str, user: SupervisorUser, db: DB) -> Response:
    current = service.triggers(db, user.actor.workspace_id).get(kind)
    service.update_trigger(db, user.actor, kind, {"enabled": not (current.enabled if current else False)})
    return redirect("/proactive#triggers", request)


def _when(raw: str, zone: str) -> str | None:
    """A datetime-local field (the workspace's wall clock) as an ISO date-time with its offset."""
    raw = raw.strip()
    if not raw:
        return None
    try:
        local = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise field_error("scheduled_at", f"{raw[:30]!r} is not a date and time") from None
    if local.tzinfo is None:
        local = local.replace(tzinfo=ZoneInfo(zone))
    return local.isoformat()


def _campaign_from_form(form: Any, zone: str) -> dict[str, Any]:
    def words(key: str) -> list[str]:
        return [w for w in re.split(r"[\s,;]+", str(form.get(key) or "").strip()) if w][:50]

    attributes: dict[str, str] = {}
    for line in str(form.get("attributes") or "").splitlines():
        if line.strip():
            match = re.match(r"^\s*([^:=]+?)\s*[:=]\s*(.*)$", line)
            if match is None:
                raise field_error("segment.attributes", f"{line.strip()[:40]!r}: write «key: value», one a line")
            key, value = match.group(1), match.group(2)
            attributes[key.strip()[:64]] = value.strip()
    segment: dict[str, Any] = {"attributes": attributes, "tags": words("tags"), "languages": words("languages"),
                               "channels": [str(v) for k, v in form.multi_items() if k == "channels" and v]}
    return {"name": str(form.get("name") or ""), "text_ru": str(form.get("text_ru") or ""),
            "text_en": str(form.get("text_en") or ""), "marketing": form.get("marketing") == "on",
            "whatsapp_template": str(form.get("whatsapp_template") or ""), "segment": segment,
            "scheduled_at": _when(str(form.get("scheduled_at") or ""), zone)}


@router.post("/proactive/campaigns")
async def create_campaign(request: Request, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    try:
        campaign = service.create_campaign(db, user.actor, _campaign_from_form(form, user.workspace.timezone))
    except DomainError as exc:
        db.rollback()
        return _page(request, db, user, error=_error_text(exc), form=dict(form), status_code=422)
    return redirect(f"/proactive/campaigns/{campaign.id}", request)


def _campaign_page(request: Request, db: Session, user: UIUser, campaign_id: int, *, error: str | None = None,
                   status_code: int = 200) -> Response:
    ws = user.actor.workspace_id
    campaign = service.get_campaign(db, ws, campaign_id)
    _, by_campaign, reasons = service.measure(db, ws)
    out = service.campaign_out(campaign, by_campaign.get(campaign.id))
    local = ""
    if campaign.scheduled_at is not None:
        local = campaign.scheduled_at.astimezone(ZoneInfo(user.workspace.timezone)).strftime("%Y-%m-%dT%H:%M")
    return render(request, "proactive/campaign.html", status_code=status_code, campaign=out, scheduled_local=local,
                  reasons=reasons.get(f"campaign:{campaign.id}", {}), channels=CAMPAIGN_CHANNELS, error=error,
                  editable=campaign.status in ("draft", "scheduled"), **LABELS)


@router.get("/proactive/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: int, user: SupervisorUser, db: DB) -> Response:
    return _campaign_page(request, db, user, campaign_id)


@router.post("/proactive/campaigns/{campaign_id}")
async def update_campaign(request: Request, campaign_id: int, user: SupervisorUser, db: DB) -> Response:
    form = await request.form()
    try:
        service.update_campaign(db, user.actor, campaign_id, _campaign_from_form(form, user.workspace.timezone))
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _campaign_page(request, db, user, campaign_id, error=_error_text(exc), status_code=422)
    return redirect(f"/proactive/campaigns/{campaign_id}", request)


@router.post("/proactive/campaigns/{campaign_id}/schedule")
def schedule_campaign(request: Request, campaign_id: int, user: SupervisorUser, db: DB) -> Response:
    service.schedule_campaign(db, user.actor, campaign_id)
    return redirect(f"/proactive/campaigns/{campaign_id}", request)


@router.post("/proactive/campaigns/{campaign_id}/cancel")
def cancel_campaign(request: Request, campaign_id: int, user: SupervisorUser, db: DB) -> Response:
    service.cancel_campaign(db, user.actor, campaign_id)
    return redirect(f"/proactive/campaigns/{campaign_id}", request)
