"""The assistant answers «где мой заказ» from the shop's order data — to the order's owner only (issue 16)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update

from otklik.customers.models import Identity
from otklik.platform.db import session_scope
from tests.assistant.test_live import decisions, enable, messages
from tests.conftest import inbound

PHONE = "+79165551234"
TRACK = "https://track.example/AB1"
ORDER = {"customer": {"kind": "phone", "value": PHONE, "name": "Анна", "email": "anna@example.com"},
         "status": "shipped", "items": [{"name": "Чайник", "sku": "K-1", "quantity": 1, "price": 2490}],
         "total": 2490, "paid": True,
         "delivery": {"method": "courier", "address": "Москва, Ленина 1", "tracking_url": TRACK,
                      "promised_on": (dt.date.today() + dt.timedelta(days=3)).isoformat()},
         "placed_at": "2026-12-01T10:00:00+03:00"}
SECRETS = (TRACK, "Чайник", "Ленина", "передан", "2 490", "handed")


def push(client, ws, number="4512", **changes):
    r = client.put(f"/api/v1/orders/{number}", json={**ORDER, **changes}, headers=ws.agent)
    assert r.status_code in (200, 201), r.text
    return r.json()


def verify(customer_id: int) -> None:
    with session_scope() as s:
        s.execute(update(Identity).where(Identity.customer_id == customer_id).values(verified=True))


def bot_texts(client, ws, conversation_id):
    return [m["body_text"] for m in messages(client, ws, conversation_id)
            if m["author_kind"] == "assistant" and not m["is_internal"]]


def notes(client, ws, conversation_id):
    return [m["body_text"] for m in messages(client, ws, conversation_id)
            if m["author_kind"] == "assistant" and m["is_internal"]]


def owner_writes(client, ws, text, **kw):
    first = inbound(client, ws, kind="phone", identity=PHONE, text="Здравствуйте", **kw)
    verify(first["customer_id"])
    return inbound(client, ws, kind="phone", identity=PHONE, text=text)


def test_the_owner_gets_status_and_tracking_link(client, ws):
    enable(client, ws)
    push(client, ws)
    got = owner_writes(client, ws, "где мой заказ 4512?")
    last = decisions(client, ws, got["conversation_id"])[-1]
    assert last["action"] == "answer" and last["reason"] == "order", last
    reply = bot_texts(client, ws, got["conversation_id"])[-1]
    assert "4512" in reply and "передан в доставку" in reply and TRACK in reply
    items = owner_writes(client, ws, "Что было в заказе 4512?")
    assert "Чайник × 1" in bot_texts(client, ws, items["conversation_id"])[-1]


def test_someone_else_is_asked_for_the_phone_and_told_nothing(client, ws):
    enable(client, ws)
    push(client, ws)
    got = inbound(client, ws, kind="email", identity="stranger@example.com", text="где мой заказ 4512?")
    cid = got["conversation_id"]
    reply = bot_texts(client, ws, cid)[-1]
    assert "назовите, пожалуйста, телефон из заказа" in reply.lower()
    assert not any(s in reply for s in SECRETS)
    inbound(client, ws, kind="email", identity="stranger@example.com", text="+7 900 000-00-00")
    second = bot_texts(client, ws, cid)[-1]
    assert "телефон из заказа" in second and not any(s in second for s in SECRETS)
    inbound(client, ws, kind="email", identity="stranger@example.com", text="ну +7 900 000-00-01")
    last = decisions(client, ws, cid)[-1]
    assert last["action"] == "handoff", last
    customer_side = " ".join(bot_texts(client, ws, cid))
    assert not any(s in customer_side for s in SECRETS)
    assert any("Заказ № 4512" in n and "не подтвердил" in n for n in notes(client, ws, cid))


def test_the_phone_from_the_order_given_in_the_chat_proves_it(client, ws):
    enable(client, ws)
    push(client, ws)
    got = inbound(client, ws, kind="email", identity="anna.other@example.com", text="Где заказ 4512?")
    inbound(client, ws, kind="email", identity="anna.other@example.com", text="8 (916) 555-12-34")
    reply = bot_texts(client, ws, got["conversation_id"])[-1]
    assert "передан в доставку" in reply and TRACK in reply


def test_an_unknown_order_is_not_found_and_a_late_one_gets_an_apology(client, ws):
    enable(client, ws)
    push(client, ws)
    got = owner_writes(client, ws, "где мой заказ 99999?")
    assert "не нашёл заказ № 99999" in bot_texts(client, ws, got["conversation_id"])[-1]
    push(client, ws, "4600", delivery={**ORDER["delivery"], "promised_on": "2026-01-10"})
    late = inbound(client, ws, kind="phone", identity=PHONE, text="Заказ 4600 так и не пришёл, где он?")
    reply = bot_texts(client, ws, late["conversation_id"])[-1]
    assert "Приносим извинения" in reply and "10.01.2026" in reply and TRACK in reply


def test_english_and_without_a_number(client, ws):
    enable(client, ws)
    push(client, ws)
    got = owner_writes(client, ws, "Hi, where is my order?")
    reply = bot_texts(client, ws, got["conversation_id"])[-1]
    assert "Order 4512 has been handed to delivery" in reply and TRACK in reply
    push(client, ws, "4513", status="paid")
    two = inbound(client, ws, kind="phone", identity=PHONE, text="Где мой заказ?")
    ask = bot_texts(client, ws, two["conversation_id"])[-1]
    assert "4512" in ask and "4513" in ask and "О каком" in ask
    inbound(client, ws, kind="phone", identity=PHONE, text="4513")
    assert "Заказ № 4513 оплачен" in bot_texts(client, ws, two["conversation_id"])[-1]


def test_a_workspace_without_orders_hands_off_as_before(client, ws):
    enable(client, ws)
    got = inbound(client, ws, text="где мой заказ 4512?")
    assert decisions(client, ws, got["conversation_id"])[-1]["reason"] != "order_not_found"


def test_what_the_data_cannot_answer_goes_to_a_person_with_the_order(client, ws):
    enable(client, ws)
    push(client, ws)
    got = owner_writes(client, ws, "Хочу отменить заказ 4512")
    last = decisions(client, ws, got["conversation_id"])[-1]
    assert last["action"] == "handoff"
    assert any("Заказ № 4512: передан в доставку" in n for n in notes(client, ws, got["conversation_id"]))


def test_placing_a_new_order_is_not_a_question_about_one(client, ws):
    enable(client, ws)
    push(client, ws)
    got = inbound(client, ws, kind="email", identity="buyer@example.com", text="Хочу оформить заказ на чайник")
    last = decisions(client, ws, got["conversation_id"])[-1]
    assert not last["reason"].startswith("order"), last
