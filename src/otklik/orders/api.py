"""HTTP surface of the orders domain: the shop pushes orders (one, a batch, a CSV) and reads them back; an admin
sets up the pull URL and the push signature.

Bodies are read by `platform.jsonbody` (hostile JSON is a 400, never a 500) and checked by `service.parse_order`
(a 422 naming the field). With a signing secret set (PUT /order-integration), a push must carry
`X-Otklik-Signature: sha256=<hex HMAC-SHA256 of the raw body>` — the same header Otklik's own webhooks send.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, ActorOnly, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.orders import csv_import, lookup, service
from otklik.platform import jsonbody
from otklik.platform.db import run_transaction
from otklik.platform.errors import field_error

router = APIRouter(tags=["orders"], route_class=jsonbody.SafeJSONRoute)

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer": {"type": "object", "description": 'The buyer: {"kind": "email"|"phone"|"telegram"|…, '
                     '"value": …, "name"?, "phone"?, "email"?}. Required for a new order.'},
        "status": {"type": "string", "enum": list(service.STATUSES)},
        "status_at": {"type": "string", "format": "date-time", "description": "When the status changed"},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "sku": {"type": "string"}, "quantity": {"type": "number", "minimum": 0},
            "price": {"type": "number", "minimum": 0}, "url": {"type": "string"}}}},
        "total": {"type": "number", "minimum": 0}, "currency": {"type": "string"},
        "paid": {"description": "true/false, or the amount paid"},
        "payment_status": {"type": "string", "enum": list(service.PAYMENT_STATUSES)},
        "payment_url": {"type": "string", "description": "Where the customer pays (the assistant links it)"},
        "delivery": {"type": "object", "properties": {
            "method": {"type": "string"}, "address": {"type": "string"}, "tracking_url": {"type": "string"},
            "tracking_number": {"type": "string"}, "carrier": {"type": "string"},
            "promised_on": {"type": "string", "format": "date"}}},
        "placed_at": {"type": "string", "format": "date-time"},
        "attributes": {"type": "object"},
    },
}
_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": ORDER_SCHEMA}}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {"application/json": {"schema": {
    "type": "object", "required": ["orders"], "properties": {
        "orders": {"type": "array", "maxItems": service.MAX_BATCH,
                   "items": {**ORDER_SCHEMA, "required": ["number"],
                             "properties": {**ORDER_SCHEMA["properties"], "number": {"type": "string"}}}},
        "atomic": {"type": "boolean", "description": "true: one bad order stores none (422 naming it)"}}}}}}}
_CSV_BODY = {"requestBody": {"required": True, "content": {"text/csv": {"schema": {"type": "string"}}}}}
BATCH_MAX_BYTES = 20 * 1_048_576  # app.BodyLimit lets /orders/batch and /orders/import through up to this


async def _raw(request: Request) -> bytes:
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw)]


def _check_signature(request: Request, actor: Actor, raw: bytes) -> None:
    from otklik.platform.db import session_scope

    with session_scope(write=False) as db:
        lookup.check_signature(db, actor.workspace_id, raw, request.headers.get("x-otklik-signature"))


def _stored(db: Session, order: Any) -> dict[str, Any]:
    return service.order_out(order, service.history_of(db, [order.id])[order.id])


@router.put("/orders/{number}", openapi_extra=_BODY, status_code=200,
            responses={201: {"description": "Created"}, 200: {"description": "Updated, or unchanged"}})
def put_order(number: str, request: Request, raw: RawBody, actor: ActorOnly, response: Response) -> dict[str, Any]:
    """Create or update order `number`: 201 with the stored order when new, 200 when it existed (a body that
    changes nothing stores nothing and adds no history entry). Fields left out keep their stored values."""
    _check_signature(request, actor, raw)
    item = service.parse_order(jsonbody.loads_object(raw, max_bytes=256 * 1024),
                               number=service.check_number(number))

    def work(db: Session) -> tuple[str, dict[str, Any]]:
        result = service.upsert(db, actor, item)
        assert result.order is not None
        return result.outcome, _stored(db, result.order)

    outcome, out = run_transaction(work)
    response.status_code = 201 if outcome == "created" else 200
    return out


@router.get("/orders/{number}")
def get_order(number: str, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The stored order with its status history; another workspace's order is 404 as any unknown one."""
    return _stored(db, service.get_order(db, actor.workspace_id, number))


