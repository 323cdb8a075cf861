"""WhatsApp Cloud API: the verification handshake, X-Hub-Signature-256, one recorded payload per message and
status shape (reconstructed from Meta's Cloud API documentation), the 24-hour window, and delivery against a
local stand-in of graph.facebook.com."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from pathlib import Path

import pytest
from sqlalchemy import select, update

from otklik.conversations.models import Message, OutboxItem
from otklik.platform.db import session_scope
from tests.channels.conftest import PDF, PNG
from tests.channels.helpers import upload_photo_and_invoice
from tests.channels.vendor_stand_in import VendorStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "whatsapp"
APP_SECRET = "meta-app-secret-123"
PHONE_NUMBER_ID = "106540352242922"


def fixture(name: str) -> dict:
    """A recorded payload, its message timestamps moved to now (the 24-hour window counts from them)."""
    return json.loads((FIXTURES / f"{name}.json").read_text().replace('"1763950500"', f'"{int(time.time())}"'))


MEDIA = {  # media id -> (mime type, bytes), as in the recorded message fixtures
    "1234567890123456": ("image/jpeg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200),
    "2234567890123456": ("application/pdf", b"%PDF-1.7\n" + b"0" * 200),
    "3234567890123456": ("audio/ogg", b"OggS\x00\x02" + b"\x00" * 200),
}


class FakeGraph:
    """graph.facebook.com: /<version>/<phone id>/messages, /<version>/<media id> (a short-lived URL), the file."""

    def __init__(self):
        self.stand_in = VendorStandIn(self.answer)

    def answer(self, path, body):
        parts = path.strip("/").split("/")
        if parts[0] == "files" and parts[1] in MEDIA:
            return 200, MEDIA[parts[1]][1], {}
        if len(parts) == 2 and parts[1] in MEDIA:
            mime, data = MEDIA[parts[1]]
            return 200, {"messaging_product": "whatsapp", "url": f"{self.stand_in.base}/files/{parts[1]}",
                         "mime_type": mime, "sha256": "x", "file_size": len(data), "id": parts[1]}, {}
        if len(parts) == 3 and parts[2] == "media":
            return 200, {"id": f"media-{len(self.stand_in.requests)}"}, {}
        if len(parts) == 2:
            return 404, {"error": {"message": "Unsupported get request", "code": 100}}, {}
        n = len(self.stand_in.requests)
        return 200, {"messaging_product": "whatsapp", "contacts": [{"input": body.get("to"), "wa_id": body.get("to")}],
                     "messages": [{"id": f"wamid.OUT{n}"}]}, {}


@pytest.fixture
def graph():
    fake = FakeGraph()
    yield fake
    fake.stand_in.close()


@pytest.fixture
def account(client, ws, graph):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "whatsapp", "config": {"phone_number_id": PHONE_NUMBER_ID, "api_base": graph.stand_in.base},
        "secrets": {"access_token": "EAAG-system-user-token", "app_secret": APP_SECRET, "verify_token": "verify-me"}})
    assert r.status_code == 201, r.text
    return r.json()


def signed(body: bytes, secret: str = APP_SECRET) -> dict[str, str]:
    return {"content-type": "application/json",
            "x-hub-signature-256": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


def notify(client, account, payload):
    body = json.dumps(payload, ensure_ascii=False).encode()
    return client.post(account["webhook_path"], content=body, headers=signed(body))


def conversations_of(client, ws):
    return client.get("/api/v1/conversations?channel=whatsapp", headers=ws.agent).json()["items"]


def messages_of(client, ws, conversation_id):
    return client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=ws.agent).json()["items"]


def test_verification_handshake(client, account):
    path = account["webhook_path"]
    ok = client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.text == "1158201444"
    wrong = client.get(path, params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert wrong.status_code == 403
    assert client.get(path, params={"hub.mode": "subscribe"}).status_code == 400
    assert client.get("/api/v1/channels/whatsapp/webhook/nope", params={
        "hub.mode": "subscribe", "hub.verify_token": "verify-me", "hub.challenge": "1"}).status_code == 404


def test_signature_is_checked_before_anything_is_stored(client, ws, account):
    body = json.dumps(fixture("text")).encode()
    path = account["webhook_path"]
    assert client.post(path, content=body, headers={"content-type": "application/json"}).status_code == 401
    assert client.post(path, content=body, headers=signed(body, "another-secret")).status_code == 401
    tampered = body.replace(b"4512", b"9999")
    assert client.post(path, content=tampered, headers=signed(body)).status_code == 401
    assert conversations_of(client, ws) == []
    assert client.post(path, content=b"{oops", headers=signed(b"{oops")).status_code == 400
    assert client.post(path, content=b'{"object": "page"}', headers=signed(b'{"object": "page"}')).status_code == 400


EXPECTED = {
    "text": "Добрый день, заказ №4512 не пришёл",
    "image": "[Изображение] Вот упаковка",
    "document": "[Документ: chek_4512.pdf] Чек",
    "audio_voice": "[Голосовое сообщение]",
    "location": "[Геопозиция] ПВЗ Тверская Тверская ул., 7, Москва https://maps.google.com/?q=55.751244,37.618423",
    "interactive_button_reply": "Выбран вариант: Вернуть деньги",
    "interactive_list_reply": "Выбран вариант: Пункт выдачи — Заберу сам",
    "button": "Нажата кнопка: Подтверждаю",
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_message_shape_is_stored_once(client, ws, account, name):
    payload = fixture(name)
    r = notify(client, account, payload)
    assert r.status_code == 200 and r.json()["messages"] == 1, r.text
    again = notify(client, account, payload)  # Meta re-sends until it gets a 200
    assert again.status_code == 200 and again.json() == {"messages": 0, "duplicates": 1, "statuses": 0}
    conv = conversations_of(client, ws)[0]
    msgs = messages_of(client, ws, conv["id"])
    assert [m["body_text"] for m in msgs] == [EXPECTED[name]]
    assert len(msgs[0]["attachments"]) == (1 if name in ("image", "document", "audio_voice") else 0)
    customer = client.get(f"/api/v1/customers/{conv['customer']['id']}", headers=ws.agent).json()
    assert customer["name"] == "Ольга Смирнова"
    kinds = {(i["kind"], i["external_id"], i["verified"]) for i in customer["identities"]}
    assert kinds == {("whatsapp", "+79161234567", True), ("phone", "+79161234567", True)}


@pytest.mark.parametrize(("name", "filename", "mime"), [("image", "whatsapp-image.jpg", "image/jpeg"),
                                                      ("document", "chek_4512.pdf", "application/pdf"),
                                                      ("audio_voice", "whatsapp-audio.ogg", "audio/ogg")])
def test_media_is_fetched_from_meta_after_the_answer(client, ws, account, graph, name, filename, mime):
    assert notify(client, account, fixture(name)).json()["messages"] == 1
    conv = conversations_of(client, ws)[0]
    message = messages_of(client, ws, conv["id"])[0]
    assert [(a["filename"], a["content_type"]) for a in message["attachments"]] == [(filename, mime)]
    fetched = [r for r in graph.stand_in.requests if r["method"] == "GET"]
    assert len(fetched) == 2 and all(r["headers"]["Authorization"] == "Bearer EAAG-system-user-token" for r in fetched)
    content = client.get(f"/api/v1/attachments/{message['attachments'][0]['id']}", headers=ws.agent).content
    assert content == next(data for m, data in MEDIA.values() if m == mime)


def test_media_gone_at_meta_is_stored_with_a_note(client, ws, account):
    payload = fixture("image")
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["id"] = "999"
    assert notify(client, account, payload).json()["messages"] == 1
    assert notify(client, account, payload).json()["duplicates"] == 1
    message = messages_of(client, ws, conversations_of(client, ws)[0]["id"])
    assert len(message) == 1 and message[0]["attachments"] == []
    assert "не загружен" in message[0]["body_text"] and "404" in message[0]["body_text"]


def test_statuses_move_delivery_forward_only(client, ws, account, graph):
    notify(client, account, fixture("text"))
    conv = conversations_of(client, ws)[0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Проверим и ответим"},
                    headers=ws.agent)
    assert r.status_code == 201, r.text
    sent = graph.stand_in.calls(f"/v21.0/{PHONE_NUMBER_ID}/messages")
    assert len(sent) == 1
    assert sent[0]["body"] == {"messaging_product": "whatsapp", "recipient_type": "individual", "to": "79161234567",
                               "type": "text", "text": {"preview_url": False, "body": "Проверим и ответим"}}
    assert sent[0]["headers"]["Authorization"] == "Bearer EAAG-system-user-token"
    message_id = r.json()["id"]
    with session_scope(write=False) as s:
        wamid = s.get(Message, message_id).channel_message_id

    def status(name):
        payload = json.loads(json.dumps(fixture(name)).replace("wamid.OUTBOUND-PLACEHOLDER", wamid))
        assert notify(client, account, payload).json()["statuses"] == 1
        return next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == message_id)["delivery_status"]

    assert status("status_delivered") == "delivered"
    assert status("status_sent") == "delivered"  # a late "sent" does not move it back
    assert status("status_read") == "read"
    assert status("status_failed") == "read"  # read proves delivery


def test_failed_status_is_shown_with_the_reason(client, ws, account):
    notify(client, account, fixture("text"))
    conv = conversations_of(client, ws)[0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Ответ"}, headers=ws.agent)
    with session_scope(write=False) as s:
        wamid = s.get(Message, r.json()["id"]).channel_message_id
    notify(client, account, json.loads(json.dumps(fixture("status_failed")).replace("wamid.OUTBOUND-PLACEHOLDER", wamid)))
    stored = next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == r.json()["id"])
    assert stored["delivery_status"] == "failed" and "131047" in stored["delivery_error"]


def _age_customer_messages(conversation_id: int, hours: float) -> None:
    with session_scope() as s:
        s.execute(update(Message).where(Message.conversation_id == conversation_id, Message.direction == "inbound")
                  .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=hours)))


def test_outside_the_24_hour_window_only_templates_go(app, client, ws, account, graph):
    notify(client, account, fixture("text"))
    conv = conversations_of(client, ws)[0]
    window = client.get(f"/api/v1/whatsapp/conversations/{conv['id']}/window", headers=ws.agent).json()
    assert window["open"] is True and window["explanation"] is None
    _age_customer_messages(conv["id"], 25)
    window = client.get(f"/api/v1/whatsapp/conversations/{conv['id']}/window", headers=ws.agent).json()
    assert window["open"] is False and "template" in window["explanation"]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Добрый день!"}, headers=ws.agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "reply_refused"
    assert "24 hours" in r.json()["error"]["message"]
    # the agent's (Russian) conversation page warns before anyone types, in Russian
    from tests.web._ui import Browser

    page = Browser(app, ws.agent_email).get(f"/conversations/{conv['id']}").text
    assert 'id="reply-warning"' in page and "Окно закрыто" in page and "24 hours" not in page
    note = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Клиент молчит", "is_internal": True},
                       headers=ws.agent)
    assert note.status_code == 201  # internal notes are not messages to the customer
    assert graph.stand_in.requests == []
    t = client.post(f"/api/v1/whatsapp/conversations/{conv['id']}/template", headers=ws.agent,
                    json={"name": "order_update", "language": "ru", "parameters": ["4512", "в пути"]})
    assert t.status_code == 201, t.text
    sent = graph.stand_in.calls(f"/v21.0/{PHONE_NUMBER_ID}/messages")
    assert len(sent) == 1 and sent[0]["body"]["type"] == "template"
    assert sent[0]["body"]["template"] == {"name": "order_update", "language": {"code": "ru"}, "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "4512"}, {"type": "text", "text": "в пути"}]}]}
    bad = client.post(f"/api/v1/whatsapp/conversations/{conv['id']}/template", headers=ws.agent,
                      json={"name": "Order Update!", "language": "ru"})
    assert bad.status_code == 422
    # the page offers the template form (issue 19), with the templates sent before to pick from
    page = Browser(app, ws.agent_email).get(f"/conversations/{conv['id']}").text
    assert 'id="wa-template-form"' in page and '<option value="order_update" label="ru">' in page


def test_explain_tells_the_agent_ui_ahead_of_time(client, ws, account):
    from otklik.conversations import reply_checks
    from otklik.conversations.models import Conversation

    notify(client, account, fixture("text"))
    conv_id = conversations_of(client, ws)[0]["id"]
    with session_scope(write=False) as s:
        assert reply_checks.explain(s, s.get(Conversation, conv_id)) is None
    _age_customer_messages(conv_id, 30)
    with session_scope(write=False) as s:
        assert "approved template" in reply_checks.explain(s, s.get(Conversation, conv_id))


@pytest.mark.parametrize(("status", "error", "outcome"), [
    (429, {"message": "Too many", "code": 130429}, "pending"),
    (400, {"message": "Spam rate limit hit", "code": 131048}, "pending"),
    (400, {"message": "Pair rate limit hit", "code": 131056}, "pending"),
    (400, {"message": "Re-engagement message", "code": 131047}, "dead"),
    (401, {"message": "Error validating access token", "code": 190}, "dead"),
    (503, {"message": "Service temporarily unavailable", "code": 2}, "pending"),
])
def test_vendor_errors_are_retried_or_dead(client, ws, account, graph, status, error, outcome):
    notify(client, account, fixture("text"))
    conv = conversations_of(client, ws)[0]
    graph.stand_in.queue(f"/v21.0/{PHONE_NUMBER_ID}/messages", (status, {"error": {**error, "type": "OAuthException",
                                                                                     "fbtrace_id": "Ax1"}},
                                                                 {"Retry-After": "7"} if status == 429 else {}))
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Ответ"}, headers=ws.agent)
    with session_scope(write=False) as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == r.json()["id"]))
    assert item.status == outcome, item.last_error
    assert str(error["code"]) in item.last_error or str(status) in item.last_error
    if status == 429:
        wait = (item.next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()
        assert 3 < wait <= 7  # Retry-After honoured


def test_other_numbers_of_the_business_account_are_ignored(client, ws, account):
    payload = fixture("text")
    payload["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999"
    assert notify(client, account, payload).json() == {"messages": 0, "duplicates": 0, "statuses": 0}
    assert conversations_of(client, ws) == []



def test_files_are_uploaded_then_sent_by_media_id_and_a_retry_sends_only_what_failed(client, ws, account, graph):
    from otklik.conversations import outbox
    from tests.channels.helpers import make_due, outbox_item

    notify(client, account, fixture("text"))
    conv = conversations_of(client, ws)[0]
    png, pdf = upload_photo_and_invoice(client, ws)
    media = f"/v21.0/{PHONE_NUMBER_ID}/media"
    graph.stand_in.queue(media, (200, {"id": "media-photo"}, {}), (500, {"error": {"message": "try later", "code": 1}}, {}))
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=ws.agent,
                    json={"text": "Счёт и фото во вложении", "attachment_ids": [png, pdf]})
    assert r.status_code == 201, r.text
    item = outbox_item(r.json()["id"])
    assert item.status == "pending" and "try later" in item.last_error  # the PDF upload failed (500): retried later
    make_due(item.id)
    assert outbox.deliver(item.id) == "sent"
    uploads = graph.stand_in.calls(media)
    assert [u["body"]["file"] for u in uploads] == [("фото.png", PNG, "image/png"), ("счёт.pdf", PDF, "application/pdf"),
                                                   ("счёт.pdf", PDF, "application/pdf")]
    assert uploads[0]["body"]["messaging_product"] == "whatsapp" and uploads[0]["body"]["type"] == "image/png"
    sent = [c["body"] for c in graph.stand_in.calls(f"/v21.0/{PHONE_NUMBER_ID}/messages")]
    # the text and the photo went once, before the failure; the retry sent only the PDF
    assert [b["type"] for b in sent] == ["text", "image", "document"]
    assert sent[0]["text"]["body"] == "Счёт и фото во вложении"
    assert sent[1]["image"] == {"id": "media-photo"}
    assert sent[2]["document"]["filename"] == "счёт.pdf" and sent[2]["document"]["id"].startswith("media-")
    keys = [c["headers"]["Idempotency-Key"] for c in graph.stand_in.calls(f"/v21.0/{PHONE_NUMBER_ID}/messages")]
    assert len(set(keys)) == 3
