"""Pull mode: Otklik asks the shop's order-lookup URL (a RetailCRM-style stand-in here) for an order, through
the field mapping, with the auth header stored encrypted, a short cache and a hard timeout."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from otklik.orders import lookup
from otklik.orders.models import OrderSettings
from otklik.platform.db import session_scope
from tests.assistant.test_live import decisions, enable, messages
from tests.conftest import inbound

KEY = "crm-key-123"
RETAILCRM_ORDER = {
    "success": True,
    "order": {"number": "4512", "status": "send-to-delivery", "firstName": "Анна", "phone": "+7 (916) 555-12-34",
              "email": "anna@example.com", "totalSumm": 2490, "createdAt": "2026-12-01 10:00:00",
              "delivery": {"code": "courier", "address": {"text": "Москва, Ленина 1"}, "date": "2099-12-10",
                           "data": {"trackNumber": "RA123"}},
              "items": [{"offer": {"name": "Чайник", "article": "K-1"}, "quantity": 1, "initialPrice": 2490}]}}
MAPPING = {"root": "order", "customer_kind": "phone",
           "fields": {"customer.value": "phone", "customer.name": "firstName", "customer.email": "email",
                      "status": "status", "total": "totalSumm", "placed_at": "createdAt",
                      "delivery.method": "delivery.code", "delivery.address": "delivery.address.text",
                      "delivery.promised_on": "delivery.date", "delivery.tracking_number": "delivery.data.trackNumber"},
           "items": {"path": "items", "fields": {"name": "offer.name", "sku": "offer.article", "quantity": "quantity",
                                                 "price": "initialPrice"}},
           "status_map": {"new": "created", "assembling": "paid", "send-to-delivery": "shipped",
                          "complete": "delivered", "cancel-other": "cancelled"}}


class ShopStandIn:
    """GET /api/v5/orders/<number> with X-API-KEY, as a RetailCRM-style system answers; can be slow."""

    def __init__(self) -> None:
        self.orders = {"4512": RETAILCRM_ORDER}
        self.delay = 0.0
        self.requests: list[str] = []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stand_in.requests.append(self.path)
                if stand_in.delay:
                    time.sleep(stand_in.delay)
                number = self.path.rsplit("/", 1)[-1]
                if self.headers.get("x-api-key") != KEY:
                    status, body = 403, {"success": False, "errorMsg": "Wrong apiKey value"}
                elif number in stand_in.orders:
                    status, body = 200, stand_in.orders[number]
                else:
                    status, body = 404, {"success": False, "errorMsg": "Not found"}
                raw = json.dumps(body, ensure_ascii=False).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except OSError:
                    pass

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v5/orders/{{number}}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def shop():
    stand_in = ShopStandIn()
    yield stand_in
    stand_in.close()


def configure(client, ws, shop, **extra):
    r = client.put("/api/v1/order-integration", headers=ws.admin, json={
        "lookup_url": shop.url, "auth_header": "X-API-KEY", "auth_value": KEY, "mapping": MAPPING, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_settings_keep_the_auth_value_encrypted_and_the_test_button_maps_the_answer(client, ws, shop):
    out = configure(client, ws, shop)
    assert out["auth_value_set"] is True and "auth_value" not in out and out["timeout_s"] == 1.5
    with session_scope(write=False) as s:
        row = s.get(OrderSettings, ws.id)
        assert row.auth_value.startswith("fernet:") and KEY not in row.auth_value
    r = client.post("/api/v1/order-integration/test", params={"number": "4512"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    order = r.json()["order"]
    assert order["status"] == "shipped" and order["customer"]["value"] == "+7 (916) 555-12-34"
    assert order["items"] == [{"name": "Чайник", "sku": "K-1", "quantity": 1, "price": 2490}]
    assert client.post("/api/v1/order-integration/test", params={"number": "1"}, headers=ws.admin).json() == {
        "found": False, "ms": pytest.approx(0, abs=2000)}
    bad = client.put("/api/v1/order-integration", headers=ws.admin,
                     json={"mapping": {"fields": {"colour": "x"}}})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "mapping.fields.colour"


def test_the_assistant_answers_from_the_pulled_order_and_caches_it(client, ws, shop):
    enable(client, ws)
    configure(client, ws, shop)
    got = inbound(client, ws, kind="email", identity="anna@example.com", text="Где мой заказ 4512? Мой телефон "
                                                                               "+7 916 555-12-34")
    reply = [m["body_text"] for m in messages(client, ws, got["conversation_id"]) if m["author_kind"] == "assistant"]
    assert any("Заказ № 4512 передан в доставку" in t and "RA123" in t for t in reply), reply
    stored = client.get("/api/v1/orders/4512", headers=ws.agent).json()
    assert stored["source"] == "pull" and stored["delivery"]["address"] == "Москва, Ленина 1"
    assert stored["customer"]["value"] == "+79165551234"
    asked = len(shop.requests)
    inbound(client, ws, kind="email", identity="anna@example.com", text="А когда привезут заказ 4512?")
    assert len(shop.requests) == asked  # within cache_s: the stored copy answers
    nothing = inbound(client, ws, kind="email", identity="anna@example.com", text="А заказ 777777 где?")
    texts = [m["body_text"] for m in messages(client, ws, nothing["conversation_id"])]
    assert any("не нашёл заказ № 777777" in t for t in texts)


def test_a_slow_shop_never_holds_the_conversation(client, ws, shop):
    enable(client, ws)
    configure(client, ws, shop, timeout_s=0.3)
    shop.delay = 2.0
    started = time.perf_counter()
    got = inbound(client, ws, kind="email", identity="slow@example.com", text="где мой заказ 4512?")
    assert time.perf_counter() - started < 1.9
    last = decisions(client, ws, got["conversation_id"])[-1]
    assert last["action"] == "handoff" and last["reason"] == "order_unavailable"
    lookup.forget(ws.id)


def test_map_answer_without_a_mapping_takes_our_shape():
    answer = {"data": {"status": "paid", "customer": {"kind": "email", "value": "a@b.ru"}, "extra": 1}}
    assert lookup.map_answer(answer, {"root": "data"}, "9") == {
        "status": "paid", "customer": {"kind": "email", "value": "a@b.ru"}, "number": "9"}
