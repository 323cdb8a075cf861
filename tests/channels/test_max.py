"""MAX: one recorded webhook payload per event shape handled, secret verification failures, and outbound
calls against a local stand-in of the MAX Bot API (shapes reconstructed from MAX's public API schema)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from otklik.conversations import outbox
from tests.channels.conftest import MAX_TOKEN, PDF, PNG, fixture
from tests.channels.helpers import (
    create_account,
    identities_of_customer,
    make_due,
    messages_of,
    outbox_item,
)

MAX_USER = "48150372"


@pytest.fixture
def bot(client, ws, max_api):
    account = create_account(client, ws, "max", config={"api_base_url": max_api.url,
                                                        "quick_replies": ["Статус заказа"]},
                             secrets={"bot_token": MAX_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    [subscription] = [q for q in max_api.server.requests if q.path == "/subscriptions"]
    body = json.loads(subscription.body)
    account["secret"] = body["secret"]
    assert body["url"] == "https://support.example.ru" + account["webhook_path"]
    assert set(body["update_types"]) >= {"message_created", "message_callback", "bot_started"}
    assert subscription.headers["authorization"] == MAX_TOKEN
    return account


def post(client, bot, payload, *, secret=None):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return client.post(bot["webhook_path"], content=body, headers={
        "X-Max-Bot-Api-Secret": bot["secret"] if secret is None else secret, "Content-Type": "application/json"})


@pytest.mark.parametrize("name, text", [
    ("message_created_text", "Добрый день, не пришёл промокод"),
    ("message_created_image", "Вот скриншот\n📷 Фото"),
    ("message_created_file", "📄 Документ: договор.pdf"),
    ("message_created_contact", "📱 Контакт: +79261112233 Пётр Иванов"),
    ("message_created_location", "📍 Геопозиция: 59.938951, 30.315635"),
    ("message_created_sticker", "Стикер"),
])
def test_each_message_shape_becomes_one_message_and_retries_are_acknowledged(client, ws, bot, name, text):
    payload = fixture("max", name)
    first = post(client, bot, payload)
    assert first.status_code == 200 and first.json()["result"] == "stored", first.text
    again = post(client, bot, payload)  # MAX retries any non-200 for hours
    assert again.status_code == 200 and again.json()["result"] == "duplicate"
    [message] = messages_of(ws.id, "max")
    assert message.body_text == text
    assert message.channel_message_id == "max:" + payload["message"]["body"]["mid"]
    customer, identities = identities_of_customer(ws.id, "max", MAX_USER)
    assert customer is not None and customer.name == "Пётр Иванов"
    assert ("max", True) in [(i.kind, i.verified) for i in identities]


def test_sharing_ones_own_contact_is_a_verified_phone_that_matches_across_channels(client, ws, bot):
    r = client.post("/api/v1/customers", json={"name": "Пётр", "identities": [
        {"kind": "phone", "external_id": "8 (926) 111-22-33", "verified": True}]}, headers=ws.agent)
    phone_customer = r.json()["id"]
    post(client, bot, fixture("max", "message_created_text"))
    post(client, bot, fixture("max", "message_created_contact"))
    customer, identities = identities_of_customer(ws.id, "max", MAX_USER)
    assert customer is not None and customer.id == phone_customer
    assert {(i.kind, i.external_id, i.verified) for i in identities} == {
        ("max", MAX_USER, True), ("phone", "+79261112233", True)}


def test_someone_elses_contact_adds_no_identity(client, ws, bot):
    payload = fixture("max", "message_created_contact")
    payload["message"]["body"]["attachments"][0]["payload"]["max_info"]["user_id"] = 777
    post(client, bot, payload)
    _, identities = identities_of_customer(ws.id, "max", MAX_USER)
    assert [i.kind for i in identities] == ["max"]


def test_attachment_links_are_kept_for_the_agent(client, ws, bot):
    post(client, bot, fixture("max", "message_created_file"))
    [message] = messages_of(ws.id, "max")
    assert message.meta["attachments"][0]["filename"] == "договор.pdf"
    assert message.meta["attachments"][0]["url"].startswith("https://fd.oneme.ru/")


def test_edit_callback_start_and_ignored_kinds(client, ws, bot, max_api):
    assert post(client, bot, fixture("max", "message_created_text")).json()["result"] == "stored"
    assert post(client, bot, fixture("max", "message_edited")).json()["result"] == "stored"
    assert post(client, bot, fixture("max", "message_callback")).json()["result"] == "stored"
    assert post(client, bot, fixture("max", "message_callback")).json()["result"] == "duplicate"
    assert post(client, bot, fixture("max", "bot_started")).json()["result"] == "stored"
    assert post(client, bot, fixture("max", "bot_stopped")).json()["result"] == "ignored"
    assert post(client, bot, fixture("max", "bot_stopped")).json()["result"] == "duplicate"
    assert post(client, bot, fixture("max", "message_created_group")).json()["result"] == "ignored"
    texts = [m.body_text for m in messages_of(ws.id, "max")]
    assert texts == ["Добрый день, не пришёл промокод", "✏️ Исправлено: Добрый день, не пришёл промокод на скидку",
                     "Статус заказа"]
    answers = [q for q in max_api.server.requests if q.path == "/answers"]
    assert [a.query["callback_id"][0] for a in answers] == [fixture("max", "message_callback")["callback"]["callback_id"]]
    customer, _ = identities_of_customer(ws.id, "max", MAX_USER)
    assert customer is not None and customer.attributes["max_start_payload"] == "order-18342"


@pytest.mark.parametrize("secret", ["", "wrong", "Ё".encode() * 10])
def test_wrong_or_missing_secret_is_401(client, ws, bot, secret):
    r = post(client, bot, fixture("max", "message_created_text"), secret=secret)
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    assert messages_of(ws.id, "max") == []


def test_unknown_address_is_404(client, bot):
    r = client.post("/api/v1/channels/max/webhook/nope", json=fixture("max", "message_created_text"),
                    headers={"X-Max-Bot-Api-Secret": bot["secret"]})
    assert r.status_code == 404


def test_a_telegram_address_does_not_take_max_updates(client, ws, bot):
    r = client.post(bot["webhook_path"].replace("/max/", "/telegram/"), json={"update_id": 1},
                    headers={"X-Telegram-Bot-Api-Secret-Token": bot["secret"]})
    assert r.status_code == 404


@pytest.mark.parametrize("body, code", [
    (b"{broken", "malformed_json"),
    (b'"text"', "invalid_update"),
    (b'{"timestamp": 1}', "invalid_update"),
    (b'{"update_type": "message_created", "message": {"body": {}}}', "invalid_update"),
    (b'{"update_type": "message_created", "message": {"body": {"mid": "m1"}, "sender": {"user_id": "x"}}}',
     "invalid_update"),
    (b'{"update_type": "message_callback", "callback": {"callback_id": 5}}', "invalid_update"),
    (b'{"update_type": "bot_started", "user": {"user_id": true}}', "invalid_update"),
])
def test_hostile_bodies_get_a_precise_400(client, ws, bot, body, code):
    r = post(client, bot, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code
    assert messages_of(ws.id, "max") == []


# -- outbound -------------------------------------------------------------------------------------------

def _conversation_id(client, ws, bot):
    post(client, bot, fixture("max", "message_created_text"))
    return messages_of(ws.id, "max")[0].conversation_id


def _reply(client, ws, conversation_id, **body):
    r = client.post(f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=ws.agent)
    assert r.status_code == 201, r.text
    return r.json()


def test_reply_is_posted_to_messages_with_the_keyboard(client, ws, bot, max_api):
    conv = _conversation_id(client, ws, bot)
    sent = _reply(client, ws, conv, text="Промокод отправили повторно")
    [call] = max_api.sent()
    assert call.query["user_id"] == [MAX_USER]
    assert call.headers["authorization"] == MAX_TOKEN
    body = json.loads(call.body)
    assert body["text"] == "Промокод отправили повторно"
    assert body["attachments"][0]["type"] == "inline_keyboard"
    assert body["attachments"][0]["payload"]["buttons"] == [[{"type": "callback", "text": "Статус заказа",
                                                              "payload": "Статус заказа"}]]
    item = outbox_item(sent["id"])
    assert item.status == "sent"
    stored = next(m for m in messages_of(ws.id, "max") if m.id == sent["id"])
    assert stored.channel_message_id.startswith("mid.sent")


def test_files_are_uploaded_then_attached_by_token(client, ws, bot, max_api):
    conv = _conversation_id(client, ws, bot)
    png = client.post("/api/v1/attachments", files={"file": ("фото.png", PNG, "image/png")}, headers=ws.agent).json()
    pdf = client.post("/api/v1/attachments", files={"file": ("счёт.pdf", PDF, "application/pdf")},
                      headers=ws.agent).json()
    _reply(client, ws, conv, text="Во вложении", attachment_ids=[png["id"], pdf["id"]])
    uploads = [q for q in max_api.server.requests if q.path == "/uploads"]
    assert [u.query["type"][0] for u in uploads] == ["image", "file"]
    targets = [q for q in max_api.server.requests if q.path == "/upload-target"]
    assert [t.files["data"] for t in targets] == [("фото.png", PNG), ("счёт.pdf", PDF)]
    messages = [json.loads(c.body) for c in max_api.sent()]
    assert [m["attachments"][0]["type"] for m in messages[1:]] == ["image", "file"]
    assert messages[2]["attachments"][0]["payload"]["token"].startswith("uploaded-")


def test_429_is_retried_after_retry_after_and_403_is_dead(client, ws, bot, max_api):
    conv = _conversation_id(client, ws, bot)
    max_api.fail_next.append(("response_429", 429, {"Retry-After": "7"}))
    sent = _reply(client, ws, conv, text="Первый ответ")
    item = outbox_item(sent["id"])
    assert item.status == "pending" and "429" in item.last_error
    wait = (item.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert 5 <= wait <= 7.5, wait  # MAX's Retry-After, not the outbox's own back-off
    make_due(item.id)
    assert outbox.deliver(item.id) == "sent"
    assert outbox.deliver(item.id) == "skipped"  # a late duplicate job sends nothing
    # refused once, accepted once
    assert len([c for c in max_api.sent() if json.loads(c.body)["text"] == "Первый ответ"]) == 2
    max_api.fail_next.append(("response_403", 403, {}))
    blocked = _reply(client, ws, conv, text="Второй ответ")
    item = outbox_item(blocked["id"])
    assert item.status == "dead" and "chat.denied" in item.last_error


def test_connection_test_calls_me_and_a_bad_token_is_explained(client, ws, bot, max_api):
    r = client.post(f"/api/v1/channels/accounts/{bot['id']}/test", headers=ws.admin)
    assert r.status_code == 200 and "@romashka_bot" in r.json()["message"]
    client.patch(f"/api/v1/channels/accounts/{bot['id']}", json={"secrets": {"bot_token": "x" * 40}}, headers=ws.admin)
    r = client.post(f"/api/v1/channels/accounts/{bot['id']}/test", headers=ws.admin)
    assert r.status_code == 502 and r.json()["error"]["code"] == "vendor_error"
    assert "x" * 40 not in r.text
