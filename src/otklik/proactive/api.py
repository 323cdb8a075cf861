"""HTTP surface of proactive messages under /api/v1/proactive: the workspace's limits, the triggers (on/off, texts),
campaigns (create, edit, schedule, cancel), the shop's «cart abandoned» event, a customer's consent and opt-out,
the sends and the figures per trigger and campaign.

Bodies are read by `platform.jsonbody` (hostile JSON is a 400) and checked by the service (a 422 naming the
field); another workspace's campaign or customer is a 404 like an unknown one. The cart event is authenticated
by an API token and, when the workspace set an order-push signing secret, signed like an order push
(`X-Otklik-Signature: sha256=<HMAC-SHA256 of the raw body>`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, ActorOnly, CurrentActor
from otklik.accounts.models import Role
from otklik.platform import jsonbody
from otklik.platform.db import run_transaction
from otklik.platform.errors import field_error
from otklik.proactive import service

router = APIRouter(prefix="/proactive", tags=["proactive"], route_class=jsonbody.SafeJSONRoute)


async def _raw(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw)]


def _body(raw: bytes) -> dict[str, Any]:
    return jsonbody.loads_object(raw, max_bytes=256 * 1024)


def _json(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


_SETTINGS = _json({"type": "object", "properties": {k: {"type": "integer", "minimum": lo, "maximum": hi}
                                                    for k, (lo, hi) in service.SETTINGS_RANGES.items()}})
_TRIGGER = _json({"type": "object", "properties": {
    "enabled": {"type": "boolean"}, "text_ru": {"type": "string"}, "text_en": {"type": "string"},
    "whatsapp_template": {"type": "string"}, "params": {"type": "object"}}})
_CAMPAIGN = _json({"type": "object", "properties": {
    "name": {"type": "string"}, "text_ru": {"type": "string"}, "text_en": {"type": "string"},
    "whatsapp_template": {"type": "string"}, "marketing": {"type": "boolean"},
    "segment": {"type": "object", "properties": {
        "attributes": {"type": "object"}, "tags": {"type": "array", "items": {"type": "string"}},
        "channels": {"type": "array", "items": {"type": "string"}},
        "languages": {"type": "array", "items": {"type": "string"}},
        "loyalty_tiers": {"type": "array", "items": {"type": "string"}}}},
    "scheduled_at": {"type": "string", "format": "date-time"},
    "rate_per_second": {"type": "number"}}})
_CART = _json({"type": "object", "required": ["cart_id", "customer", "items"], "properties": {
    "cart_id": {"type": "string"}, "customer": {"type": "object"},
    "items": {"type": "array", "items": {"type": "object"}}, "cart_url": {"type": "string"},
    "abandoned_at": {"type": "string", "format": "date-time"}}})
_CONSENT = _json({"type": "object", "required": ["action"], "properties": {
    "action": {"type": "string", "enum": list(service.CONSENT_ACTIONS)},
    "source": {"type": "string"}, "evidence": {"type": "string"}}})


def _settings_out(limits: service.Limits) -> dict[str, int]:
    return dict(limits.__dict__)


@router.get("/settings")
def get_settings(actor: CurrentActor, db: DB) -> dict[str, int]:
    """The frequency cap (marketing messages per customer per days), quiet hours (local hours), and the reply
    and conversion windows the figures count."""
    return _settings_out(service.limits(db, actor.workspace_id))


@router.put("/settings", openapi_extra=_SETTINGS)
def put_settings(raw: RawBody, actor: CurrentActor, db: DB) -> dict[str, int]:
    return _settings_out(service.update_settings(db, actor, _body(raw)))


@router.get("/triggers")
def list_triggers(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    """Each trigger kind with its switch, texts and figures (sent / delivered / replied / converted)."""
    by_trigger, _, _ = service.measure(db, actor.workspace_id)
    return [service.trigger_out(t, by_trigger.get(k)) for k, t in service.triggers(db, actor.workspace_id).items()]


@router.put("/triggers/{kind}", openapi_extra=_TRIGGER)
def put_trigger(kind: str, raw: RawBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Switch a trigger on or off, change its texts ({{name}}, {{order_number}}… variables), the WhatsApp
    template sent outside the 24-hour window, and its parameters (cart: delay_minutes; replenishment:
    days_before, min_orders)."""
    return service.trigger_out(service.update_trigger(db, actor, kind, _body(raw)))


