"""Orders pushed by the shop: the contract (PUT/GET), idempotency and history, batches, CSV, signatures,
isolation between workspaces and hostile input."""

from __future__ import annotations

import json

from otklik.orders.lookup import sign

ORDER = {"customer": {"kind": "phone", "value": "8 (916) 555-12-34", "name": "Анна"}, "status": "paid",
         "items": [{"name": "Чайник", "sku": "K-1", "quantity": 1, "price": 2490},
                   {"name": "Фильтр", "sku": "F-2", "quantity": 2, "price": 150.5}],
         "total": 2791, "paid": True,
         "delivery": {"method": "courier", "address": "Москва, Ленина 1", "tracking_url": "https://track.example/AB1",
                      "promised_on": "2026-12-10"},
         "placed_at": "2026-12-01T10:00:00+03:00"}


def put(client, ws, number, body, headers=None):
    return client.put(f"/api/v1/orders/{number}", json=body, headers=headers or ws.agent)


def test_put_creates_then_get_returns_the_stored_order(client, ws):
    r = put(client, ws, "4512", ORDER)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["number"] == "4512" and order["status"] == "paid" and order["total"] == 2791
    assert order["customer"] == {"kind": "phone", "value": "+79165551234", "name": "Анна"}
    assert order["items"][1] == {"name": "Фильтр", "sku": "F-2", "quantity": 2, "price": 150.5}
    assert order["delivery"]["promised_on"] == "2026-12-10" and order["paid"] is True
    assert order["payment_status"] == "paid"
    assert order["placed_at"].startswith("2026-12-01T07:00:00")
    assert [h["status"] for h in order["status_history"]] == ["paid"]
    got = client.get("/api/v1/orders/4512", headers=ws.agent)
    assert got.status_code == 200 and got.json()["number"] == "4512" and got.json()["customer"] == order["customer"]
    # the customer was created with the phone, and finds the order
    customer_id = order["customer_id"]
    listed = client.get(f"/api/v1/customers/{customer_id}/orders", headers=ws.agent).json()
    assert [o["number"] for o in listed] == ["4512"]
    c = client.get(f"/api/v1/customers/{customer_id}", headers=ws.agent).json()
    assert c["name"] == "Анна" and c["identities"][0]["external_id"] == "+79165551234"


def test_same_body_twice_changes_nothing_and_status_change_appends_history(client, ws):
    assert put(client, ws, "100", ORDER).status_code == 201
    again = put(client, ws, "100", ORDER)
    assert again.status_code == 200
    assert [h["status"] for h in again.json()["status_history"]] == ["paid"]
    first_updated = again.json()["updated_at"]
    shipped = put(client, ws, "100", {**ORDER, "status": "shipped"})
    assert shipped.status_code == 200
    assert [h["status"] for h in shipped.json()["status_history"]] == ["paid", "shipped"]
    assert shipped.json()["updated_at"] >= first_updated
    # a partial body (status only) keeps the rest
    delivered = put(client, ws, "100", {"status": "delivered"})
    assert delivered.status_code == 200, delivered.text
    body = delivered.json()
    assert body["status"] == "delivered" and body["total"] == 2791 and len(body["items"]) == 2
    assert [h["status"] for h in body["status_history"]] == ["paid", "shipped", "delivered"]
    assert put(client, ws, "100", {"status": "delivered"}).json()["status_history"] == body["status_history"]


def test_existing_customer_is_found_by_identity(client, ws):
    c = client.post("/api/v1/customers", json={"name": "Ivan", "identities": [
        {"kind": "email", "external_id": "ivan@example.com"}]}, headers=ws.agent).json()
    r = put(client, ws, "200", {**ORDER, "customer": {"kind": "email", "value": " IVAN@example.com"}})
    assert r.status_code == 201 and r.json()["customer_id"] == c["id"]


