"""Rules of the orders domain: what an order is, how the shop's description of it is checked and stored.

An order is keyed by its number within a workspace. The shop describes it (PUT, a batch, a CSV row, or the
pull URL's answer); what it leaves out keeps its stored value. A description that changes nothing (the same
body again) writes nothing: no update, no history entry. A status change appends one history entry.

Status vocabulary (`STATUSES`), in the order an order usually moves through it:

- `created`   — placed, not yet paid (or paid on delivery);
- `paid`      — payment received;
- `shipped`   — handed to delivery (a courier, a carrier, the post); aliases `handed_to_delivery`, `in_delivery`;
- `delivered` — the customer has it (also picked up);
- `cancelled` — cancelled before delivery (alias `canceled`);
- `returned`  — came back after delivery (or refused at the door).

`delivered`, `cancelled` and `returned` are closed; the others are open. An open order whose
`delivery.promised_on` has passed is late.

The buyer is an identity (`{"kind": "email" | "phone" | "telegram" | … , "value": …}`), normalised as the
customers domain does (phones in E.164, e-mails lower-cased); the customer holding it is the order's customer,
created when nobody holds it yet. The assistant tells an order's details only to someone who proves that
identity or a contact on the order (`assistant.orders`).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor, record_audit
from otklik.customers.identities import normalise_identity
from otklik.customers.models import Customer, Identity, IdentityKind
from otklik.customers.service import register_merge_mover
from otklik.orders.models import Order, OrderEvent
from otklik.platform.db import run_transaction, utcnow
from otklik.platform.errors import DomainError, InvalidInput, NotFound, field_error
from otklik.platform.text import search_terms

STATUSES = ("created", "paid", "shipped", "delivered", "cancelled", "returned")
STATUS_ALIASES = {"new": "created", "handed_to_delivery": "shipped", "in_delivery": "shipped",
                  "canceled": "cancelled"}
CLOSED = frozenset({"delivered", "cancelled", "returned"})
PAYMENT_STATUSES = ("unpaid", "partially_paid", "paid", "refunded")
FIELDS = ("number", "customer", "status", "status_at", "items", "total", "currency", "paid", "payment_status",
          "payment_url", "delivery", "placed_at", "attributes")
DELIVERY_FIELDS = ("method", "address", "tracking_url", "tracking_number", "carrier", "promised_on")
ITEM_FIELDS = ("name", "sku", "quantity", "price", "url")
MAX_ITEMS = 500
MAX_ATTRIBUTES_BYTES = 16_384
MAX_BATCH = 10_000
NUMBER = re.compile(r"^[\w.\-/#]{1,64}$", re.UNICODE)
_URL = re.compile(r"^https?://[^\s<>\"']{1,990}$", re.IGNORECASE)
_CENT = Decimal("0.01")
_MAX_MONEY = Decimal("999999999999.99")


# -- reading what the shop sent --------------------------------------------------------------------------

@dataclass
class OrderInput:
    """One order as the shop described it, checked and normalised; `given` holds only the fields it sent."""

    number: str
    customer: tuple[str, str] | None = None  # (kind, value), normalised
    customer_name: str = ""
    contacts: dict[str, str] | None = None
    given: dict[str, Any] = field(default_factory=dict)
    status_at: dt.datetime | None = None


def check_number(raw: Any, field_name: str = "number") -> str:
    value = str(raw).strip() if isinstance(raw, str | int) and not isinstance(raw, bool) else ""
    if not NUMBER.match(value):
        raise field_error(field_name, "an order number: 1 to 64 letters, digits and . - / # _")
    return value


def _text(value: Any, name: str, limit: int, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise field_error(name, "required")
        return None
    if not isinstance(value, str):
        raise field_error(name, "must be text")
    value = value.strip()
    if len(value) > limit:
        raise field_error(name, f"at most {limit} characters")
    return value or None


def _money(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise field_error(name, "must be a number")
    try:
        amount = Decimal(str(value).strip().replace(",", ".").replace(" ", ""))
    except InvalidOperation:
        raise field_error(name, f"{str(value)[:40]!r} is not a number") from None
    if not amount.is_finite():
        raise field_error(name, "must be a number")
    if amount < 0:
        raise field_error(name, "must not be negative")
    if amount > _MAX_MONEY:
        raise field_error(name, "is too large")
    return amount.quantize(_CENT)


def _quantity(value: Any, name: str) -> int | float:
    amount = _money(value, name) if not (isinstance(value, int) and not isinstance(value, bool)) else value
    if isinstance(amount, int):
        if amount < 0:
            raise field_error(name, "must not be negative")
        if amount > 1_000_000:
            raise field_error(name, "is too large")
        return amount
    if amount > 1_000_000:
        raise field_error(name, "is too large")
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def money_out(amount: Decimal | None) -> int | float | None:
    if amount is None:
        return None
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def parse_datetime(value: Any, name: str) -> dt.datetime:
    if not isinstance(value, str) or not 8 <= len(value.strip()) <= 40:
        raise field_error(name, "an ISO 8601 date-time, e.g. 2026-12-01T14:30:00+03:00")
    raw = value.strip()
    try:
        if len(raw) == 10:
            moment = dt.datetime.combine(dt.date.fromisoformat(raw), dt.time(), dt.UTC)
        else:
            moment = dt.datetime.fromisoformat(raw.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise field_error(name, f"{raw!r} is not an ISO 8601 date-time, e.g. 2026-12-01T14:30:00+03:00") from None
    if not 1970 <= moment.year <= 2200:
        raise field_error(name, "a year between 1970 and 2200")
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)


def parse_date(value: Any, name: str) -> str:
    if not isinstance(value, str) or not 8 <= len(value.strip()) <= 40:
        raise field_error(name, "an ISO 8601 date, e.g. 2026-12-10")
    raw = value.strip()
    try:
        day = dt.date.fromisoformat(raw) if len(raw) == 10 else dt.datetime.fromisoformat(
            raw.replace("Z", "+00:00")).date()
    except ValueError:
        raise field_error(name, f"{raw!r} is not an ISO 8601 date, e.g. 2026-12-10") from None
    if not 1970 <= day.year <= 2200:
        raise field_error(name, "a year between 1970 and 2200")
    return day.isoformat()


def parse_status(value: Any, name: str = "status") -> str:
    status = value.strip().lower() if isinstance(value, str) else None
    status = STATUS_ALIASES.get(status or "", status)
    if status not in STATUSES:
        raise field_error(name, f"unknown status {str(value)[:40]!r}; one of: {', '.join(STATUSES)}")
    return status


@functools.lru_cache(maxsize=65_536)
def _normalised(kind: str, value: str, name: str) -> str:
    """Identity normalisation (a phone parse costs ~0.2 ms), remembered: a batch names the same buyers again
    and again. Errors are not cached (lru_cache keeps only returned values)."""
    return normalise_identity(kind, value, field=name)[1]


def _contact(kind: str, value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise field_error(name, "must be text")
    return _normalised(kind, value, name)


def _customer(raw: Any, name: str = "customer") -> tuple[tuple[str, str], str, dict[str, str]]:
    if not isinstance(raw, dict):
        raise field_error(name, 'an identity: {"kind": "email" | "phone" | …, "value": …}')
    unknown = set(raw) - {"kind", "value", "external_id", "name", "phone", "email"}
    if unknown:
        raise field_error(f"{name}.{sorted(unknown)[0]}", "unknown field (kind, value, name, phone, email)")
    kind = raw.get("kind")
    if not isinstance(kind, str) or kind not in IdentityKind.__members__:
        allowed = ", ".join(k.value for k in IdentityKind)
        raise field_error(f"{name}.kind", f"unknown identity kind {str(kind)[:30]!r}; one of: {allowed}")
    value = raw.get("value", raw.get("external_id"))
    if not isinstance(value, str | int) or isinstance(value, bool):
        raise field_error(f"{name}.value", "required: the customer's e-mail, phone or id")
    normalised = _normalised(kind, str(value), f"{name}.value")
    contacts: dict[str, str] = {}  # what the shop gave besides the identity, returned as it was stored
    who = _text(raw.get("name"), f"{name}.name", 200) or ""
    if who:
        contacts["name"] = who
    for extra in ("phone", "email"):
        if raw.get(extra) not in (None, ""):
            contacts[extra] = _contact(extra, raw[extra], f"{name}.{extra}")
    return (kind, normalised), who, contacts


def _items(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise field_error("items", "a list of {name, sku, quantity, price}")
    if len(raw) > MAX_ITEMS:
        raise field_error("items", f"at most {MAX_ITEMS} items")
    out = []
    for i, item in enumerate(raw):
        name = f"items.{i}"
        if not isinstance(item, dict):
            raise field_error(name, "an object {name, sku, quantity, price}")
        unknown = set(item) - set(ITEM_FIELDS)
        if unknown:
            raise field_error(f"{name}.{sorted(unknown)[0]}", f"unknown field ({', '.join(ITEM_FIELDS)})")
        row: dict[str, Any] = {"name": _text(item.get("name"), f"{name}.name", 300, required=True)}
        sku = item.get("sku")
        sku = _text(str(sku) if isinstance(sku, int) and not isinstance(sku, bool) else sku, f"{name}.sku", 100)
        if sku is not None:
            row["sku"] = sku
        row["quantity"] = _quantity(item["quantity"], f"{name}.quantity") if item.get("quantity") is not None else 1
        if item.get("price") is not None:
            row["price"] = money_out(_money(item["price"], f"{name}.price"))
        if item.get("url") not in (None, ""):
            row["url"] = _url(item["url"], f"{name}.url")
        out.append(row)
    return out


def _url(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _URL.match(value.strip()):
        raise field_error(name, "an http(s) address")
    return value.strip()


def _delivery(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise field_error("delivery", "an object {method, address, tracking_url, promised_on}")
    unknown = set(raw) - set(DELIVERY_FIELDS)
    if unknown:
        raise field_error(f"delivery.{sorted(unknown)[0]}", f"unknown field ({', '.join(DELIVERY_FIELDS)})")
    out: dict[str, Any] = {}
    for key, limit in (("method", 100), ("address", 500), ("tracking_number", 100), ("carrier", 100)):
        value = _text(raw.get(key), f"delivery.{key}", limit)
        if value:
            out[key] = value
    if raw.get("tracking_url") not in (None, ""):
        out["tracking_url"] = _url(raw["tracking_url"], "delivery.tracking_url")
    if raw.get("promised_on") not in (None, ""):
        out["promised_on"] = parse_date(raw["promised_on"], "delivery.promised_on")
    return out


def parse_order(raw: Any, *, number: str | None = None, prefix: str = "") -> OrderInput:
    """The shop's description of one order, checked: InvalidInput (422) names the first bad field."""
    try:
        return _parse(raw, number)
    except InvalidInput as exc:
        if prefix:
            fields = [{**f, "field": f"{prefix}{f['field']}"} for f in exc.fields]
            raise InvalidInput(f"{prefix}{exc.message}", fields=fields) from None
        raise


