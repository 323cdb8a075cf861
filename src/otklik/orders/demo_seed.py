"""The demo shop's orders (`otklik demo`): a few for each of its customers, as its shop system would have pushed
them, and order 4512 for the widget's demo visitor (Зарина, signed in on the shop's site as `domosfera-1042`),
on its way with a tracking link — so the widget answers «где мой заказ 4512?» for her, and asks anyone else for
the phone on the order."""

from __future__ import annotations

import datetime as dt
import random
import zlib
from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.orders import service

DEMO_ORDER = "4512"
DEMO_VISITOR = "domosfera-1042"  # the shop's own id of the demo visitor (a verified `external` identity)
TRACK = "https://www.pochta.ru/tracking?barcode={code}"
STREETS = ("Садовая", "Ленина", "Мира", "Гагарина", "Советская", "Лесная", "Школьная", "Новая")
CARRIERS = (("courier", "Курьер «Домосферы»"), ("pickup", "Пункт выдачи СДЭК"), ("post", "Почта России"))


def seed_orders(session: Session, workspace_id: int, people: Sequence[tuple[int, dict[str, str], str, str]],
                products: dict[str, list[tuple[str, int]]], now: dt.datetime, *, demo_index: int = 2) -> int:
    """Orders for `people` ((customer_id, {identity kind: value}, name, city), in demo order); the person at
    `demo_index` gets order 4512. Returns how many were stored."""
    rng = random.Random(16)  # its own sequence: the rest of the demo stays what it was
    pool = [p for group in products.values() for p in group]
    items: list[service.OrderInput] = []
    number = 4300
    for index, (_, identities, name, city) in enumerate(people):
        address = f"г. {city}, ул. {rng.choice(STREETS)}, д. {rng.randint(1, 90)}, кв. {rng.randint(1, 200)}"
        phone = identities.get("phone") or identities.get("whatsapp")
        email = identities.get("email")
        if not (phone or email):
            continue
        kind, value = ("phone", phone) if phone else ("email", email or "")
        for _ in range(1 if index > 40 else rng.randint(1, 3)):
            number += rng.randint(1, 4)
            if number == int(DEMO_ORDER):
                number += 1
            placed = now - dt.timedelta(days=rng.randint(2, 120), hours=rng.randint(0, 12))
            age = (now - placed).days
            status = ("delivered" if age > 10 else "shipped" if age > 3 else "paid") if rng.random() > 0.08 else \
                rng.choice(("cancelled", "returned"))
            items.append(_order(str(number), kind, value, name, email, phone, address, placed, status, rng, pool))
    # the demo visitor's order: on its way, promised the day after tomorrow
    person = people[demo_index]
    _, identities, name, city = person
    address = f"г. {city}, ул. Лесная, д. 12, кв. 48"
    phone = identities.get("phone") or identities.get("whatsapp")
    email = identities.get("email")
    demo = _order(DEMO_ORDER, "phone" if phone else "email", phone or email or "", name, email, phone, address,
                  now - dt.timedelta(days=3), "shipped", rng, pool)
    demo.given["items"] = [{"name": "кофемашина De'Longhi Magnifica S ECAM 22.110.B", "sku": "DL-22110",
                            "quantity": 1, "price": 39990},
                           {"name": "средство от накипи De'Longhi EcoDecalk", "sku": "DL-ECO", "quantity": 2,
                            "price": 890}]
    demo.given["total"] = service._money(41770, "total")
    demo.given["delivery"] = {"method": "Курьер «Домосферы»", "address": address, "tracking_number": "RA644000512RU",
                              "tracking_url": TRACK.format(code="RA644000512RU"),
                              "promised_on": (now + dt.timedelta(days=2)).date().isoformat()}
    items.append(demo)
    results = service.upsert_many(session, Actor.system(workspace_id), items, source="demo")
    return sum(1 for r in results if r.outcome == "created")


def _order(number: str, kind: str, value: str, name: str, email: str | None, phone: str | None, address: str,
           placed: dt.datetime, status: str, rng: random.Random, pool: list[tuple[str, int]]) -> service.OrderInput:
    chosen = rng.sample(pool, rng.randint(1, 3))
    lines = [{"name": title, "sku": f"DS-{zlib.crc32(title.encode()) % 100000:05d}", "quantity": 1, "price": price}
             for title, price in chosen]
    total = sum(price for _, price in chosen)
    method, carrier = rng.choice(CARRIERS)
    code = f"RA{rng.randint(100000000, 999999999)}RU"
    delivery: dict[str, Any] = {"method": carrier, "address": address,
                                "promised_on": (placed + dt.timedelta(days=rng.randint(3, 6))).date().isoformat()}
    if status in ("shipped", "delivered", "returned") and method != "courier":
        delivery.update(tracking_number=code, tracking_url=TRACK.format(code=code))
    raw: dict[str, Any] = {"customer": {"kind": kind, "value": value, "name": name},
                           "status": status, "items": lines, "total": total,
                           "paid": status not in ("created",), "delivery": delivery,
                           "placed_at": placed.isoformat()}
    if email and kind != "email":
        raw["customer"]["email"] = email
    if phone and kind != "phone":
        raw["customer"]["phone"] = phone
    return service.parse_order(raw, number=number)
