"""Workspace isolation: a user of workspace A gets 404 for every object of workspace B, on every endpoint.

The test walks the app's own route table, so an endpoint added later without a case here fails the test.
"""

from __future__ import annotations

import re

import pytest

from tests.conftest import inbound

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def foreign(client, ws, other_ws):
    """Objects that belong to workspace B (`other_ws`)."""
    got = inbound(client, other_ws, identity="b@example.com", text="чужой заказ")
    cust = client.post("/api/v1/customers", json={"name": "B", "identities": [
        {"kind": "email", "external_id": "b2@example.com"}]}, headers=other_ws.admin).json()
    team = client.post("/api/v1/teams", json={"name": "B team"}, headers=other_ws.admin).json()
    token = client.post("/api/v1/api-tokens", json={"name": "b"}, headers=other_ws.admin).json()
    article = client.post("/api/v1/articles", json={"title": "B", "body": "b"}, headers=other_ws.admin).json()
    att = client.post("/api/v1/attachments", files={"file": ("a.png", PNG, "image/png")},
                      headers=other_ws.admin).json()
    reply = client.post(f"/api/v1/conversations/{got['conversation_id']}/messages", json={"text": "ответ"},
                        headers=other_ws.admin).json()
    outbox = client.get("/api/v1/outbox", headers=other_ws.admin).json()
    # B's highest number: A (which has one conversation) has no conversation with it
    number = max(inbound(client, other_ws, identity=f"b{i}@example.com")["conversation_number"] for i in range(3))
    # B's order with that number too (issue 16): A reading it must get 404
    client.put(f"/api/v1/orders/{number}", json={"customer": {"kind": "email", "value": "b@example.com"},
                                                "status": "paid"}, headers=other_ws.admin).raise_for_status()
    return {
        "conversation_id": got["conversation_id"], "customer_id": cust["id"], "team_id": team["id"],
        "token_id": token["id"], "article_id": article["id"], "attachment_id": att["id"],
        "identity_id": cust["identities"][0]["id"], "user_id": other_ws.agent_id, "outbox_id": outbox[0]["id"],
        "number": number, "message_id": reply["id"],
        "account_id": client.post("/api/v1/channels/accounts", json={  # a channel account (issue 4, D1)
            "kind": "max", "config": {"api_base_url": "http://127.0.0.1:9"},
            "secrets": {"bot_token": "b-workspace-token-0123456789"}}, headers=other_ws.admin).json()["id"],
        "template_id": client.post("/api/v1/templates", json={"name": "B", "body": "b"},
                                   headers=other_ws.admin).json()["id"],
        "task_id": client.post("/api/v1/tasks", json={"customer_id": cust["id"], "title": "B"},
                               headers=other_ws.admin).json()["id"],
        "other_id": cust["id"],  # a duplicate suggestion's other customer
        "faq_id": client.post("/api/v1/faq", json={"question": "B?", "answer": "b"},
                              headers=other_ws.admin).json()["id"],
        "rule_id": client.post("/api/v1/rules", json={"name": "B", "trigger": "customer_message", "enabled": False,
                                                      "actions": [{"type": "add_tag", "value": "b"}]},
                               headers=other_ws.admin).json()["id"],
        "macro_id": client.post("/api/v1/macros", json={"name": "B", "actions": [{"type": "add_tag", "value": "b"}]},
                                headers=other_ws.admin).json()["id"],
        "calendar_id": client.post("/api/v1/calendars", json={"name": "B", "time_zone": "Europe/Moscow"},
                                   headers=other_ws.admin).json()["id"],
        "policy_id": client.post("/api/v1/sla-policies", json={"name": "B", "first_response_minutes": 5},
                                 headers=other_ws.admin).json()["id"],
        "compensation_id": client.post(f"/api/v1/conversations/{got['conversation_id']}/compensations",
                                       json={"kind": "refund", "amount": "5000", "reason": "b"},
                                       headers=other_ws.agent).json()["id"],
        "limit_id": client.put("/api/v1/compensation-limits", json={"subject": "role:agent", "kind": "gift"},
                               headers=other_ws.admin).json()["id"],
        "connection_id": (crm_id := client.post("/api/v1/integrations/crm/connections", json={  # issue 18
            "kind": "retailcrm", "config": {"base_url": "http://127.0.0.1:9"}},
            headers=other_ws.admin).json()["id"]),
        "sync_id": client.post(f"/api/v1/integrations/crm/connections/{crm_id}/sync", json={},
                               headers=other_ws.admin).json()["id"],
        "proposal_id": _proposal(other_ws, article["id"]),
        "session_id": _login_session(client, other_ws),  # B's agent signed in (issue 17 §6's sessions list)  # a question variant proposed from an agent's answer
        "scenario_id": (scenario_id := client.post("/api/v1/mystery/scenarios", json={  # issue 15: mystery shopper
            "title": "B", "opening": "b"}, headers=other_ws.admin).json()["id"]),
        "run_id": client.post(f"/api/v1/mystery/scenarios/{scenario_id}/runs", json={},
                              headers=other_ws.admin).json()["id"],
        "tier_id": client.post("/api/v1/loyalty/tiers", json={"name": "B", "threshold": 1},  # issue 16: loyalty
                               headers=other_ws.admin).json()["id"],
        "referral_id": _referral(client, other_ws, referrer=got["customer_id"], referred=cust["id"]),
        "campaign_id": client.post("/api/v1/proactive/campaigns", json={"name": "B", "text_ru": "b"},  # issue 16
                                   headers=other_ws.admin).json()["id"],
        "kind": "order_delivered",  # a proactive trigger: each workspace has its own (OWN_NAMESPACE below)
        **_booking(client, other_ws, customer_id=cust["id"]),  # issue 16: a service, an installer, a visit
        "phrase_rule_id": client.post("/api/v1/phrase-rules", json={"language": "ru", "phrase": "б", "severity":
                                                                    "avoid", "reason": "b"},
                                      headers=other_ws.admin).json()["id"],
    }


