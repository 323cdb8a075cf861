"""HTTP surface of loyalty and referrals (/api/v1/loyalty/…): tiers (admins write, everyone reads), a
customer's tier and referral code, linking a referred customer, the referrals list, and the shop's webhook.
Every answer to bad input is a 422 naming the field; another workspace's tier, customer or referral is 404."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.orders import loyalty
from otklik.platform import jsonbody

router = APIRouter(prefix="/loyalty", tags=["loyalty"], route_class=jsonbody.SafeJSONRoute)

_TIER_SCHEMA = {"type": "object", "properties": {
    "name": {"type": "string", "minLength": 1, "maxLength": 64},
    "metric": {"type": "string", "enum": list(loyalty.METRICS),
               "description": "purchases: paid orders (neither cancelled nor returned); spent: their sum"},
    "threshold": {"type": "number", "exclusiveMinimum": 0},
    "period_days": {"type": ["integer", "null"], "minimum": 1, "maximum": loyalty.MAX_PERIOD_DAYS,
                    "description": "null: all time"},
    "rank": {"type": "integer", "minimum": 1, "maximum": 1000, "description": "the highest tier reached wins"}}}
_TIER_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    **_TIER_SCHEMA, "required": ["name", "threshold"]}}}}}
_PATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": _TIER_SCHEMA}}}}
_CODE_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["code"], "properties": {"code": {"type": "string"}}}}}}}
_SETTINGS_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "properties": {
        "webhook_url": {"type": "string", "description": "http(s) URL; empty: no webhook"},
        "secret": {"type": "string", "description": "16-200 characters; empty keeps the stored one"},
        "reward": {"type": "string", "maxLength": 200, "description": "the benefit the shop grants, e.g. 10 %"}}}}}}}


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        from otklik.platform.errors import field_error

        raise field_error("body", "a JSON object")
    return body


@router.get("/tiers")
def list_tiers(actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    """The workspace's tiers, lowest rank first."""
    return [loyalty.tier_out(t) for t in loyalty.list_tiers(db, actor.workspace_id)]


@router.post("/tiers", status_code=201, openapi_extra=_TIER_BODY)
def create_tier(body: dict[str, Any], actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A new tier (admins); every customer's tier is computed again."""
    return loyalty.tier_out(loyalty.create_tier(db, actor, _object(body)))


@router.get("/tiers/{tier_id}")
def get_tier(tier_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return loyalty.tier_out(loyalty.get_tier(db, actor.workspace_id, tier_id))


@router.patch("/tiers/{tier_id}", openapi_extra=_PATCH_BODY)
def update_tier(tier_id: int, body: dict[str, Any], actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Change a tier (admins); a new name follows on its customers, new thresholds recompute every tier."""
    return loyalty.tier_out(loyalty.update_tier(db, actor, tier_id, _object(body)))


@router.delete("/tiers/{tier_id}", status_code=204)
def delete_tier(tier_id: int, actor: CurrentActor, db: DB) -> Response:
    loyalty.delete_tier(db, actor, tier_id)
    return Response(status_code=204)


@router.post("/recompute")
def recompute(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Compute every customer's tier again now (admins); how many changed."""
    actor.require(Role.admin)
    return {"changed": loyalty.recompute(db, actor.workspace_id)}


@router.get("/customers/{customer_id}")
def customer_loyalty(customer_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The customer's tier, purchases and sum, progress in each tier and to the next one, referral code,
    who referred them and how many they referred."""
    return loyalty.customer_loyalty(db, actor, customer_id)


@router.post("/customers/{customer_id}/referral-code", status_code=200,
             responses={201: {"description": "Created"}, 200: {"description": "The existing code"}})
def referral_code(customer_id: int, actor: CurrentActor, db: DB, response: Response) -> dict[str, Any]:
    """The customer's referral code, generated the first time (201), the same one after (200)."""
    row, created = loyalty.ensure_code(db, actor, customer_id)
    response.status_code = 201 if created else 200
    return {"customer_id": row.customer_id, "code": row.code}


@router.post("/customers/{customer_id}/referrer", status_code=201, openapi_extra=_CODE_BODY)
def attach_referrer(customer_id: int, body: dict[str, Any], actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Link the customer to the owner of `code` (they must not have bought yet); 409 when already referred.
    An order carrying `attributes.referral_code` links its customer the same way."""
    return loyalty.referral_out(loyalty.attach(db, actor, customer_id, _object(body).get("code")))


@router.get("/referrals")
def referrals(actor: CurrentActor, db: DB, referrer_id: Annotated[int | None, Query(ge=1)] = None,
              rewarded: bool | None = None,
              limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[dict[str, Any]]:
    """Referrals, newest first: who referred whom, the order that earned the reward, the webhook's state."""
    return [loyalty.referral_out(r) for r in loyalty.list_referrals(
        db, actor.workspace_id, referrer_id=referrer_id, rewarded=rewarded, limit=limit)]


@router.post("/referrals/{referral_id}/retry")
def retry(referral_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Send a dead reward webhook again (admins), under the same idempotency key."""
    return loyalty.referral_out(loyalty.retry(db, actor, referral_id))


@router.get("/settings")
def get_settings(actor: CurrentActor, db: DB) -> dict[str, Any]:
    actor.require(Role.admin)
    return loyalty.settings_out(db, actor.workspace_id)


@router.put("/settings", openapi_extra=_SETTINGS_BODY)
def put_settings(body: dict[str, Any], actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The shop's webhook for referral rewards (admins): `webhook_url`, `secret` (stored encrypted, never
    shown), `reward`. Deliveries are signed `X-Otklik-Signature: sha256=<HMAC-SHA256 of the body>`."""
    return loyalty.update_settings(db, actor, _object(body))
