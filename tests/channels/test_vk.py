"""VK Callback API in, VK API out: recorded event shapes (reconstructed from VK's documentation, one fixture
per event kind), secret/group checks, VK's retries, and delivery against a local stand-in of api.vk.com."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import select, update

from otklik.conversations import outbox
from otklik.conversations.models import Message, OutboxItem
from otklik.platform.db import session_scope
from tests.channels.conftest import PDF, PNG
from tests.channels.helpers import upload_photo_and_invoice
from tests.channels.vendor_stand_in import VendorStandIn

FIXTURES = Path(__file__).parent / "fixtures" / "vk"
GROUP_ID = 218000001
SECRET = "fixture-secret-key"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


class FakeVk:
    """api.vk.com's behaviour that matters to us: messages.send drops a repeated random_id, wall.createComment
    a repeated guid (both return the first call's id)."""

    def __init__(self):
        self.sent: dict[str, int] = {}
        self.stand_in = VendorStandIn(self.answer)

    def upload(self, path, body):
        if path == "/upload/photo":
            return 200, {"server": 77, "photo": json.dumps([{"name": body["photo"][0]}]), "hash": "h1"}, {}
        return 200, {"file": "doc-file-" + body["file"][0]}, {}

    def answer(self, path, body):
        method = path.rsplit("/", 1)[-1]
        if path.startswith("/upload/"):  # VK's upload servers take the file alone, no token
            return self.upload(path, body)
        if body.get("access_token") != "vk1.a.community-token":
            return 200, {"error": {"error_code": 5, "error_msg": "User authorization failed"}}, {}
        if method == "messages.send":
            key = "m" + body["random_id"]
            self.sent.setdefault(key, 5000 + len(self.sent))
            return 200, {"response": self.sent[key]}, {}
        if method == "wall.createComment":
            key = "w" + body["guid"]
            self.sent.setdefault(key, 900 + len(self.sent))
            return 200, {"response": {"comment_id": self.sent[key], "parents_stack": []}}, {}
        if method in ("photos.getMessagesUploadServer", "docs.getMessagesUploadServer"):
            kind = "photo" if method.startswith("photos") else "doc"
            return 200, {"response": {"upload_url": f"{self.stand_in.base}/upload/{kind}"}}, {}
        if method == "photos.saveMessagesPhoto":
            return 200, {"response": [{"id": 457239017, "owner_id": -GROUP_ID, "access_key": "ak1"}]}, {}
        if method == "docs.save":
            return 200, {"response": {"type": "doc", "doc": {"id": 6671, "owner_id": -GROUP_ID,
                                                              "title": body["title"]}}}, {}
        if method == "groups.getById":
            return 200, {"response": {"groups": [{"id": GROUP_ID, "name": "Магазин «Уют»"}], "profiles": []}}, {}
        return 200, {"response": 1}, {}


@pytest.fixture
def vk():
    fake = FakeVk()
    yield fake
    fake.stand_in.close()


@pytest.fixture
def account(client, ws, vk):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "vk", "name": "Уют", "config": {"group_id": GROUP_ID, "confirmation_code": "a1b2c3d4",
                                                "api_base": vk.stand_in.base + "/method"},
        "secrets": {"access_token": "vk1.a.community-token", "secret_key": SECRET}})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["secrets"] == {"access_token": "set", "secret_key": "set"}
    assert "community-token" not in r.text and SECRET not in r.text
    return body


def post(client, account, payload, **kw):
    return client.post(account["webhook_path"], content=json.dumps(payload), headers={"content-type": "application/json"},
                       **kw)


def conversations_of(client, ws):
    return client.get("/api/v1/conversations?channel=vk", headers=ws.agent).json()["items"]


def messages_of(client, ws, conversation_id):
    return client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=ws.agent).json()["items"]


def test_confirmation_answers_the_configured_string(client, account):
    r = post(client, account, fixture("confirmation"))
    assert r.status_code == 200 and r.text == "a1b2c3d4"
    wrong = {**fixture("confirmation"), "group_id": GROUP_ID + 1}
    assert post(client, account, wrong).status_code == 403


def test_message_new_is_stored_once_and_answered_ok(client, ws, account):
    event = fixture("message_new")
    r = post(client, account, event)
    assert r.status_code == 200 and r.text == "ok"
    assert post(client, account, event).text == "ok"  # VK's retry of the same event_id
    retried = {**event, "event_id": "another-delivery-of-the-same-message"}
    assert post(client, account, retried).text == "ok"  # a different event carrying the same message id
    convs = conversations_of(client, ws)
    assert len(convs) == 1
    msgs = messages_of(client, ws, convs[0]["id"])
    assert [m["body_text"] for m in msgs] == ["Здравствуйте! Заказ №4512 так и не пришёл, где он?"]
    customer = client.get(f"/api/v1/customers/{convs[0]['customer']['id']}", headers=ws.agent).json()
    assert {(i["kind"], i["external_id"], i["verified"]) for i in customer["identities"]} == {("vk", "501234567", True)}


