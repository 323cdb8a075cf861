"""SLA timers on hand-computed timelines (docs/service-levels.md): out-of-hours arrival and a holiday in between,
pending pauses, re-open, transfer to a team on another calendar, priority change, merge, the assistant's
messages that never count; the sweep fires each warning and breach once, also with two sweepers at once.

The calendar: Moscow, Monday–Friday 09:00–18:00, the Russian production calendar (Monday 9 March 2026 is a day
off). The policy: first response 60, next response 120, resolution 1620 working minutes (three working days).
"""

from __future__ import annotations

import datetime as dt
import threading
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from otklik.accounts.models import AuditEntry
from otklik.conversations import service as conversations
from otklik.conversations import sla
from otklik.conversations.models import AuthorKind, Conversation, Priority
from otklik.platform.db import session_scope

MSK = ZoneInfo("Europe/Moscow")
WEEK = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}


def msk(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK)


class Clock:
    def __init__(self, monkeypatch):
        self.now = msk(2026, 3, 4, 10, 0)
        monkeypatch.setattr(conversations, "utcnow", lambda: self.now.astimezone(dt.UTC))

    def at(self, moment: dt.datetime) -> Clock:
        self.now = moment
        return self


@pytest.fixture
def clock(monkeypatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def setup(client, ws):
    cal = client.post("/api/v1/calendars", json={"name": "Москва", "time_zone": "Europe/Moscow", "hours": WEEK,
                                                 "holidays": "RU"}, headers=ws.admin).json()
    policy = client.post("/api/v1/sla-policies", json={
        "name": "Все", "first_response_minutes": 60, "next_response_minutes": 120, "resolution_minutes": 1620,
        "business_hours": True}, headers=ws.admin)
    assert policy.status_code == 201, policy.text
    return cal, policy.json()


def customer_writes(ws, at: dt.datetime, text: str = "Где мой заказ?", who: str = "anna@example.com") -> int:
    with session_scope() as session:
        got = conversations.receive(session, ws.id, conversations.InboundMessage(
            channel="email", identity_kind="email", identity_value=who, text=text, sent_at=at.astimezone(dt.UTC)))
        return got.conversation.id


def agent_replies(ws, clock: Clock, cid: int, at: dt.datetime, author=AuthorKind.agent) -> None:
    clock.at(at)
    with session_scope() as session:
        conversations.reply(session, ws.actor("agent"), cid, text="Отвечаю", author=author)


def set_fields(ws, clock: Clock, cid: int, at: dt.datetime, **changes) -> None:
    clock.at(at)
    with session_scope() as session:
        conversations.update_conversation(session, ws.actor(), cid, changes)


def timers(cid: int) -> dict[str, sla.SlaTimer]:
    with session_scope(write=False) as session:
        out = {t.kind: t for t in sla.timers_for(session, cid)}
        for t in out.values():
            session.expunge(t)
        return out


def utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC)


def test_out_of_hours_arrival_and_a_holiday_in_between(ws, setup, clock):
    # Friday 6 March 17:30: 30 minutes today, Monday 9 March is a day off, 30 more on Tuesday → 09:30
    cid = customer_writes(ws, msk(2026, 3, 6, 17, 30))
    t = timers(cid)
    assert set(t) == {"first_response", "resolution"} and t["first_response"].state == "running"
    assert t["first_response"].due_at == utc(msk(2026, 3, 10, 9, 30))
    # resolution 1620: 30 on Friday, 540 Tuesday, 540 Wednesday, 510 Thursday → Thursday 12 March 17:30
    assert t["resolution"].due_at == utc(msk(2026, 3, 12, 17, 30))
    agent_replies(ws, clock, cid, msk(2026, 3, 10, 9, 15))
    t = timers(cid)
    assert t["first_response"].state == "met" and t["first_response"].elapsed_minutes == 45
    with session_scope(write=False) as session:
        conv = session.get(Conversation, cid)
        assert conv.first_response_at == utc(msk(2026, 3, 10, 9, 15)) and conv.waiting_since is None
        assert conv.sla_due_at == utc(msk(2026, 3, 12, 17, 30))  # only resolution runs now


