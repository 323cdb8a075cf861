"""Instagram: Meta's verification handshake, X-Hub-Signature-256, one recorded payload per direct-message and
comment shape (reconstructed from Meta's Instagram messaging and webhooks documentation), the 24-hour window and
the HUMAN_AGENT tag, public and private replies to comments, against a local stand-in of the Graph API."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import pytest
from sqlalchemy import select, update

from otklik.conversations import outbox
from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.channels.conftest import JPEG, PDF, PNG, fixture
from tests.channels.helpers import (
    attachments_of,
    identities_of_customer,
    make_due,
    messages_of,
    outbox_item,
    upload_photo_and_invoice,
)
from tests.channels.vendor_stand_in import VendorStandIn

APP_SECRET = "ig-app-secret-123"
IG = "17841405822304914"
USER = "5512345678901234"
COMMENT = "17865799348089039"
TOKEN = "IGAAT-long-lived-token"


def ig(name: str) -> dict:
    """A recorded payload, its message timestamps moved to now (the 24-hour window counts from them)."""
    payload = fixture("instagram", name)
    for entry in payload.get("entry", []):
        for event in entry.get("messaging", []):
            event["timestamp"] = int(time.time() * 1000)
    return payload


class FakeGraph:
    """graph.instagram.com: /<version>/<account>/messages, /<version>/<comment>/replies, /<version>/<account>."""

    def __init__(self):
        self.stand_in = VendorStandIn(self.answer)

    def answer(self, path, body):
        if path.startswith("/cdn/"):  # Meta's signed CDN links of a customer's files: no token, they expire
            return (200, JPEG, {}) if path == "/cdn/photo.jpg" else (404, {"error": "gone"}, {})
        parts = path.strip("/").split("/")
        n = len(self.stand_in.requests)
        if len(parts) == 3 and parts[2] == "messages":
            return 200, {"recipient_id": USER, "message_id": f"aWdfZAG1OUT{n}"}, {}
        if len(parts) == 3 and parts[2] == "replies":
            return 200, {"id": f"1787123456789{n:04d}"}, {}
        if len(parts) == 3 and parts[2] == "subscribed_apps":
            return 200, {"success": True}, {}
        if len(parts) == 2 and parts[1] == IG:
            return 200, fixture("instagram", "response_me"), {}
        return 404, {"error": {"message": "Unsupported request", "code": 100}}, {}

    def calls(self, suffix):
        return [r for r in self.stand_in.requests if r["path"].endswith(suffix)]

    def close(self):
        self.stand_in.close()


@pytest.fixture
def graph():
    fake = FakeGraph()
    yield fake
    fake.close()


@pytest.fixture
def account(client, ws, graph):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "instagram", "config": {"account_id": IG, "api_base": graph.stand_in.base,
                                        "quick_replies": ["Статус заказа"]},
        "secrets": {"access_token": TOKEN, "app_secret": APP_SECRET, "verify_token": "verify-me"}})
    assert r.status_code == 201, r.text
    return r.json()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"content-type": "application/json",
            "x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def notify(client, account, payload):
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post(account["webhook_path"], content=body, headers=signed(body))


def conversation_id(ws) -> int:
    return messages_of(ws.id, "instagram")[0].conversation_id


def reply(client, ws, text, conv=None, **extra):
    return client.post(f"/api/v1/conversations/{conv or conversation_id(ws)}/messages", json={"text": text, **extra},
                       headers=ws.agent)


def age_customer_messages(conversation: int, hours: float) -> None:
    with session_scope() as s:
        s.execute(update(Message).where(Message.conversation_id == conversation, Message.direction == "inbound")
                  .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)))


def test_verification_handshake(client, account):
    path = account["webhook_path"]
    ok = client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "8812"})
    assert ok.status_code == 200 and ok.text == "8812"
    assert client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "x", "hub.challenge": "1"}).status_code == 403
    assert client.get(path, params={"hub.mode": "subscribe"}).status_code == 400
    assert client.get("/api/v1/channels/instagram/webhook/nope", params={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"}).status_code == 404


def test_signature_is_checked_before_anything_is_stored(client, ws, account):
    body = json.dumps(ig("message_text")).encode()
    path = account["webhook_path"]
    assert client.post(path, content=body, headers={"content-type": "application/json"}).status_code == 401
    assert client.post(path, content=body, headers=signed(body, "another")).status_code == 401
    assert client.post(path, content=body.replace(b"4512", b"9999"), headers=signed(body)).status_code == 401
    assert messages_of(ws.id, "instagram") == []
    unknown = client.post("/api/v1/channels/instagram/webhook/nope", content=body, headers=signed(body))
    assert unknown.status_code == 404
    for raw in (b"{oops", b'{"object": "page", "entry": []}', b'{"object": "instagram", "entry": {}}'):
        r = client.post(path, content=raw, headers=signed(raw))
        assert r.status_code == 400 and r.json()["error"]["message"], r.text


EXPECTED = {
    "message_text": "Здравствуйте! Где мой заказ №4512?",
    "message_image": "📷 Фото",
    "message_story_reply": "↩️ Ответ на вашу историю https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id="
                           "17951234567890123&signature=Story1\nА это платье есть в размере M?",
    "message_story_mention": "📣 Клиент упомянул вас в истории https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id="
                             "17961234567890123&signature=Mention1",
    "message_quick_reply": "1. Сроки доставки по России",
    "postback": "Нажата кнопка: Позвать оператора",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_direct_message_shape_is_stored_once(client, ws, account, graph, name):
    payload = ig(name)
    if name == "message_image":  # the file behind Meta's link is fetched after the answer and attached
        payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] = \
            f"{graph.stand_in.base}/cdn/photo.jpg"
    r = notify(client, account, payload)
    assert r.status_code == 200 and r.json()["messages"] == 1, r.text
    again = notify(client, account, payload)  # Meta re-sends until it gets a 200
    assert again.status_code == 200 and again.json()["messages"] == 0 and again.json()["duplicates"] == 1
    [message] = messages_of(ws.id, "instagram")
    assert message.body_text == EXPECTED[name]
    assert "kind" not in message.meta  # a direct message is not public
    files = [(a.filename, a.content_type, a.size) for a in attachments_of(message.id)]
    assert files == ([("instagram-1.jpg", "image/jpeg", len(JPEG))] if name == "message_image" else [])
    customer, identities = identities_of_customer(ws.id, "instagram", USER)
    assert customer is not None and [(i.kind, i.verified) for i in identities] == [("instagram", True)]


def test_an_expired_media_link_is_stored_with_a_note(client, ws, account, graph):
    payload = ig("message_image")
    payload["entry"][0]["messaging"][0]["message"]["attachments"][0]["payload"]["url"] = f"{graph.stand_in.base}/cdn/old"
    assert notify(client, account, payload).json()["messages"] == 1
    assert notify(client, account, payload).json()["duplicates"] == 1
    [message] = messages_of(ws.id, "instagram")
    assert "не загружен" in message.body_text and "404" in message.body_text and attachments_of(message.id) == []


def test_echoes_own_comments_and_other_accounts_are_ignored(client, ws, account):
    assert notify(client, account, ig("message_echo")).json()["ignored"] == 1
    assert notify(client, account, ig("comment_own")).json()["ignored"] == 1
    other = ig("message_text")
    other["entry"][0]["id"] = "17840000000000000"
    assert notify(client, account, other).json()["ignored"] == 1
    assert messages_of(ws.id, "instagram") == []


def test_a_reply_in_the_window_goes_with_quick_replies_and_read_receipts_mark_it(client, ws, account, graph):
    notify(client, account, ig("message_text"))
    r = reply(client, ws, "Проверим и ответим")
    assert r.status_code == 201, r.text
    [sent] = graph.calls(f"/v21.0/{IG}/messages")
    assert sent["body"] == {"recipient": {"id": USER}, "messaging_type": "RESPONSE", "message": {
        "text": "Проверим и ответим",
        "quick_replies": [{"content_type": "text", "title": "Статус заказа", "payload": "Статус заказа"}]}}
    assert sent["headers"]["Authorization"] == f"Bearer {TOKEN}"
    with session_scope(write=False) as s:
        stored = s.get(Message, r.json()["id"])
        assert stored.delivery_status == "sent"
        mid = stored.channel_message_id.removeprefix("ig:")
    receipt = json.loads(json.dumps(ig("read")).replace("OUTBOUND", mid))
    assert notify(client, account, receipt).json()["statuses"] == 1
    with session_scope(write=False) as s:
        assert s.get(Message, r.json()["id"]).delivery_status == "read"


def test_outside_24_hours_only_the_human_agent_tag_and_only_when_enabled(client, ws, account, graph):
    notify(client, account, ig("message_text"))
    conv = conversation_id(ws)
    age_customer_messages(conv, 25)
    refused = reply(client, ws, "Добрый день!")
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "reply_refused"
    assert "24 hours" in refused.json()["error"]["message"]
    assert graph.calls("/messages") == []
    r = client.patch(f"/api/v1/channels/accounts/{account['id']}", json={"config": {"human_agent_tag": True}},
                     headers=ws.admin)
    assert r.status_code == 200, r.text
    assert reply(client, ws, "Заказ передан курьеру").status_code == 201
    [sent] = graph.calls("/messages")
    assert sent["body"]["messaging_type"] == "MESSAGE_TAG" and sent["body"]["tag"] == "HUMAN_AGENT"
    age_customer_messages(conv, 8 * 24)
    assert reply(client, ws, "Через неделю").status_code == 409


def test_a_reply_whose_window_closes_in_the_outbox_is_a_readable_dead_letter(client, ws, account, graph):
    notify(client, account, ig("message_text"))
    graph.stand_in.queue(f"/v21.0/{IG}/messages", (400, fixture("instagram", "response_rate_limit"), {}))
    r = reply(client, ws, "Ответ")
    item = outbox_item(r.json()["id"])
    assert item.status == "pending" and "rate limit" in item.last_error
    age_customer_messages(conversation_id(ws), 30)
    make_due(item.id)
    outbox.deliver(item.id)
    item = outbox_item(r.json()["id"])
    assert item.status == "dead" and "24 hours" in item.last_error
    assert len(graph.calls("/messages")) == 1  # only the rate-limited attempt reached Meta


@pytest.mark.parametrize(("answer", "status", "outcome"), [("response_rate_limit", 400, "pending"),
                                                           ("response_bad_token", 401, "dead"),
                                                           ("response_window_closed", 400, "dead")])
def test_graph_errors_are_retried_or_dead(client, ws, account, graph, answer, status, outcome):
    notify(client, account, ig("message_text"))
    graph.stand_in.queue(f"/v21.0/{IG}/messages", (status, fixture("instagram", answer), {}))
    item = outbox_item(reply(client, ws, "Ответ").json()["id"])
    assert item.status == outcome, item.last_error
    assert str(fixture("instagram", answer)["error"]["code"]) in item.last_error


def test_a_comment_is_a_public_conversation_answered_under_the_post(client, ws, account, graph):
    r = notify(client, account, ig("comment"))
    assert r.json()["comments"] == 1
    assert notify(client, account, ig("comment")).json()["duplicates"] == 1
    [message] = messages_of(ws.id, "instagram")
    assert message.body_text == "💬 Комментарий к публикации: Сколько стоит доставка в Казань?"
    assert message.meta["kind"] == "comment" and message.meta["instagram"]["comment_id"] == COMMENT
    conv = client.get(f"/api/v1/conversations/{message.conversation_id}", headers=ws.agent).json()
    assert "публичный комментарий" in conv["tags"]
    customer, _ = identities_of_customer(ws.id, "instagram", USER)
    assert customer is not None and customer.name == "olga.smirnova"
    assert reply(client, ws, "Доставка в Казань — 350 ₽").status_code == 201
    [public] = graph.calls(f"/{COMMENT}/replies")
    assert public["body"] == {"message": "Доставка в Казань — 350 ₽"}
    assert graph.calls("/messages") == []
    # the agent chooses to answer privately: a direct message tied to the comment
    r = client.post(f"/api/v1/instagram/conversations/{message.conversation_id}/private-reply",
                    json={"text": "Напишем вам в директ"}, headers=ws.agent)
    assert r.status_code == 201, r.text
    [private] = graph.calls(f"/v21.0/{IG}/messages")
    assert private["body"] == {"recipient": {"comment_id": COMMENT}, "message": {"text": "Напишем вам в директ"}}
    # files cannot go under a post
    png, _pdf = upload_photo_and_invoice(client, ws)
    item = outbox_item(reply(client, ws, "Фото", attachment_ids=[png]).json()["id"])
    assert item.status == "dead" and "comment" in item.last_error
    # a private reply is allowed for 7 days after the comment
    age_customer_messages(message.conversation_id, 8 * 24)
    late = client.post(f"/api/v1/instagram/conversations/{message.conversation_id}/private-reply",
                       json={"text": "Поздно"}, headers=ws.agent)
    assert late.status_code == 409 and "7 days" in late.json()["error"]["message"]
    assert reply(client, ws, "Публично можно всегда").status_code == 201


def test_private_reply_is_only_for_comments(client, ws, account):
    notify(client, account, ig("message_text"))
    r = client.post(f"/api/v1/instagram/conversations/{conversation_id(ws)}/private-reply", json={"text": "x"},
                    headers=ws.agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_a_comment"


def test_the_assistant_never_answers_a_comment_with_chat_text(client, ws, account, graph):
    from otklik.assistant.models import AssistantDecision

    r = client.patch("/api/v1/assistant/settings", json={"enabled": True}, headers=ws.admin)
    assert r.status_code == 200, r.text
    notify(client, account, ig("comment"))
    with session_scope(write=False) as s:
        decisions = list(s.scalars(select(AssistantDecision).where(AssistantDecision.workspace_id == ws.id)))
    assert [(d.action, d.reason) for d in decisions] == [("handoff", "public_comment")]
    assert graph.stand_in.requests == []


def test_files_in_direct_messages_go_as_signed_links(client, ws, account, graph):
    notify(client, account, ig("message_text"))
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect", json={"base_url": "https://support.example.ru"},
                    headers=ws.admin)
    assert r.status_code == 200 and "/webhook/" in r.json()["message"]
    assert graph.calls("/subscribed_apps")
    png, pdf = upload_photo_and_invoice(client, ws)
    r = reply(client, ws, "Счёт и фото", attachment_ids=[png, pdf])
    assert outbox_item(r.json()["id"]).status == "sent"
    text, image, document = [c["body"]["message"] for c in graph.calls(f"/v21.0/{IG}/messages")]
    assert text["text"] == "Счёт и фото"
    assert image["attachment"]["type"] == "image" and document["attachment"]["type"] == "file"
    for attachment, data in ((image, PNG), (document, PDF)):
        url = attachment["attachment"]["payload"]["url"]
        assert url.startswith("https://support.example.ru/api/v1/channels/media/")
        assert client.get(url.removeprefix("https://support.example.ru")).content == data


def test_test_connection_names_the_account(client, ws, account):
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/test", headers=ws.admin)
    assert r.status_code == 200 and "@romashka.shop" in r.json()["message"]


@pytest.mark.parametrize("name", ["message_text", "message_story_reply", "postback", "comment", "read"])
def test_mutated_notifications_never_cause_a_server_error(client, ws, account, name):
    from tests.channels.test_webhooks_hostile import mutated, mutations

    original = ig(name)
    failures = []
    for path, value in mutations(original):
        r = notify(client, account, mutated(original, path, value))
        if r.status_code >= 500 or (r.status_code >= 400 and not r.json()["error"]["message"]):
            failures.append((path, value, r.status_code, r.text[:200]))
    assert failures == []
