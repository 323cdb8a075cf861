"""Writes bench/data/orders_questions.jsonl: order questions (ru + en) for bench/orders_assistant.py, each with
who asks and what the assistant must do. The shop's orders they ask about are ORDERS below (the bench pushes
them first).

Who asks (`writer`): an order's owner writing from the verified phone or e-mail on the order (`A`…`E`), a
stranger (a verified phone of their own, no orders), or a stranger who writes the owner's phone in the message
(which proves the order is theirs, by the rule). Expected (`expect`): answer | ask_phone | not_found | ask_which |
ask_number | handoff; `contains`: what a right answer must say.

    .venv/bin/python bench/data/make_orders_questions.py
"""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path

FUTURE = "2099-12-10"
PAST = "2026-01-10"
WRITERS = {
    "A": {"kind": "phone", "value": "+79161110001", "name": "Анна"},
    "B": {"kind": "phone", "value": "+79161110002", "name": "Борис"},
    "C": {"kind": "email", "value": "clara@example.com", "name": "Клара"},
    "D": {"kind": "phone", "value": "+79161110004", "name": "Дмитрий"},
    "E": {"kind": "phone", "value": "+79161110005", "name": "Emily"},
    "X": {"kind": "phone", "value": "+79169990000", "name": "Посторонний"},  # a stranger, no orders
    "Y": {"kind": "email", "value": "stranger@example.com", "name": "Stranger"},
}
ORDERS = {
    "5001": {"owner": "A", "status": "shipped", "items": [{"name": "Чайник Polaris", "sku": "P-1", "quantity": 1,
                                                          "price": 3290}], "total": 3290, "paid": True,
             "delivery": {"method": "courier", "address": "Москва, ул. Садовая, 5", "promised_on": FUTURE,
                          "tracking_url": "https://track.example/5001"}},
    "5002": {"owner": "A", "status": "delivered", "items": [{"name": "Тостер Tefal", "quantity": 1, "price": 4590}],
             "total": 4590, "paid": True, "delivery": {"address": "Москва, ул. Садовая, 5", "promised_on": PAST}},
    "5101": {"owner": "B", "status": "paid", "items": [{"name": "Блендер Philips", "quantity": 1, "price": 8990}],
             "total": 8990, "paid": True, "delivery": {"address": "Казань, ул. Мира, 12", "promised_on": FUTURE}},
    "5102": {"owner": "B", "status": "created", "items": [{"name": "Мультиварка Redmond", "quantity": 1,
                                                          "price": 6490}], "total": 6490, "paid": False,
             "payment_url": "https://pay.example/5102", "delivery": {"address": "Казань, ул. Мира, 12",
                                                                     "promised_on": FUTURE}},
    "5201": {"owner": "C", "status": "shipped", "items": [{"name": "Робот-пылесос Xiaomi", "quantity": 1,
                                                          "price": 19990}], "total": 19990, "paid": True,
             "delivery": {"address": "Пермь, ул. Ленина, 40", "promised_on": PAST,
                          "tracking_url": "https://track.example/5201"}},
    "5301": {"owner": "D", "status": "cancelled", "items": [{"name": "Утюг Philips", "quantity": 1, "price": 6990}],
             "total": 6990, "paid": False, "delivery": {"address": "Тула, ул. Мира, 3"}},
    "5302": {"owner": "D", "status": "created", "items": [{"name": "Плед из микрофибры", "quantity": 2,
                                                          "price": 2190}], "total": 4380, "paid": False,
             "delivery": {"address": "Тула, ул. Мира, 3"}},
    "5401": {"owner": "E", "status": "shipped", "items": [{"name": "Coffee grinder Bosch", "quantity": 1,
                                                          "price": 3190}], "total": 3190, "paid": True,
             "delivery": {"address": "Moscow, Tverskaya 7", "promised_on": FUTURE,
                          "tracking_url": "https://track.example/5401"}},
}
MISSING = ["7777", "8888", "123456", "99001"]

