"""The assistant offers a visit when a customer asks for one («когда можете собрать шкаф?»): three free slots of
the service the question names and the link where the customer picks one (bookings domain). It never books by
itself: the customer books on the link, or an agent from the conversation's «Визиты» block.

Called by `service.process_message` after the order check, like it: only when the workspace has bookable
services, the message asks *when* / to book, and it names a service (a word of its name — «шкаф» for «Сборка
шкафа» — or its kind: собрать/установить/подключить). The area is the customer's `city` attribute when an
installer serves it, else any installer. No free slot: nothing is offered and the decision stands (a person
takes it).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy.orm import Session

from otklik.bookings import service as bookings
from otklik.bookings.models import BookingService
from otklik.conversations.models import Conversation
from otklik.customers.models import Customer
from otklik.platform.db import utcnow

_VISIT = re.compile(r"собрат|сбор(?:к|щик)|соберет|соберёт|установ|подключ|монтаж|assembl|install|connect|"
                    r"put\s+together", re.IGNORECASE)
_WHEN = re.compile(r"когда|можете|сможете|записат|запиш|приехать|приедет|приедете|врем|слот|свободн|\bwhen\b|"
                   r"\bbook\b|schedul|availab|\bcan\s+you\b", re.IGNORECASE)
KIND_WORDS = {"assembly": ("собрат", "сборк", "сборщик", "соберет", "соберёт", "assembl", "put together"),
              "installation": ("установ", "монтаж", "install"), "connection": ("подключ", "connect")}
TEXT = {"ru": "Можем приехать — {service} ({minutes} мин, {price} ₽):\n{slots}\nВыберите удобное время по ссылке: "
              "{link}\nИли напишите, какой вариант подходит, и оператор запишет вас.",
        "en": "We can come — {service} ({minutes} min, {price} ₽):\n{slots}\nPick the time that suits you: {link}\n"
              "Or tell us which one suits you and an agent will book it."}


def _stems(name: str) -> list[str]:
    return [w[:4] for w in re.findall(r"\w+", name.lower().replace("ё", "е")) if len(w) >= 4]


def _pick(services: list[BookingService], text: str) -> BookingService | None:
    """The service the question names: by a word of its name (its first four letters, «шкаф» for «шкафа»), then
    by its kind; None when neither."""
    low = text.lower().replace("ё", "е")
    kinds = {kind for kind, words in KIND_WORDS.items() if any(w.replace("ё", "е") in low for w in words)}
    best, score = None, 0
    for svc in services:
        stems = [s for s in _stems(svc.name) if not any(w.startswith(s) for ws in KIND_WORDS.values() for w in ws)]
        hits = sum(1 for s in stems if s in low) * 2 + (1 if svc.kind in kinds else 0)
        if hits > score:
            best, score = svc, hits
    return best


def offer_reply(session: Session, conversation: Conversation, text: str, language: str,
                now: dt.datetime | None = None) -> str | None:
    """The reply offering three slots, or None when the message does not ask for a visit or none is free."""
    if not (_VISIT.search(text) and _WHEN.search(text)):
        return None
    ws = conversation.workspace_id
    services = list(bookings.list_services(session, ws, active_only=True))
    svc = _pick(services, text) if services else None
    if svc is None:
        return None
    customer = session.get(Customer, conversation.customer_id)
    city = str((customer.attributes or {}).get("city") or "") if customer is not None else ""
    start = now or utcnow()
    end = start + dt.timedelta(days=bookings.PUBLIC_DAYS)
    area = city
    found = bookings.find_slots(session, ws, svc, start, end, area=city or None) if city else []
    if not found:
        area = ""
        found = bookings.find_slots(session, ws, svc, start, end)
    tz = bookings.workspace_time_zone(session, ws)
    offered = bookings.offer(found, tz)
    if not offered:
        return None
    lang = "en" if language == "en" else "ru"
    link = bookings.offer_url(bookings.OfferLink(ws, conversation.customer_id, conversation.id, svc.id, area))
    lines = "\n".join(f"— {bookings.slot_text(s, tz, lang)}" for s in offered)
    return TEXT[lang].format(service=svc.name, minutes=svc.duration_minutes, price=f"{bookings.money(svc.price):.0f}",
                             slots=lines, link=link)
