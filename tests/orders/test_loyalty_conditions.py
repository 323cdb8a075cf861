"""The loyalty tier where agents and policies meet the customer: an automation rule's `loyalty_tier` condition
(routing «Золото → senior team»), an SLA policy's `loyalty_tiers`, and the `{{customer.loyalty_tier}}`
reply-template variable."""

from __future__ import annotations

from otklik.conversations import sla
from otklik.conversations.models import Conversation
from otklik.platform.db import session_scope
from tests.conftest import inbound


def gold_customer(client, ws, phone="+79165557777", purchases=2):
    assert client.post("/api/v1/loyalty/tiers", json={"name": "Золото", "threshold": purchases},
                       headers=ws.admin).status_code == 201
    for i in range(purchases):
        r = client.put(f"/api/v1/orders/G{i}", json={"customer": {"kind": "phone", "value": phone},
                                                      "status": "delivered", "total": 500, "paid": True},
                       headers=ws.agent)
        assert r.status_code == 201, r.text
    return r.json()["customer_id"]


def test_rule_routes_gold_customers_to_the_senior_team(client, ws):
    team = client.post("/api/v1/teams", json={"name": "Старшая смена"}, headers=ws.admin).json()
    r = client.post("/api/v1/rules", json={
        "name": "Золото → старшая смена", "trigger": "conversation_created",
        "conditions": [{"field": "loyalty_tier", "op": "is", "value": "Золото"}],
        "actions": [{"type": "set_team", "value": team["id"]}]}, headers=ws.admin)
    assert r.status_code == 201, r.text
    gold_customer(client, ws)
    gold = inbound(client, ws, kind="phone", identity="+79165557777", text="Здравствуйте, вопрос по заказу")
    plain = inbound(client, ws, kind="phone", identity="+79165550000", text="Здравствуйте, вопрос по заказу")
    got = {c: client.get(f"/api/v1/conversations/{c}", headers=ws.agent).json()["team_id"]
           for c in (gold["conversation_id"], plain["conversation_id"])}
    assert got == {gold["conversation_id"]: team["id"], plain["conversation_id"]: None}
    bad = client.post("/api/v1/rules", json={"name": "x", "trigger": "conversation_created",
                                             "conditions": [{"field": "loyalty_tier", "op": "contains", "value": "З"}],
                                             "actions": [{"type": "add_tag", "value": "x"}]}, headers=ws.admin)
    assert bad.status_code == 422 and "conditions.0.op" in bad.text


def test_sla_policy_by_loyalty_tier(client, ws):
    r = client.post("/api/v1/sla-policies", json={"name": "Золото: 5 минут", "first_response_minutes": 5,
                                                   "business_hours": False,
                                                   "conditions": {"loyalty_tiers": ["Золото"]}}, headers=ws.admin)
    assert r.status_code == 201, r.text
    assert r.json()["conditions"] == {"loyalty_tiers": ["Золото"]}
    bad = client.post("/api/v1/sla-policies", json={"name": "y", "first_response_minutes": 5,
                                                     "conditions": {"loyalty_tiers": "Золото"}}, headers=ws.admin)
    assert bad.status_code == 422 and "conditions.loyalty_tiers" in bad.text
    gold_customer(client, ws)
    gold = inbound(client, ws, kind="phone", identity="+79165557777", text="Где мой заказ?")
    plain = inbound(client, ws, kind="phone", identity="+79165550001", text="Где мой заказ?")
    with session_scope(write=False) as s:
        applies = {k: sla.policy_for(s, s.get(Conversation, v["conversation_id"]))
                   for k, v in (("gold", gold), ("plain", plain))}
    assert applies["gold"] is not None and applies["gold"].name == "Золото: 5 минут"
    assert applies["plain"] is None


def test_template_variable_customer_loyalty_tier(client, ws):
    gold_customer(client, ws)
    conv = inbound(client, ws, kind="phone", identity="+79165557777", text="Привет")
    tpl = client.post("/api/v1/templates", json={"name": "Статус", "body": "Ваш уровень: {{customer.loyalty_tier}}."},
                      headers=ws.admin).json()
    r = client.post(f"/api/v1/templates/{tpl['id']}/render", json={"conversation_id": conv["conversation_id"]},
                    headers=ws.agent)
    assert r.status_code == 200 and r.json()["text"] == "Ваш уровень: Золото." and r.json()["unresolved"] == []
    plain = inbound(client, ws, kind="phone", identity="+79165550002", text="Привет")
    r = client.post(f"/api/v1/templates/{tpl['id']}/render", json={"conversation_id": plain["conversation_id"]},
                    headers=ws.agent)
    assert r.json()["unresolved"] == ["customer.loyalty_tier"]  # no tier: the agent is stopped from sending it