RU_WHERE = ["Где мой заказ {n}?", "где заказ {n}", "Подскажите статус заказа №{n}", "Заказ {n} где сейчас?",
            "Добрый день! Что с моим заказом {n}?", "Какой статус у заказа номер {n}?", "ГДЕ МОЙ ЗАКАЗ {n}???!!!",
            "Хочу узнать, где заказ #{n}"]
RU_WHEN = ["Когда привезут заказ {n}?", "Когда доставят заказ {n}?", "Какой срок доставки заказа {n}?"]
RU_ITEMS = ["Что было в заказе {n}?", "Напомните состав заказа {n}"]
RU_PAY = ["Как оплатить заказ {n}?", "Заказ {n} оплачен?"]
RU_ACTION = ["Хочу отменить заказ {n}", "Можно изменить адрес доставки заказа {n}?"]
EN_WHERE = ["Where is my order {n}?", "What's the status of order #{n}?", "Hi, where is order {n}?",
            "Any news on my order {n}?"]
EN_WHEN = ["When will order {n} arrive?", "When will my order {n} be delivered?"]
EN_ITEMS = ["What was in my order {n}?"]
EN_PAY = ["How can I pay for order {n}?"]
EN_ACTION = ["I want to cancel order {n}"]
RU_NONUM = ["Где мой заказ?", "Когда привезут мой заказ?", "Мой заказ ещё не пришёл, где он?"]
EN_NONUM = ["Where is my order?", "When will my order arrive?"]

STATUS_RU = {"created": "оформлен", "paid": "оплачен", "shipped": "передан в доставку", "delivered": "доставлен",
             "cancelled": "отменён"}
STATUS_EN = {"created": "has been placed", "paid": "is paid", "shipped": "has been handed to delivery",
             "delivered": "has been delivered", "cancelled": "was cancelled"}


def _expect(n: str, aspect: str, lang: str) -> tuple[str, list[str]]:
    o = ORDERS[n]
    status = (STATUS_RU if lang == "ru" else STATUS_EN)[o["status"]]
    late = o["status"] not in ("delivered", "cancelled") and o["delivery"].get("promised_on") == PAST
    base = [n, status] + (["извинения" if lang == "ru" else "sorry"] if late else [])
    if aspect == "action":
        return "handoff", []
    if aspect == "items":
        return "answer", [*base, o["items"][0]["name"]]
    if aspect == "pay":
        if o["status"] == "cancelled" or o["paid"]:
            return "answer", base
        if o.get("payment_url"):
            return "answer", [*base, o["payment_url"]]
        return "handoff", []
    if aspect == "when" and o["status"] not in ("delivered", "cancelled") and not o["delivery"].get(
            "promised_on") and not o["delivery"].get("tracking_url"):
        return "handoff", []
    track = o["delivery"].get("tracking_url")
    return "answer", base + ([track] if track and o["status"] not in ("delivered", "cancelled") else [])


