"""The demo shop has services, installers and a few visits: one coming, one done and rated, one missed with its
late-service penalty showing beside the customer's conversation."""

from __future__ import annotations

from sqlalchemy import select

from otklik.accounts.models import Workspace
from otklik.bookings import service
from otklik.bookings.models import Booking
from otklik.demo import SLUG, seed_demo
from otklik.platform.db import session_scope


def test_the_demo_has_services_installers_and_visits():
    seed_demo()
    with session_scope(write=False) as s:
        ws = s.scalar(select(Workspace).where(Workspace.slug == SLUG))
        assert [x.name for x in service.list_services(s, ws.id)][:2] == ["Сборка шкафа", "Сборка кухни"]
        assert len(service.list_installers(s, ws.id)) == 3
        visits = {b.status: b for b in s.scalars(select(Booking).where(Booking.workspace_id == ws.id))}
        assert set(visits) == {"booked", "done", "missed"}
        assert visits["done"].feedback_score == 5
        assert all(v.conversation_id is not None for v in visits.values())
        missed = service.booking_out(s, visits["missed"])
        assert missed["late_days"] >= 2 and missed["late_penalty"] == round(2500 * 0.03 * missed["late_days"], 2)
