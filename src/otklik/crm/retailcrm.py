"""RetailCRM (API v5, key in `X-API-KEY`): customers, their orders with status, the orders' change history.

Documented shapes: GET /api/v5/credentials; GET /api/v5/customers?filter[...] (paged: `pagination`);
POST /api/v5/customers/create (form field `customer` = JSON, `site`); GET/POST /api/v5/customers/notes[/create];
GET /api/v5/orders?filter[customerId]=; GET /api/v5/reference/statuses; GET /api/v5/orders/history?filter[sinceId]=
(the change feed, read page by page from the last id seen). Errors: {"success": false, "errorMsg": ...}.
A new contact carries `externalId` = otklik-<customer id>, so a second create of the same customer is refused by
RetailCRM itself and resolved to the existing one.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, Field, field_validator

from otklik.crm.base import (
    Contact,
    CrmConnector,
    CrmError,
    Deal,
    VendorHttp,
    WebhookChange,
    add_connector,
    digits,
    note_marker,
    same_phone,
)

PAGE = 100
MAX_PAGES = 50  # a contact with more than 5,000 notes/orders: we read the newest pages only


def clean_base(value: str, example: str) -> str:
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or " " in value:
        raise ValueError(f"an http(s) address such as {example}")
    return value


class RetailCrmConfig(BaseModel):
    base_url: str = Field("https://example.retailcrm.ru", max_length=300, title="Адрес RetailCRM",
                          description="Например https://myshop.retailcrm.ru")
    site: str = Field("", max_length=100, title="Код магазина (site)",
                      description="Символьный код магазина в RetailCRM; пусто — первый доступный ключу")
    create_contacts: bool = Field(False, title="Создавать клиента в CRM",
                                  description="Для нового клиента с подтверждённым телефоном или почтой")
    note_on_solve: bool = Field(True, title="Заметка о решённом обращении",
                                description="Итог обращения со ссылкой попадает в карточку клиента")

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str) -> str:
        return clean_base(value, "https://myshop.retailcrm.ru")


@add_connector
class RetailCrm(CrmConnector):
    kind = "retailcrm"
    title = "RetailCRM"
    description = "Клиенты, заказы и их статусы, история изменений (API-ключ)"
    icon = "R"
    Config = RetailCrmConfig
    secret_fields = ("api_key",)
    secret_titles: ClassVar[dict[str, str]] = {"api_key": "API-ключ"}
    example_config: ClassVar[dict[str, Any]] = {"base_url": "https://myshop.retailcrm.ru", "site": "myshop"}
    deal_word = "order"
    config: RetailCrmConfig

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.http = VendorHttp(self.config.base_url, headers={"X-API-KEY": self.secrets.get("api_key", "")},
                               transport=self.transport, title="RetailCRM")
        self._status_names: dict[str, str] | None = None
        self._status_groups: dict[str, str] = {}  # status code → its group (new, approval, …, cancel)

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, params: dict[str, Any] | list[tuple[str, Any]] | None = None) -> dict[str, Any]:
        body = self.http.json("GET", path, params=params)
        if not isinstance(body, dict) or body.get("success") is False:
            raise CrmError(f"RetailCRM: {(body or {}).get('errorMsg', 'unexpected answer') if isinstance(body, dict) else 'unexpected answer'}")
        return body

    def _post(self, path: str, data: dict[str, str]) -> dict[str, Any]:
        if self.config.site:
            data = {**data, "site": self.config.site}
        body = self.http.json("POST", path, data=data)
        if not isinstance(body, dict) or body.get("success") is not True:
            raise CrmError(f"RetailCRM: {body.get('errorMsg', 'unexpected answer') if isinstance(body, dict) else 'unexpected answer'}")
        return body

    def _pages(self, path: str, params: list[tuple[str, Any]], key: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for page in range(1, MAX_PAGES + 1):
            body = self._get(path, [*params, ("limit", PAGE), ("page", page)])
            out.extend(x for x in body.get(key) or [] if isinstance(x, dict))
            pagination = body.get("pagination") or {}
            if page >= int(pagination.get("totalPageCount") or 1):
                break
        return out

    def test_connection(self) -> str:
        body = self._get("/api/v5/credentials")
        sites = body.get("sitesAvailable") or []
        return f"RetailCRM: ключ работает, магазины: {', '.join(map(str, sites)) or '—'}"

    # -- contacts -------------------------------------------------------------------------------------
    def _contact(self, row: dict[str, Any]) -> Contact:
        name = " ".join(str(row.get(k) or "") for k in ("firstName", "lastName")).strip()
        phones = [str(p.get("number") or "") for p in row.get("phones") or [] if isinstance(p, dict)]
        email = str(row.get("email") or "")
        return Contact(id=str(row["id"]), name=name, phones=phones, emails=[email] if email else [])

    def find_contact(self, *, phones: list[str], emails: list[str]) -> Contact | None:
        for email in emails:
            for row in self._get("/api/v5/customers", [("filter[email]", email), ("limit", 20)]).get("customers") or []:
                if str(row.get("email") or "").lower() == email.lower():
                    return self._contact(row)
        for phone in phones:
            # `filter[name]` searches names, phones and e-mails by substring: keep only an exact number
            wanted = digits(phone)[-10:]  # without the country/trunk prefix: finds +7… and 8… alike
            for row in self._get("/api/v5/customers", [("filter[name]", wanted), ("limit", 20)]).get("customers") or []:
                contact = self._contact(row)
                if any(same_phone(phone, p) for p in contact.phones):
                    return contact
        return None

    def create_contact(self, *, name: str, phones: list[str], emails: list[str], otklik_id: int) -> Contact:
        first, _, last = name.strip().partition(" ")
        external = f"otklik-{otklik_id}"
        customer: dict[str, Any] = {"externalId": external, "firstName": first or "Клиент",
                                    "phones": [{"number": p} for p in phones]}
        if last:
            customer["lastName"] = last
        if emails:
            customer["email"] = emails[0]
        try:
            body = self._post("/api/v5/customers/create", {"customer": json.dumps(customer, ensure_ascii=False)})
        except CrmError as exc:
            if "already exists" not in exc.message.lower():
                raise
            params = [("by", "externalId")] + ([("site", self.config.site)] if self.config.site else [])
            found = self._get(f"/api/v5/customers/{external}", params).get("customer")
            if not isinstance(found, dict):
                raise
            return self._contact(found)
        return Contact(id=str(body["id"]), name=name, phones=phones, emails=emails)

    # -- notes ----------------------------------------------------------------------------------------
    def find_note(self, contact_id: str, key: str) -> str | None:
        marker = note_marker(key)
        for note in self._pages("/api/v5/customers/notes", [("filter[customerIds][]", contact_id)], "notes"):
            if marker in str(note.get("text") or ""):
                return str(note["id"])
        return None

    def add_note(self, contact_id: str, text: str, key: str) -> str:
        note = {"customer": {"id": int(contact_id)}, "text": f"{text}\n{note_marker(key)}"}
        body = self._post("/api/v5/customers/notes/create", {"note": json.dumps(note, ensure_ascii=False)})
        return str(body["id"])

    # -- orders ---------------------------------------------------------------------------------------
    def _statuses(self) -> dict[str, str]:
        if self._status_names is None:
            raw = self._get("/api/v5/reference/statuses").get("statuses") or {}
            rows = {str(code): s for code, s in raw.items() if isinstance(s, dict)} if isinstance(raw, dict) else {}
            self._status_names = {code: str(s.get("name") or code) for code, s in rows.items()}
            self._status_groups = {code: str(s["group"]) for code, s in rows.items() if s.get("group")}
        return self._status_names

    def list_deals(self, contact_id: str) -> list[Deal]:
        orders = self._pages("/api/v5/orders", [("filter[customerId]", contact_id)], "orders")
        names = self._statuses() if orders else {}
        base = self.config.base_url
        return [Deal(id=str(o["id"]), number=str(o.get("number") or o["id"]),
                     title=f"Заказ {o.get('number') or o['id']}",
                     status=names.get(str(o.get("status") or ""), str(o.get("status") or "")),
                     amount=str(o.get("totalSumm") or ""), currency=str(o.get("currency") or "RUB"),
                     url=f"{base}/orders/{o['id']}/edit",
                     changed_at=_iso(o.get("statusUpdatedAt") or o.get("createdAt")),
                     order=order_description(o, self._status_groups))
                for o in orders if "id" in o]

    def pull_changes(self, cursor: str | None) -> tuple[list[WebhookChange], str | None]:
        """The orders' change feed since the last id seen, page by page (sinceId)."""
        since = int(cursor) if cursor and cursor.isdigit() else 0
        changes: list[WebhookChange] = []
        for _ in range(MAX_PAGES):
            body = self._get("/api/v5/orders/history", [("filter[sinceId]", since), ("limit", PAGE)])
            rows = [h for h in body.get("history") or [] if isinstance(h, dict) and "id" in h]
            for row in rows:
                order = row.get("order") or {}
                customer = (order.get("customer") or {}) if isinstance(order, dict) else {}
                if isinstance(order, dict) and "id" in order:
                    changes.append(WebhookChange("deal", str(order["id"]), "delete" if row.get("deleted") else "update",
                                                 contact_id=str(customer["id"]) if isinstance(customer, dict)
                                                 and "id" in customer else None))
                since = max(since, int(row["id"]))
            if len(rows) < PAGE:
                break
        return changes, str(since)

    def parse_webhook(self, *, fields: Mapping[str, Any], headers: Mapping[str, str]) -> list[WebhookChange]:
        """A RetailCRM trigger ("HTTP request" action) sends what its template says: `order_id` and/or
        `customer_id` (see the README). The URL's token is the proof; the change feed is read too."""
        changes = []
        order_id, customer_id = str(fields.get("order_id") or ""), str(fields.get("customer_id") or "")
        if order_id.isdigit() and len(order_id) < 20:
            changes.append(WebhookChange("deal", order_id, contact_id=customer_id if customer_id.isdigit() else None))
        elif customer_id.isdigit() and len(customer_id) < 20:
            changes.append(WebhookChange("contact", customer_id))
        return changes


