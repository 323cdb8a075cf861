"""Telegram: real python-telegram-bot client against a local stand-in of the Bot API, and webhook updates
replayed from recorded fixtures (including the vendor's retries)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from otklik.channels import jobs
from otklik.channels.models import ChannelEvent
from otklik.channels.telegram import polling
from otklik.conversations import outbox
from otklik.platform.db import session_scope
from tests.channels.conftest import BOT_TOKEN, JPEG, OGG, PDF, PNG, WEBP, fixture
from tests.channels.helpers import (
    attachments_of,
    conversation_of,
    create_account,
    identities_of_customer,
    make_due,
    messages_of,
    outbox_item,
)

TG_USER = "275031337"


@pytest.fixture
def bot(client, ws, telegram_api):
    """A configured Telegram bot whose webhook was registered (the stand-in learnt the secret)."""
    account = create_account(client, ws, "telegram", config={
        "api_base_url": telegram_api.url, "quick_replies": ["Позвать оператора", "Статус заказа"]},
        secrets={"bot_token": BOT_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    call = telegram_api.sent("setWebhook")[-1]
    account["secret"] = call.fields["secret_token"]
    account["url"] = account["webhook_path"]
    return account


def post_update(client, bot, update, *, secret=None):
    body = update if isinstance(update, bytes) else json.dumps(update, ensure_ascii=False).encode()
    return client.post(bot["url"], content=body, headers={
        "X-Telegram-Bot-Api-Secret-Token": bot["secret"] if secret is None else secret,
        "Content-Type": "application/json"})


def test_connect_sets_webhook_with_secret_and_test_calls_getme(client, ws, bot, telegram_api):
    call = telegram_api.sent("setWebhook")[-1]
    assert call.fields["url"] == "https://support.example.ru" + bot["webhook_path"]
    assert len(call.fields["secret_token"]) >= 32
    assert json.loads(call.fields["allowed_updates"]) == ["message", "edited_message", "callback_query"]
    r = client.post(f"/api/v1/channels/accounts/{bot['id']}/test", headers=ws.admin)
    assert r.status_code == 200, r.text
    assert "@romashka_support_bot" in r.json()["message"]


def test_text_update_becomes_a_message_and_retries_are_acknowledged_once(client, ws, bot):
    update = fixture("telegram", "update_text")
    first = post_update(client, bot, update)
    assert first.status_code == 200 and first.json() == {"ok": True, "result": "stored"}
    for _ in range(3):  # Telegram retries when it did not see our answer in time
        again = post_update(client, bot, update)
        assert again.status_code == 200 and again.json()["result"] == "duplicate"
    stored = messages_of(ws.id, "telegram")
    assert [m.body_text for m in stored] == ["Здравствуйте! Где мой заказ №18342?"]
    assert stored[0].channel_message_id == "7012345678:275031337:42"
    assert stored[0].meta["telegram"]["username"] == "anna_smirnova"
    customer, identities = identities_of_customer(ws.id, "telegram", TG_USER)
    assert customer is not None and customer.name == "Анна Смирнова"
    assert [(i.kind, i.verified) for i in identities] == [("telegram", True)]


def test_the_same_message_under_a_new_update_id_is_still_one_message(client, ws, bot):
    update = fixture("telegram", "update_text")
    assert post_update(client, bot, update).json()["result"] == "stored"
    update["update_id"] += 1000  # e.g. read again by long polling after a webhook delivered it
    post_update(client, bot, update)
    assert len(messages_of(ws.id, "telegram")) == 1


@pytest.mark.parametrize("secret", ["", "wrong-secret", "x" * 300])
def test_a_wrong_or_missing_secret_token_is_refused(client, ws, bot, secret):
    r = post_update(client, bot, fixture("telegram", "update_text"), secret=secret)
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "unauthorized"
    assert messages_of(ws.id, "telegram") == []


def test_unknown_or_disabled_webhook_address_is_404(client, ws, bot):
    r = client.post("/api/v1/channels/telegram/webhook/not-a-token", json=fixture("telegram", "update_text"),
                    headers={"X-Telegram-Bot-Api-Secret-Token": bot["secret"]})
    assert r.status_code == 404
    client.patch(f"/api/v1/channels/accounts/{bot['id']}", json={"enabled": False}, headers=ws.admin)
    assert post_update(client, bot, fixture("telegram", "update_text")).status_code == 404


@pytest.mark.parametrize("body, code", [
    (b"{not json", "malformed_json"),
    (b"\xff\xfe\x00", "malformed_json"),
    (b"[]", "invalid_update"),
    (b'{"message": {"text": "no update id"}}', "invalid_update"),
    (b'{"update_id": "12"}', "invalid_update"),
    (b'{"update_id": -1}', "invalid_update"),
    (b'{"update_id": 5, "message": {"message_id": "x", "chat": 7}}', "invalid_update"),
])
def test_hostile_bodies_get_a_precise_400_never_a_500(client, ws, bot, body, code):
    r = post_update(client, bot, body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["code"] == code


def test_an_oversize_body_is_413(client, bot):
    r = post_update(client, bot, b'{"update_id": 1, "x": "' + b"a" * 2_000_000 + b'"}')
    assert r.status_code == 413


@pytest.mark.parametrize("name, file_id, content, filename, content_type, text", [
    ("update_photo", "AgACAgIAAxkBAAIBK2aPhoto-large", JPEG, "photo_43.jpg", "image/jpeg", "Коробка пришла мятая"),
    ("update_document", "BQACAgIAAxkBAAIBLGaDocument", PDF, "чек_18342.pdf", "application/pdf",
     "📄 Документ: чек_18342.pdf"),
    ("update_voice", "AwACAgIAAxkBAAIBLWaVoice", OGG, "voice_45.ogg", "audio/ogg", "🎤 Голосовое сообщение (0:07)"),
    ("update_sticker", "CAACAgIAAxkBAAIBLmaSticker", WEBP, "sticker_46.webp", "image/webp", "Стикер 👍"),
])
def test_media_is_downloaded_with_getfile_and_stored_as_an_attachment(client, ws, bot, telegram_api, name, file_id,
                                                                       content, filename, content_type, text):
    telegram_api.files[file_id] = content
    r = post_update(client, bot, fixture("telegram", name))
    assert r.status_code == 200 and r.json()["result"] == "pending"  # answered before the download
    [message] = messages_of(ws.id, "telegram")
    assert message.body_text == text
    [attachment] = attachments_of(message.id)
    assert (attachment.filename, attachment.content_type, attachment.size) == (filename, content_type, len(content))
    assert [c.fields["file_id"] for c in telegram_api.sent("getFile")] == [file_id]
    assert post_update(client, bot, fixture("telegram", name)).json()["result"] == "duplicate"
    assert len(messages_of(ws.id, "telegram")) == 1


def test_animated_sticker_is_shown_by_its_emoji_without_a_download(client, ws, bot, telegram_api):
    assert post_update(client, bot, fixture("telegram", "update_sticker_animated")).json()["result"] == "stored"
    [message] = messages_of(ws.id, "telegram")
    assert message.body_text == "Стикер 😡"
    assert telegram_api.sent("getFile") == []


def test_a_file_whose_content_does_not_match_its_type_is_noted_not_stored(client, ws, bot, telegram_api):
    telegram_api.files["BQACAgIAAxkBAAIBLGaDocument"] = b"MZ\x90\x00 this is an exe" + b"\x00" * 50
    post_update(client, bot, fixture("telegram", "update_document"))
    [message] = messages_of(ws.id, "telegram")
    assert attachments_of(message.id) == []
    assert "не сохранён" in message.body_text


def test_a_file_telegram_refuses_to_serve_is_noted_and_the_message_kept(client, ws, bot, telegram_api):
    # getFile answers 400 (unknown file): a permanent refusal, the message is kept with a note
    post_update(client, bot, fixture("telegram", "update_voice"))
    [message] = messages_of(ws.id, "telegram")
    assert "не загружен" in message.body_text
    with session_scope(write=False) as s:
        assert {e.status for e in s.query(ChannelEvent).filter_by(account_id=bot["id"])} == {"done"}


def test_a_transient_download_failure_leaves_the_event_pending_for_the_sweep(client, ws, bot, telegram_api):
    telegram_api.files["AwACAgIAAxkBAAIBLWaVoice"] = OGG
    telegram_api.fail_next["getFile"] = ["response_429"]
    assert post_update(client, bot, fixture("telegram", "update_voice")).json()["result"] == "pending"
    assert messages_of(ws.id, "telegram") == []  # not lost: the event waits with its payload
    with session_scope(write=False) as s:
        [event] = s.query(ChannelEvent).filter_by(account_id=bot["id"]).all()
        assert event.status == "pending" and event.payload["update_id"] == 512300104
        event_id = event.id
    assert post_update(client, bot, fixture("telegram", "update_voice")).json()["result"] == "duplicate"
    jobs.process_channel_event(event_id)  # what the sweep does for a stale pending event
    [message] = messages_of(ws.id, "telegram")
    assert [a.content_type for a in attachments_of(message.id)] == ["audio/ogg"]


def test_location_edit_group_and_membership_updates(client, ws, bot):
    assert post_update(client, bot, fixture("telegram", "update_text")).json()["result"] == "stored"
    assert post_update(client, bot, fixture("telegram", "update_location")).json()["result"] == "stored"
    assert post_update(client, bot, fixture("telegram", "update_edited")).json()["result"] == "stored"
    assert post_update(client, bot, fixture("telegram", "update_group_message")).json()["result"] == "ignored"
    assert post_update(client, bot, fixture("telegram", "update_my_chat_member")).json()["result"] == "ignored"
    texts = [m.body_text for m in messages_of(ws.id, "telegram")]
    assert texts == ["Здравствуйте! Где мой заказ №18342?", "📍 Геопозиция: 55.751244, 37.618423",
                     "✏️ Исправлено: Здравствуйте! Где мой заказ №18343?"]
    edited = messages_of(ws.id, "telegram")[-1]
    assert edited.meta["edited_of"] == "7012345678:275031337:42"


def test_sharing_ones_own_phone_is_a_verified_identity_that_matches_across_channels(client, ws, bot):
    # the customer called earlier: the PBX vouched for the number, so it is a verified identity
    r = client.post("/api/v1/customers", json={"name": "Анна С.", "identities": [
        {"kind": "email", "external_id": "anna@example.com"},
        {"kind": "phone", "external_id": "+7 916 123-45-67", "verified": True}]}, headers=ws.agent)
    assert r.status_code == 201, r.text
    email_customer = r.json()["id"]
    post_update(client, bot, fixture("telegram", "update_text"))
    assert post_update(client, bot, fixture("telegram", "update_contact_own")).json()["result"] == "stored"
    customer, identities = identities_of_customer(ws.id, "telegram", TG_USER)
    assert customer is not None and customer.id == email_customer
    kinds = {(i.kind, i.external_id, i.verified) for i in identities}
    assert ("phone", "+79161234567", True) in kinds and ("telegram", TG_USER, True) in kinds
    messages = messages_of(ws.id, "telegram")
    assert messages[-1].body_text.startswith("📱 Контакт: 79161234567")
    assert conversation_of(messages[-1]).customer_id == email_customer


def test_a_phone_someone_only_typed_in_is_suggested_not_merged(client, ws, bot):
    # an unverified number (typed by hand) must not pull the Telegram user into that profile: a wrong
    # automatic merge would show one person's history to another
    r = client.post("/api/v1/customers", json={"name": "Анна С.", "identities": [
        {"kind": "phone", "external_id": "+7 916 123-45-67"}]}, headers=ws.agent)
    assert r.status_code == 201, r.text
    typed_in = r.json()["id"]
    post_update(client, bot, fixture("telegram", "update_text"))
    assert post_update(client, bot, fixture("telegram", "update_contact_own")).json()["result"] == "stored"
    customer, identities = identities_of_customer(ws.id, "telegram", TG_USER)
    assert customer is not None and customer.id != typed_in
    assert "phone" not in {i.kind for i in identities}
    assert all(conversation_of(m).customer_id == customer.id for m in messages_of(ws.id, "telegram"))


def test_sharing_someone_elses_contact_adds_no_identity(client, ws, bot):
    post_update(client, bot, fixture("telegram", "update_contact_other"))
    _, identities = identities_of_customer(ws.id, "telegram", TG_USER)
    assert [i.kind for i in identities] == ["telegram"]


def test_own_phone_of_a_new_customer_is_added_verified(client, ws, bot):
    post_update(client, bot, fixture("telegram", "update_contact_own"))
    _, identities = identities_of_customer(ws.id, "telegram", TG_USER)
    assert {(i.kind, i.verified) for i in identities} == {("telegram", True), ("phone", True)}


def test_a_quick_reply_button_press_is_a_message_and_is_answered(client, ws, bot, telegram_api):
    r = post_update(client, bot, fixture("telegram", "update_callback"))
    assert r.json()["result"] == "stored"
    [message] = messages_of(ws.id, "telegram")
    assert message.body_text == "Статус заказа" and message.meta["button"] is True
    assert [c.fields["callback_query_id"] for c in telegram_api.sent("answerCallbackQuery")] == ["1181270469358472811"]
    assert post_update(client, bot, fixture("telegram", "update_callback")).json()["result"] == "duplicate"
    assert len(telegram_api.sent("answerCallbackQuery")) == 1


# -- outbound -------------------------------------------------------------------------------------------

def _conversation(client, bot):
    post_update(client, bot, fixture("telegram", "update_text"))


def _reply(client, ws, conversation_id, **body):
    r = client.post(f"/api/v1/conversations/{conversation_id}/messages", json=body, headers=ws.agent)
    assert r.status_code == 201, r.text
    return r.json()


def test_reply_is_sent_with_sendmessage_and_the_quick_reply_keyboard(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    sent = _reply(client, ws, conv, text="Заказ №18342 передан в доставку")
    [call] = telegram_api.sent("sendMessage")
    assert call.fields["chat_id"] == TG_USER
    assert call.fields["text"] == "Заказ №18342 передан в доставку"
    keyboard = json.loads(call.fields["reply_markup"])["inline_keyboard"]
    assert [[b["text"] for b in row] for row in keyboard] == [["Позвать оператора", "Статус заказа"]]
    assert [[b["callback_data"] for b in row] for row in keyboard] == [["Позвать оператора", "Статус заказа"]]
    stored = next(m for m in messages_of(ws.id, "telegram") if m.id == sent["id"])
    assert stored.delivery_status == "sent" and stored.channel_message_id == "1000"


def test_reply_with_files_sends_photos_as_photos_and_others_as_documents(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    png = client.post("/api/v1/attachments", files={"file": ("схема.png", PNG, "image/png")}, headers=ws.agent).json()
    pdf = client.post("/api/v1/attachments", files={"file": ("счёт.pdf", PDF, "application/pdf")},
                      headers=ws.agent).json()
    _reply(client, ws, conv, text="Схема и счёт во вложении", attachment_ids=[png["id"], pdf["id"]])
    assert len(telegram_api.sent("sendMessage")) == 1
    [photo] = telegram_api.sent("sendPhoto")
    [document] = telegram_api.sent("sendDocument")
    assert photo.files["photo"] == ("схема.png", PNG)
    assert document.files["document"] == ("счёт.pdf", PDF)
    assert "reply_markup" in document.fields and "reply_markup" not in telegram_api.sent("sendMessage")[0].fields


def test_long_text_is_split_at_telegrams_limit(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    paragraph = "Слово " * 500
    _reply(client, ws, conv, text="\n\n".join([paragraph] * 3))
    calls = telegram_api.sent("sendMessage")
    assert len(calls) >= 2 and all(len(c.fields["text"]) <= 4096 for c in calls)
    assert "reply_markup" in calls[-1].fields and all("reply_markup" not in c.fields for c in calls[:-1])


def test_flood_control_429_is_retried_after_retry_after_and_nothing_is_sent_twice(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    pdf = client.post("/api/v1/attachments", files={"file": ("счёт.pdf", PDF, "application/pdf")},
                      headers=ws.agent).json()
    telegram_api.fail_next["sendDocument"] = ["response_429"]
    before = dt.datetime.now(dt.UTC)
    sent = _reply(client, ws, conv, text="Счёт во вложении", attachment_ids=[pdf["id"]])
    item = outbox_item(sent["id"])
    assert item.status == "pending" and "429" in (item.last_error or "")
    wait = (item.next_attempt_at - before).total_seconds()
    assert 2.5 <= wait <= 10, wait  # the vendor's retry_after (3 s), not the outbox's own back-off
    make_due(item.id)
    assert outbox.deliver(item.id) == "sent"
    assert len(telegram_api.sent("sendMessage")) == 1  # the text part went out once
    assert len(telegram_api.sent("sendDocument")) == 2  # refused once, then delivered
    assert outbox_item(sent["id"]).status == "sent"


def test_blocked_by_the_user_is_a_dead_letter_that_can_be_retried(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    telegram_api.fail_next["sendMessage"] = ["response_403_blocked"]
    sent = _reply(client, ws, conv, text="Вы здесь?")
    item = outbox_item(sent["id"])
    assert item.status == "dead" and "blocked" in (item.last_error or "")
    dead = client.get("/api/v1/outbox", params={"status": "dead"}, headers=ws.admin).json()
    assert [d["id"] for d in dead] == [item.id]
    r = client.post(f"/api/v1/outbox/{item.id}/retry", headers=ws.admin)
    assert r.status_code == 200
    assert outbox_item(sent["id"]).status == "sent"
    assert len(telegram_api.sent("sendMessage")) == 2


def test_a_rejected_token_is_permanent_and_named(client, ws, bot, telegram_api):
    _conversation(client, bot)
    conv = messages_of(ws.id, "telegram")[0].conversation_id
    telegram_api.token = "1:other"  # the bot's token was revoked in @BotFather
    sent = _reply(client, ws, conv, text="Ответ")
    item = outbox_item(sent["id"])
    assert item.status == "dead" and "token" in (item.last_error or "")


# -- long polling ---------------------------------------------------------------------------------------

def test_long_polling_stores_updates_and_persists_the_offset(client, ws, telegram_api):
    account = create_account(client, ws, "telegram", name="polling", config={
        "api_base_url": telegram_api.url, "mode": "polling"}, secrets={"bot_token": BOT_TOKEN})
    telegram_api.updates = [fixture("telegram", "update_text"), fixture("telegram", "update_location")]
    assert polling.poll_account(account["id"]) == 2
    state = client.get(f"/api/v1/channels/accounts/{account['id']}", headers=ws.admin).json()["state"]
    assert state["offset"] == 512300108
    assert polling.poll_account(account["id"]) == 0  # offset moved past both
    assert json.loads(telegram_api.sent("getUpdates")[-1].fields["offset"]) == 512300108
    # Telegram re-sends an update it thinks we missed: still one message
    telegram_api.updates.append(fixture("telegram", "update_text") | {"update_id": 512300200})
    polling.poll_account(account["id"])
    assert [m.body_text for m in messages_of(ws.id, "telegram")] == [
        "Здравствуйте! Где мой заказ №18342?", "📍 Геопозиция: 55.751244, 37.618423"]


def test_polling_error_is_reported_in_the_account_state(client, ws, telegram_api):
    account = create_account(client, ws, "telegram", name="polling2", config={
        "api_base_url": telegram_api.url, "mode": "polling"}, secrets={"bot_token": BOT_TOKEN})
    telegram_api.fail_next["getUpdates"] = ["response_409_webhook_active"]
    assert polling.poll_account(account["id"]) == 0
    state = client.get(f"/api/v1/channels/accounts/{account['id']}", headers=ws.admin).json()["state"]
    assert "webhook is active" in state["poll_error"]
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect", headers=ws.admin)
    assert r.status_code == 200 and "снят" in r.json()["message"]
    assert telegram_api.sent("deleteWebhook")


def test_the_sweep_prunes_old_finished_events_but_keeps_pending_and_delivered_parts(client, ws, bot):
    from otklik.channels.models import ChannelAccount

    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=8)
    with session_scope() as s:
        account = s.get(ChannelAccount, bot["id"])
        for event_id, status in (("u:1", "done"), ("u:2", "pending"), ("out:key:0", "done")):
            s.add(ChannelEvent(workspace_id=ws.id, account_id=account.id, event_id=event_id, status=status,
                               attempts=5, received_at=old, payload={"update_id": 2} if status == "pending" else None))
    jobs.sweep_events()
    with session_scope(write=False) as s:
        left = {e.event_id for e in s.query(ChannelEvent).filter_by(account_id=bot["id"])}
    assert left == {"u:2", "out:key:0"}


def test_with_two_bots_the_reply_leaves_through_the_bot_the_customer_wrote_to(client, ws, bot, telegram_api):
    from tests.channels.conftest import TelegramBotAPI

    second_token = "7099999999:AAHk3uZ7eFqS9m2dX0vB1cN4pQ8rT5yW6zU"
    other_api = TelegramBotAPI(token=second_token)
    try:
        second = create_account(client, ws, "telegram", name="Второй бот", config={"api_base_url": other_api.url},
                                secrets={"bot_token": second_token})
        client.post(f"/api/v1/channels/accounts/{second['id']}/connect", json={"base_url": "https://x.example.ru"},
                    headers=ws.admin)
        second["secret"] = other_api.sent("setWebhook")[-1].fields["secret_token"]
        second["url"] = second["webhook_path"]
        assert post_update(client, second, fixture("telegram", "update_text")).json()["result"] == "stored"
        [message] = messages_of(ws.id, "telegram")
        assert message.channel_message_id == "7099999999:275031337:42"
        sent = _reply(client, ws, message.conversation_id, text="Ответ от второго бота")
        assert outbox_item(sent["id"]).status == "sent"
        assert [c.fields["text"] for c in other_api.sent("sendMessage")] == ["Ответ от второго бота"]
        assert telegram_api.sent("sendMessage") == []
    finally:
        other_api.close()