def _booking(client, other_ws, *, customer_id: int) -> dict[str, int]:
    h = other_ws.admin
    cal = client.post("/api/v1/calendars", json={"name": "B visits", "time_zone": "Europe/Moscow"}, headers=h).json()
    svc = client.post("/api/v1/bookings/services", json={"name": "B", "kind": "assembly", "duration_minutes": 60,
                                                         "price": 1}, headers=h).json()
    inst = client.post("/api/v1/bookings/installers", json={"name": "B", "calendar_id": cal["id"]}, headers=h).json()
    visit = client.post("/api/v1/bookings", json={"service_id": svc["id"], "customer_id": customer_id,
                                                  "start": "2027-03-01T10:00:00+03:00"}, headers=h)
    assert visit.status_code == 201, visit.text
    return {"service_id": svc["id"], "installer_id": inst["id"], "booking_id": visit.json()["id"]}


def _referral(client, other_ws, *, referrer: int, referred: int) -> int:
    code = client.post(f"/api/v1/loyalty/customers/{referrer}/referral-code", headers=other_ws.admin).json()["code"]
    r = client.post(f"/api/v1/loyalty/customers/{referred}/referrer", json={"code": code}, headers=other_ws.admin)
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _login_session(client, other_ws) -> int:
    from tests.conftest import PASSWORD

    r = client.post("/api/v1/auth/login", json={"email": other_ws.agent_email, "password": PASSWORD,
                                                "workspace": other_ws.slug})
    assert r.status_code == 200, r.text
    cookie = r.cookies.get("otklik_session")
    client.cookies.clear()
    return int(client.get("/api/v1/auth/sessions", cookies={"otklik_session": cookie}).json()[0]["id"])


def _proposal(other_ws, article_id: int) -> int:
    from otklik.knowledge.models import VariantProposal
    from otklik.platform.db import session_scope

    with session_scope() as session:
        row = VariantProposal(workspace_id=other_ws.id, article_id=article_id, text="вопрос Б", key="вопрос б",
                              source="link", status="pending")
        session.add(row)
        session.flush()
        return row.id