@pytest.mark.parametrize("secret", ["wrong-secret", None, ""])
def test_wrong_or_missing_secret_is_refused_and_nothing_stored(client, ws, account, secret):
    event = fixture("message_new")
    if secret is None:
        del event["secret"]
    else:
        event["secret"] = secret
    r = post(client, account, event)
    assert r.status_code == 403 and r.json()["error"]["code"] == "bad_secret"
    assert conversations_of(client, ws) == []


def test_malformed_and_unknown_requests_get_precise_errors(client, ws, account):
    assert client.post(account["webhook_path"], content=b"{not json", headers={"content-type": "application/json"}
                       ).status_code == 400
    assert post(client, account, [1, 2]).status_code == 400
    no_object = {k: v for k, v in fixture("message_new").items() if k != "object"}
    assert post(client, account, no_object).status_code == 400
    bad_from = copy.deepcopy(fixture("message_new"))
    bad_from["object"]["message"]["from_id"] = "501234567; drop table"
    assert post(client, account, bad_from).status_code == 400
    no_event_id = {k: v for k, v in fixture("message_new").items() if k != "event_id"}
    assert post(client, account, no_event_id).status_code == 400
    assert client.post("/api/v1/channels/vk/webhook/unknown-token", json=fixture("message_new")).status_code == 404
    assert conversations_of(client, ws) == []


def test_attachments_are_shown_as_readable_lines(client, ws, account):
    assert post(client, account, fixture("message_new_attachments")).text == "ok"
    text = messages_of(client, ws, conversations_of(client, ws)[0]["id"])[0]["body_text"]
    assert text.startswith("Вот фото коробки и чек")
    assert "[Фото] https://sun9-1.userapi.com/impg/box_w.jpg" in text  # the largest size
    assert "[Документ: chek_4512.pdf, 47 КБ]" in text
    assert "[Голосовое сообщение 0:07] https://psv4.userapi.com/c1/u501234567/audiomsg/d1/voice.mp3" in text


def test_our_own_echo_and_other_events_store_nothing(client, ws, account):
    for name in ("message_reply", "wall_reply_new_own", "group_join"):
        r = post(client, account, fixture(name))
        assert r.status_code == 200 and r.text == "ok", name
    assert conversations_of(client, ws) == []


def test_edit_is_shown_as_a_new_customer_message(client, ws, account):
    post(client, account, fixture("message_new"))
    assert post(client, account, fixture("message_edit")).text == "ok"
    msgs = messages_of(client, ws, conversations_of(client, ws)[0]["id"])
    assert len(msgs) == 2 and "изменил" in msgs[1]["body_text"] and "№4521" in msgs[1]["body_text"]


def test_callback_button_is_stored_and_acknowledged_to_vk(client, ws, account, vk):
    assert post(client, account, fixture("message_event")).text == "ok"
    msgs = messages_of(client, ws, conversations_of(client, ws)[0]["id"])
    assert msgs[0]["body_text"] == "Нажата кнопка: Где мой заказ?"
    answers = vk.stand_in.calls("/method/messages.sendMessageEventAnswer")
    assert len(answers) == 1 and answers[0]["body"]["event_id"] == "7a1c2f9e3b4d"


def test_reply_goes_out_with_stable_random_id(client, ws, account, vk):
    post(client, account, fixture("message_new"))
    conv = conversations_of(client, ws)[0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Заказ передан курьеру"},
                    headers=ws.agent)
    assert r.status_code == 201, r.text
    sends = vk.stand_in.calls("/method/messages.send")
    assert len(sends) == 1
    assert sends[0]["body"]["peer_id"] == "501234567" and sends[0]["body"]["message"] == "Заказ передан курьеру"
    stored = next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == r.json()["id"])
    assert stored["delivery_status"] == "sent"
    # a worker that crashed after VK accepted the message retries with the same random_id: VK shows it once
    with session_scope() as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == r.json()["id"]))
        item.status = "pending"
        item.next_attempt_at = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
        outbox_id = item.id
    assert outbox.deliver(outbox_id) == "sent"
    sends = vk.stand_in.calls("/method/messages.send")
    assert len(sends) == 2 and sends[0]["body"]["random_id"] == sends[1]["body"]["random_id"]
    assert len(vk.sent) == 1