def _iso(value: Any) -> str | None:
    """RetailCRM writes "2026-12-01 10:00:00" (Moscow time); kept as given, the page shows it as is."""
    return str(value).replace(" ", "T") if value else None


# -- a RetailCRM order as the orders domain describes it ---------------------------------------------------
#
# RetailCRM's status → the orders vocabulary (created / paid / shipped / delivered / cancelled / returned).
# A status code RetailCRM ships by default is looked up by its code first; any other (a shop's own status) by
# the group RetailCRM files it under (GET /api/v5/reference/statuses → `group`):
#
#   group `new`, `approval`, `assembling` → created; `paid` instead when the order is paid in full
#       (`prepaySum` ≥ `totalSumm` > 0), and the code `prepayed` («Предоплата поступила») → paid;
#   group `delivery` (send-to-delivery, delivering, redirect, ready-for-pickup…) → shipped;
#   group `complete` (complete) → delivered;
#   group `cancel` (cancel-other, no-call, no-product, …) → cancelled, but the codes `return` / `returned`
#       («Возврат») → returned.
#
# A code neither known nor in a known group gives no status: the order keeps the last one mapped (a new order
# starts `created`).
STATUS_BY_CODE = {"new": "created", "prepayed": "paid", "send-to-delivery": "shipped", "delivering": "shipped",
                  "redirect": "shipped", "ready-for-pickup": "shipped", "complete": "delivered",
                  "return": "returned", "returned": "returned"}