def test_pending_pauses_and_the_customer_resumes(ws, setup, clock):
    cid = customer_writes(ws, msk(2026, 3, 4, 10, 0))  # Wednesday
    agent_replies(ws, clock, cid, msk(2026, 3, 4, 10, 20))
    set_fields(ws, clock, cid, msk(2026, 3, 4, 10, 30), status="pending")
    t = timers(cid)
    assert t["resolution"].state == "paused" and t["resolution"].elapsed_minutes == 30
    assert t["resolution"].due_at is None
    # Thursday 11:00 the customer answers: resolution resumes with 1590 left → Wednesday 11 March 10:30
    cid2 = customer_writes(ws, msk(2026, 3, 5, 11, 0), text="Вот фото")
    assert cid2 == cid
    t = timers(cid)
    assert t["resolution"].state == "running" and t["resolution"].due_at == utc(msk(2026, 3, 11, 10, 30))
    assert t["next_response"].state == "running" and t["next_response"].due_at == utc(msk(2026, 3, 5, 13, 0))
    assert t["first_response"].state == "met"


def test_solved_then_reopened_restarts_next_response_not_first(ws, setup, clock):
    cid = customer_writes(ws, msk(2026, 3, 4, 10, 0))
    agent_replies(ws, clock, cid, msk(2026, 3, 4, 10, 20))
    set_fields(ws, clock, cid, msk(2026, 3, 4, 11, 30), status="solved")
    t = timers(cid)
    assert t["resolution"].state == "met" and t["resolution"].elapsed_minutes == 90
    # Friday 10:00 the customer writes again: re-opened; resolution resumes with 1530 left
    customer_writes(ws, msk(2026, 3, 6, 10, 0), text="Опять не работает")
    t = timers(cid)
    assert t["first_response"].state == "met" and t["first_response"].stopped_at is not None
    assert t["next_response"].state == "running" and t["next_response"].due_at == utc(msk(2026, 3, 6, 12, 0))
    # 480 on Friday, Monday off, 540 Tuesday, 510 on Wednesday → Wednesday 11 March 17:30
    assert t["resolution"].state == "running" and t["resolution"].due_at == utc(msk(2026, 3, 11, 17, 30))
    # a second customer message while already waiting does not restart next response
    customer_writes(ws, msk(2026, 3, 6, 11, 0), text="Алло?")
    assert timers(cid)["next_response"].due_at == utc(msk(2026, 3, 6, 12, 0))
    # late: answered at 12:30 → breached, and the conversation says so
    agent_replies(ws, clock, cid, msk(2026, 3, 6, 12, 30))
    t = timers(cid)
    assert t["next_response"].state == "breached" and t["next_response"].breached_at == utc(msk(2026, 3, 6, 12, 30))
    with session_scope(write=False) as session:
        assert session.get(Conversation, cid).sla_breached


def test_the_assistant_never_stops_a_timer_or_ends_the_wait(ws, setup, clock):
    cid = customer_writes(ws, msk(2026, 3, 4, 10, 0), text="Подам в суд, если не вернёте деньги!")
    agent_replies(ws, clock, cid, msk(2026, 3, 4, 10, 1), author=AuthorKind.assistant)  # «passing you on»
    t = timers(cid)
    assert t["first_response"].state == "running"
    with session_scope(write=False) as session:
        conv = session.get(Conversation, cid)
        assert conv.first_response_at is None and conv.waiting_since == utc(msk(2026, 3, 4, 10, 0))
        assert conv.assistant_answered_at == utc(msk(2026, 3, 4, 10, 1))
        from otklik.conversations.inbox import wait_state

        waited, state = wait_state(conv, utc(msk(2026, 3, 4, 10, 10)))
        assert waited == 600 and state == "bot"  # the assistant answered: marked, still waiting
        assert wait_state(conv, utc(msk(2026, 3, 4, 10, 40)))[0] is None  # customer silent 30+ minutes


def test_transfer_to_a_team_on_another_calendar_and_a_priority_change_recount_from_the_start(client, ws, setup,
                                                                                              clock):
    nsk = client.post("/api/v1/calendars", json={"name": "Новосибирск", "time_zone": "Asia/Novosibirsk",
                                                 "hours": WEEK, "holidays": "RU"}, headers=ws.admin).json()
    team = client.post("/api/v1/teams", json={"name": "Сибирь", "member_ids": []}, headers=ws.admin).json()
    client.put(f"/api/v1/teams/{team['id']}/calendar", json={"calendar_id": nsk["id"]}, headers=ws.admin)
    urgent = client.post("/api/v1/sla-policies", json={
        "name": "Срочные", "position": 0, "conditions": {"priorities": ["urgent"]}, "first_response_minutes": 15,
        "business_hours": False}, headers=ws.admin).json()
    # Wednesday 17:30 in Moscow is 21:30 in Novosibirsk
    cid = customer_writes(ws, msk(2026, 3, 4, 17, 30))
    assert timers(cid)["first_response"].due_at == utc(msk(2026, 3, 5, 9, 30))  # Moscow: 30 + 30
    set_fields(ws, clock, cid, msk(2026, 3, 4, 17, 40), team_id=team["id"])
    # Novosibirsk opens Thursday 09:00 (05:00 in Moscow): + 60 → 10:00 there, 06:00 in Moscow
    assert timers(cid)["first_response"].due_at == utc(msk(2026, 3, 5, 6, 0))
    set_fields(ws, clock, cid, msk(2026, 3, 4, 17, 45), priority="urgent")
    t = timers(cid)
    assert t["first_response"].policy_id == urgent["id"] and t["first_response"].target_minutes == 15
    assert t["first_response"].due_at == utc(msk(2026, 3, 4, 17, 45))  # 15 calendar minutes from 17:30
    assert "resolution" in t and t["resolution"].state == "stopped"  # the urgent policy has no such target
    with session_scope(write=False) as session:
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "conversation",
                                                                       AuditEntry.entity_id == cid)))
    assert actions.count("sla_changed") == 2