# Bodies valid in shape, so the request reaches the object lookup (a 422 would prove nothing).
BODIES = {
    ("PATCH", "/api/v1/conversations/{conversation_id}"): {"priority": "high"},
    ("POST", "/api/v1/conversations/{conversation_id}/merge"): {"source_id": 1},
    ("POST", "/api/v1/conversations/{conversation_id}/messages"): {"text": "x"},
    ("PATCH", "/api/v1/customers/{customer_id}"): {"name": "x"},
    ("POST", "/api/v1/customers/{customer_id}/identities"): {"kind": "email", "external_id": "new@example.com"},
    ("POST", "/api/v1/customers/{customer_id}/merge"): {"source_id": 1},
    ("POST", "/api/v1/customers/{customer_id}/notes"): {"body": "x"},
    ("POST", "/api/v1/customers/{customer_id}/erase"): {"confirm": True},
    ("PATCH", "/api/v1/users/{user_id}"): {"name": "x"},
    ("PUT", "/api/v1/teams/{team_id}/members"): {"member_ids": []},
    ("PUT", "/api/v1/teams/{team_id}/routing"): {"auto_assign": False},
    ("PUT", "/api/v1/users/{user_id}/skills"): {"languages": []},
    ("PATCH", "/api/v1/articles/{article_id}"): {"published": False},
    ("PATCH", "/api/v1/faq/{faq_id}"): {"published": False},
    ("PATCH", "/api/v1/templates/{template_id}"): {"body": "x"},
    ("POST", "/api/v1/templates/{template_id}/render"): {"variables": {}},
    ("PATCH", "/api/v1/tasks/{task_id}"): {"title": "x"},
    ("POST", "/api/v1/whatsapp/conversations/{conversation_id}/template"): {"name": "order_update"},
    ("POST", "/api/v1/customers/{customer_id}/suggestions/{other_id}/dismiss"): {"reason": "x"},
    ("PATCH", "/api/v1/channels/accounts/{account_id}"): {"name": "x"},
    ("POST", "/api/v1/channels/accounts/{account_id}/connect"): {"base_url": "https://a.example.ru"},
    ("PATCH", "/api/v1/rules/{rule_id}"): {"enabled": True},
    ("PATCH", "/api/v1/macros/{macro_id}"): {"name": "x"},
    ("POST", "/api/v1/macros/{macro_id}/apply"): {"conversation_id": 1},
    ("PATCH", "/api/v1/calendars/{calendar_id}"): {"name": "x"},
    ("PUT", "/api/v1/teams/{team_id}/calendar"): {"calendar_id": None},
    ("PATCH", "/api/v1/sla-policies/{policy_id}"): {"name": "x"},
    ("PUT", "/api/v1/conversations/{conversation_id}/consumer-law"): {"inputs": {}},
    ("POST", "/api/v1/conversations/{conversation_id}/compensations"): {"kind": "gift", "amount": "1", "reason": "x"},
    ("PATCH", "/api/v1/phrase-rules/{phrase_rule_id}"): {"enabled": False},
    ("POST", "/api/v1/conversations/{conversation_id}/review/publish"): {"text": "x"},
    ("POST", "/api/v1/conversations/{conversation_id}/qa/review"): {"items": {}},
    ("POST", "/api/v1/instagram/conversations/{conversation_id}/private-reply"): {"text": "x"},
    ("PATCH", "/api/v1/integrations/crm/connections/{connection_id}"): {"name": "x"},
    ("PATCH", "/api/v1/loyalty/tiers/{tier_id}"): {"name": "x"},
    ("POST", "/api/v1/loyalty/customers/{customer_id}/referrer"): {"code": "ABCDEFGH"},
    ("PATCH", "/api/v1/proactive/campaigns/{campaign_id}"): {"name": "x"},
    ("POST", "/api/v1/proactive/customers/{customer_id}/consent"): {"action": "opted_out"},
    ("POST", "/api/v1/bookings/{booking_id}/reschedule"): {"start": "2027-03-02T10:00:00+03:00"},
    ("PATCH", "/api/v1/bookings/services/{service_id}"): {"price": 2},
    ("PATCH", "/api/v1/bookings/installers/{installer_id}"): {"name": "x"},
    ("POST", "/api/v1/bookings/{booking_id}/status"): {"status": "missed"},
}
# Create-or-update by a key in the caller's own namespace: A's PUT of a number B also uses makes A's own order
# (tests/orders/test_orders_api.py: B's order stays B's and is 404 to A).
OWN_NAMESPACE = {("PUT", "/api/v1/orders/{number}"),
                 ("PUT", "/api/v1/proactive/triggers/{kind}")}  # a trigger kind: A's switch of A's own trigger
