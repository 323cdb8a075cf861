"""Routing and auto-assignment (conversations/routing.py): round-robin and least-busy, capacity per channel
kind, the queue (oldest first) that moves when capacity frees up or an agent comes online, skills, idle agents,
out-of-hours hand-over to an open team, transfer counts, the API's errors and audit; and the race test: many
conversations routed at once from threads never put an agent above capacity and spread round-robin within ±1
(SQLite here; PostgreSQL when the suite runs with OTKLIK_TEST_DATABASE_URL)."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter

import pytest
from sqlalchemy import select, update

from otklik.accounts import service as accounts
from otklik.accounts.models import Role, TeamMember
from otklik.conversations import routing
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation
from otklik.platform.db import run_transaction, session_scope

_n = itertools.count(1)


def make_agents(ws, count: int, *, online: bool = True) -> list[int]:
    ids = []
    with session_scope() as session:
        admin = accounts.Actor(workspace_id=ws.id, user_id=ws.admin_id, role=Role.admin)
        for _ in range(count):
            n = next(_n)
            user = accounts.create_user(session, admin, email=f"r{n}-{ws.id}@example.com", name=f"Agent R{n}",
                                        role=Role.agent, password=None)
            ids.append(user.id)
        session.flush()
        for uid in ids:
            routing.set_availability(session, accounts.Actor(workspace_id=ws.id, user_id=uid, role=Role.agent),
                                     "online" if online else "offline")
    return ids


def make_team(client, ws, members: list[int], **settings) -> int:
    team = client.post("/api/v1/teams", json={"name": f"Team {next(_n)}", "member_ids": members},
                       headers=ws.admin)
    assert team.status_code == 201, team.text
    team_id = team.json()["id"]
    if settings:
        r = client.put(f"/api/v1/teams/{team_id}/routing", json=settings, headers=ws.admin)
        assert r.status_code == 200, r.text
    return team_id


def new_conversation(ws, team_id: int | None = None, *, channel: str = "telegram", language: str | None = None,
                     category: str | None = None) -> int:
    n = next(_n)
    with session_scope() as session:
        got = conversations.receive(session, ws.id, conversations.InboundMessage(
            channel=channel, identity_kind="email" if channel == "email" else "telegram",
            identity_value=f"c{n}@example.com" if channel == "email" else str(900000 + n), text="Здравствуйте",
            language=language))
        cid = got.conversation.id
    if team_id is not None or category is not None:
        with session_scope() as session:
            changes: dict = {}
            if category is not None:
                changes["category"] = category
            if team_id is not None:
                changes["team_id"] = team_id
            conversations.update_conversation(session, accounts.Actor.system(ws.id), cid, changes)
    return cid


def assignee(cid: int) -> int | None:
    with session_scope() as session:
        c = session.get(Conversation, cid)
        assert c is not None
        return c.assignee_id


def loads(ids: list[int]) -> dict[int, tuple[int, int]]:
    with session_scope() as session:
        rows = session.scalars(select(routing.AgentRouting).where(routing.AgentRouting.user_id.in_(ids)))
        return {r.user_id: (r.open_chat, r.open_email) for r in rows}


def test_round_robin_spreads_and_counts_loads(client, ws):
    agents = make_agents(ws, 3)
    team = make_team(client, ws, agents, auto_assign=True, method="round_robin", capacity_chat=5)
    convs = [new_conversation(ws, team) for _ in range(6)]
    got = Counter(assignee(c) for c in convs)
    assert got == {a: 2 for a in agents}
    assert [assignee(c) for c in convs] == agents + agents  # in turn
    assert loads(agents) == {a: (2, 0) for a in agents}
    audit = client.get(f"/api/v1/audit?entity_type=conversation&entity_id={convs[0]}", headers=ws.admin).json()
    assert any(e["action"] == "assigned" and "auto-assigned" in (e["note"] or "") for e in audit)


def test_off_by_default_and_without_team(client, ws):
    agents = make_agents(ws, 1)
    team = make_team(client, ws, agents)
    assert client.get(f"/api/v1/teams/{team}/routing", headers=ws.agent).json() == {
        "team_id": team, "auto_assign": False, "method": "round_robin", "capacity_chat": 5, "capacity_email": 10,
        "queued": 0}
    assert assignee(new_conversation(ws, team)) is None
    assert assignee(new_conversation(ws)) is None


def test_capacity_queue_oldest_first_and_solve_frees_a_slot(client, ws):
    agents = make_agents(ws, 2)
    team = make_team(client, ws, agents, auto_assign=True, capacity_chat=1, capacity_email=1)
    a, b, c, d = (new_conversation(ws, team) for _ in range(4))
    assert {assignee(a), assignee(b)} == set(agents)
    assert assignee(c) is None and assignee(d) is None
    assert client.get(f"/api/v1/teams/{team}/routing", headers=ws.admin).json()["queued"] == 2
    e = new_conversation(ws, team, channel="email")  # email has its own capacity
    assert assignee(e) in agents
    r = client.patch(f"/api/v1/conversations/{a}", json={"status": "solved"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    assert assignee(c) == assignee(a)  # the oldest waiting one, the moment the slot frees
    assert assignee(d) is None
    r = client.put(f"/api/v1/teams/{team}/routing", json={"capacity_chat": 2}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["queued"] == 0
    assert assignee(d) in agents
    assert loads(agents)[assignee(a) or 0][0] == 1 + (assignee(d) == assignee(a))


def test_least_busy(client, ws):
    agents = make_agents(ws, 2)
    team = make_team(client, ws, agents, auto_assign=False)
    for _ in range(3):  # the first agent already has three chats
        cid = new_conversation(ws)
        client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": agents[0]}, headers=ws.admin)
    client.put(f"/api/v1/teams/{team}/routing", json={"auto_assign": True, "method": "least_busy"}, headers=ws.admin)
    convs = [new_conversation(ws, team) for _ in range(4)]
    got = Counter(assignee(c) for c in convs)
    assert got[agents[1]] == 3 and got[agents[0]] == 1  # the idle one until both have three, then in turn


def test_skills_languages_and_categories(client, ws):
    russian, english = make_agents(ws, 2)
    team = make_team(client, ws, [russian, english], auto_assign=True)
    r = client.put(f"/api/v1/users/{english}/skills", json={"languages": ["en"], "categories": []},
                   headers=ws.admin)
    assert r.status_code == 200 and r.json()["languages"] == ["en"]
    r = client.put(f"/api/v1/users/{russian}/skills", json={"languages": ["ru"], "categories": ["delivery"]},
                   headers=ws.admin)
    assert r.status_code == 200
    assert assignee(new_conversation(ws, team, language="en")) == english
    assert assignee(new_conversation(ws, team, language="en")) == english
    assert assignee(new_conversation(ws, team, language="ru", category="delivery")) == russian
    assert assignee(new_conversation(ws, team, language="ru", category="refund")) is None  # nobody matches


def test_availability_offline_away_idle_and_coming_online(client, ws):
    agents = make_agents(ws, 1, online=False)
    team = make_team(client, ws, agents, auto_assign=True)
    waiting = new_conversation(ws, team)
    assert assignee(waiting) is None
    # the agent switches to online with their own token: what waits is theirs at once
    with session_scope() as session:
        user = session.get(accounts.User, agents[0])
        token, _ = accounts.create_api_token(session, accounts.actor_for(user), name="t")
    me = {"Authorization": f"Bearer {token}"}
    r = client.put("/api/v1/users/me/availability", json={"state": "online"}, headers=me)
    assert r.status_code == 200 and r.json()["availability"] == "online"
    assert assignee(waiting) == agents[0]
    r = client.put("/api/v1/users/me/availability", json={"state": "away"}, headers=me)
    assert r.json()["availability"] == "away"
    assert assignee(new_conversation(ws, team)) is None
    client.put("/api/v1/users/me/availability", json={"state": "online"}, headers=me)
    # idle for longer than the workspace's setting: away without saying so
    with session_scope() as session:
        session.execute(update(routing.AgentRouting).where(routing.AgentRouting.user_id == agents[0])
                        .values(last_seen_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)))
    routing._touched.pop(agents[0], None)
    assert client.get(f"/api/v1/users/{agents[0]}/routing", headers=ws.admin).json()["availability"] == "away"
    idle = new_conversation(ws, team)
    assert assignee(idle) is None
    # any request of theirs brings them back, and the waiting conversation with it
    assert client.get("/api/v1/users/me/availability", headers=me).status_code == 200
    assert assignee(idle) == agents[0]
    audit = client.get(f"/api/v1/audit?entity_type=user&entity_id={agents[0]}", headers=ws.admin).json()
    assert {"availability_changed"} <= {e["action"] for e in audit}


def test_out_of_hours_goes_to_an_open_team(client, ws):
    agents_msk, agents_nsk = make_agents(ws, 1), make_agents(ws, 1)
    closed = client.post("/api/v1/calendars", json={"name": "Закрыто", "time_zone": "Europe/Moscow", "hours": {
        d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}, "holidays": None}, headers=ws.admin)
    assert closed.status_code == 201, closed.text
    always = client.post("/api/v1/calendars", json={"name": "24/7", "time_zone": "Asia/Novosibirsk", "hours": {
        d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}, "holidays": None},
        headers=ws.admin)
    msk = make_team(client, ws, agents_msk, auto_assign=True)
    nsk = make_team(client, ws, agents_nsk, auto_assign=True)
    client.put(f"/api/v1/teams/{msk}/calendar", json={"calendar_id": closed.json()["id"]}, headers=ws.admin)
    client.put(f"/api/v1/teams/{nsk}/calendar", json={"calendar_id": always.json()["id"]}, headers=ws.admin)
    first = new_conversation(ws, msk)
    assert assignee(first) == agents_msk[0]  # the setting is off: the team's own agent, hours or not
    r = client.put("/api/v1/routing", json={"out_of_hours_to_open_team": True}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["out_of_hours_to_open_team"] is True
    second = new_conversation(ws, msk)
    assert assignee(second) == agents_nsk[0]
    got = client.get(f"/api/v1/conversations/{second}", headers=ws.admin).json()
    assert got["team_id"] == nsk
    r = client.put("/api/v1/routing", json={"out_of_hours_to_open_team": "yes"}, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "out_of_hours_to_open_team"
    assert client.put("/api/v1/routing", json={"out_of_hours_to_open_team": False},
                      headers=ws.agent).status_code == 403


def test_transfer_count(client, ws):
    a, b = make_agents(ws, 2)
    cid = new_conversation(ws)
    for who, transfers in ((a, 0), (b, 1), (None, 1), (a, 2)):
        r = client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": who}, headers=ws.admin)
        assert r.status_code == 200 and r.json()["transfer_count"] == transfers, (who, r.json())
    assert loads([a, b]) == {a: (1, 0), b: (0, 0)}


def test_api_errors_roles_and_workspaces(client, ws, other_ws):
    team = make_team(client, ws, [ws.agent_id])
    r = client.put(f"/api/v1/teams/{team}/routing", json={"method": "random"}, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "method"
    r = client.put(f"/api/v1/teams/{team}/routing", json={"capacity_chat": -1}, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "capacity_chat"
    assert client.put(f"/api/v1/teams/{team}/routing", json={"auto_assign": True},
                      headers=ws.agent).status_code == 403
    assert client.get(f"/api/v1/teams/{team}/routing", headers=other_ws.admin).status_code == 404
    assert client.put(f"/api/v1/teams/{team}/routing", json={"auto_assign": True},
                      headers=other_ws.admin).status_code == 404
    assert client.put(f"/api/v1/users/{ws.agent_id}/skills", json={"languages": ["en"]},
                      headers=other_ws.admin).status_code == 404
    assert client.put(f"/api/v1/users/{ws.agent_id}/skills", json={"languages": ["en"]},
                      headers=ws.agent).status_code == 403
    r = client.put(f"/api/v1/users/{ws.agent_id}/skills", json={"languages": [""]}, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "languages.0"
    r = client.put("/api/v1/users/me/availability", json={"state": "busy"}, headers=ws.agent)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "state"
    r = client.put(f"/api/v1/teams/{team}/routing", json={"auto_assign": True, "capacity_email": 3},
                   headers=ws.admin)
    assert r.status_code == 200
    audit = client.get(f"/api/v1/audit?entity_type=team&entity_id={team}", headers=ws.admin).json()
    change = next(e for e in audit if e["action"] == "routing_changed")
    assert change["before"]["auto_assign"] is False and change["after"]["capacity_email"] == 3


def test_the_assistant_hand_off_team_is_routed(client, ws):
    """A team set through update_conversation (as the assistant's hand-off does) routes in that transaction."""
    agents = make_agents(ws, 1)
    team = make_team(client, ws, agents, auto_assign=True)
    cid = new_conversation(ws)
    with session_scope() as session:
        conversations.update_conversation(session, accounts.Actor.system(ws.id, kind="assistant"), cid,
                                          {"team_id": team, "priority": "high"})
        assert session.get(Conversation, cid).assignee_id == agents[0]  # before the commit


# -- the race ---------------------------------------------------------------------------------------------------


def test_race_many_conversations_at_once_respect_capacity_and_spread(client, ws, engine):
    """50 conversations from 8 threads (each its own session and transaction), 5 agents with room for 10 chats
    each, round-robin: nobody above capacity, every conversation assigned once, 10 each (±1); then 10 more
    arrive at once with everybody full: they queue, and solving frees exactly that many."""
    agents = make_agents(ws, 5)
    team = make_team(client, ws, agents, auto_assign=True, method="round_robin", capacity_chat=10)
    convs = [new_conversation(ws) for _ in range(60)]
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def route(ids: list[int]) -> None:
        try:
            barrier.wait(timeout=30)
            for cid in ids:
                def work(session, cid=cid):
                    conversations.update_conversation(session, accounts.Actor.system(ws.id), cid, {"team_id": team})
                run_transaction(work, attempts=20)
        except BaseException as exc:
            errors.append(exc)

    first = convs[:50]
    threads = [threading.Thread(target=route, args=(first[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    got = Counter(assignee(c) for c in first)
    assert None not in got
    assert max(got.values()) <= 10 and max(got.values()) - min(got.values()) <= 1, got
    assert loads(agents) == {a: (got[a], 0) for a in agents}
    # everybody full: ten more at once all queue
    barrier = threading.Barrier(8)
    rest = convs[50:]
    threads = [threading.Thread(target=route, args=(rest[i::8],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert [assignee(c) for c in rest] == [None] * 10
    # two agents solve one each, at once: exactly two of the queue move, the oldest two
    solved = [next(c for c in first if assignee(c) == a) for a in agents[:2]]
    barrier = threading.Barrier(2)

    def solve(cid: int) -> None:
        try:
            barrier.wait(timeout=30)
            run_transaction(lambda s: conversations.update_conversation(s, accounts.Actor.system(ws.id), cid,
                                                                        {"status": "solved"}), attempts=20)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=solve, args=(c,)) for c in solved]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert {assignee(c) for c in rest[:2]} == set(agents[:2])
    assert [assignee(c) for c in rest[2:]] == [None] * 8
    with session_scope() as session:
        members = set(session.scalars(select(TeamMember.user_id).where(TeamMember.team_id == team)))
    assert members == set(agents)
    final = loads(agents)
    assert all(chat <= 10 for chat, _ in final.values()), final


@pytest.mark.parametrize("state", ["online", "away", "offline"])
def test_my_availability_is_read_back(client, ws, state):
    r = client.put("/api/v1/users/me/availability", json={"state": state}, headers=ws.agent)
    assert r.status_code == 200
    assert client.get("/api/v1/users/me/availability", headers=ws.agent).json()["chosen_availability"] == state


def test_a_rule_condition_can_read_the_transfer_count(client, ws):
    import datetime as dt_

    from otklik.service_levels import service as rules

    a, b = make_agents(ws, 2)
    cid = new_conversation(ws)
    for who in (a, b, a):
        client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": who}, headers=ws.admin)
    with session_scope() as session:
        conds = rules.check_conditions(session, ws.id, [{"field": "transfer_count", "op": "is", "value": [2, 3]}])
        conv = session.get(Conversation, cid)
        ctx = rules.Context(conversation=conv, tags=[], text="", attributes={}, at=dt_.datetime.now(dt_.UTC))
        assert rules.matches(session, conds, ctx)
        assert not rules.matches(session, [{**conds[0], "value": [0, 1]}], ctx)