@router.get("/campaigns")
def list_campaigns(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    _, by_campaign, _ = service.measure(db, actor.workspace_id)
    return [service.campaign_out(c, by_campaign.get(c.id)) for c in service.list_campaigns(db, actor.workspace_id)]


@router.post("/campaigns", openapi_extra=_CAMPAIGN, status_code=201)
def create_campaign(raw: RawBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A draft campaign: `name`, `text_ru` (and `text_en`), `segment` (customer attributes, tags, channels,
    languages, loyalty tiers), `scheduled_at`, `marketing` (true: only customers who consented)."""
    return service.campaign_out(service.create_campaign(db, actor, _body(raw)))


@router.get("/campaigns/{campaign_id}")
def get_campaign(campaign_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    campaign = service.get_campaign(db, actor.workspace_id, campaign_id)
    _, by_campaign, reasons = service.measure(db, actor.workspace_id)
    out = service.campaign_out(campaign, by_campaign.get(campaign.id))
    out["skipped_reasons"] = reasons.get(f"campaign:{campaign.id}", {})
    return out


@router.patch("/campaigns/{campaign_id}", openapi_extra=_CAMPAIGN)
def patch_campaign(campaign_id: int, raw: RawBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.campaign_out(service.update_campaign(db, actor, campaign_id, _body(raw)))


@router.post("/campaigns/{campaign_id}/schedule")
def schedule_campaign(campaign_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The draft goes out at its `scheduled_at` (now when none), through the outbox at each channel's rate."""
    return service.campaign_out(service.schedule_campaign(db, actor, campaign_id))


@router.post("/campaigns/{campaign_id}/cancel")
def cancel_campaign(campaign_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.campaign_out(service.cancel_campaign(db, actor, campaign_id))


@router.post("/carts", openapi_extra=_CART, status_code=202)
def cart_abandoned(request: Request, raw: RawBody, actor: ActorOnly, response: Response) -> dict[str, Any]:
    """The shop reports an abandoned cart: `cart_id`, `customer` (an identity like an order's), `items`,
    `cart_url`, `abandoned_at`. One message per cart, `delay_minutes` later, unless the customer orders first;
    a repeat of the same cart changes nothing."""
    from otklik.orders import lookup
    from otklik.platform.db import session_scope

    with session_scope(write=False) as db:
        lookup.check_signature(db, actor.workspace_id, raw, request.headers.get("x-otklik-signature"))
    body = _body(raw)
    return run_transaction(lambda db: service.send_out(service.cart_abandoned(db, actor, body)))


@router.get("/sends")
def list_sends(actor: CurrentActor, db: DB, trigger: Annotated[str | None, Query(max_length=32)] = None,
               campaign_id: int | None = None, customer_id: int | None = None,
               status: Annotated[str | None, Query(pattern="^(pending|queued|skipped)$")] = None,
               limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """The newest proactive sends, with the reason each skipped one was not sent."""
    if campaign_id is not None:
        service.get_campaign(db, actor.workspace_id, campaign_id)
    if customer_id is not None:
        service.ensure_customer(db, actor.workspace_id, customer_id)
    return [service.send_out(s) for s in service.list_sends(db, actor.workspace_id, trigger=trigger,
                                                            campaign_id=campaign_id, status=status,
                                                            customer_id=customer_id, limit=limit)]


@router.get("/stats")
def stats(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Per trigger and per campaign: claimed, queued, pending, skipped (by reason), sent, delivered, replied,
    converted (definitions in docs/proactive.md)."""
    by_trigger, by_campaign, reasons = service.measure(db, actor.workspace_id)
    return {"triggers": {k: v.view() for k, v in by_trigger.items()},
            "campaigns": {str(k): v.view() for k, v in by_campaign.items()}, "skipped_reasons": reasons}


def _consent_out(db: Session, workspace_id: int, customer_id: int) -> dict[str, Any]:
    contact = service.contact_of(db, workspace_id, customer_id)
    return {"customer_id": customer_id, "opted_out": bool(contact.opted_out),
            "marketing_consent": bool(contact.marketing_consent),
            "history": [{"action": e.action, "source": e.source, "evidence": e.evidence, "user_id": e.user_id,
                         "at": e.at.isoformat()} for e in service.consent_history(db, workspace_id, customer_id)]}


@router.get("/customers/{customer_id}/consent")
def get_consent(customer_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    service.ensure_customer(db, actor.workspace_id, customer_id)
    return _consent_out(db, actor.workspace_id, customer_id)


CONSENT_SOURCES = ("api", "ui", "shop", "reply", "paper")


@router.post("/customers/{customer_id}/consent", openapi_extra=_CONSENT)
def post_consent(customer_id: int, raw: RawBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Record a consent to marketing given or withdrawn, or an opt-out / opt-in, with how (`source`) and the
    evidence (the wording agreed to, the page, the message). Marketing goes only to customers with consent
    (38-ФЗ «О рекламе» ст. 18 ч. 1; 152-ФЗ ст. 15 ч. 1); an opt-out stops every proactive message."""
    actor.require(Role.agent)
    service.ensure_customer(db, actor.workspace_id, customer_id)
    body = _body(raw)
    unknown = set(body) - {"action", "source", "evidence"}
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown field (action, source, evidence)")
    source = body.get("source", "api")
    if source not in CONSENT_SOURCES:
        raise field_error("source", f"one of: {', '.join(CONSENT_SOURCES)}")
    evidence = body.get("evidence", "")
    if not isinstance(evidence, str) or len(evidence) > 2000:
        raise field_error("evidence", "text of at most 2000 characters")
    if body.get("action") == "consent_given" and not evidence.strip():
        raise field_error("evidence", "say how the consent was given (the wording, the form, the page)")
    service.record_consent(db, actor.workspace_id, customer_id, str(body.get("action")), source=source,
                           evidence=evidence, user_id=actor.user_id)
    return _consent_out(db, actor.workspace_id, customer_id)