def _parse(raw: Any, number: str | None) -> OrderInput:
    if not isinstance(raw, dict):
        raise field_error("body", "an order: a JSON object")
    unknown = set(raw) - set(FIELDS)
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown field; put the shop's own data in attributes")
    if number is None:
        number = check_number(raw.get("number"))
    elif raw.get("number") is not None and str(raw["number"]).strip() != number:
        raise field_error("number", "differs from the number in the address")
    out = OrderInput(number=number)
    given = out.given
    if raw.get("customer") is not None:
        out.customer, out.customer_name, out.contacts = _customer(raw["customer"])
    if raw.get("status") is not None:
        given["status"] = parse_status(raw["status"])
    if raw.get("status_at") is not None:
        out.status_at = parse_datetime(raw["status_at"], "status_at")
    if raw.get("items") is not None:
        given["items"] = _items(raw["items"])
    if "total" in raw:
        given["total"] = None if raw["total"] is None else _money(raw["total"], "total")
    if raw.get("currency") is not None:
        currency = raw["currency"]
        if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency.strip()):
            raise field_error("currency", "a three-letter code, e.g. RUB")
        given["currency"] = currency.strip().upper()
    if "paid" in raw:
        paid = raw["paid"]
        if paid is None or isinstance(paid, bool):
            given["paid"] = paid
        else:
            given["paid"] = money_out(_money(paid, "paid"))
    if raw.get("payment_status") is not None:
        if raw["payment_status"] not in PAYMENT_STATUSES:
            raise field_error("payment_status", f"one of: {', '.join(PAYMENT_STATUSES)}")
        given["payment_status"] = raw["payment_status"]
    if "payment_url" in raw:
        given["payment_url"] = None if raw["payment_url"] in (None, "") else _url(raw["payment_url"], "payment_url")
    if raw.get("delivery") is not None:
        given["delivery"] = _delivery(raw["delivery"])
    if "placed_at" in raw:
        given["placed_at"] = None if raw["placed_at"] is None else parse_datetime(raw["placed_at"], "placed_at")
    if raw.get("attributes") is not None:
        attributes = raw["attributes"]
        if not isinstance(attributes, dict):
            raise field_error("attributes", "an object")
        if len(json.dumps(attributes, ensure_ascii=False)) > MAX_ATTRIBUTES_BYTES:
            raise field_error("attributes", f"must serialise to at most {MAX_ATTRIBUTES_BYTES} bytes")
        given["attributes"] = attributes
    return out