def test_merge_stops_the_sources_timers(ws, setup, clock):
    a = customer_writes(ws, msk(2026, 3, 4, 10, 0), who="a@example.com")
    with session_scope() as session:
        got = conversations.receive(session, ws.id, conversations.InboundMessage(
            channel="telegram", identity_kind="telegram", identity_value="5005", text="и ещё",
            sent_at=utc(msk(2026, 3, 4, 10, 5))))
        b = got.conversation.id
    clock.at(msk(2026, 3, 4, 10, 10))
    with session_scope() as session:
        conversations.merge_conversations(session, ws.actor(), target_id=a, source_id=b)
    assert {t.state for t in timers(b).values()} == {"stopped"}
    assert timers(a)["first_response"].state == "running"


def test_no_policy_no_timers_and_a_customer_attribute_condition(client, ws, clock):
    cid = customer_writes(ws, msk(2026, 3, 4, 10, 0))
    assert timers(cid) == {}
    r = client.post("/api/v1/sla-policies", json={"name": "Золото", "first_response_minutes": 5,
                                                   "business_hours": False,
                                                   "conditions": {"customer_attribute": {"key": "loyalty",
                                                                                         "values": ["gold"]}}},
                    headers=ws.admin)
    assert r.status_code == 201
    with session_scope(write=False) as session:
        customer_id = session.get(Conversation, cid).customer_id
    client.patch(f"/api/v1/customers/{customer_id}", json={"attributes": {"loyalty": "gold"}}, headers=ws.admin)
    other = customer_writes(ws, msk(2026, 3, 4, 10, 0), who="plain@example.com")
    gold = customer_writes(ws, msk(2026, 3, 4, 10, 1), who="vip@example.com")
    assert timers(other) == {}
    _ = gold