def test_invalid_fields_are_422_naming_the_field(client, ws):
    cases = [
        ({**ORDER, "items": [{"name": "X", "quantity": -1, "price": 1}]}, "items.0.quantity"),
        ({**ORDER, "status": "lost_in_space"}, "status"),
        ({**ORDER, "placed_at": "01.12.2026"}, "placed_at"),
        ({**ORDER, "placed_at": "2026-13-45T00:00:00"}, "placed_at"),
        ({**ORDER, "delivery": {**ORDER["delivery"], "promised_on": "завтра"}}, "delivery.promised_on"),
        ({**ORDER, "total": -5}, "total"),
        ({**ORDER, "customer": {"kind": "fax", "value": "1"}}, "customer.kind"),
        ({**ORDER, "customer": {"kind": "phone", "value": "12"}}, "customer.value"),
        ({**ORDER, "items": [{"name": "X", "quantity": "много"}]}, "items.0.quantity"),
        ({**ORDER, "delivery": {"tracking_url": "javascript:alert(1)"}}, "delivery.tracking_url"),
        ({**ORDER, "surprise": 1}, "surprise"),
        ({k: v for k, v in ORDER.items() if k != "customer"}, "customer"),
    ]
    for body, field in cases:
        r = put(client, ws, "300", body)
        assert r.status_code == 422, (field, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid" and error["fields"][0]["field"] == field, (field, error)
    assert client.get("/api/v1/orders/300", headers=ws.agent).status_code == 404
    assert put(client, ws, "bad number!", ORDER).status_code == 422


def test_another_workspaces_order_is_404(client, ws, other_ws):
    assert put(client, ws, "777", ORDER).status_code == 201
    assert client.get("/api/v1/orders/777", headers=other_ws.agent).status_code == 404
    # the same number in the other workspace is its own order
    mine = put(client, other_ws, "777", {**ORDER, "status": "created"})
    assert mine.status_code == 201
    assert client.get("/api/v1/orders/777", headers=ws.agent).json()["status"] == "paid"
    assert client.get("/api/v1/orders/777").status_code == 401


def test_hostile_json_is_never_a_500(client, ws):
    bodies = [b"{", b"[]", b'"x"', b"null", b'{"status": "paid", "items": ' + b"[" * 100 + b"]" * 100 + b"}",
              b'{"customer": {"kind": "email", "value": "\\ud800@x.ru"}}', b"\xff\xfe", b'{"total": NaN}',
              json.dumps({**ORDER, "items": "all of them"}).encode(), json.dumps({**ORDER, "attributes": [1]}).encode(),
              json.dumps({**ORDER, "paid": {"x": 1}}).encode(), json.dumps({**ORDER, "total": "1e999999"}).encode(),
              json.dumps({**ORDER, "items": [{"name": "x" * 301}]}).encode()]
    for raw in bodies:
        r = client.put("/api/v1/orders/500", content=raw, headers={**ws.agent, "Content-Type": "application/json"})
        assert r.status_code in (400, 413, 422), (raw[:40], r.status_code, r.text)
    r = client.post("/api/v1/orders/batch", content=b'{"orders": {}}', headers={**ws.agent,
                                                                                 "Content-Type": "application/json"})
    assert r.status_code == 422


def test_batch_stores_the_good_and_names_the_bad(client, ws):
    orders = [{"number": f"B{i}", **ORDER} for i in range(5)]
    orders[2] = {**orders[2], "status": "teleported"}
    orders.append({"number": "B9", "status": "paid"})  # new without a customer
    r = client.post("/api/v1/orders/batch", json={"orders": orders}, headers=ws.agent)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 4 and body["error"] == 2
    assert body["items"][2]["error"]["fields"][0]["field"] == "orders.2.status"
    assert body["items"][5]["error"]["fields"][0]["field"] == "customer"
    again = client.post("/api/v1/orders/batch", json={"orders": orders[:2]}, headers=ws.agent).json()
    assert again["unchanged"] == 2 and again["created"] == 0
    # all from the same phone: one customer
    ids = {client.get(f"/api/v1/orders/B{i}", headers=ws.agent).json()["customer_id"] for i in (0, 1, 3)}
    assert len(ids) == 1
    atomic = client.post("/api/v1/orders/batch", json={"orders": orders, "atomic": True}, headers=ws.agent)
    assert atomic.status_code == 422 and atomic.json()["error"]["fields"][0]["field"] == "orders.2.status"


def test_csv_import(client, ws):
    csv = ("number;customer_kind;customer_value;customer_name;status;placed_at;total;paid;items;promised_on\n"
           "C1;email;olga@example.com;Ольга;delivered;2026-10-01;3000;да;Тостер|T-1|1|3000;2026-10-05\n"
           "C2;phone;+79161112233;Пётр;shipped;2026-11-20;150;нет;Фильтр||2|75;\n"
           "C3;phone;+79161112233;Пётр;sold;2026-11-20;150;нет;;\n")
    r = client.post("/api/v1/orders/import", content=csv.encode(), headers={**ws.admin, "Content-Type": "text/csv"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["created"] == 2 and body["error"] == 1
    assert body["items"][2]["error"]["fields"][0]["field"] == "rows.2.status"
    c1 = client.get("/api/v1/orders/C1", headers=ws.agent).json()
    assert c1["items"] == [{"name": "Тостер", "sku": "T-1", "quantity": 1, "price": 3000}] and c1["paid"] is True
    bad = client.post("/api/v1/orders/import", content=b"number,colour\n1,red\n",
                      headers={**ws.admin, "Content-Type": "text/csv"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "columns.colour"
    assert client.post("/api/v1/orders/import", content=b"\xff\xfe", headers=ws.admin).status_code == 422


def test_signed_pushes(client, ws):
    r = client.put("/api/v1/order-integration", json={"rotate_signing_secret": True, "require_signature": True},
                   headers=ws.admin)
    assert r.status_code == 200, r.text
    secret = r.json()["signing_secret"]
    assert client.get("/api/v1/order-integration", headers=ws.admin).json().get("signing_secret") is None
    raw = json.dumps(ORDER).encode()
    headers = {**ws.agent, "Content-Type": "application/json"}
    assert client.put("/api/v1/orders/900", content=raw, headers=headers).status_code == 401
    wrong = client.put("/api/v1/orders/900", content=raw, headers={**headers, "X-Otklik-Signature": sign("x", raw)})
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "bad_signature"
    ok = client.put("/api/v1/orders/900", content=raw, headers={**headers, "X-Otklik-Signature": sign(secret, raw)})
    assert ok.status_code == 201, ok.text
    assert client.put("/api/v1/order-integration", json={"lookup_url": "ftp://x"}, headers=ws.admin).status_code == 422
    assert client.put("/api/v1/order-integration", json={"require_signature": False},
                      headers=ws.agent).status_code == 403


def test_merging_customers_moves_their_orders(client, ws):
    a = put(client, ws, "M1", ORDER).json()["customer_id"]
    b = put(client, ws, "M2", {**ORDER, "customer": {"kind": "email", "value": "m2@example.com"}}).json()
    r = client.post(f"/api/v1/customers/{a}/merge", json={"source_id": b["customer_id"]}, headers=ws.agent)
    assert r.status_code == 200, r.text
    assert client.get("/api/v1/orders/M2", headers=ws.agent).json()["customer_id"] == a


def test_orders_import_command(ws, tmp_path, capsys):
    from otklik.cli import main

    path = tmp_path / "orders.csv"
    path.write_text("number,customer_kind,customer_value,status,total,items\n"
                    "K1,email,k1@example.com,paid,100,Тостер|T-1|1|100\n"
                    "K2,email,k2@example.com,flying,100,\n", encoding="utf-8")
    assert main(["orders-import", str(path), "--workspace", ws.slug]) == 1
    captured = capsys.readouterr()
    assert "1 created" in captured.out and "row 3: rows.1.status" in captured.err
    assert main(["orders-import", str(path), "--workspace", "no-such-workspace"]) == 2


def test_status_changes_are_announced_and_purchases_counted(client, ws, monkeypatch):
    from otklik.orders import service
    from otklik.platform import events
    from otklik.platform.db import session_scope

    seen: list = []
    real = events.after_commit

    def record(session, action):
        if isinstance(action, events.Event) and action.type == "order.status_changed":
            seen.append(action)
        real(session, action)

    monkeypatch.setattr(events, "after_commit", record)
    put(client, ws, "E1", ORDER)
    put(client, ws, "E1", ORDER)  # unchanged: nothing announced
    put(client, ws, "E1", {"status": "delivered"})
    put(client, ws, "E2", {**ORDER, "status": "cancelled"})
    mine = [(e.data["number"], e.data["from"], e.data["to"]) for e in seen if e.workspace_id == ws.id]
    assert mine == [("E1", None, "paid"), ("E1", "paid", "delivered"), ("E2", None, "cancelled")]
    customer_id = client.get("/api/v1/orders/E1", headers=ws.agent).json()["customer_id"]
    with session_scope(write=False) as s:
        count, total = service.purchase_summary(s, ws.id, [customer_id])[customer_id]
    assert count == 1 and int(total) == 2791
