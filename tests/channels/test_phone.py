"""Phone: callback requests through the API, and the generic telephony webhook (signed; one recorded payload
per call event shape) writing calls into the customer's history, with a callback task for a missed call."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures" / "phone"
SIGNING = "pbx-signing-secret"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.fixture
def account(client, ws):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "phone", "config": {"missed_call_due_minutes": 10}, "secrets": {"signing_secret": SIGNING}})
    assert r.status_code == 201, r.text
    return r.json()


def events_url(account) -> str:
    return "/api/v1/phone/events/" + account["webhook_path"].rsplit("/", 1)[-1]


def send(client, account, payload, *, secret=SIGNING, url=None):
    body = json.dumps(payload, ensure_ascii=False).encode()
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return client.post(url or events_url(account), content=body,
                       headers={"content-type": "application/json", "x-otklik-signature": signature})


def phone_conversations(client, ws):
    return client.get("/api/v1/conversations?channel=phone", headers=ws.agent).json()["items"]


def messages_of(client, ws, conversation_id):
    return client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=ws.agent).json()["items"]


def tasks_of(client, ws, customer_id):
    return client.get(f"/api/v1/tasks?customer_id={customer_id}", headers=ws.agent).json()["items"]


def test_callback_request_opens_a_phone_conversation_and_a_task(client, ws):
    start = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).replace(microsecond=0)
    body = {"phone": "8 (916) 123-45-67", "name": "Ольга", "preferred_from": start.isoformat(),
            "preferred_to": (start + dt.timedelta(hours=1)).isoformat(), "comment": "Про возврат заказа 4512",
            "request_id": "crm-77"}
    r = client.post("/api/v1/phone/callbacks", json=body, headers=ws.agent)
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["phone"] == "+79161234567" and out["duplicate"] is False and out["task_id"]
    again = client.post("/api/v1/phone/callbacks", json=body, headers=ws.agent).json()
    assert again["duplicate"] is True and again["conversation_id"] == out["conversation_id"]
    text = messages_of(client, ws, out["conversation_id"])[0]["body_text"]
    assert "+79161234567" in text and "Про возврат заказа 4512" in text and "Удобное время" in text
    tasks = tasks_of(client, ws, out["customer_id"])
    assert len(tasks) == 1 and "+79161234567" in tasks[0]["title"]
    assert dt.datetime.fromisoformat(tasks[0]["due_at"]) == start


@pytest.mark.parametrize(("body", "field"), [
    ({"phone": "12345"}, "phone"),
    ({"phone": "+7 916 123-45-67", "preferred_from": "2030-01-01T10:00:00"}, "preferred_from"),
    ({"phone": "+7 916 123-45-67", "preferred_from": "2026-12-01T12:00:00+03:00",
      "preferred_to": "2026-12-01T10:00:00+03:00"}, "preferred_to"),
    ({"phone": "+7 916 123-45-67", "request_id": "a b"}, "request_id"),
])
def test_bad_callback_requests_are_refused_precisely(client, ws, body, field):
    r = client.post("/api/v1/phone/callbacks", json=body, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert any(f["field"].startswith(field) for f in r.json()["error"]["fields"]), r.text


def test_call_events_build_one_history_entry_per_event(client, ws, account):
    for name in ("call_started", "call_answered", "call_ended"):
        r = send(client, account, fixture(name))
        assert r.status_code == 200 and r.json()["status"] == "logged", r.text
    assert send(client, account, fixture("call_ended")).json() == {"status": "duplicate"}
    convs = phone_conversations(client, ws)
    assert len(convs) == 1
    msgs = messages_of(client, ws, convs[0]["id"])
    assert [(m["author_kind"], m["is_internal"]) for m in msgs] == [
        ("customer", False), ("system", True), ("system", True)]
    assert msgs[0]["body_text"] == "📞 Входящий звонок с +79161234567"
    assert "Мария (доб. 101)" in msgs[1]["body_text"]
    assert "3:12" in msgs[2]["body_text"]
    assert "https://pbx.example.ru/recordings/2026/11/24/pbx-1763950700.42.mp3" in msgs[2]["body_text"]
    assert tasks_of(client, ws, convs[0]["customer"]["id"]) == []
    # the same customer (by number) calls again: same person, same conversation
    assert send(client, account, fixture("call_missed")).json()["status"] == "logged"
    convs = phone_conversations(client, ws)
    assert len(convs) == 1
    tasks = tasks_of(client, ws, convs[0]["customer"]["id"])
    assert len(tasks) == 1 and "пропущенный" in tasks[0]["title"]


def test_outbound_call_is_logged_as_a_note(client, ws, account):
    r = send(client, account, fixture("call_outbound_started"))
    assert r.status_code == 200, r.text
    conv = phone_conversations(client, ws)[0]
    msgs = messages_of(client, ws, conv["id"])
    assert msgs[-1]["author_kind"] == "system" and msgs[-1]["body_text"] == "📞 Исходящий звонок на +79161234567"
    ended = {**fixture("call_outbound_started"), "event": "call.ended", "duration": 65}
    send(client, account, ended)
    assert len(phone_conversations(client, ws)) == 1
    assert "1:05" in messages_of(client, ws, conv["id"])[-1]["body_text"]


def test_signature_and_shape_are_checked(client, ws, account):
    body = json.dumps(fixture("call_started")).encode()
    assert client.post(events_url(account), content=body, headers={"content-type": "application/json"}
                       ).status_code == 401
    assert send(client, account, fixture("call_started"), secret="wrong").status_code == 401
    assert client.post(events_url(account), content=body, headers={
        "x-otklik-signature": "sha256=" + "0" * 64}).status_code == 401
    insecure = {**fixture("call_ended"), "recording_url": "http://pbx.example.ru/r.mp3"}
    assert send(client, account, insecure).status_code == 422
    unknown = {**fixture("call_started"), "event": "call.transferred"}
    assert send(client, account, unknown).status_code == 422
    bad_number = {**fixture("call_started"), "from": "anonymous"}
    assert send(client, account, bad_number).status_code == 422
    raw = b"{nope"
    sig = "sha256=" + hmac.new(SIGNING.encode(), raw, hashlib.sha256).hexdigest()
    assert client.post(events_url(account), content=raw, headers={"x-otklik-signature": sig}).status_code == 400
    assert send(client, account, fixture("call_started"), url="/api/v1/phone/events/unknown").status_code == 404
    assert phone_conversations(client, ws) == []
    # the settings page's URL for this account works the same
    assert send(client, account, fixture("call_started"), url=account["webhook_path"]).status_code == 200


def test_phone_conversation_takes_no_written_reply(client, ws, account):
    send(client, account, fixture("call_missed"))
    conv = phone_conversations(client, ws)[0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Перезвоним"}, headers=ws.agent)
    assert r.status_code == 409 and "call the customer back" in r.json()["error"]["message"]
    note = client.post(f"/api/v1/conversations/{conv['id']}/messages",
                       json={"text": "Перезвонила, вопрос решён", "is_internal": True}, headers=ws.agent)
    assert note.status_code == 201
