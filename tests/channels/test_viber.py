"""Viber: the signed callbacks (one recorded payload per message and event shape, reconstructed from Viber's
REST Bot API documentation), Viber's retries, the subscribe / unsubscribe rule, delivery statuses, keyboards,
files by signed link, and the vendor's refusals, against a local stand-in of chatapi.viber.com/pa."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Message
from otklik.platform.db import session_scope
from tests.channels.conftest import JPEG, PDF, PNG, fixture
from tests.channels.helpers import (
    attachments_of,
    create_account,
    identities_of_customer,
    messages_of,
    outbox_item,
    upload_photo_and_invoice,
)
from tests.channels.viber_stand_in import VIBER_TOKEN, ViberBotAPI

USER = "01234567890A="


@pytest.fixture
def viber():
    api = ViberBotAPI()
    yield api
    api.close()


@pytest.fixture
def bot(client, ws, viber):
    account = create_account(client, ws, "viber", config={"api_base_url": viber.url, "sender_name": "Ромашка",
                                                          "quick_replies": ["Статус заказа", "Позвать оператора"],
                                                          "welcome_text": "Здравствуйте! Напишите номер заказа."},
                             secrets={"auth_token": VIBER_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    [hook] = viber.server.calls("/set_webhook")
    body = json.loads(hook.body)
    assert body["url"] == "https://support.example.ru" + account["webhook_path"]
    assert set(body["event_types"]) >= {"delivered", "seen", "failed", "subscribed", "unsubscribed",
                                        "conversation_started"}
    return account


def signed(body: bytes, token: str = VIBER_TOKEN) -> dict[str, str]:
    return {"content-type": "application/json",
            "x-viber-content-signature": hmac.new(token.encode(), body, hashlib.sha256).hexdigest()}


def post(client, bot, payload):
    body = payload if isinstance(payload, bytes) else json.dumps(payload, ensure_ascii=False).encode()
    return client.post(bot["webhook_path"], content=body, headers=signed(body))


def test_the_signature_is_checked_before_anything_is_read(client, ws, bot):
    body = json.dumps(fixture("viber", "message_text")).encode()
    path = bot["webhook_path"]
    assert client.post(path, content=body, headers={"content-type": "application/json"}).status_code == 401
    assert client.post(path, content=body, headers=signed(body, "another-token-0123456789")).status_code == 401
    tampered = body.replace(b"4512", b"9999")
    r = client.post(path, content=tampered, headers=signed(body))
    assert r.status_code == 401 and r.json()["error"]["code"] == "bad_signature"
    assert messages_of(ws.id, "viber") == []
    unknown = client.post("/api/v1/channels/viber/webhook/no-such-token", content=body, headers=signed(body))
    assert unknown.status_code == 404 and unknown.json()["error"]["message"]
    assert client.post(path, content=b"{oops", headers=signed(b"{oops")).status_code == 400
    for odd in ({"event": 5}, {"event": "message", "message_token": 1, "sender": {"id": "a b"}, "message": {}},
                {"event": "message", "sender": {"id": USER}, "message": {"type": "text", "text": "x"}}):
        raw = json.dumps(odd).encode()
        r = client.post(path, content=raw, headers=signed(raw))
        assert r.status_code == 400 and r.json()["error"]["message"], r.text


def test_viber_checks_the_address_with_a_webhook_event(client, bot):
    r = post(client, bot, fixture("viber", "webhook"))
    assert r.status_code == 200 and r.json()["status"] == 0


@pytest.mark.parametrize(("name", "text"), [
    ("message_text", "Добрый день, заказ №4512 не пришёл"),
    ("message_picture", "Вот упаковка\n📷 Фото"),
    ("message_file", "📄 Документ: chek_4512.pdf, 100 КБ"),
    ("message_contact", "📱 Контакт: Иван Петров +79161234567"),
    ("message_location", "📍 Геопозиция: 55.751244, 37.618423 https://maps.google.com/?q=55.751244,37.618423"),
    ("message_sticker", "Стикер"),
])
def test_each_message_shape_is_stored_once(client, ws, bot, viber, name, text):
    payload = fixture("viber", name)
    media = payload["message"].get("media")
    if media:  # Viber's link, served by the stand-in
        viber.media[media.rsplit("/", 1)[-1]] = ("application/pdf", PDF) if media.endswith(".pdf") else ("image/jpeg", JPEG)
        payload["message"]["media"] = f"{viber.server.url}/media/{media.rsplit('/', 1)[-1]}"
    first = post(client, bot, payload)
    assert first.status_code == 200 and first.json()["status_message"] == "stored", first.text
    again = post(client, bot, payload)  # Viber re-sends what did not get a 200
    assert again.status_code == 200 and again.json()["status_message"] == "duplicate"
    [message] = messages_of(ws.id, "viber")
    assert message.body_text == text
    assert message.channel_message_id == f"viber:{payload['message_token']}"
    customer, identities = identities_of_customer(ws.id, "viber", USER)
    assert customer is not None and customer.name == "Ольга Смирнова"
    assert [(i.kind, i.verified) for i in identities] == [("viber", True)]
    files = [(a.filename, a.content_type, a.size) for a in attachments_of(message.id)]
    assert files == {"message_picture": [("IMG_0412.jpg", "image/jpeg", len(JPEG))],
                     "message_file": [("chek_4512.pdf", "application/pdf", len(PDF))]}.get(name, [])


def test_an_expired_media_link_is_stored_with_a_note(client, ws, bot, viber):
    payload = fixture("viber", "message_picture")
    payload["message"]["media"] = f"{viber.server.url}/media/expired.jpg"
    assert post(client, bot, payload).json()["status_message"] == "stored"
    assert post(client, bot, payload).json()["status_message"] == "duplicate"
    [message] = messages_of(ws.id, "viber")
    assert "не загружен" in message.body_text and "404" in message.body_text
    assert attachments_of(message.id) == []


def test_conversation_started_gets_the_welcome_and_subscribed_creates_the_customer(client, ws, bot):
    r = post(client, bot, fixture("viber", "conversation_started"))
    assert r.status_code == 200
    assert r.json() == {"sender": {"name": "Ромашка"}, "type": "text", "text": "Здравствуйте! Напишите номер заказа."}
    assert post(client, bot, fixture("viber", "conversation_started")).json()["status_message"] == "duplicate"
    assert post(client, bot, fixture("viber", "subscribed")).json()["status_message"] == "subscribed"
    customer, _ = identities_of_customer(ws.id, "viber", USER)
    assert customer is not None and customer.name == "Ольга Смирнова"
    assert messages_of(ws.id, "viber") == []  # events, not messages


def _conversation_id(ws) -> int:
    return messages_of(ws.id, "viber")[0].conversation_id


def test_a_reply_goes_with_the_quick_reply_keyboard_and_statuses_move_it_forward(client, ws, bot, viber):
    post(client, bot, fixture("viber", "message_text"))
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Проверим и ответим"},
                    headers=ws.agent)
    assert r.status_code == 201, r.text
    [sent] = viber.sent()
    assert sent["receiver"] == USER and sent["type"] == "text" and sent["text"] == "Проверим и ответим"
    assert sent["sender"] == {"name": "Ромашка"} and sent["min_api_version"] == 1
    assert [(b["ActionType"], b["ActionBody"], b["Text"]) for b in sent["keyboard"]["Buttons"]] == [
        ("reply", "Статус заказа", "Статус заказа"), ("reply", "Позвать оператора", "Позвать оператора")]
    assert viber.server.calls("/send_message")[0].headers["x-viber-auth-token"] == VIBER_TOKEN
    message_id = r.json()["id"]
    with session_scope(write=False) as s:
        vendor_id = s.get(Message, message_id).channel_message_id
    token = int(vendor_id.removeprefix("viber:"))

    def status(name):
        payload = {**fixture("viber", name), "message_token": token}
        assert post(client, bot, payload).json()["status_message"] == "status"
        assert post(client, bot, payload).json()["status_message"] == "duplicate"
        with session_scope(write=False) as s:
            stored = s.get(Message, message_id)
            return stored.delivery_status, stored.delivery_error

    assert status("delivered") == ("delivered", None)
    assert status("seen") == ("read", None)
    assert status("failed") == ("read", None)  # seen proves delivery


def test_a_failed_status_is_shown_with_vipers_reason(client, ws, bot):
    post(client, bot, fixture("viber", "message_text"))
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Ответ"}, headers=ws.agent)
    with session_scope(write=False) as s:
        token = int(s.get(Message, r.json()["id"]).channel_message_id.removeprefix("viber:"))
    post(client, bot, {**fixture("viber", "failed"), "message_token": token})
    with session_scope(write=False) as s:
        stored = s.get(Message, r.json()["id"])
        assert stored.delivery_status == "failed" and "failure description" in stored.delivery_error


def test_the_assistants_clarifying_choices_become_the_keyboard(client, ws, bot, viber):
    post(client, bot, fixture("viber", "message_text"))
    with session_scope() as s:
        reply = conversations.reply(s, ws.actor("agent"), _conversation_id(ws), text="Уточните, пожалуйста:\n1. Доставка\n"
                                    "2. Возврат", author=AuthorKind.assistant)
        reply.meta = {"buttons": ["1. Доставка", "2. Возврат"]}
    [sent] = viber.sent()
    assert [b["ActionBody"] for b in sent["keyboard"]["Buttons"]] == ["1. Доставка", "2. Возврат"]


def test_after_unsubscribing_a_reply_is_a_dead_letter_without_a_call_to_viber(client, ws, bot, viber):
    post(client, bot, fixture("viber", "message_text"))
    assert post(client, bot, fixture("viber", "unsubscribed")).json()["status_message"] == "unsubscribed"
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Ответ"}, headers=ws.agent)
    item = outbox_item(r.json()["id"])
    assert item.status == "dead" and "unsubscribed" in item.last_error
    assert viber.sent() == []
    dead = client.get("/api/v1/outbox?status=dead", headers=ws.admin).json()
    assert [d["id"] for d in dead] == [item.id]
    # an older message delivered late does not undo the unsubscribe; a newer one does
    late = {**fixture("viber", "message_text"), "message_token": 5741311803571700000, "timestamp": 1763950550000}
    post(client, bot, late)
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Ещё раз"}, headers=ws.agent)
    assert outbox_item(r.json()["id"]).status == "dead" and viber.sent() == []
    newer = {**fixture("viber", "message_text"), "message_token": 5741311803571799999, "timestamp": 1763951000000}
    post(client, bot, newer)
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Снова на связи"},
                    headers=ws.agent)
    assert outbox_item(r.json()["id"]).status == "sent" and viber.sent()[-1]["text"] == "Снова на связи"


def test_a_user_who_never_wrote_or_subscribed_gets_nothing(client, ws, bot, viber):
    from otklik.channels.models import ChannelAccount
    from otklik.channels.viber.plugin import PLUGIN
    from otklik.conversations.outbox import DeliveryError, OutboundMessage

    with session_scope(write=False) as s:
        account = s.get(ChannelAccount, bot["id"])
        s.expunge(account)
    sender = PLUGIN.sender(account, dict(account.config), {"auth_token": VIBER_TOKEN})
    message = OutboundMessage(outbox_id=0, idempotency_key="k", workspace_id=ws.id, conversation_id=0,
                              conversation_number=1, message_id=0, channel="viber", text="Здравствуйте", html="",
                              recipients=[("viber", "0NeverWrote0=")], attachments=[], attempt=1)
    with pytest.raises(DeliveryError) as refused:
        sender.send(message)
    assert refused.value.permanent and "not written" in str(refused.value)
    assert viber.sent() == []


@pytest.mark.parametrize(("answer", "outcome"), [("response_too_many", "pending"), ("response_not_subscribed", "dead"),
                                                 ("response_bad_token", "dead")])
def test_vendor_refusals_are_retried_or_dead(client, ws, bot, viber, answer, outcome):
    post(client, bot, fixture("viber", "message_text"))
    viber.fail_next.append(answer)
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", json={"text": "Ответ"}, headers=ws.agent)
    item = outbox_item(r.json()["id"])
    assert item.status == outcome, item.last_error
    assert "Viber status" in item.last_error


def test_files_go_as_signed_links_viber_downloads(client, ws, bot, viber):
    post(client, bot, fixture("viber", "message_text"))
    png, pdf = upload_photo_and_invoice(client, ws)
    r = client.post(f"/api/v1/conversations/{_conversation_id(ws)}/messages", headers=ws.agent,
                    json={"text": "Счёт и фото во вложении", "attachment_ids": [png, pdf]})
    assert r.status_code == 201, r.text
    assert outbox_item(r.json()["id"]).status == "sent"
    text, picture, document = viber.sent()
    assert text["type"] == "text" and "keyboard" not in text
    assert picture["type"] == "picture" and picture["media"].startswith("https://support.example.ru/api/v1/"
                                                                         "channels/media/")
    assert picture["media"].endswith("/%D1%84%D0%BE%D1%82%D0%BE.png")
    assert document["type"] == "file" and document["file_name"] == "счёт.pdf" and document["size"] == len(PDF)
    assert "keyboard" in document  # the keyboard goes under the last part
    for link, data in ((picture["media"], PNG), (document["media"], PDF)):
        got = client.get(link.removeprefix("https://support.example.ru"))
        assert got.status_code == 200 and got.content == data
    forged = picture["media"].removeprefix("https://support.example.ru").replace(f"/{png}/", f"/{pdf}/")
    assert client.get(forged).status_code == 404


def test_test_connection_names_the_bot(client, ws, bot):
    r = client.post(f"/api/v1/channels/accounts/{bot['id']}/test", headers=ws.admin)
    assert r.status_code == 200 and "Ромашка: поддержка" in r.json()["message"]


def test_settings_are_checked(client, ws):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "viber", "config": {"api_base_url": "ftp://x"}, "secrets": {"auth_token": VIBER_TOKEN}})
    assert r.status_code == 422
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={"kind": "viber", "secrets": {"auth_token": "x"}})
    assert r.status_code == 422 and "auth_token" in r.text
    kinds = {k["kind"]: k for k in client.get("/api/v1/channels/kinds", headers=ws.admin).json()}
    assert kinds["viber"]["can_test"] and kinds["viber"]["can_connect_webhook"]
    assert "quick_replies" in kinds["viber"]["config_schema"]["properties"]


@pytest.mark.parametrize("name", ["message_text", "message_location", "subscribed", "unsubscribed", "seen",
                                  "conversation_started"])
def test_mutated_callbacks_never_cause_a_server_error(client, ws, bot, name):
    from tests.channels.test_webhooks_hostile import mutated, mutations

    original = fixture("viber", name)
    if original.get("message_token") == "OUTBOUND":
        original["message_token"] = 1
    failures = []
    for n, (path, value) in enumerate(mutations(original)):
        payload = mutated(original, path, value)
        if path != ("message_token",):
            payload["message_token"] = 8_000_000_000_000_000_000 + n  # each a new event, none skipped as a retry
        r = post(client, bot, payload)
        if r.status_code >= 500 or (r.status_code >= 400 and not r.json()["error"]["message"]):
            failures.append((path, value, r.status_code, r.text[:200]))
    assert failures == []
