"""Shared setup for the bookings tests: a calendar open 09:00–18:00 every day (Moscow), services, installers,
and a customer with a conversation. Visits are in March 2027: in the future of every run of these tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from otklik.bookings import service
from otklik.calendars import service as calendars
from otklik.platform.db import session_scope

MSK = dt.timezone(dt.timedelta(hours=3))
EVERY_DAY = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
WITH_LUNCH = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
DAY = dt.datetime(2027, 3, 1, tzinfo=MSK)  # a Monday


def at(day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2027, 3, day, hour, minute, tzinfo=MSK)


@dataclass
class Shop:
    calendar_id: int
    assembly_id: int  # 120 minutes, 3000 ₽
    connection_id: int  # 60 minutes, 1500 ₽
    ivan_id: int  # Moscow, every service
    petr_id: int  # Khimki, assembly only


def make_shop(ws, hours=EVERY_DAY) -> Shop:
    actor = ws.actor()
    with session_scope() as s:
        cal = calendars.create_calendar(s, actor, {"name": "Монтажники", "time_zone": "Europe/Moscow",
                                                   "hours": hours})
        assembly = service.create_service(s, actor, {"name": "Сборка шкафа", "kind": "assembly",
                                                     "duration_minutes": 120, "price": 3000})
        connection = service.create_service(s, actor, {"name": "Подключение плиты", "kind": "connection",
                                                       "duration_minutes": 60, "price": 1500})
        ivan = service.create_installer(s, actor, {"name": "Иван", "calendar_id": cal.id, "areas": ["Москва"]})
        petr = service.create_installer(s, actor, {"name": "Пётр", "calendar_id": cal.id, "areas": ["Химки"],
                                                   "service_ids": [assembly.id], "contractor": "ИП Петров"})
        return Shop(cal.id, assembly.id, connection.id, ivan.id, petr.id)