# Query strings valid in shape, for the same reason.
QUERIES = {
    ("GET", "/api/v1/calendars/{calendar_id}/add"): {"start": "2026-03-04T10:00:00+03:00", "minutes": 5},
    ("GET", "/api/v1/calendars/{calendar_id}/between"): {"start": "2026-03-04T10:00:00+03:00",
                                                          "end": "2026-03-05T10:00:00+03:00"},
    ("GET", "/api/v1/calendars/{calendar_id}/days"): {"year": 2026},
}


def test_every_object_endpoint_hides_other_workspaces(app, client, ws, foreign):
    own_conv = inbound(client, ws, identity="a@example.com")["conversation_id"]
    own_customer = client.get(f"/api/v1/conversations/{own_conv}", headers=ws.admin).json()["customer"]["id"]
    checked = []
    for template, operations in app.openapi()["paths"].items():
        if "{" not in template:
            continue
        path = template
        for name in re.findall(r"{(\w+)}", template):
            if name not in foreign:
                pytest.fail(f"no foreign object for {{{name}}} in {template}: add it to the fixture")
            path = path.replace(f"{{{name}}}", str(foreign[name]))
        for method in (m.upper() for m in operations):
            if (method, template) in OWN_NAMESPACE:
                continue
            route = type("R", (), {"path": template})
            body = BODIES.get((method, template))
            if body and "source_id" in body:
                # merging B's object into A's, and A's into B's: both must be 404
                url = route.path.replace("{conversation_id}", str(own_conv)).replace("{customer_id}",
                                                                                     str(own_customer))
                source = foreign["conversation_id" if "conversations" in route.path else "customer_id"]
                r = client.request(method, url, json={"source_id": source}, headers=ws.admin)
                assert r.status_code == 404, (method, url, r.status_code, r.text)
                body = {"source_id": own_conv if "conversations" in route.path else own_customer}
            r = client.request(method, path, json=body, params=QUERIES.get((method, template)), headers=ws.admin)
            assert r.status_code == 404, (method, route.path, r.status_code, r.text)
            assert r.json()["error"]["code"] == "not_found"
            checked.append((method, route.path))
    assert len(checked) >= 20, checked


def test_lists_and_search_never_show_other_workspaces(client, ws, other_ws):
    inbound(client, other_ws, identity="secret@example.com", text="секретный заказ")
    for url, params in [("/api/v1/conversations", {}), ("/api/v1/customers", {}),
                        ("/api/v1/messages/search", {"q": "секретный"}), ("/api/v1/customers", {"q": "secret"}),
                        ("/api/v1/conversations", {"q": "секретный"}),
                        ("/api/v1/audit", {"entity_type": "customer"}), ("/api/v1/audit", {"entity_type": "conversation"}),
                        ("/api/v1/outbox", {}), ("/api/v1/articles", {}), ("/api/v1/faq", {}),
                        ("/api/v1/knowledge/search", {"q": "секретный"})]:
        r = client.get(url, params=params, headers=ws.admin)
        assert r.status_code == 200, r.text
        items = r.json()["items"] if isinstance(r.json(), dict) else r.json()
        assert items == [], (url, items)
    users = client.get("/api/v1/users", headers=ws.admin).json()
    assert {u["id"] for u in users} == {ws.admin_id, ws.agent_id}


def test_foreign_references_in_bodies_are_refused(client, ws, other_ws, foreign):
    cid = inbound(client, ws)["conversation_id"]
    r = client.patch(f"/api/v1/conversations/{cid}", json={"team_id": foreign["team_id"]}, headers=ws.admin)
    assert r.status_code == 422
    r = client.post("/api/v1/conversations", json={"customer_id": foreign["customer_id"], "channel": "email"},
                    headers=ws.admin)
    assert r.status_code == 404
    r = client.post(f"/api/v1/conversations/{cid}/messages",
                    json={"text": "x", "attachment_ids": [foreign["attachment_id"]]}, headers=ws.admin)
    assert r.status_code == 422
    r = client.post("/api/v1/teams", json={"name": "mix", "member_ids": [other_ws.agent_id]}, headers=ws.admin)
    assert r.status_code == 422