STATUS_BY_GROUP = {"new": "created", "approval": "created", "assembling": "created", "delivery": "shipped",
                   "complete": "delivered", "cancel": "cancelled"}
MOSCOW = ZoneInfo("Europe/Moscow")


def order_status(code: str, group: str | None, *, paid_in_full: bool = False) -> str | None:
    status = STATUS_BY_CODE.get(code) or STATUS_BY_GROUP.get(group or "")
    if status == "created" and paid_in_full:
        return "paid"
    return status


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = float(value)
    except ValueError:
        return None
    return amount if amount == amount and 0 <= amount < 1e12 else None


def _moment(value: Any) -> str | None:
    """RetailCRM's "2026-12-01 10:00:00" (the account's time, Moscow) as ISO 8601 with its offset."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip().replace(" ", "T"))
    except ValueError:
        return None
    if not 1970 <= moment.year <= 2200:  # the orders domain's range: a zero date is no date
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=MOSCOW)).isoformat()


def _short(value: Any, limit: int) -> str:
    return str(value).strip()[:limit] if isinstance(value, str | int | float) and not isinstance(value, bool) else ""


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def order_description(o: Mapping[str, Any], groups: Mapping[str, str]) -> dict[str, Any]:
    """A RetailCRM order (GET /api/v5/orders) as the orders domain's body: number, status (mapped above; left
    out when unknown), items, total, what was paid, delivery, placed_at, status_at. Odd values are dropped or
    cut to the orders domain's limits here, so one strange order never stops the others."""
    code = str(o.get("status") or "")
    total, prepaid = _number(o.get("totalSumm")), _number(o.get("prepaySum"))
    out: dict[str, Any] = {"number": _short(o.get("number") or o.get("id"), 64)}
    status = order_status(code, groups.get(code), paid_in_full=bool(total and prepaid is not None and prepaid >= total))
    if status:
        out["status"] = status
        status_at = _moment(o.get("statusUpdatedAt"))
        if status_at:
            out["status_at"] = status_at
    items = []
    raw_items = o.get("items")
    for item in (raw_items if isinstance(raw_items, list) else [])[:500]:
        if not isinstance(item, dict):
            continue
        offer = _obj(item.get("offer"))
        name = _short(offer.get("displayName") or offer.get("name") or item.get("productName"), 300)
        if not name:
            continue
        row: dict[str, Any] = {"name": name}
        sku = _short(offer.get("article") or offer.get("externalId"), 100)
        if sku:
            row["sku"] = sku
        quantity, price = _number(item.get("quantity")), _number(item.get("initialPrice"))
        if quantity is not None and quantity <= 1_000_000:
            row["quantity"] = quantity
        discount = _number(item.get("discountTotal")) or 0.0  # RetailCRM: the discount on one unit
        if price is not None:
            row["price"] = round(price - discount, 2) if discount <= price else price
        items.append(row)
    if items or isinstance(raw_items, list):
        out["items"] = items
    if total is not None:
        out["total"] = total
    if prepaid is not None:
        out["paid"] = prepaid
    currency = _short(o.get("currency"), 3)
    if len(currency) == 3 and currency.isalpha():
        out["currency"] = currency
    raw_delivery = _obj(o.get("delivery"))
    delivery: dict[str, Any] = {}
    method = _short(raw_delivery.get("code"), 100)
    text = _short(_obj(raw_delivery.get("address")).get("text"), 500)
    track = _short(_obj(raw_delivery.get("data")).get("trackNumber"), 100)
    day = _short(raw_delivery.get("date"), 10)
    for key, value in (("method", method), ("address", text), ("tracking_number", track)):
        if value:
            delivery[key] = value
    if day and _moment(day):
        delivery["promised_on"] = day
    if delivery or raw_delivery:
        out["delivery"] = delivery
    placed_at = _moment(o.get("createdAt"))
    if placed_at:
        out["placed_at"] = placed_at
    return out