@router.post("/orders/batch", openapi_extra=_BATCH_BODY)
def batch(request: Request, raw: RawBody, actor: ActorOnly) -> dict[str, Any]:
    """Up to 10,000 orders in one transaction. Each item's outcome (created / updated / unchanged / error with
    the field) comes back in order; with `"atomic": true` one bad order stores none."""
    _check_signature(request, actor, raw)
    body = jsonbody.loads_object(raw, max_bytes=BATCH_MAX_BYTES)
    orders, atomic = body.get("orders"), body.get("atomic", False)
    if set(body) - {"orders", "atomic"}:
        raise field_error(sorted(set(body) - {"orders", "atomic"})[0], "unknown field (orders, atomic)")
    if not isinstance(orders, list) or len(orders) > service.MAX_BATCH:
        raise field_error("orders", f"a list of at most {service.MAX_BATCH} orders")
    if not isinstance(atomic, bool):
        raise field_error("atomic", "true or false")
    return service.store_batch(actor, orders, atomic=atomic, source="api")


@router.post("/orders/import", openapi_extra=_CSV_BODY)
def import_csv(raw: RawBody, actor: ActorOnly) -> dict[str, Any]:
    """Order history as CSV (UTF-8, a header row; columns in README «Orders»), stored like a batch: each row's
    outcome comes back; a bad row is an error item naming `rows.<n>.<field>`."""
    actor.require(Role.supervisor)
    if len(raw) > BATCH_MAX_BYTES:
        raise field_error("body", f"at most {BATCH_MAX_BYTES} bytes")
    rows = csv_import.rows_from_csv(raw)
    return service.store_batch(actor, rows, atomic=False, source="csv", prefix="rows")


@router.get("/customers/{customer_id}/orders")
def customer_orders(customer_id: int, actor: CurrentActor, db: DB,
                    limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[dict[str, Any]]:
    """The customer's orders, newest first, each with its status history."""
    from otklik.customers.service import get_customer

    get_customer(db, actor, customer_id)
    rows = service.orders_of_customer(db, actor.workspace_id, customer_id, limit=limit)
    history = service.history_of(db, [o.id for o in rows])
    return [service.order_out(o, history[o.id]) for o in rows]


# -- integration settings ----------------------------------------------------------------------------

@router.get("/order-integration")
def get_integration(actor: CurrentActor, db: DB) -> dict[str, Any]:
    actor.require(Role.admin)
    return lookup.settings_out(lookup.get_settings_row(db, actor.workspace_id))


@router.put("/order-integration")
def put_integration(body: dict[str, Any], actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Set up the pull URL (`lookup_url` with {number}, `auth_header` and `auth_value`, `mapping`,
    `timeout_s`, `cache_s`) and the push signature (`rotate_signing_secret`: a new secret, shown once;
    `require_signature`). The auth value and the secret are stored encrypted and never shown again."""
    row, secret = lookup.update_settings(db, actor, body)
    out = lookup.settings_out(row)
    if secret:
        out["signing_secret"] = secret
    return out


@router.post("/order-integration/test")
def test_lookup(actor: CurrentActor, db: DB,
                number: Annotated[str, Query(min_length=1, max_length=64)]) -> dict[str, Any]:
    """Ask the pull URL for one order now (no cache) and show what Otklik reads from its answer."""
    actor.require(Role.admin)
    return lookup.try_lookup(db, actor.workspace_id, service.check_number(number))


from otklik.orders.loyalty_api import router as loyalty_router  # noqa: E402 - loyalty's routes, /api/v1/loyalty/…

router.include_router(loyalty_router)
