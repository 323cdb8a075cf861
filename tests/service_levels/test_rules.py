"""Automation rules and macros (issue 13): triggers, conditions, actions through conversations.service as the
actor kind "rule", the per-conversation run log, loop protection (self-trigger, ping-pong depth), time rules,
signed webhooks, the API's 422/403/404 and dry-run, macros applied in one call."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging

import pytest
from sqlalchemy import select, update

from otklik.accounts.models import AuditEntry
from otklik.conversations.models import Conversation, Message
from otklik.platform.db import session_scope
from otklik.service_levels import jobs as rule_jobs
from otklik.service_levels import service
from tests.conftest import inbound

LEGAL = {
    "name": "Юрист / суд / Роспотребнадзор", "trigger": "customer_message",
    "conditions": [{"field": "text", "op": "contains", "value": ["юрист", "суд", "роспотребнадзор"]}],
    "actions": [{"type": "set_priority", "value": "urgent"}, {"type": "add_tag", "value": "претензия"},
                {"type": "add_note", "text": "Претензия: старшему смены"}],
}


@pytest.fixture(autouse=True)
def _rules_on():
    rule_jobs.install()


def conv(client, ws, cid: int) -> dict:
    return client.get(f"/api/v1/conversations/{cid}", headers=ws.admin).json()


def runs(client, ws, cid: int) -> list[dict]:
    response = client.get(f"/api/v1/conversations/{cid}/rule-runs", headers=ws.agent)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_customer_message_with_a_legal_threat_is_made_urgent_tagged_and_noted(client, ws):
    rule = client.post("/api/v1/rules", json=LEGAL, headers=ws.admin)
    assert rule.status_code == 201, rule.text
    calm = inbound(client, ws, identity="calm@example.com", text="Где мой заказ? Посуда разбилась")
    angry = inbound(client, ws, identity="angry@example.com", text="Обращусь в Роспотребнадзор и в СУД!")
    assert conv(client, ws, calm["conversation_id"])["priority"] == "normal"
    got = conv(client, ws, angry["conversation_id"])
    assert got["priority"] == "urgent" and "претензия" in got["tags"]
    notes = client.get(f"/api/v1/conversations/{angry['conversation_id']}/messages", headers=ws.admin).json()["items"]
    assert any(m["is_internal"] and "старшему" in m["body_text"] for m in notes)
    [run] = runs(client, ws, angry["conversation_id"])
    assert run["matched"] and run["rule_name"] == LEGAL["name"] and run["trigger"] == "customer_message"
    assert run["actions_done"] == ["set_priority:urgent", "add_tag:претензия", "add_note"] and run["error"] is None
    assert [r["matched"] for r in runs(client, ws, calm["conversation_id"])] == [False]
    with session_scope() as session:
        kinds = {a.actor_kind for a in session.scalars(select(AuditEntry).where(
            AuditEntry.entity_id == angry["conversation_id"], AuditEntry.action == "priority_changed"))}
    assert kinds == {"rule"}


def test_two_rules_that_would_ping_pong_stop_at_the_fixed_depth(client, ws):
    # B first: on the agent's change B sees «normal» and passes, A raises it, and the ping-pong begins
    for name, frm, to in (("B", "high", "normal"), ("A", "normal", "high")):
        r = client.post("/api/v1/rules", json={
            "name": name, "trigger": "conversation_updated",
            "conditions": [{"field": "priority", "op": "is", "value": frm}],
            "actions": [{"type": "set_priority", "value": to}]}, headers=ws.admin)
        assert r.status_code == 201, r.text
    cid = inbound(client, ws)["conversation_id"]
    r = client.patch(f"/api/v1/conversations/{cid}", json={"category": "delivery"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    log = runs(client, ws, cid)[::-1]
    matched = [r for r in log if r["matched"]]
    assert [r["rule_name"] for r in matched] == ["A", "B", "A", "B", "A"]
    assert [r["depth"] for r in matched] == [0, 1, 2, 3, 4]
    stopped = [r for r in log if r["error"]]
    assert len(stopped) == 1 and stopped[0]["rule_name"] == "B" and stopped[0]["depth"] == service.MAX_DEPTH
    assert "loop protection" in stopped[0]["error"]
    assert conv(client, ws, cid)["priority"] == "high"  # A's last word; nothing runs after the limit


def test_a_rule_never_runs_on_its_own_change(client, ws):
    r = client.post("/api/v1/rules", json={
        "name": "tag on any change", "trigger": "conversation_updated",
        "actions": [{"type": "add_tag", "value": "touched"}, {"type": "set_priority", "value": "high"}]},
        headers=ws.admin)
    assert r.status_code == 201
    cid = inbound(client, ws)["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"category": "x"}, headers=ws.admin)
    assert [(r["matched"], r["depth"]) for r in runs(client, ws, cid)] == [(True, 0)]


def test_status_change_tag_added_and_business_hours_conditions(client, ws):
    client.post("/api/v1/rules", json={"name": "solved → tag", "trigger": "status_changed",
                                       "conditions": [{"field": "status", "op": "is", "value": "solved"}],
                                       "actions": [{"type": "add_tag", "value": "done"}]}, headers=ws.admin)
    client.post("/api/v1/rules", json={"name": "vip tag → team lead", "trigger": "tag_added",
                                       "conditions": [{"field": "tags", "op": "contains", "value": "vip"},
                                                      {"field": "business_hours", "op": "is", "value": True}],
                                       "actions": [{"type": "set_priority", "value": "high"}]}, headers=ws.admin)
    cid = inbound(client, ws)["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"tags": ["vip"]}, headers=ws.admin)
    assert conv(client, ws, cid)["priority"] == "high"  # no calendar: every hour is working time
    client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.admin)
    assert "done" in conv(client, ws, cid)["tags"]


def test_a_closed_day_calendar_makes_business_hours_false(client, ws):
    cal = client.post("/api/v1/calendars", json={"name": "never", "time_zone": "Europe/Moscow",
                                                 "hours": {d: [] for d in ("mon", "tue", "wed", "thu", "fri",
                                                                           "sat", "sun")},
                                                 "holidays": None}, headers=ws.admin)
    assert cal.status_code == 201, cal.text
    client.post("/api/v1/rules", json={"name": "after hours", "trigger": "customer_message",
                                       "conditions": [{"field": "business_hours", "op": "is", "value": False}],
                                       "actions": [{"type": "add_tag", "value": "after-hours"}]}, headers=ws.admin)
    cid = inbound(client, ws)["conversation_id"]
    assert "after-hours" in conv(client, ws, cid)["tags"]


def test_the_api_names_the_field_forbids_agents_and_hides_other_workspaces(client, ws, other_ws):
    bad = client.post("/api/v1/rules", json={**LEGAL, "actions": [{"type": "set_priority", "value": "asap"}]},
                      headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "actions.0.value"
    bad = client.post("/api/v1/rules", json={**LEGAL, "trigger": "sometimes"}, headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "trigger"
    bad = client.post("/api/v1/rules", json={**LEGAL, "conditions": [{"field": "mood", "op": "is", "value": 1}]},
                      headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "conditions.0.field"
    bad = client.post("/api/v1/rules", json={**LEGAL, "trigger": "time", "trigger_options": {"status": "pending"}},
                      headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "trigger_options.hours"
    assert client.post("/api/v1/rules", json=LEGAL, headers=ws.agent).status_code == 403
    rid = client.post("/api/v1/rules", json=LEGAL, headers=ws.admin).json()["id"]
    dup = client.post("/api/v1/rules", json=LEGAL, headers=ws.admin)
    assert dup.status_code == 422 and dup.json()["error"]["fields"][0]["field"] == "name"
    for method in ("get", "patch", "delete"):
        kwargs = {"json": {"enabled": False}} if method == "patch" else {}
        assert getattr(client, method)(f"/api/v1/rules/{rid}", headers=other_ws.admin, **kwargs).status_code == 404
    assert client.post(f"/api/v1/rules/{rid}/dry-run", headers=other_ws.admin).status_code == 404
    patched = client.patch(f"/api/v1/rules/{rid}", json={"enabled": False}, headers=ws.admin)
    assert patched.status_code == 200 and patched.json()["enabled"] is False
    assert client.delete(f"/api/v1/rules/{rid}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/rules/{rid}", headers=ws.admin).status_code == 404


def test_dry_run_lists_the_matching_conversations_among_the_last_hundred(client, ws):
    a = inbound(client, ws, identity="a@example.com", text="подам в суд")
    inbound(client, ws, identity="b@example.com", text="спасибо")
    rule = client.post("/api/v1/rules", json={**LEGAL, "enabled": False}, headers=ws.admin).json()
    got = client.post(f"/api/v1/rules/{rule['id']}/dry-run", headers=ws.admin)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["checked"] == 2
    assert [(m["id"], m["number"]) for m in body["matched"]] == [(a["conversation_id"], a["conversation_number"])]
    assert conv(client, ws, a["conversation_id"])["priority"] == "normal"  # a dry run changes nothing


def test_pending_for_three_days_is_solved_with_a_template_once(client, ws):
    template = client.post("/api/v1/templates", json={"name": "Закрываем", "body": "Закрываем обращение "
                                                      "№{{conversation.number}}, напишите, если что."},
                           headers=ws.admin).json()
    rule = client.post("/api/v1/rules", json={
        "name": "pending 3 days", "trigger": "time", "trigger_options": {"status": "pending", "hours": 72},
        "actions": [{"type": "send_template", "template_id": template["id"]}, {"type": "set_status", "value": "solved"}]},
        headers=ws.admin)
    assert rule.status_code == 201, rule.text
    old = inbound(client, ws, identity="old@example.com")["conversation_id"]
    fresh = inbound(client, ws, identity="fresh@example.com")["conversation_id"]
    for cid in (old, fresh):
        client.patch(f"/api/v1/conversations/{cid}", json={"status": "pending"}, headers=ws.admin)
    with session_scope() as session:
        session.execute(update(Conversation).where(Conversation.id == old).values(
            updated_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=73)))
    # this workspace's rules only: a global sweep would also run the demo's «pending 3 days» rule on the demo
    # shop's conversations when a demo test shares this worker's database (its reply then sits in the outbox)
    rule_jobs.sweep_time_rules(ws.id)
    rule_jobs.sweep_time_rules(ws.id)  # a second sweep finds nothing more to do
    assert conv(client, ws, old)["status"] == "solved"
    assert conv(client, ws, fresh)["status"] == "pending"
    with session_scope() as session:
        texts = [m.body_text for m in session.scalars(select(Message).where(Message.conversation_id == old,
                                                                            Message.author_kind == "system"))]
    number = conv(client, ws, old)["number"]
    assert texts == [f"Закрываем обращение №{number}, напишите, если что."]
    assert [(r["trigger"], r["matched"]) for r in runs(client, ws, old)] == [("time", True)]


def test_a_webhook_is_signed_sent_through_the_queue_and_its_secret_never_shows(client, ws, monkeypatch, caplog):
    import httpx

    sent = []

    def fake_post(url, content, headers, timeout):
        sent.append((url, content, headers, timeout))
        return httpx.Response(200)

    monkeypatch.setattr(httpx, "post", fake_post)
    secret = "s3cret-value-123"
    rule = client.post("/api/v1/rules", json={
        "name": "crm", "trigger": "conversation_created",
        "actions": [{"type": "webhook", "url": "https://crm.example.com/hook", "secret": secret}]}, headers=ws.admin)
    assert rule.status_code == 201, rule.text
    assert secret not in rule.text and rule.json()["actions"][0]["secret_set"] is True
    caplog.set_level(logging.DEBUG)
    cid = inbound(client, ws)["conversation_id"]
    [(url, body, headers, timeout)] = sent
    assert url == "https://crm.example.com/hook" and timeout == rule_jobs.WEBHOOK_TIMEOUT
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Otklik-Signature"] == expected
    payload = json.loads(body)
    assert payload["conversation"]["id"] == cid and payload["rule"]["name"] == "crm"
    # saved again without a secret, it keeps the one it had
    again = client.patch(f"/api/v1/rules/{rule.json()['id']}", json={"actions": [
        {"type": "webhook", "url": "https://crm.example.com/hook"}]}, headers=ws.admin)
    assert again.status_code == 200, again.text
    assert secret not in caplog.text and secret not in client.get("/api/v1/rules", headers=ws.admin).text


def test_a_failing_webhook_is_retried_and_logs_only_the_host(client, ws, monkeypatch, caplog):
    import httpx

    calls = []

    def down(url, content, headers, timeout):
        calls.append(url)
        raise httpx.ConnectError("refused")

    rule = client.post("/api/v1/rules", json={
        "name": "down", "trigger": "conversation_created", "enabled": False,
        "actions": [{"type": "webhook", "url": "https://hooks.example.com/x?token=abc", "secret": "topsecret-1"}]},
        headers=ws.admin).json()
    monkeypatch.setattr(httpx, "post", down)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(rule_jobs.WebhookFailed):  # Huey retries it (WEBHOOK_RETRIES times, 10 s apart)
        rule_jobs.call_webhook.call_local(rule["id"], 0, json.dumps({"conversation": {"version": 1}}))
    assert calls and "hooks.example.com" in caplog.text
    assert "topsecret" not in caplog.text and "token=abc" not in caplog.text
    assert rule_jobs.call_webhook.retries == rule_jobs.WEBHOOK_RETRIES


def test_sla_breach_and_assistant_handoff_events_trigger_rules(client, ws):
    from otklik.platform.events import Event, get_bus

    client.post("/api/v1/rules", json={"name": "breach", "trigger": "sla_breached",
                                       "actions": [{"type": "add_tag", "value": "late"}]}, headers=ws.admin)
    client.post("/api/v1/rules", json={"name": "handoff", "trigger": "assistant_handoff",
                                       "actions": [{"type": "add_tag", "value": "from-bot"}]}, headers=ws.admin)
    cid = inbound(client, ws)["conversation_id"]
    get_bus().publish(Event("sla.breached", ws.id, {"conversation_id": cid, "kind": "first_response"}))
    get_bus().publish(Event("assistant.handoff", ws.id, {"conversation_id": cid, "reason": "legal"}))
    assert {"late", "from-bot"} <= set(conv(client, ws, cid)["tags"])


def test_a_rule_error_is_logged_on_the_run_and_changes_nothing(client, ws):
    template = client.post("/api/v1/templates", json={"name": "Заказ", "body": "Ваш заказ {{order_number}}"},
                           headers=ws.admin).json()
    client.post("/api/v1/rules", json={"name": "needs order", "trigger": "customer_message",
                                       "actions": [{"type": "set_priority", "value": "high"},
                                                   {"type": "send_template", "template_id": template["id"]}]},
                headers=ws.admin)
    cid = inbound(client, ws, text="Здравствуйте")["conversation_id"]
    [run] = runs(client, ws, cid)
    assert run["matched"] and "order_number" in run["error"] and run["actions_done"] == []
    assert conv(client, ws, cid)["priority"] == "normal"


def test_a_macro_applies_template_tag_and_pending_in_one_call(client, ws, other_ws):
    template = client.post("/api/v1/templates", json={"name": "Фото", "body": "Пришлите, пожалуйста, фото товара."},
                           headers=ws.admin).json()
    body = {"name": "Возврат: запросить фото", "actions": [
        {"type": "send_template", "template_id": template["id"]}, {"type": "add_tag", "value": "возврат"},
        {"type": "set_status", "value": "pending"}]}
    assert client.post("/api/v1/macros", json=body, headers=ws.agent).status_code == 403
    bad = client.post("/api/v1/macros", json={**body, "actions": [{"type": "webhook", "url": "https://x.io"}]},
                      headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "actions.0.type"
    macro = client.post("/api/v1/macros", json=body, headers=ws.admin)
    assert macro.status_code == 201, macro.text
    mid = macro.json()["id"]
    assert [m["name"] for m in client.get("/api/v1/macros", headers=ws.agent).json()] == [body["name"]]
    assert client.get(f"/api/v1/macros/{mid}", headers=other_ws.admin).status_code == 404
    cid = inbound(client, ws)["conversation_id"]
    other_cid = inbound(client, other_ws)["conversation_id"]
    assert client.post(f"/api/v1/macros/{mid}/apply", json={"conversation_id": other_cid},
                       headers=ws.agent).status_code == 404
    applied = client.post(f"/api/v1/macros/{mid}/apply", json={"conversation_id": cid}, headers=ws.agent)
    assert applied.status_code == 200, applied.text
    got = conv(client, ws, cid)
    assert got["status"] == "pending" and got["tags"] == ["возврат"]
    msgs = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.admin).json()["items"]
    assert msgs[-1]["body_text"] == "Пришлите, пожалуйста, фото товара." and msgs[-1]["author_kind"] == "agent"
    with session_scope() as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.entity_id == cid,
                                                        AuditEntry.action == "macro_applied"))
        assert audit is not None and audit.actor_user_id == ws.agent_id


def test_notify_names_its_users_in_an_event(client, ws, monkeypatch):
    from otklik.platform import events

    seen = []
    bus = events.get_bus()
    original = bus.publish
    monkeypatch.setattr(bus, "publish", lambda e: (seen.append(e), original(e)))
    r = client.post("/api/v1/rules", json={"name": "tell the agent", "trigger": "customer_message",
                                           "actions": [{"type": "notify", "user_ids": [ws.agent_id],
                                                        "text": "VIP wrote"}]}, headers=ws.admin)
    assert r.status_code == 201, r.text
    cid = inbound(client, ws)["conversation_id"]
    [event] = [e for e in seen if e.type == "rule.notify"]
    assert event.data["notify_user_ids"] == [ws.agent_id] and event.data["conversation_id"] == cid
    assert event.data["rule"] == "tell the agent" and event.data["text"] == "VIP wrote"
    bad = client.post("/api/v1/rules", json={"name": "x", "trigger": "customer_message",
                                             "actions": [{"type": "notify", "user_ids": [10**9]}]}, headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "actions.0.user_ids.0"


def test_a_customer_reopening_a_solved_conversation_is_a_status_change(client, ws):
    r = client.post("/api/v1/rules", json={"name": "reopened", "trigger": "status_changed",
                                           "conditions": [{"field": "status", "op": "is", "value": "open"}],
                                           "actions": [{"type": "add_tag", "value": "reopened"}]}, headers=ws.admin)
    assert r.status_code == 201
    cid = inbound(client, ws, identity="back@example.com")["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.admin)
    assert "reopened" not in conv(client, ws, cid)["tags"]
    inbound(client, ws, identity="back@example.com", text="Снова не работает")
    assert conv(client, ws, cid)["status"] == "open" and "reopened" in conv(client, ws, cid)["tags"]


def test_a_real_assistant_hand_off_runs_the_hand_off_rules(client, ws):
    from tests.assistant.test_live import enable, seed_kb

    seed_kb(ws)
    enable(client, ws)
    r = client.post("/api/v1/rules", json={"name": "bot gave up", "trigger": "assistant_handoff",
                                           "conditions": [{"field": "channel", "op": "is", "value": "api"}],
                                           "actions": [{"type": "add_tag", "value": "после-бота"}]}, headers=ws.admin)
    assert r.status_code == 201
    cid = inbound(client, ws, text="позовите живого человека, не хочу с ботом", identity="human@example.com")[
        "conversation_id"]
    assert "после-бота" in conv(client, ws, cid)["tags"]
    assert [(r["trigger"], r["matched"]) for r in runs(client, ws, cid)] == [("assistant_handoff", True)]