def test_policy_api_validates(client, ws, other_ws):
    bad = [({"name": "x"}, "first_response_minutes"), ({"name": "x", "first_response_minutes": 0},
                                                          "first_response_minutes"),
           ({"name": "x", "first_response_minutes": 5, "conditions": {"channels": ["pigeon"]}}, "conditions.channels"),
           ({"name": "x", "first_response_minutes": 5, "conditions": {"team_ids": [999999]}}, "conditions.team_ids"),
           ({"name": "x", "first_response_minutes": 5, "calendar_id": 999999}, "calendar_id"),
           ({"name": "x", "first_response_minutes": 5, "warn_share": 2}, "warn_share"),
           ({"name": "x", "first_response_minutes": 5, "escalation": {"reassign_team_id": 999999}},
            "escalation.reassign_team_id")]
    for body, field in bad:
        r = client.post("/api/v1/sla-policies", json=body, headers=ws.admin)
        assert r.status_code == 422 and field in str(r.json()["error"]["fields"]), (body, r.text)
    assert client.post("/api/v1/sla-policies", json={"name": "x", "first_response_minutes": 5},
                       headers=ws.agent).status_code == 403
    p = client.post("/api/v1/sla-policies", json={"name": "x", "first_response_minutes": 5}, headers=ws.admin).json()
    assert client.get(f"/api/v1/sla-policies/{p['id']}", headers=other_ws.admin).status_code == 404
    assert client.get("/api/v1/sla-policies").status_code == 401
    r = client.patch(f"/api/v1/sla-policies/{p['id']}", json={"resolution_minutes": 600}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["resolution_minutes"] == 600
    assert client.delete(f"/api/v1/sla-policies/{p['id']}", headers=ws.admin).status_code == 204


def test_sweep_warns_and_breaches_once_and_escalates(client, ws, clock):
    lead = client.post("/api/v1/users", json={"email": "lead@example.com", "name": "Лид", "role": "supervisor",
                                              "password": "Sup3r-secret-pass"}, headers=ws.admin).json()
    team = client.post("/api/v1/teams", json={"name": "Линия", "member_ids": [lead["id"], ws.agent_id]},
                       headers=ws.admin).json()
    client.post("/api/v1/sla-policies", json={
        "name": "Чат", "first_response_minutes": 10, "business_hours": False, "warn_share": 0.5,
        "escalation": {"raise_priority": True, "notify_team_lead": True}}, headers=ws.admin)
    cid = customer_writes(ws, msk(2027, 3, 4, 10, 0))
    set_fields(ws, clock, cid, msk(2027, 3, 4, 10, 0), team_id=team["id"], assignee_id=ws.agent_id)
    events: list[tuple[str, dict]] = []
    from otklik.platform.events import get_bus

    bus = get_bus()
    bus.on("sla.warning", lambda e: events.append((e.type, e.data)))
    bus.on("sla.breached", lambda e: events.append((e.type, e.data)))
    with session_scope() as session:
        assert sla.sweep(session, utc(msk(2027, 3, 4, 10, 4)), ws.id) == {"warned": 0, "breached": 0}
    with session_scope() as session:
        assert sla.sweep(session, utc(msk(2027, 3, 4, 10, 6)), ws.id) == {"warned": 1, "breached": 0}
    with session_scope() as session:
        assert sla.sweep(session, utc(msk(2027, 3, 4, 10, 11)), ws.id) == {"warned": 0, "breached": 1}
    with session_scope() as session:
        assert sla.sweep(session, utc(msk(2027, 3, 4, 10, 20)), ws.id) == {"warned": 0, "breached": 0}
    mine = [(kind, data) for kind, data in events if data["conversation_id"] == cid]
    assert [k for k, _ in mine] == ["sla.warning", "sla.breached"]
    assert set(mine[1][1]["notify_user_ids"]) == {ws.agent_id, lead["id"]}
    with session_scope(write=False) as session:
        conv = session.get(Conversation, cid)
        assert conv.priority == Priority.high and conv.sla_breached
        actions = list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity_type == "conversation",
                                                                       AuditEntry.entity_id == cid)))
    assert actions.count("sla_breached") == 1 and actions.count("sla_warning") == 1
    r = client.get("/api/v1/conversations", params={"sla_breached": True}, headers=ws.admin).json()
    assert [c["id"] for c in r["items"]] == [cid]


def test_two_sweepers_at_once_fire_each_breach_once(client, ws):
    client.post("/api/v1/sla-policies", json={"name": "Быстро", "first_response_minutes": 1,
                                               "business_hours": False}, headers=ws.admin)
    start = dt.datetime(2027, 3, 4, 7, 0, tzinfo=dt.UTC)  # after any other sweep's now
    ids = [customer_writes(ws, start, who=f"c{i}@example.com") for i in range(30)]
    results: list[dict[str, int]] = []
    barrier = threading.Barrier(2)

    def sweeper():
        barrier.wait()
        with session_scope() as session:
            results.append(sla.sweep(session, start + dt.timedelta(minutes=5), ws.id))

    threads = [threading.Thread(target=sweeper) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["breached"] for r in results) == len(ids)
    with session_scope(write=False) as session:
        entries = session.scalars(select(AuditEntry.entity_id).where(AuditEntry.action == "sla_breached",
                                                                     AuditEntry.entity_id.in_(ids))).all()
    assert sorted(entries) == sorted(ids)


def test_due_soonest_sort_pages_and_the_due_within_filter(app, client, ws):
    now = dt.datetime.now(dt.UTC)
    untimed = customer_writes(ws, now - dt.timedelta(minutes=1), who="none@example.com")  # before any policy
    client.post("/api/v1/sla-policies", json={"name": "Всегда", "first_response_minutes": 40,
                                               "business_hours": False}, headers=ws.admin)
    late = customer_writes(ws, now, who="late@example.com")  # due in 40 minutes
    early = customer_writes(ws, now - dt.timedelta(minutes=15), who="early@example.com")  # due in 25
    order, cursor = [], None
    for _ in range(4):
        params = {"sort": "due", "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/conversations", params=params, headers=ws.admin).json()
        order += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert order == [early, late, untimed]
    soon = client.get("/api/v1/conversations", params={"due_within": 27}, headers=ws.admin).json()
    assert [c["id"] for c in soon["items"]] == [early]
    from tests.web._ui import Browser

    page = Browser(app, ws.admin_email).get("/inbox?view=all&sort=due&sla=soon")
    assert page.status_code == 200 and page.text.count('class="sla-due ') == 1 and "SLA " in page.text
    assert Browser(app, ws.admin_email).get("/inbox?sla=nope").status_code == 422