# -- the stored form -------------------------------------------------------------------------------------

def payment_status(total: Decimal | None, paid: Any, status: str, explicit: str | None) -> str:
    if explicit:
        return explicit
    if paid is True:
        return "paid"
    if isinstance(paid, int | float) and not isinstance(paid, bool):
        if total is not None and Decimal(str(paid)) >= total and paid > 0:
            return "paid"
        return "partially_paid" if paid > 0 else "unpaid"
    return "paid" if paid is None and status == "paid" else "unpaid"


def _content(values: dict[str, Any]) -> dict[str, Any]:
    """The fields that make an order what it is, JSON-ready: what the fingerprint covers."""
    placed = values.get("placed_at")
    total = values.get("total")
    return {"customer": [values["customer_kind"], values["customer_value"]], "contacts": values["contacts"],
            "status": values["status"], "items": values["items"], "total": None if total is None else str(total),
            "currency": values["currency"], "paid": values["paid"], "payment_status": values["payment_status"],
            "payment_url": values["payment_url"], "delivery": values["delivery"],
            "placed_at": placed.isoformat() if placed else None, "attributes": values["attributes"]}


def fingerprint(values: dict[str, Any]) -> str:
    raw = json.dumps(_content(values), ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.blake2b(raw.encode(), digest_size=16).hexdigest()


def _stored_values(order: Order) -> dict[str, Any]:
    return {"customer_kind": order.customer_kind, "customer_value": order.customer_value,
            "contacts": dict(order.contacts or {}), "status": order.status, "items": list(order.items or []),
            "total": order.total, "currency": order.currency, "paid": order.paid,
            "payment_status": order.payment_status, "payment_url": order.payment_url,
            "delivery": dict(order.delivery or {}), "placed_at": order.placed_at,
            "attributes": dict(order.attributes or {}), "customer_id": order.customer_id}


def _merged(stored: dict[str, Any] | None, item: OrderInput) -> dict[str, Any]:
    if stored is None:
        if item.customer is None:
            raise field_error("customer", 'required for a new order: {"kind": "email" | "phone" | …, "value": …}')
        values: dict[str, Any] = {"status": "created", "items": [], "total": None, "currency": "RUB", "paid": None,
                                  "payment_status": "unpaid", "payment_url": None, "delivery": {},
                                  "placed_at": None, "attributes": {}, "contacts": {}}
    else:
        values = dict(stored)
    if item.customer is not None:
        values["customer_kind"], values["customer_value"] = item.customer
        values["contacts"] = item.contacts or {}
    explicit = item.given.get("payment_status")
    for key, value in item.given.items():
        if key != "payment_status":
            values[key] = value
    if explicit or "paid" in item.given or "total" in item.given or "status" in item.given or stored is None:
        values["payment_status"] = payment_status(values["total"], values["paid"], values["status"], explicit)
    return values


# -- customers -------------------------------------------------------------------------------------------

_SAME_NUMBER = {"phone": ("phone", "whatsapp"), "whatsapp": ("whatsapp", "phone")}


def resolve_customers(session: Session, workspace_id: int,
                      wanted: dict[tuple[str, str], str]) -> tuple[dict[tuple[str, str], int], int]:
    """The customer holding each identity (a phone also matches the same number on WhatsApp), creating one
    (with that identity, unverified) for each identity nobody holds. Returns ({identity: customer_id}, created)."""
    found: dict[tuple[str, str], int] = {}
    by_kind: dict[str, set[str]] = {}
    for kind, value in wanted:
        for k in _SAME_NUMBER.get(kind, (kind,)):
            by_kind.setdefault(k, set()).add(value)
    for kind, values in by_kind.items():
        pool = sorted(values)
        for start in range(0, len(pool), 500):
            rows = session.execute(select(Identity.external_id, Identity.customer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == kind,
                Identity.external_id.in_(pool[start:start + 500]))).all()
            for value, customer_id in rows:
                if (kind, value) in wanted:  # the same kind wins over the same number on another
                    found[(kind, value)] = customer_id
                for other in _SAME_NUMBER.get(kind, ())[1:]:
                    if (other, value) in wanted:
                        found.setdefault((other, value), customer_id)
    missing = [key for key in wanted if key not in found]
    if missing:
        now = utcnow()
        ids = session.scalars(insert(Customer).returning(Customer.id, sort_by_parameter_order=True), [
            {"workspace_id": workspace_id, "name": wanted[key][:200], "attributes": {},
             "search_terms": search_terms(wanted[key], key[1]), "created_at": now, "updated_at": now}
            for key in missing]).all()
        session.execute(insert(Identity), [
            {"workspace_id": workspace_id, "customer_id": cid, "kind": key[0], "external_id": key[1],
             "verified": False, "created_at": now} for key, cid in zip(missing, ids, strict=True)])
        found.update(zip(missing, ids, strict=True))
    return found, len(missing)


# -- storing ---------------------------------------------------------------------------------------------

@dataclass
class Result:
    number: str
    outcome: str  # created | updated | unchanged | error
    order_id: int | None = None
    error: DomainError | None = None
    order: Order | None = None  # set by `upsert` (one order); a batch leaves it out


_CONTENT_COLUMNS = ("customer_kind", "customer_value", "contacts", "status", "items", "total", "currency", "paid",
                    "payment_status", "payment_url", "delivery", "placed_at", "attributes")
ORDERS_TABLE = cast(Table, Order.__table__)  # Core statements: no ORM objects for a batch
EVENTS_TABLE = cast(Table, OrderEvent.__table__)
_UPDATED = (*_CONTENT_COLUMNS, "customer_id", "fingerprint", "promised_on")
_COLUMNS = ("workspace_id", "number", "customer_id", *_CONTENT_COLUMNS, "promised_on", "source", "fingerprint",
            "created_at", "updated_at")


def _rows(session: Session, workspace_id: int, numbers: Sequence[str], columns: Sequence[Any]) -> dict[str, Any]:
    """Core rows (no ORM objects: a batch of 10,000 would spend seconds building them) by order number."""
    found: dict[str, Any] = {}
    pool = list(dict.fromkeys(numbers))
    for start in range(0, len(pool), 500):
        for row in session.execute(select(Order.number, *columns).where(
                Order.workspace_id == workspace_id, Order.number.in_(pool[start:start + 500]))).mappings():
            found[row["number"]] = row
    return found


def upsert_many(session: Session, actor: Actor, items: Sequence[OrderInput], *, source: str = "api",
                audit: bool = True) -> list[Result]:
    """Store many orders in the caller's transaction: a few statements for the lot, not a few per order.
    An item whose merge with the stored order fails (a new order without a customer) is an error result; the
    others are stored. The same number twice in `items`: the later description wins over the earlier.

    A repeat is found without reading the stored order: the description merged onto the defaults has the
    stored fingerprint (then merged onto the stored order it is the same). Only changed orders are read whole."""
    ws = actor.workspace_id
    numbers = [i.number for i in items]
    brief = _rows(session, ws, numbers, [Order.id, Order.fingerprint])
    wanted: dict[tuple[str, str], str] = {}
    for item in items:
        if item.customer is not None and (item.customer not in wanted or item.customer_name):
            wanted[item.customer] = item.customer_name or wanted.get(item.customer, "")
    customer_ids, created_customers = resolve_customers(session, ws, wanted) if wanted else ({}, 0)
    now = utcnow()
    results: list[Result | None] = [None] * len(items)
    needs_stored: list[int] = []
    for k, item in enumerate(items):
        known = brief.get(item.number)
        if known is not None and item.customer is not None:
            values = _merged(None, item)
            if fingerprint(values) == known["fingerprint"]:
                results[k] = Result(item.number, "unchanged", known["id"])
                continue
        if known is not None:
            needs_stored.append(k)
    stored_rows = _rows(session, ws, [items[k].number for k in needs_stored],
                        [Order.id, Order.customer_id, *(getattr(Order, c) for c in _CONTENT_COLUMNS)]) \
        if needs_stored else {}
    current: dict[str, dict[str, Any]] = {n: dict(r) for n, r in stored_rows.items()}
    new_rows: dict[str, dict[str, Any]] = {}
    new_status_at: dict[str, dt.datetime | None] = {}
    updates: dict[str, dict[str, Any]] = {}
    events: list[dict[str, Any]] = []
    changes: list[tuple[int, str, str | None, str]] = []  # (order id, number, before, after)
    for k, item in enumerate(items):
        if results[k] is not None:
            continue
        pending = new_rows.get(item.number)
        stored = pending if pending is not None else current.get(item.number)
        try:
            values = _merged(stored, item)
        except DomainError as exc:
            results[k] = Result(item.number, "error", error=exc)
            continue
        if item.customer is not None:
            values["customer_id"] = customer_ids.get(item.customer)
        values["fingerprint"] = fingerprint(values)
        values["promised_on"] = values["delivery"].get("promised_on")
        if stored is None or pending is not None:
            values.update(workspace_id=ws, number=item.number, source=source, created_at=now, updated_at=now)
            new_rows[item.number] = values
            if pending is None:
                new_status_at[item.number] = item.status_at or values.get("placed_at")
            results[k] = Result(item.number, "created")
            continue
        before = stored
        if values["fingerprint"] == stored.get("fingerprint_seen", brief[item.number]["fingerprint"]):
            results[k] = Result(item.number, "unchanged", stored["id"])
            continue
        update_row = {f"v_{c}": values[c] for c in _UPDATED}
        update_row.update(v_id=stored["id"], v_updated_at=now)
        updates[item.number] = update_row
        if values["status"] != before["status"]:
            changes.append((stored["id"], item.number, before["status"], values["status"]))
            events.append({"workspace_id": ws, "order_id": stored["id"], "status": values["status"],
                           "at": item.status_at or now, "source": source, "note": f"{before['status']} → {values['status']}"})
        current[item.number] = {**values, "id": stored["id"], "fingerprint_seen": values["fingerprint"]}
        results[k] = Result(item.number, "updated", stored["id"])
    if updates:
        table = ORDERS_TABLE
        session.execute(update(table).where(table.c.id == bindparam("v_id")).values(
            {c: bindparam(f"v_{c}") for c in (*_UPDATED, "updated_at")}), list(updates.values()))
    if new_rows:
        session.execute(insert(ORDERS_TABLE), [{c: v.get(c) for c in _COLUMNS} for v in new_rows.values()])
        ids = {n: r["id"] for n, r in _rows(session, ws, list(new_rows), [Order.id]).items()}
        for number, values in new_rows.items():
            changes.append((ids[number], number, None, values["status"]))
            events.append({"workspace_id": ws, "order_id": ids[number], "status": values["status"],
                           "at": new_status_at.get(number) or now, "source": source, "note": ""})
        for r in results:
            if r is not None and r.outcome == "created":
                r.order_id = ids[r.number]
    if events:
        session.execute(insert(EVENTS_TABLE), events)
    done = [r for r in results if r is not None]
    _announce(session, ws, changes, source)
    stored_orders = [{"order_id": ids[n], "number": n, "customer_id": v.get("customer_id"),
                      "previous_customer_id": None, "attributes": v.get("attributes")}
                     for n, v in new_rows.items()] if new_rows else []
    stored_orders += [{"order_id": current[n]["id"], "number": n, "customer_id": current[n].get("customer_id"),
                       "previous_customer_id": (stored_rows.get(n) or {}).get("customer_id"),
                       "attributes": current[n].get("attributes")} for n in updates]
    if stored_orders:  # loyalty tiers and referral rewards follow the orders, in the same transaction
        from otklik.orders import loyalty

        loyalty.orders_stored(session, ws, stored_orders)
    if audit and any(r.outcome in ("created", "updated") for r in done):
        counts = {k: sum(1 for r in done if r.outcome == k) for k in ("created", "updated", "unchanged", "error")}
        if len(items) == 1 and done[0].order_id is not None:
            record_audit(session, actor, entity_type="order", entity_id=done[0].order_id, action=done[0].outcome,
                         after={"number": items[0].number, "source": source})
        else:
            record_audit(session, actor, entity_type="order", entity_id=0, action="imported",
                         after={**counts, "source": source, "customers_created": created_customers})
    return done


MAX_EVENTS = 100  # a batch announces each change up to this many, then one «orders.imported»


def _announce(session: Session, workspace_id: int, changes: list[tuple[int, str, str | None, str]],
              source: str) -> None:
    """After commit, for whoever reacts to an order's status (proactive messages: delayed, delivered, returned;
    loyalty tiers counting purchases): `order.status_changed` {order_id, number, from, to, source}."""
    if not changes:
        return
    from otklik.platform.events import Event, after_commit

    if len(changes) > MAX_EVENTS:
        after_commit(session, Event("orders.imported", workspace_id, {"changes": len(changes), "source": source}))
        return
    for order_id, number, before, after in changes:
        after_commit(session, Event("order.status_changed", workspace_id, {
            "order_id": order_id, "number": number, "from": before, "to": after, "source": source}))


def purchase_summary(session: Session, workspace_id: int, customer_ids: Sequence[int], *,
                     since: dt.datetime | None = None) -> dict[int, tuple[int, Decimal]]:
    """Per customer: how many orders they bought and for how much — paid, neither cancelled nor returned,
    placed since `since` (what a loyalty tier such as «5 / 10 / 20 purchases» counts)."""
    from sqlalchemy import func

    out: dict[int, tuple[int, Decimal]] = {c: (0, Decimal("0")) for c in customer_ids}
    ids = list(customer_ids)
    for start in range(0, len(ids), 500):
        stmt = select(Order.customer_id, func.count(Order.id), func.coalesce(func.sum(Order.total), 0)).where(
            Order.workspace_id == workspace_id, Order.customer_id.in_(ids[start:start + 500]),
            Order.payment_status == "paid", Order.status.not_in(("cancelled", "returned")))
        if since is not None:
            stmt = stmt.where(Order.placed_at >= since)
        for customer_id, count, total in session.execute(stmt.group_by(Order.customer_id)):
            if customer_id is not None:
                out[customer_id] = (int(count), Decimal(str(total)))
    return out


def upsert(session: Session, actor: Actor, item: OrderInput, *, source: str = "api") -> Result:
    """One order (PUT, the pull URL): the result carries the stored ORM object."""
    result = upsert_many(session, actor, [item], source=source)[0]
    if result.error is not None:
        raise result.error
    session.expire_all()  # the Core statements above changed rows the session may hold
    result.order = session.get(Order, result.order_id)
    return result


# -- batches (the API, a CSV file) ---------------------------------------------------------------

def _batch_out(results: list[Result]) -> dict[str, Any]:
    items = []
    for i, r in enumerate(results):
        row: dict[str, Any] = {"index": i, "number": r.number, "outcome": r.outcome}
        if r.error is not None:
            row["error"] = r.error.to_dict()["error"]
        items.append(row)
    counts = {k: sum(1 for r in results if r.outcome == k) for k in ("created", "updated", "unchanged", "error")}
    return {**counts, "items": items}


def store_batch(actor: Actor, raw_orders: list[Any], *, atomic: bool, source: str,
                prefix: str = "orders", session: Session | None = None) -> dict[str, Any]:
    """Check every order, then store the good ones in one transaction; a bad one is an error item (or, when
    `atomic`, a 422 naming it and nothing stored)."""
    parsed: list[OrderInput | DomainError] = []
    for i, raw in enumerate(raw_orders):
        try:
            parsed.append(parse_order(raw, prefix=f"{prefix}.{i}."))
        except DomainError as exc:
            if atomic:
                raise
            parsed.append(exc)
    good = [p for p in parsed if isinstance(p, OrderInput)]

    def work(db: Session) -> list[Result]:
        stored = upsert_many(db, actor, good, source=source)
        if atomic:
            for i, r in enumerate(stored):
                if r.error is not None:
                    raise type(r.error)(f"{prefix}.{i}.{r.error.message}", fields=[
                        {**f, "field": f"{prefix}.{i}.{f['field']}"} for f in r.error.fields])
        return stored

    # its own (retried) transaction, or the caller's `session` (a page that already holds the write lock)
    stored = iter((work(session) if session is not None else run_transaction(work)) if good else [])
    results = []
    for i, p in enumerate(parsed):
        if isinstance(p, OrderInput):
            results.append(next(stored))
        else:
            number = raw_orders[i].get("number") if isinstance(raw_orders[i], dict) else None
            results.append(Result(str(number)[:64] if number is not None else "", "error", error=p))
    return _batch_out(results)



# -- reading ---------------------------------------------------------------------------------------------

def get_order(session: Session, workspace_id: int, number: str) -> Order:
    order = find_order(session, workspace_id, number)
    if order is None:
        raise NotFound(f"order {number} not found")
    return order


def find_order(session: Session, workspace_id: int, number: str) -> Order | None:
    if not NUMBER.match(number or ""):
        return None
    return session.scalar(select(Order).where(Order.workspace_id == workspace_id, Order.number == number))


def history_of(session: Session, order_ids: Iterable[int]) -> dict[int, list[OrderEvent]]:
    ids = list(order_ids)
    result: dict[int, list[OrderEvent]] = {i: [] for i in ids}
    for start in range(0, len(ids), 500):
        for event in session.scalars(select(OrderEvent).where(OrderEvent.order_id.in_(ids[start:start + 500]))
                                     .order_by(OrderEvent.at, OrderEvent.id)):
            result[event.order_id].append(event)
    return result


def orders_of_customer(session: Session, workspace_id: int, customer_id: int, *, limit: int = 100) -> list[Order]:
    return list(session.scalars(select(Order).where(Order.workspace_id == workspace_id,
                                                    Order.customer_id == customer_id)
                                .order_by(Order.placed_at.desc().nulls_last(), Order.id.desc()).limit(limit)))


def today() -> dt.date:
    return utcnow().date()


def is_late(order: Order, on: dt.date | None = None) -> bool:
    """Open, and the promised delivery day has passed."""
    if order.status in CLOSED or not order.promised_on:
        return False
    try:
        return dt.date.fromisoformat(order.promised_on) < (on or today())
    except ValueError:
        return False


def order_out(order: Order, events: Sequence[OrderEvent] | None = None) -> dict[str, Any]:
    """The stored order as the API returns it."""
    customer: dict[str, Any] = {"kind": order.customer_kind, "value": order.customer_value,
                                **(order.contacts or {})}
    out: dict[str, Any] = {
        "number": order.number, "customer": customer, "customer_id": order.customer_id, "status": order.status,
        "items": list(order.items or []), "total": money_out(order.total), "currency": order.currency,
        "paid": order.paid, "payment_status": order.payment_status, "payment_url": order.payment_url,
        "delivery": dict(order.delivery or {}),
        "placed_at": order.placed_at.isoformat() if order.placed_at else None,
        "attributes": dict(order.attributes or {}), "late": is_late(order), "source": order.source,
        "created_at": order.created_at.isoformat(), "updated_at": order.updated_at.isoformat()}
    if events is not None:
        out["status_history"] = [{"status": e.status, "at": e.at.isoformat(), "source": e.source} for e in events]
    return out


def _move_orders(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    result = session.execute(update(Order).where(Order.workspace_id == workspace_id,
                                                 Order.customer_id == source_id).values(customer_id=target_id))
    return int(getattr(result, "rowcount", 0) or 0)


register_merge_mover("orders", _move_orders)