def build() -> list[dict]:
    rng = random.Random(16)
    rows: list[dict] = []
    groups = [("ru", "where", RU_WHERE), ("ru", "when", RU_WHEN), ("ru", "items", RU_ITEMS), ("ru", "pay", RU_PAY),
              ("ru", "action", RU_ACTION), ("en", "where", EN_WHERE), ("en", "when", EN_WHEN),
              ("en", "items", EN_ITEMS), ("en", "pay", EN_PAY), ("en", "action", EN_ACTION)]
    for n, order in ORDERS.items():
        for lang, aspect, templates in groups:
            if lang == "en" and order["owner"] not in ("E", "A"):
                continue
            for text in templates[:2] if aspect == "where" else templates[:1]:
                expect, contains = _expect(n, aspect, lang)
                rows.append({"lang": lang, "writer": order["owner"], "turns": [text.format(n=n)], "order": n,
                             "expect": expect, "contains": contains, "kind": f"own_{aspect}"})
    # someone else's order: asked for the phone, told nothing
    for n, (lang, templates) in itertools.product(ORDERS, (("ru", RU_WHERE + RU_WHEN + RU_ITEMS),
                                                           ("en", EN_WHERE + EN_ITEMS))):
        for writer in ("X", "Y", next(w for w in "ABCDE" if w != ORDERS[n]["owner"])):
            text = rng.choice(templates).format(n=n)
            by_phone = WRITERS[ORDERS[n]["owner"]]["kind"] == "phone"  # an e-mail order: «телефон или e-mail»
            ask = ("телефон из заказа" if by_phone else "телефон или e-mail из заказа") if lang == "ru" else \
                ("phone number on the order" if by_phone else "phone number or e-mail on the order")
            rows.append({"lang": lang, "writer": writer, "turns": [text], "order": n, "expect": "ask_phone",
                         "contains": [ask],
                         "kind": "other_persons_order"})
    # a stranger who then gives a wrong phone: asked again, then a person; never the order's data
    for n in ("5001", "5201", "5401"):
        rows.append({"lang": "ru", "writer": "X", "turns": [f"Где заказ {n}?", "+7 900 123-45-67"], "order": n,
                     "expect": "ask_phone", "contains": ["телефон"], "kind": "wrong_phone"})
        rows.append({"lang": "ru", "writer": "X", "turns": [f"Где заказ {n}?", "+7 900 123-45-67",
                                                            "ну тогда +7 900 123-45-68"],
                     "order": n, "expect": "handoff", "contains": [], "kind": "wrong_phone_twice"})
    # the phone on the order given in the conversation proves it
    for n in ("5001", "5101", "5401"):
        owner = WRITERS[ORDERS[n]["owner"]]["value"]
        spaced = f"8 ({owner[2:5]}) {owner[5:8]}-{owner[8:10]}-{owner[10:]}"
        expect, contains = _expect(n, "where", "ru")
        rows.append({"lang": "ru", "writer": "Y", "turns": [f"Где мой заказ {n}?", spaced], "order": n,
                     "expect": expect, "contains": contains, "kind": "phone_given"})
        rows.append({"lang": "ru", "writer": "X", "turns": [f"Мой телефон {spaced}, где заказ {n}?"], "order": n,
                     "expect": expect, "contains": contains, "kind": "phone_given"})
    # orders that do not exist
    for n in MISSING:
        for writer, text, lang in (("A", f"Где мой заказ {n}?", "ru"), ("X", f"Статус заказа {n}?", "ru"),
                                   ("E", f"Where is my order {n}?", "en"), ("Y", f"What's the status of order #{n}?", "en")):
            rows.append({"lang": lang, "writer": writer, "turns": [text], "order": n, "expect": "not_found",
                         "contains": [n], "kind": "missing"})
    # without a number: the one open order, several (which?), none (the number, please)
    for text in RU_NONUM:
        rows.append({"lang": "ru", "writer": "A", "turns": [text], "order": "5001", "expect": "answer",
                     "contains": ["5001"], "kind": "no_number_one_open"})
        rows.append({"lang": "ru", "writer": "B", "turns": [text], "order": None, "expect": "ask_which",
                     "contains": ["5101", "5102"], "kind": "no_number_several"})
        rows.append({"lang": "ru", "writer": "X", "turns": [text], "order": None, "expect": "ask_number",
                     "contains": ["номер заказа"], "kind": "no_number_none"})
        rows.append({"lang": "ru", "writer": "B", "turns": [text, "5101"], "order": "5101", "expect": "answer",
                     "contains": ["5101", STATUS_RU["paid"]], "kind": "which_then_number"})
    for text in EN_NONUM:
        rows.append({"lang": "en", "writer": "E", "turns": [text], "order": "5401", "expect": "answer",
                     "contains": ["5401"], "kind": "no_number_one_open"})
        rows.append({"lang": "en", "writer": "Y", "turns": [text], "order": None, "expect": "ask_number",
                     "contains": ["order number"], "kind": "no_number_none"})
    for i, row in enumerate(rows):
        row["id"] = f"oq{i + 1:03d}"
    return rows


if __name__ == "__main__":
    out = Path(__file__).parent / "orders_questions.jsonl"
    rows = build()
    with out.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    print(f"{len(rows)} questions -> {out}")
