"""No double booking under concurrency: threads book the same (or overlapping) time at once, each in its own
transaction; exactly one wins, the others get a 409-kind Conflict. On SQLite and, with OTKLIK_TEST_DATABASE_URL,
on PostgreSQL (where the cells' primary key decides between transactions that both passed the check)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from otklik.bookings import service
from otklik.bookings.models import Booking, BookingCell
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import Conflict
from tests.bookings._setup import at, make_shop
from tests.conftest import inbound

THREADS = 8


def _race(ws, shop, customer_id, starts):
    barrier = threading.Barrier(len(starts))
    won, lost, other = [], [], []

    def attempt(start):
        barrier.wait()
        try:
            row = run_transaction(lambda s: service.book(s, ws.actor("agent"), service_id=shop.assembly_id,
                                                         start=start, customer_id=customer_id,
                                                         installer_id=shop.ivan_id, area="Москва"))
            won.append(row.id)
        except Conflict as exc:
            lost.append(exc.code)
        except Exception as exc:  # anything else is a failure of the test
            other.append(repr(exc))

    threads = [threading.Thread(target=attempt, args=(s,)) for s in starts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return won, lost, other


def test_the_same_slot_booked_by_eight_threads_is_booked_once(client, ws):
    shop = make_shop(ws)
    customer_id = inbound(client, ws, identity="race@example.com", text="Соберите шкаф")["customer_id"]
    won, lost, other = _race(ws, shop, customer_id, [at(8, 10)] * THREADS)
    assert other == [] and len(won) == 1 and lost == ["slot_taken"] * (THREADS - 1)
    with session_scope(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Booking).where(Booking.workspace_id == ws.id)) == 1
        assert s.scalar(select(func.count()).select_from(BookingCell).where(BookingCell.workspace_id == ws.id)) == 4


def test_overlapping_starts_at_once_leave_no_overlap(client, ws):
    shop = make_shop(ws)
    customer_id = inbound(client, ws, identity="race2@example.com", text="Соберите шкаф")["customer_id"]
    # 10:00, 10:30, 11:00, 11:30 (each two hours): any two overlap, so exactly one can win
    starts = [at(9, 10), at(9, 10, 30), at(9, 11), at(9, 11, 30)] * 2
    won, lost, other = _race(ws, shop, customer_id, starts)
    assert other == [] and len(won) == 1 and len(lost) == len(starts) - 1