def test_rate_limit_is_retried_and_cannot_message_is_dead(client, ws, account, vk):
    post(client, account, fixture("message_new"))
    conv = conversations_of(client, ws)[0]
    vk.stand_in.queue("/method/messages.send",
                      (200, {"error": {"error_code": 9, "error_msg": "Flood control"}}, {}))
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Первый ответ"}, headers=ws.agent)
    with session_scope(write=False) as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == r.json()["id"]))
    assert item.status == "pending" and "rate limit" in item.last_error
    assert item.next_attempt_at > dt.datetime.now(dt.UTC) + dt.timedelta(seconds=50)  # VK's flood wait honoured
    with session_scope() as s:
        s.execute(update(OutboxItem).where(OutboxItem.id == item.id).values(
            next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert outbox.deliver(item.id) == "sent"

    vk.stand_in.queue("/method/messages.send", (200, {"error": {
        "error_code": 901, "error_msg": "Can't send messages for users without permission"}}, {}))
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Второй"}, headers=ws.agent)
    with session_scope(write=False) as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == r.json()["id"]))
        message = s.get(Message, r.json()["id"])
    assert item.status == "dead" and message.delivery_status == "failed" and "901" in message.delivery_error


def test_wall_comment_becomes_a_public_comment_answered_on_the_wall(client, ws, account, vk):
    assert post(client, account, fixture("wall_reply_new")).text == "ok"
    conv = conversations_of(client, ws)[0]
    assert "публичный комментарий" in conv["tags"]
    msgs = messages_of(client, ws, conv["id"])
    assert msgs[0]["body_text"].startswith("Третью неделю жду заказ")
    with session_scope(write=False) as s:  # public: the assistant never answers it with a chat text
        assert s.get(Message, msgs[0]["id"]).meta["kind"] == "wall_comment"
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages",
                    json={"text": "Ольга, простите за ожидание: написали вам в личные сообщения."}, headers=ws.agent)
    assert r.status_code == 201
    comments = vk.stand_in.calls("/method/wall.createComment")
    assert len(comments) == 1 and not vk.stand_in.calls("/method/messages.send")
    body = comments[0]["body"]
    assert (body["owner_id"], body["post_id"], body["reply_to_comment"], body["from_group"]) == (
        str(-GROUP_ID), "512", "931", str(GROUP_ID))
    assert body["guid"]  # VK's de-duplication of a repeated comment


def test_admin_test_connection_uses_the_stand_in(client, ws, account):
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/test", headers=ws.admin)
    assert r.status_code == 200, r.text
    assert "Уют" in r.json()["message"]


def test_account_of_another_workspace_is_not_reachable(client, ws, other_ws, account):
    # a token is bound to one account: the other workspace sees nothing of what arrived there
    post(client, account, fixture("message_new"))
    assert client.get("/api/v1/conversations?channel=vk", headers=other_ws.agent).json()["items"] == []



def test_files_go_up_to_vk_and_ride_on_one_messages_send(client, ws, account, vk):
    post(client, account, fixture("message_new"))
    conv = conversations_of(client, ws)[0]
    png, pdf = upload_photo_and_invoice(client, ws)
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=ws.agent,
                    json={"text": "Счёт и фото", "attachment_ids": [png, pdf]})
    assert r.status_code == 201, r.text
    assert vk.stand_in.calls("/upload/photo")[0]["body"]["photo"] == ("фото.png", PNG, "image/png")
    assert vk.stand_in.calls("/upload/doc")[0]["body"]["file"] == ("счёт.pdf", PDF, "application/pdf")
    assert vk.stand_in.calls("/method/docs.getMessagesUploadServer")[0]["body"]["peer_id"] == "501234567"
    saved = vk.stand_in.calls("/method/photos.saveMessagesPhoto")[0]["body"]
    assert saved["server"] == "77" and saved["hash"] == "h1"
    [send] = vk.stand_in.calls("/method/messages.send")
    assert send["body"]["message"] == "Счёт и фото"
    assert send["body"]["attachment"] == f"photo-{GROUP_ID}_457239017_ak1,doc-{GROUP_ID}_6671"
    stored = next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == r.json()["id"])
    assert stored["delivery_status"] == "sent"


def test_files_on_a_wall_reply_are_refused_with_the_reason(client, ws, account, vk):
    post(client, account, fixture("wall_reply_new"))
    conv = conversations_of(client, ws)[0]
    _, pdf = upload_photo_and_invoice(client, ws)
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", headers=ws.agent,
                    json={"text": "Ответ", "attachment_ids": [pdf]})
    assert r.status_code == 201, r.text
    stored = next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == r.json()["id"])
    assert stored["delivery_status"] == "failed" and "private messages" in stored["delivery_error"]
    assert not vk.stand_in.calls("/method/wall.createComment")
