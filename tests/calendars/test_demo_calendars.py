"""`make demo` shows business calendars: Moscow (the default, six days a week) and Novosibirsk with a lunch break
for warranty service, both on the Russian production calendar."""

from __future__ import annotations

from sqlalchemy import select

from otklik.accounts import service as accounts
from otklik.accounts.models import Team
from otklik.calendars.models import Calendar
from otklik.demo import SLUG, seed_demo
from otklik.platform.db import session_scope


def test_demo_has_moscow_and_novosibirsk_calendars():
    seed_demo()
    with session_scope(write=False) as session:
        ws = accounts.get_workspace_by_slug(session, SLUG)
        assert ws is not None
        rows = {c.name: c for c in session.scalars(select(Calendar).where(Calendar.workspace_id == ws.id))}
        assert set(rows) == {"Москва", "Новосибирск", "Монтажная бригада"}  # the last: the installers' (bookings)
        assert rows["Москва"].is_default and rows["Москва"].holidays == "RU"
        assert rows["Новосибирск"].hours["mon"] == [["08:00", "13:00"], ["14:00", "17:00"]]
        service_team = session.scalar(select(Team).where(Team.workspace_id == ws.id,
                                                         Team.name == "Гарантия и сервис"))
        assert service_team is not None and service_team.calendar_id == rows["Новосибирск"].id
