"""The demo shop's visits (issue 16): an assembly team on a Moscow calendar, four services, three installers (two
people of the shop's contractor, one handyman in Saint Petersburg), and a few visits of Moscow-region customers —
one coming up, one done with its «Всё ли удобно?» answered, one missed three days ago (its late-service penalty
shows beside the customer's conversation)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.bookings import service
from otklik.calendars import service as calendars
from otklik.conversations.models import Conversation

SERVICES = (("Сборка шкафа", "assembly", 120, 2500), ("Сборка кухни", "assembly", 240, 6900),
            ("Установка стиральной машины", "installation", 60, 1500), ("Подключение плиты", "connection", 60, 1200))
REGION = ("Москва", "Химки", "Подольск")


def seed_bookings(session: Session, admin: Actor, people: Sequence[tuple[int, str]], now: dt.datetime) -> None:
    """`people`: (customer id, city) of the demo's customers."""
    six_days = {d: [["09:00", "19:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat")} | {"sun": []}
    cal = calendars.create_calendar(session, admin, {"name": "Монтажная бригада", "time_zone": "Europe/Moscow",
                                                     "hours": six_days, "holidays": "RU"})
    ids = [service.create_service(session, admin, {"name": n, "kind": k, "duration_minutes": d, "price": p}).id
           for n, k, d, p in SERVICES]
    team = [service.create_installer(session, admin, {"name": name, "calendar_id": cal.id, "contractor": firm,
                                                      "phone": phone, "areas": areas})
            for name, firm, phone, areas in (
                ("Алексей Сборщиков", "ИП Сборщиков", "+79161110022", ["Москва", "Химки"]),
                ("Руслан Гафуров", "ИП Сборщиков", "+79161110033", ["Москва", "Подольск"]),
                ("Мастер на час (СПб)", "ООО «Мастер на час»", "+78125550011", ["Санкт-Петербург"]))]
    local = [(cid, city) for cid, city in people if city in REGION][:3]
    if len(local) < 3:
        return
    plans = ((local[0], ids[0], team[0].id, -3, "missed"), (local[1], ids[1], team[1].id, -2, "done"),
             (local[2], ids[2], team[0].id, 2, "booked"))
    for (customer_id, city), service_id, installer_id, days, status in plans:
        conversation_id = session.scalar(select(Conversation.id).where(Conversation.customer_id == customer_id)
                                         .order_by(Conversation.id.desc()).limit(1))
        svc = service.get_service(session, admin.workspace_id, service_id)
        day = now + dt.timedelta(days=days)
        found = service.find_slots(session, admin.workspace_id, svc, day - dt.timedelta(days=1),
                                   day + dt.timedelta(days=3), area=city, installer_id=installer_id,
                                   now=day - dt.timedelta(days=1))
        if not found:
            continue
        start = dt.datetime.fromtimestamp(found[0][0], dt.UTC)
        then = start - dt.timedelta(days=2)  # booked two days before the visit
        row = service.book(session, admin, service_id=service_id, start=start, customer_id=customer_id,
                           installer_id=installer_id, conversation_id=conversation_id, area=city,
                           address=f"{city}, ул. Лесная, {10 + days}", created_by="demo", now=then)
        row.created_at = then
        if status == "done":
            service.mark(session, admin, row.id, "done", now=start + dt.timedelta(hours=3))
            row.asked_at = start + dt.timedelta(hours=4)
            service.record_feedback(session, row, score=5, comment="Собрали аккуратно, спасибо!")
        elif status == "missed":
            service.mark(session, admin, row.id, "missed", now=start + dt.timedelta(hours=10))
