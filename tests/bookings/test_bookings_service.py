"""Bookings' rules: free slots from the calendar and other visits, no double booking, reschedule/cancel, the
links, the sweep (missed, reminder, «Всё ли удобно?») and the late-service penalty, with hand-computed figures."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from otklik.bookings import jobs, service
from otklik.bookings.models import Booking
from otklik.conversations.models import Message
from otklik.customers.tasks import Task
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict, InvalidInput, NotFound
from tests.bookings._setup import WITH_LUNCH, at, make_shop
from tests.conftest import inbound


def _slots(ws, shop, service_id, day, area=None, installer_id=None):
    with session_scope(write=False) as s:
        svc = service.get_service(s, ws.id, service_id)
        found = service.find_slots(s, ws.id, svc, at(day, 0), at(day + 1, 0), area=area, installer_id=installer_id,
                                   now=at(1, 0) - dt.timedelta(days=1))
        return [(x.installer_id, x.start_at.astimezone(at(1, 0).tzinfo).strftime("%H:%M"))
                for x in map(service.Slot._make, found)]


def _customer(client, ws, identity="ivan.b@example.com"):
    got = inbound(client, ws, identity=identity, text="Когда можете собрать шкаф?")
    return got["customer_id"], got["conversation_id"]


def _book(ws, shop, customer_id, start, *, service_id=None, installer_id=None, conversation_id=None, area="Москва"):
    with session_scope() as s:
        row = service.book(s, ws.actor("agent"), service_id=service_id or shop.assembly_id, start=start,
                           customer_id=customer_id, installer_id=installer_id or shop.ivan_id,
                           conversation_id=conversation_id, area=area, now=at(1, 0) - dt.timedelta(days=1))
        return row.id


def test_slots_follow_the_calendar_and_skip_booked_time(client, ws):
    shop = make_shop(ws)
    # 09:00–18:00, 2 hours, half-hour grid: 09:00 … 16:00 = 15 starts
    free = _slots(ws, shop, shop.assembly_id, 1, area="Москва")
    assert [t for _, t in free][:3] == ["09:00", "09:30", "10:00"] and len(free) == 15
    assert {i for i, _ in free} == {shop.ivan_id}
    customer_id, _ = _customer(client, ws)
    _book(ws, shop, customer_id, at(1, 10))  # 10:00–12:00
    after = [t for _, t in _slots(ws, shop, shop.assembly_id, 1, area="Москва")]
    # nothing overlapping 10:00–12:00: 08:00 would be before opening, so 12:00 … 16:00 = 9 starts
    assert after == ["12:00", "12:30", "13:00", "13:30", "14:00", "14:30", "15:00", "15:30", "16:00"]
    # the one-hour service fits before the visit: 09:00 (ends 10:00) is free
    short = [t for _, t in _slots(ws, shop, shop.connection_id, 1, area="Москва")]
    assert short[:2] == ["09:00", "12:00"]


def test_a_visit_never_spans_the_lunch_break(ws):
    shop = make_shop(ws, WITH_LUNCH)
    free = [t for _, t in _slots(ws, shop, shop.assembly_id, 1, area="Москва")]
    assert free == ["09:00", "09:30", "10:00", "10:30", "11:00", "14:00", "14:30", "15:00", "15:30", "16:00"]


def test_areas_and_services_choose_the_installers(ws):
    shop = make_shop(ws)
    assert {i for i, _ in _slots(ws, shop, shop.assembly_id, 1, area="химки")} == {shop.petr_id}
    assert _slots(ws, shop, shop.connection_id, 1, area="Химки") == []  # Пётр only assembles
    assert {i for i, _ in _slots(ws, shop, shop.assembly_id, 1)} == {shop.ivan_id, shop.petr_id}
    assert _slots(ws, shop, shop.assembly_id, 1, area="Тверь") == []


def test_no_double_booking_even_for_an_overlapping_start(client, ws):
    shop = make_shop(ws)
    customer_id, _ = _customer(client, ws)
    _book(ws, shop, customer_id, at(1, 10))
    with pytest.raises(Conflict) as taken:
        _book(ws, shop, customer_id, at(1, 10))
    assert taken.value.code == "slot_taken"
    with pytest.raises(Conflict):
        _book(ws, shop, customer_id, at(1, 11))  # 11:00–13:00 overlaps 10:00–12:00
    with pytest.raises(Conflict):
        _book(ws, shop, customer_id, at(1, 9), service_id=shop.assembly_id)  # 09:00–11:00 overlaps too
    _book(ws, shop, customer_id, at(1, 12))  # touching: fine
    _book(ws, shop, customer_id, at(1, 9), service_id=shop.connection_id)  # 09:00–10:00: fine


def test_bad_starts_are_named(client, ws):
    shop = make_shop(ws)
    customer_id, _ = _customer(client, ws)
    for start, why in ((at(1, 10, 15), "half hour"), (at(1, 17), "working hours"), (at(1, 7), "working hours")):
        with pytest.raises(InvalidInput) as bad:
            _book(ws, shop, customer_id, start)
        assert bad.value.fields[0]["field"] == "start" and why in bad.value.fields[0]["message"]
    with pytest.raises(InvalidInput) as bad:
        _book(ws, shop, customer_id, at(1, 10), area="Химки")  # Иван does not go to Химки
    assert bad.value.fields[0]["field"] == "area"


def test_cancel_frees_the_time_and_reschedule_moves_it(client, ws):
    shop = make_shop(ws)
    customer_id, _ = _customer(client, ws)
    first = _book(ws, shop, customer_id, at(1, 10))
    with session_scope() as s:
        service.cancel(s, ws.actor("agent"), first)
    second = _book(ws, shop, customer_id, at(1, 10))
    with session_scope() as s:
        moved = service.reschedule(s, ws.actor("agent"), second, start=at(2, 14), now=at(1, 0))
        assert moved.reschedules == 1
    assert "10:00" in [t for _, t in _slots(ws, shop, shop.assembly_id, 1, area="Москва")]
    assert "14:00" not in [t for _, t in _slots(ws, shop, shop.assembly_id, 2, area="Москва")]


def test_offer_is_the_earliest_then_one_a_day():
    slots = [(int(at(d, h).timestamp()), 1, int(at(d, h + 2).timestamp()))
             for d in (1, 2, 3) for h in (9, 10, 11)]
    chosen = service.offer(slots, "Europe/Moscow")
    assert [(s.start_at.day, s.start_at.hour) for s in chosen] == [(1, 6), (2, 6), (3, 6)]  # 09:00 MSK = 06:00Z
    one_day = service.offer(slots[:3], "Europe/Moscow")  # one day only: 09:00, then 11:00 (no overlap with 09:00)
    assert [s.start_at.hour for s in one_day] == [6, 8]


def test_late_service_penalty_is_three_percent_a_day_capped_at_the_price():
    row = Booking(price=Decimal("3000.00"), missed_on="2027-03-01", status="missed", time_zone="Europe/Moscow",
                  start_at=at(1, 10))
    assert service.late_penalty(row, dt.date(2027, 3, 1)) == (0, Decimal("0.00"))
    # 4 days late: 3000 × 3 % × 4 = 360
    assert service.late_penalty(row, dt.date(2027, 3, 5)) == (4, Decimal("360.00"))
    # 34 days: 3060 would be more than the price, so the price (ст. 28 п. 5: at most the price of the service)
    assert service.late_penalty(row, dt.date(2027, 4, 4)) == (34, Decimal("3000.00"))
    row.status, row.done_at = "done", at(3, 12)  # done two days late: the count stops there
    assert service.late_penalty(row, dt.date(2027, 3, 20)) == (2, Decimal("180.00"))
    row.missed_on = None
    assert service.late_penalty(row, dt.date(2027, 3, 20)) == (0, Decimal("0.00"))


def test_links_are_signed(client, ws):
    shop = make_shop(ws)
    customer_id, _ = _customer(client, ws)
    booking_id = _book(ws, shop, customer_id, at(1, 10))
    with session_scope(write=False) as s:
        row = s.get(Booking, booking_id)
        token = service.booking_token(row)
        assert service.booking_for_token(s, token).id == booking_id
        forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
        with pytest.raises(NotFound):
            service.booking_for_token(s, forged)
        with pytest.raises(NotFound):
            service.booking_for_token(s, token, now=at(1, 0) + dt.timedelta(days=60))
    link = service.OfferLink(ws.id, customer_id, None, shop.assembly_id, "Москва")
    tok = service.offer_token(link)
    assert service.read_offer_token(tok) == link
    with pytest.raises(NotFound):
        service.read_offer_token(tok.replace(f"{ws.id}.", f"{ws.id + 1}.", 1))


def _texts(conversation_id):
    with session_scope(write=False) as s:
        return [m.body_text for m in s.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                                 .order_by(Message.id))]


def test_sweep_reminds_the_day_before_marks_missed_and_asks_after_the_visit(client, ws):
    shop = make_shop(ws)
    customer_id, conversation_id = _customer(client, ws)
    first = _book(ws, shop, customer_id, at(3, 10), conversation_id=conversation_id)
    second = _book(ws, shop, customer_id, at(4, 10), conversation_id=conversation_id)
    jobs.sweep(at(2, 11))  # the day before, before noon: nothing yet
    assert not any("Напоминаем" in t for t in _texts(conversation_id))
    jobs.sweep(at(2, 12, 30))
    reminders = [t for t in _texts(conversation_id) if "Напоминаем" in t]
    assert len(reminders) == 1 and "завтра, 3 марта" in reminders[0] and "с 10:00 до 12:00" in reminders[0]
    assert "/booking/" in reminders[0] and "сборщик" in reminders[0]
    jobs.sweep(at(2, 13))  # once only
    assert len([t for t in _texts(conversation_id) if "Напоминаем" in t]) == 1
    # the first visit is reported done; the second is never reported: missed when its day ends
    with session_scope() as s:
        service.mark(s, ws.actor("agent"), first, "done", now=at(3, 12))
    jobs.sweep(at(4, 23, 59))  # (the sweep covers every workspace: other tests' visits are in these days too)
    asked = [t for t in _texts(conversation_id) if "Всё ли удобно?" in t]
    assert len(asked) == 1 and "?score=1" in asked[0]
    with session_scope(write=False) as s:
        assert s.get(Booking, second).status == "booked"  # its day is not over yet
    jobs.sweep(at(5, 0, 1))
    assert len([t for t in _texts(conversation_id) if "Всё ли удобно?" in t]) == 1
    with session_scope(write=False) as s:
        row = s.get(Booking, second)
        assert row.status == "missed" and row.missed_on == "2027-03-04"
        # 2 days later: 3000 × 3 % × 2 = 180 ₽
        assert service.booking_out(s, row, now=at(6, 12))["late_penalty"] == 180.0


def test_a_low_answer_opens_a_follow_up_task(client, ws):
    shop = make_shop(ws)
    customer_id, conversation_id = _customer(client, ws)
    booking_id = _book(ws, shop, customer_id, at(1, 10), conversation_id=conversation_id)
    with session_scope() as s:
        row = s.get(Booking, booking_id)
        with pytest.raises(Conflict):
            service.record_feedback(s, row, score=5)  # not done yet
    with session_scope() as s:
        service.mark(s, ws.actor("agent"), booking_id, "done", now=at(1, 12))
        row = service.record_feedback(s, s.get(Booking, booking_id), score=2, comment="Опоздал на час")
        task_id = row.meta["follow_up_task_id"]
    with session_scope(write=False) as s:
        task = s.get(Task, task_id)
        assert task.customer_id == customer_id and "оценка 2" in task.title
