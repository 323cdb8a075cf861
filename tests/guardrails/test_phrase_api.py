"""The phrase checker over HTTP and on every reply path (issue 14 §3–4): the rules' CRUD with 422s naming the
field, 404 across workspaces and roles; POST /phrase-check; the server re-check on send through the UI form,
the API, a macro, an automation rule and the assistant («never»: confirm for people, blocked for the
assistant; «avoid»: a hint that refuses nothing); the report per agent."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from otklik.accounts.service import Actor
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, Message
from otklik.guardrails import phrase_api  # noqa: F401 - registers the phrase reply check (the app does too)
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict
from otklik.service_levels import jobs as rule_jobs
from tests.conftest import inbound

NEVER = "Здравствуйте! Вы должны были проверить товар при курьере."
AVOID = "Понимаю вас, но срок возврата уже прошёл."


def test_check_finds_phrases_with_offsets_reason_and_alternatives(client, ws):
    r = client.post("/api/v1/phrase-check", json={"text": NEVER}, headers=ws.agent)
    assert r.status_code == 200, r.text
    [match] = r.json()["matches"]
    assert match["rule_id"] == "ru.must.you" and match["severity"] == "never"
    assert NEVER[match["start"]:match["end"]] == match["phrase"] == "Вы должны"
    assert match["reason"] and match["alternatives"]
    clean = client.post("/api/v1/phrase-check", json={"text": "Новый заказ уже в пути.", "language": "ru"},
                        headers=ws.agent)
    assert clean.json() == {"matches": [], "hints": []}
    bare = client.post("/api/v1/phrase-check", json={"text": "Нет."}, headers=ws.agent).json()
    assert [h["code"] for h in bare["hints"]] == ["tone_bare_no"]


@pytest.mark.parametrize("body,field", [
    ({}, "text"), ({"text": 5}, "text"), ({"text": "x", "language": "de"}, "language"),
    ({"text": "x", "extra": 1}, "extra"), ({"text": "x" * 100_001}, "text"), ({"text": "x", "conversation_id": 0},
                                                                            "conversation_id"),
])
def test_check_refuses_bad_input_with_a_422_naming_the_field(client, ws, body, field):
    r = client.post("/api/v1/phrase-check", json=body, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert any(f["field"].endswith(field) for f in r.json()["error"]["fields"]), r.text


def test_rules_crud_roles_isolation_and_422s(client, ws, other_ws):
    rules = client.get("/api/v1/phrase-rules?language=en", headers=ws.agent).json()["items"]
    assert len(rules) >= 90 and all(r["language"] == "en" and r["shipped"] for r in rules)
    body = {"language": "ru", "phrase": "(ваш|этот) заказ (потерян|утерян)", "severity": "never",
            "reason": "Не пугайте клиента: мы ищем заказ.", "alternatives": ["Мы ищем ваш заказ и напишем до 18:00."]}
    assert client.post("/api/v1/phrase-rules", json=body, headers=ws.agent).status_code == 403
    created = client.post("/api/v1/phrase-rules", json=body, headers=ws.admin)
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    assert rid.startswith("ws.") and created.json()["shipped"] is False
    for bad, field in (({**body, "phrase": "(ваш"}, "phrase"), ({**body, "severity": "often"}, "severity"),
                       ({**body, "language": "de"}, "language"), ({**body, "reason": ""}, "reason"),
                       ({**body, "alternatives": [""]}, "alternatives.0"), ({**body, "phrase": "a<b"}, "phrase")):
        r = client.post("/api/v1/phrase-rules", json=bad, headers=ws.admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"][0]["field"] == field, r.text
    found = client.post("/api/v1/phrase-check", json={"text": "Ваш заказ потерян."}, headers=ws.agent).json()
    assert [m["rule_id"] for m in found["matches"]] == [rid]
    other = client.post("/api/v1/phrase-check", json={"text": "Ваш заказ потерян."}, headers=other_ws.agent).json()
    assert other["matches"] == []
    # another workspace's rule is not there at all
    assert client.get(f"/api/v1/phrase-rules/{rid}", headers=other_ws.admin).status_code == 404
    assert client.patch(f"/api/v1/phrase-rules/{rid}", json={"enabled": False},
                        headers=other_ws.admin).status_code == 404
    assert client.delete(f"/api/v1/phrase-rules/{rid}", headers=other_ws.admin).status_code == 404
    assert client.get("/api/v1/phrase-rules/ws.99999999999999", headers=ws.admin).status_code == 404
    assert client.get("/api/v1/phrase-rules/no.such", headers=ws.admin).status_code == 404
    # a shipped rule: switched off, severity changed, then reset; its phrase stays as shipped
    assert client.patch("/api/v1/phrase-rules/ru.but.no", json={"severity": "never"},
                        headers=ws.agent).status_code == 403
    changed = client.patch("/api/v1/phrase-rules/ru.but.no", json={"severity": "never",
                                                                   "alternatives": ["И при этом"]}, headers=ws.admin)
    assert changed.status_code == 200 and changed.json()["changed"] and changed.json()["severity"] == "never"
    assert client.patch("/api/v1/phrase-rules/ru.but.no", json={"phrase": "но"},
                        headers=ws.admin).json()["error"]["fields"][0]["field"] == "phrase"
    assert client.patch("/api/v1/phrase-rules/ru.but.no", json={"severity": 3}, headers=ws.admin).status_code == 422
    m = client.post("/api/v1/phrase-check", json={"text": AVOID}, headers=ws.agent).json()["matches"]
    assert m[0]["severity"] == "never" and m[0]["alternatives"] == ["И при этом"]
    off = client.patch("/api/v1/phrase-rules/ru.must.you", json={"enabled": False}, headers=ws.admin)
    assert off.status_code == 200 and off.json()["enabled"] is False
    assert client.post("/api/v1/phrase-check", json={"text": "Вы должны"}, headers=ws.agent).json()["matches"] == []
    assert client.post("/api/v1/phrase-check", json={"text": "Вы должны"},
                       headers=other_ws.agent).json()["matches"] != []
    assert client.delete("/api/v1/phrase-rules/ru.must.you", headers=ws.admin).status_code == 204
    assert client.get("/api/v1/phrase-rules/ru.must.you", headers=ws.agent).json()["enabled"] is True
    assert client.delete(f"/api/v1/phrase-rules/{rid}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/phrase-rules/{rid}", headers=ws.admin).status_code == 404
    compiled = client.get("/api/v1/phrase-rules/compiled", headers=ws.agent).json()
    assert compiled["pattern"]["flags"] == "gmu" and "ru.but.no" in compiled["rules"]


def _messages(cid: int) -> list[Message]:
    with session_scope() as session:
        rows = list(session.scalars(select(Message).where(Message.conversation_id == cid).order_by(Message.id)))
        session.expunge_all()
        return rows


def test_every_reply_path_is_rechecked_on_the_server(app, client, ws):
    cid = inbound(client, ws, identity="paths@example.com")["conversation_id"]
    # the API: 409 naming phrase_never, sent once acknowledged (recorded); «avoid» is a hint, never a refusal
    api = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": NEVER}, headers=ws.agent)
    assert api.status_code == 409 and api.json()["error"]["code"] == "phrase_never", api.text
    assert "Вы должны" in api.json()["error"]["message"]
    ok = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": NEVER, "acknowledge": ["phrase_never"]},
                     headers=ws.agent)
    assert ok.status_code == 201, ok.text
    assert client.post(f"/api/v1/conversations/{cid}/messages", json={"text": AVOID},
                       headers=ws.agent).status_code == 201
    note = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": NEVER, "is_internal": True},
                       headers=ws.agent)
    assert note.status_code == 201  # an internal note never reaches the customer
    # the UI form: the same refusal, and the agent's confirmation passes acknowledge
    from tests.web._ui import Browser

    ui = Browser(app, ws.agent_email)
    refused = ui.post(f"/ui/conversations/{cid}/reply", data={"text": NEVER, "mode": "reply"})
    assert refused.status_code == 409 and refused.headers["x-otklik-problem"] == "phrase_never"
    assert "Вы должны" in refused.text
    sent = ui.post(f"/ui/conversations/{cid}/reply", data={"text": NEVER, "mode": "reply",
                                                          "acknowledge": "phrase_never"})
    assert sent.status_code == 204, sent.text
    ui_msg = _messages(cid)[-1]
    assert ui_msg.meta.get("acknowledged") == ["phrase_never"] and ui_msg.body_text == NEVER
    # a macro an agent applies
    template = client.post("/api/v1/templates", json={"name": "Грубый", "body": "Вы обязаны прислать чек."},
                           headers=ws.admin).json()
    macro = client.post("/api/v1/macros", json={"name": "Чек", "actions": [
        {"type": "send_template", "template_id": template["id"]}]}, headers=ws.admin).json()
    applied = client.post(f"/api/v1/macros/{macro['id']}/apply", json={"conversation_id": cid}, headers=ws.agent)
    assert applied.status_code == 409 and applied.json()["error"]["code"] == "phrase_never", applied.text
    # an automation rule: its reply is refused, nothing reaches the customer, the run records why
    rule_jobs.install()
    rule = client.post("/api/v1/rules", json={
        "name": "Автоответ", "trigger": "customer_message",
        "conditions": [{"field": "text", "op": "contains", "value": ["чек"]}],
        "actions": [{"type": "send_template", "template_id": template["id"]}]}, headers=ws.admin)
    assert rule.status_code == 201, rule.text
    rcid = inbound(client, ws, identity="rule@example.com", text="Где мой чек?")["conversation_id"]
    assert not [m for m in _messages(rcid) if m.direction == "outbound" and not m.is_internal]
    runs = client.get(f"/api/v1/conversations/{rcid}/rule-runs", headers=ws.agent).json()
    assert any(r["matched"] and "Вы обязаны" in str(r["error"]) for r in runs), runs
    # the assistant: blocked even if it «acknowledges»; its failure hands the conversation to a person
    with session_scope() as session:
        assistant = Actor.system(ws.id, kind="assistant")
        with pytest.raises(Conflict) as refused_bot:
            conversations.reply(session, assistant, cid, text="Успокойтесь, пожалуйста.", author=AuthorKind.assistant,
                                acknowledge=["phrase_never"], path="assistant")
        assert refused_bot.value.code == "phrase_never"
        assert refused_bot.value.fields[0]["severity"] == "block"
    with session_scope() as session:
        fine = conversations.reply(session, Actor.system(ws.id, kind="assistant"), cid, author=AuthorKind.assistant,
                                   text="Передаю ваш вопрос сотруднику — он ответит в этом чате.")
        assert fine.id


def test_the_report_lists_the_most_frequent_phrases_per_agent(client, ws):
    cid = inbound(client, ws, identity="report@example.com")["conversation_id"]
    for text in (NEVER, NEVER, AVOID, "Заказ приедет завтра."):
        r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text, "acknowledge": ["phrase_never"]},
                        headers=ws.agent)
        assert r.status_code == 201, r.text
    assert client.get("/api/v1/reports/phrases", headers=ws.agent).status_code == 403
    report = client.get("/api/v1/reports/phrases", headers=ws.admin)
    assert report.status_code == 200, report.text
    [agent] = report.json()["agents"]
    assert agent["agent_id"] == ws.agent_id and agent["replies"] == 4 and agent["flagged_replies"] == 3
    assert agent["top"][0] == {"rule_id": "ru.must.you", "count": 2, "phrase": agent["top"][0]["phrase"],
                               "said": "вы должны", "severity": "never"}
    bad = client.get("/api/v1/reports/phrases?since=2026-02-01T00:00:00&until=2026-01-01T00:00:00",
                     headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "until"
    assert client.get("/api/v1/reports/phrases?since=yesterday", headers=ws.admin).status_code == 422


def test_an_upset_customer_gets_an_empathy_hint(client, ws):
    cid = inbound(client, ws, identity="upset@example.com")["conversation_id"]
    with session_scope() as session:
        session.get(Conversation, cid).sentiment = "negative"
    hints = client.post("/api/v1/phrase-check", json={"text": "Заказ приедет завтра.", "conversation_id": cid},
                        headers=ws.agent).json()["hints"]
    assert [h["code"] for h in hints] == ["tone_empathy"] and hints[0]["alternatives"]
    compiled = client.get(f"/api/v1/phrase-rules/compiled?conversation_id={cid}", headers=ws.agent).json()
    assert compiled["upset"] is True


def test_the_assistant_never_sends_a_never_phrase_it_hands_off_instead(client, ws, monkeypatch):
    """The assistant's own path end to end: its (generated) answer says «Вы должны…» — nothing reaches the
    customer, the decision becomes a hand-off and the agent gets a note saying why."""
    from otklik.assistant import service as assistant
    from tests.assistant.test_live import decisions, enable, messages, seed_kb

    seed_kb(ws)
    enable(client, ws)
    monkeypatch.setattr(assistant, "_maybe_llm",
                        lambda *a, **k: "Вы должны сами посмотреть стоимость доставки на сайте.")
    got = inbound(client, ws, text="Добрый день! Сколько стоит доставка по Москве?", identity="bot@example.com")
    msgs = messages(client, ws, got["conversation_id"])
    assert not [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    [note] = [m for m in msgs if m["author_kind"] == "assistant" and m["is_internal"]]
    assert "Вы должны" in note["body_text"]
    (decision,) = decisions(client, ws, got["conversation_id"])
    assert decision["action"] == "handoff" and decision["reason"] == "error", decision
