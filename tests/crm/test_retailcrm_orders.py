"""RetailCRM orders feed the orders domain (issue 18): a linked contact's orders, read by the cache refresh, the
history feed or the trigger webhook, are stored through the orders service — the linked customer's verified
identity as the buyer, RetailCRM's status mapped to the orders vocabulary, `source` "crm" — once: a re-read adds
nothing, a status change in the CRM one history entry; another workspace never sees them."""

from __future__ import annotations

from typing import Any

import pytest

from otklik.crm import jobs, service
from otklik.crm.retailcrm import order_description, order_status
from tests.crm.conftest import connect, make_customer
from tests.crm.stand_ins import RetailCrmStandIn

ITEMS = [{"offer": {"displayName": "Чайник электрический", "article": "KT-1"}, "quantity": 2,
          "initialPrice": 1500, "discountTotal": 100},
         {"productName": "Доставка до двери", "quantity": 1, "initialPrice": 300}]
DELIVERY = {"code": "courier", "address": {"text": "Москва, ул. Тверская, 1"}, "date": "2026-12-05",
            "data": {"trackNumber": "TRK-77"}}


def _setup(client: Any, ws: Any, retail: RetailCrmStandIn, status: str = "assembling") -> tuple[dict[str, Any], int, int]:
    contact = retail.add_customer(first="Анна", phone="+7 (916) 123-45-67")
    order = retail.add_order(contact, "A-1001", status, 3100, items=ITEMS, delivery=DELIVERY, prepaySum=0)
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base, "site": "shop"}, {"api_key": "retail-key"})
    customer = make_customer(ws, "Анна", phone="+79161234567")
    return conn, customer, order


def _order(client: Any, ws: Any, number: str = "A-1001") -> dict[str, Any]:
    response = client.get(f"/api/v1/orders/{number}", headers=ws.agent)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_refresh_stores_the_order_once_and_a_status_change_appends_one_entry(client, ws, other_ws, retail):
    conn, customer, order = _setup(client, ws, retail)
    assert service.refresh_customer_deals(conn["id"], customer) == 1
    stored = _order(client, ws)
    assert stored["status"] == "created" and stored["source"] == "crm"  # «Комплектуется»: assembling → created
    assert stored["customer"]["kind"] == "phone" and stored["customer"]["value"] == "+79161234567"
    assert stored["customer_id"] == customer
    assert stored["items"] == [{"name": "Чайник электрический", "sku": "KT-1", "quantity": 2, "price": 1400},
                               {"name": "Доставка до двери", "quantity": 1, "price": 300}]
    assert stored["total"] == 3100 and stored["payment_status"] == "unpaid"
    assert stored["delivery"] == {"method": "courier", "address": "Москва, ул. Тверская, 1",
                                  "tracking_number": "TRK-77", "promised_on": "2026-12-05"}
    assert stored["placed_at"].startswith("2026-12-01T07:00:00")  # 10:00 Moscow time
    assert [h["status"] for h in stored["status_history"]] == ["created"]
    assert stored["status_history"][0]["source"] == "crm"

    # the same read again: nothing changes, no history entry
    assert service.refresh_customer_deals(conn["id"], customer) == 1
    again = _order(client, ws)
    assert again["updated_at"] == stored["updated_at"] and len(again["status_history"]) == 1

    # the CRM moves the order to delivery; the history feed is read: one entry, `shipped`
    retail.set_status(order, "delivering")
    jobs.pull_feed(conn["id"])
    moved = _order(client, ws)
    assert moved["status"] == "shipped"
    assert [h["status"] for h in moved["status_history"]] == ["created", "shipped"]
    assert moved["status_history"][1]["at"].startswith("2026-12-02T09:00:00")  # statusUpdatedAt, Moscow
    jobs.pull_feed(conn["id"])  # the feed read again (nothing new) and a refresh: still two entries
    service.refresh_customer_deals(conn["id"], customer)
    assert len(_order(client, ws)["status_history"]) == 2

    # a shop's own status RetailCRM's reference does not list: the last mapped status stays
    retail.set_status(order, "shop-specific")
    jobs.pull_feed(conn["id"])
    kept = _order(client, ws)
    assert kept["status"] == "shipped" and len(kept["status_history"]) == 2

    # the trigger webhook (order_id) reads the order too: complete → delivered
    retail.set_status(order, "complete")
    token = conn["webhook_path"].rsplit("/", 1)[1]
    hook = client.post(f"/api/v1/integrations/crm/webhook/{token}", data={"order_id": str(order)})
    assert hook.status_code == 200, hook.text
    done = _order(client, ws)
    assert done["status"] == "delivered" and len(done["status_history"]) == 3

    # the connection feeds its own workspace only
    assert client.get("/api/v1/orders/A-1001", headers=other_ws.agent).status_code == 404


def test_the_buyer_is_the_verified_email_the_contact_was_matched_by(client, ws, retail):
    contact = retail.add_customer(first="Пётр", email="petr@example.com")
    retail.add_order(contact, "B-7", "cancel-other", 990)
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    customer = make_customer(ws, "Пётр", email="Petr@Example.com")
    service.refresh_customer_deals(conn["id"], customer)
    stored = _order(client, ws, "B-7")
    assert stored["status"] == "cancelled" and stored["customer"] == {"kind": "email", "value": "petr@example.com"}
    assert stored["customer_id"] == customer


def test_a_customer_nobody_linked_feeds_nothing(client, ws, retail):
    contact = retail.add_customer(first="Анна", phone="+79161234567")
    retail.add_order(contact, "C-1", "new", 100)
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    claimed = make_customer(ws, "Самозванец", phone="+79161234567", verified=False)
    assert service.refresh_customer_deals(conn["id"], claimed) == 0
    assert client.get("/api/v1/orders/C-1", headers=ws.agent).status_code == 404


@pytest.mark.parametrize(("code", "group", "paid", "expected"), [
    ("new", "new", False, "created"),
    ("client-confirmed", "approval", False, "created"),
    ("client-confirmed", "approval", True, "paid"),
    ("prepayed", "approval", False, "paid"),
    ("assembling", "assembling", False, "created"),
    ("send-to-delivery", None, False, "shipped"),
    ("own-courier", "delivery", False, "shipped"),
    ("complete", "complete", False, "delivered"),
    ("no-call", "cancel", False, "cancelled"),
    ("return", "cancel", False, "returned"),
    ("shop-specific", None, False, None),
])
def test_status_mapping(code, group, paid, expected):
    assert order_status(code, group, paid_in_full=paid) == expected


def test_odd_values_are_dropped_not_fatal():
    described = order_description({"id": 5, "number": "X-1", "status": "new", "totalSumm": "NaN", "prepaySum": True,
                                   "createdAt": "0000-00-00 00:00:00", "items": [None, {"quantity": 1}, "x"],
                                   "delivery": {"address": "not an object", "date": "someday"}}, {"new": "new"})
    assert described == {"number": "X-1", "status": "created", "items": [], "delivery": {}}
