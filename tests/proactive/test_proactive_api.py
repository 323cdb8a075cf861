"""The proactive API: precise 422s naming the field, roles, another workspace's objects are 404, consent."""

from __future__ import annotations

import pytest


def test_settings_round_trip_and_422s(client, ws):
    r = client.put("/api/v1/proactive/settings", json={"cap_count": 2, "cap_days": 14}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["cap_count"] == 2 and r.json()["quiet_start"] == 21
    assert client.get("/api/v1/proactive/settings", headers=ws.agent).json()["cap_days"] == 14
    for body, field in (({"cap_days": 0}, "cap_days"), ({"quiet_start": 24}, "quiet_start"),
                        ({"cap_count": "1"}, "cap_count"), ({"colour": 1}, "colour")):
        bad = client.put("/api/v1/proactive/settings", json=body, headers=ws.admin)
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == field, bad.text
    assert client.put("/api/v1/proactive/settings", json={"cap_count": 3}, headers=ws.agent).status_code == 403


def test_triggers_listed_with_counts_and_toggled(client, ws):
    listed = client.get("/api/v1/proactive/triggers", headers=ws.agent).json()
    assert [t["kind"] for t in listed] == ["order_delayed", "order_delivered", "order_returned", "cart_abandoned",
                                          "replenishment"]
    assert all(not t["enabled"] and t["counts"]["sent"] == 0 for t in listed)
    assert {t["kind"]: t["marketing"] for t in listed}["cart_abandoned"] is True
    r = client.put("/api/v1/proactive/triggers/cart_abandoned",
                   json={"enabled": True, "params": {"delay_minutes": 120}}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["enabled"] and r.json()["params"]["delay_minutes"] == 120
    for body, field in (({"params": {"delay_minutes": 1}}, "params.delay_minutes"),
                        ({"params": {"speed": 1}}, "params.speed"), ({"enabled": "yes"}, "enabled"),
                        ({"text_ru": "{{password}}"}, "text_ru"), ({"text_ru": ""}, "text_ru"),
                        ({"whatsapp_template": "Bad Name"}, "whatsapp_template")):
        bad = client.put("/api/v1/proactive/triggers/cart_abandoned", json=body, headers=ws.admin)
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == field, (body, bad.text)
    assert client.put("/api/v1/proactive/triggers/nope", json={"enabled": True}, headers=ws.admin).status_code == 404
    assert client.put("/api/v1/proactive/triggers/cart_abandoned", json={"enabled": False},
                      headers=ws.agent).status_code == 403


def test_campaign_lifecycle_and_isolation(client, ws, other_ws):
    r = client.post("/api/v1/proactive/campaigns", json={
        "name": "Весна", "text_ru": "{{name}}, новая коллекция", "segment": {"languages": ["ru"], "channels": ["telegram"]},
        "scheduled_at": "2030-03-01T10:00:00+03:00"}, headers=ws.admin)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert campaign["status"] == "draft" and campaign["marketing"] is True
    assert campaign["scheduled_at"].startswith("2030-03-01T07:00:00")
    cid = campaign["id"]
    patched = client.patch(f"/api/v1/proactive/campaigns/{cid}", json={"name": "Весна 2030"}, headers=ws.admin)
    assert patched.status_code == 200 and patched.json()["name"] == "Весна 2030"
    assert client.post(f"/api/v1/proactive/campaigns/{cid}/schedule", headers=ws.admin).json()["status"] == "scheduled"
    assert client.post(f"/api/v1/proactive/campaigns/{cid}/schedule", headers=ws.admin).status_code == 409
    got = client.get(f"/api/v1/proactive/campaigns/{cid}", headers=ws.agent)
    assert got.status_code == 200 and got.json()["counts"]["claimed"] == 0
    # another workspace sees none of it
    for method, path in (("get", f"/api/v1/proactive/campaigns/{cid}"), ("patch", f"/api/v1/proactive/campaigns/{cid}"),
                         ("post", f"/api/v1/proactive/campaigns/{cid}/cancel"),
                         ("get", f"/api/v1/proactive/sends?campaign_id={cid}")):
        kwargs = {"json": {"name": "x"}} if method == "patch" else {}
        assert getattr(client, method)(path, headers=other_ws.admin, **kwargs).status_code == 404, path
    assert client.get("/api/v1/proactive/campaigns", headers=other_ws.admin).json() == []
    assert client.post(f"/api/v1/proactive/campaigns/{cid}/cancel", headers=ws.admin).json()["status"] == "cancelled"
    assert client.patch(f"/api/v1/proactive/campaigns/{cid}", json={"name": "x"}, headers=ws.admin).status_code == 409


@pytest.mark.parametrize(("body", "field"), [
    ({"text_ru": "x"}, "name"),
    ({"name": "x"}, "text_ru"),
    ({"name": "x", "text_ru": "x", "segment": {"channels": ["widget"]}}, "segment.channels.0"),
    ({"name": "x", "text_ru": "x", "segment": {"age": [1]}}, "segment.age"),
    ({"name": "x", "text_ru": "x", "segment": {"tags": "vip"}}, "segment.tags"),
    ({"name": "x", "text_ru": "x", "scheduled_at": "завтра"}, "scheduled_at"),
    ({"name": "x", "text_ru": "x", "rate_per_second": 0}, "rate_per_second"),
    ({"name": "x", "text_ru": "x", "marketing": "no"}, "marketing"),
    ({"name": "x" * 201, "text_ru": "x"}, "name"),
    ({"name": "x", "text_ru": "x", "audience": "all"}, "audience"),
])
def test_campaign_422_names_the_field(client, ws, body, field):
    r = client.post("/api/v1/proactive/campaigns", json=body, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == field, r.text


def test_agents_cannot_create_campaigns_and_bad_json_is_400(client, ws):
    assert client.post("/api/v1/proactive/campaigns", json={"name": "x", "text_ru": "x"},
                       headers=ws.agent).status_code == 403
    r = client.post("/api/v1/proactive/campaigns", content=b"{not json", headers={**ws.admin,
                                                                                "content-type": "application/json"})
    assert r.status_code in (400, 422)


def test_consent_is_recorded_with_evidence_and_isolated(client, ws, other_ws):
    customer = client.post("/api/v1/customers", json={"name": "Анна", "identities": [
        {"kind": "email", "external_id": "anna@example.com"}]}, headers=ws.agent).json()
    path = f"/api/v1/proactive/customers/{customer['id']}/consent"
    assert client.get(path, headers=ws.agent).json() == {"customer_id": customer["id"], "opted_out": False,
                                                         "marketing_consent": False, "history": []}
    missing = client.post(path, json={"action": "consent_given"}, headers=ws.agent)
    assert missing.status_code == 422 and missing.json()["error"]["fields"][0]["field"] == "evidence"
    bad = client.post(path, json={"action": "maybe"}, headers=ws.agent)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "action"
    ok = client.post(path, json={"action": "consent_given", "source": "shop",
                                 "evidence": "«Согласен получать рекламные рассылки» at checkout"}, headers=ws.agent)
    assert ok.status_code == 200 and ok.json()["marketing_consent"] is True
    assert ok.json()["history"][0]["source"] == "shop" and ok.json()["history"][0]["user_id"] == ws.agent_id
    assert client.get(path, headers=other_ws.agent).status_code == 404
    assert client.post(path, json={"action": "opted_out"}, headers=other_ws.agent).status_code == 404
    assert client.get(f"/api/v1/proactive/sends?customer_id={customer['id']}", headers=other_ws.agent).status_code == 404


def test_cart_event_422s(client, ws):
    base = {"cart_id": "C-9", "customer": {"kind": "email", "value": "x@example.com"},
            "items": [{"name": "Чайник", "quantity": 1}]}
    for body, field in (({**base, "cart_id": ""}, "cart_id"), ({**base, "customer": None}, "customer"),
                        ({**base, "customer": {"kind": "fax", "value": "1"}}, "customer.kind"),
                        ({**base, "items": []}, "items"), ({**base, "items": [{"name": "X", "quantity": -1}]},
                                                           "items.0.quantity"),
                        ({**base, "cart_url": "javascript:alert(1)"}, "cart_url"),
                        ({**base, "abandoned_at": "вчера"}, "abandoned_at"), ({**base, "coupon": "X"}, "coupon")):
        r = client.post("/api/v1/proactive/carts", json=body, headers=ws.agent)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == field, (body, r.text)


def test_stats_shape(client, ws):
    r = client.get("/api/v1/proactive/stats", headers=ws.agent)
    assert r.status_code == 200
    assert set(r.json()["triggers"]["order_delayed"]) == {"claimed", "queued", "pending", "skipped", "sent",
                                                          "delivered", "replied", "converted"}


def test_cart_event_is_signed_like_an_order_push_when_the_workspace_requires_it(client, ws):
    import json

    from otklik.orders.lookup import sign

    r = client.put("/api/v1/order-integration", json={"rotate_signing_secret": True, "require_signature": True},
                   headers=ws.admin)
    secret = r.json()["signing_secret"]
    raw = json.dumps({"cart_id": "S-1", "customer": {"kind": "email", "value": "s@example.com"},
                      "items": [{"name": "Чайник"}]}).encode()
    headers = {**ws.agent, "content-type": "application/json"}
    assert client.post("/api/v1/proactive/carts", content=raw, headers=headers).status_code == 401
    wrong = client.post("/api/v1/proactive/carts", content=raw, headers={**headers, "X-Otklik-Signature": sign("x", raw)})
    assert wrong.status_code == 401
    ok = client.post("/api/v1/proactive/carts", content=raw, headers={**headers, "X-Otklik-Signature": sign(secret, raw)})
    assert ok.status_code == 202, ok.text
