"""The assistant offers three free slots and the link when a customer asks «когда можете собрать шкаф?» (issue
16), for the service the question names, in the customer's city; not for other questions, not without services."""

from __future__ import annotations

from tests.assistant.test_live import decisions, enable, messages
from tests.bookings._setup import make_shop
from tests.conftest import inbound


def bot_texts(client, ws, conversation_id):
    return [m["body_text"] for m in messages(client, ws, conversation_id)
            if m["author_kind"] == "assistant" and not m["is_internal"]]


def test_the_assistant_offers_three_slots_of_the_named_service(client, ws):
    enable(client, ws)
    shop = make_shop(ws)
    got = inbound(client, ws, identity="ask@example.com", text="Здравствуйте! Когда можете собрать шкаф?")
    last = decisions(client, ws, got["conversation_id"])[-1]
    assert last["action"] == "answer" and last["reason"] == "booking", last
    reply = bot_texts(client, ws, got["conversation_id"])[-1]
    assert "Сборка шкафа (120 мин, 3000 ₽)" in reply and reply.count("\n— ") == 3 and "/book/" in reply
    # the link offers that service
    token = reply.split("/book/", 1)[1].split()[0]
    page = client.get(f"/book/{token}")
    assert page.status_code == 200 and "Сборка шкафа" in page.text
    other = inbound(client, ws, identity="plita@example.com", text="Когда сможете подключить плиту?")
    assert "Подключение плиты" in bot_texts(client, ws, other["conversation_id"])[-1]
    assert shop.connection_id


def test_no_offer_for_other_questions_or_without_services(client, ws, other_ws):
    enable(client, ws)
    make_shop(ws)
    got = inbound(client, ws, identity="q@example.com", text="Какие у вас способы оплаты?")
    assert decisions(client, ws, got["conversation_id"])[-1]["reason"] != "booking"
    enable(client, other_ws)
    none = inbound(client, other_ws, identity="q2@example.com", text="Когда можете собрать шкаф?")
    assert decisions(client, other_ws, none["conversation_id"])[-1]["reason"] != "booking"
