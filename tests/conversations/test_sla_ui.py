"""Settings → SLA: create a policy from the form (hours typed as «2 ч»), edit its order and escalation, 422 on a
bad duration; an agent reads but cannot change; the page in English."""

from __future__ import annotations

from tests.web._ui import Browser


def test_supervisor_creates_and_edits_a_policy(app, client, ws):
    b = Browser(app, ws.admin_email)
    assert "Политики SLA" in b.get("/settings").text
    page = b.get("/settings/sla")
    assert page.status_code == 200 and 'id="sla-empty"' in page.text
    r = b.post("/settings/sla", {"name": "Чат <b>", "first": "2 ч", "next": "90", "resolution": "3 д",
                                 "business_hours": "on", "enabled": "on", "channels": ["widget", "telegram"],
                                 "priorities": ["urgent"], "warn_percent": "80", "raise_priority": "on",
                                 "attr_key": "loyalty", "attr_values": "gold platinum"}, htmx=False)
    assert r.status_code == 303, r.text
    (p,) = client.get("/api/v1/sla-policies", headers=ws.agent).json()
    assert (p["first_response_minutes"], p["next_response_minutes"], p["resolution_minutes"]) == (120, 90, 4320)
    assert p["conditions"]["channels"] == ["widget", "telegram"] and p["conditions"]["priorities"] == ["urgent"]
    assert p["conditions"]["customer_attribute"] == {"key": "loyalty", "values": ["gold", "platinum"]}
    assert p["warn_share"] == 0.8 and p["escalation"]["raise_priority"] and p["business_hours"]
    page = b.get("/settings/sla")
    assert "Чат &lt;b&gt;" in page.text and "первый ответ 2 ч" in page.text
    bad = b.post(f"/settings/sla/{p['id']}", {"name": "Чат", "first": "два часа"}, htmx=False)
    assert bad.status_code == 422 and "first_response_minutes" in bad.text
    r = b.post("/settings/sla", {"name": "Почта", "first": "24 ч", "channels": ["email"]}, htmx=False)
    assert r.status_code == 303
    second = next(x for x in client.get("/api/v1/sla-policies", headers=ws.agent).json() if x["name"] == "Почта")
    assert second["business_hours"] is False  # the box was not ticked
    b.post(f"/settings/sla/{second['id']}", {"name": "Почта", "first": "24 ч", "position": "0", "enabled": "on",
                                             "business_hours": "on"}, htmx=False)
    names = [x["name"] for x in client.get("/api/v1/sla-policies", headers=ws.agent).json()]
    assert names == ["Почта", "Чат <b>"]


def test_agent_reads_in_english_and_cannot_change(app, client, ws):
    client.post("/api/v1/sla-policies", json={"name": "Chat", "first_response_minutes": 30}, headers=ws.admin)
    client.patch(f"/api/v1/users/{ws.agent_id}", json={"language": "en"}, headers=ws.admin)
    agent = Browser(app, ws.agent_email)
    page = agent.get("/settings/sla")
    assert page.status_code == 200 and "first response 30 min" in page.text and 'id="sla-create-form"' not in page.text
    assert agent.post("/settings/sla", {"name": "x", "first": "5"}, htmx=False).status_code in (302, 303, 403)


def test_the_conversation_side_panel_shows_the_timers(app, client, ws):
    from tests.conftest import inbound

    client.post("/api/v1/sla-policies", json={"name": "Всё", "first_response_minutes": 30, "resolution_minutes": 600,
                                               "business_hours": False}, headers=ws.admin)
    got = inbound(client, ws, text="Где заказ?", identity="side@example.com")
    b = Browser(app, ws.admin_email)
    side = b.get(f"/ui/conversations/{got['conversation_id']}/side")
    assert side.status_code == 200 and 'id="sla-timers"' in side.text
    assert 'data-sla-kind="first_response" data-sla-state="running"' in side.text and "первый ответ" in side.text
    timers = client.get(f"/api/v1/conversations/{got['conversation_id']}/sla", headers=ws.agent).json()
    assert [t["kind"] for t in timers] == ["first_response", "resolution"]
    assert 0 < timers[0]["seconds_left"] <= 1800 and timers[0]["state"] == "running"
