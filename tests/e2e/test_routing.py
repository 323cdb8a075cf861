"""Routing in a real browser: an agent switches their availability in the top bar (and an unassigned
conversation of their auto-assigning team becomes theirs the moment they go online); a supervisor turns on a
team's auto-assignment on Settings → Teams, a bad capacity is refused with the field named."""

from __future__ import annotations

from sqlalchemy import select

from otklik.accounts import service as accounts
from otklik.conversations import routing
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.web.a2_support import receive


def _team(ws, name: str, members: list[int]) -> int:
    with session_scope() as session:
        admin = accounts.Actor(workspace_id=ws.id, user_id=ws.admin_id, role=accounts.Role.admin)
        return accounts.create_team(session, admin, name=name, member_ids=members).id


def test_agent_switches_availability_and_gets_the_waiting_conversation(new_page, live_server):
    ws = make_workspace("e2eroute")
    team = _team(ws, "Доставка", [ws.agent_id])
    with session_scope() as session:
        admin = accounts.Actor(workspace_id=ws.id, user_id=ws.admin_id, role=accounts.Role.admin)
        routing.update_team_routing(session, admin, team, {"auto_assign": True})
        routing.set_availability(session, ws.actor("agent"), "offline")
    conv, _ = receive(ws.id, "telegram", "telegram", "777001", "Где мой заказ?", name="Пётр")
    with session_scope() as session:
        conversations.update_conversation(session, accounts.Actor.system(ws.id), conv, {"team_id": team})
        assert session.get(Conversation, conv).assignee_id is None  # offline: it waits
    page = new_page()
    sign_in(page, ws.agent_email, next_path="/inbox")
    select_ = page.locator("#availability-select")
    assert select_.input_value() == "offline"
    select_.select_option("online")
    page.wait_for_selector('#availability-select[data-availability="online"]')
    assert page.locator("#availability-select").input_value() == "online"
    with session_scope(write=False) as session:
        assert session.scalar(select(Conversation.assignee_id).where(Conversation.id == conv)) == ws.agent_id
    screenshot(page, "availability-switch")
    page.locator("#availability-select").select_option("away")
    page.wait_for_selector('#availability-select[data-availability="away"]')
    with session_scope(write=False) as session:
        row = session.get(routing.AgentRouting, ws.agent_id)
        assert row is not None and row.availability == "away"


def test_supervisor_sets_team_auto_assignment(new_page, live_server):
    ws = make_workspace("e2eroutset")
    team = _team(ws, "Гарантия", [ws.agent_id])
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings/teams")
    form = page.locator(f"#team-routing-{team}")
    assert not page.locator(f"#team-routing-{team}-auto").is_checked()
    page.check(f"#team-routing-{team}-auto")
    page.select_option(f"#team-routing-{team}-method", "least_busy")
    page.fill(f"#team-routing-{team}-chat", "3")
    page.fill(f"#team-routing-{team}-email", "7")
    page.click(f"#team-routing-{team}-save")
    page.wait_for_url("**/settings/teams")
    page.wait_for_selector(f"#team-routing-{team}-auto:checked")
    assert page.locator(f"#team-routing-{team}-method").input_value() == "least_busy"
    assert page.locator(f"#team-routing-{team}-chat").input_value() == "3"
    assert page.locator(f"#team-routing-{team}-email").input_value() == "7"
    screenshot(page, "settings-team-routing")
    with session_scope(write=False) as session:
        row = session.get(routing.TeamRouting, team)
        assert row is not None and (row.auto_assign, row.method, row.capacity_chat, row.capacity_email) == (
            True, "least_busy", 3, 7)
    # a capacity above the limit: the server refuses and names the field (the browser's own check bypassed)
    page.evaluate(f"document.getElementById('team-routing-{team}-chat').removeAttribute('max')")
    page.fill(f"#team-routing-{team}-chat", "5000")
    page.click(f"#team-routing-{team}-save")
    page.wait_for_selector("#teams-error")
    assert "capacity_chat" in page.locator("#teams-error").inner_text()
    assert form.count() == 1
    page.fill(f"#skills-{ws.agent_id}-languages", "ru, EN")
    page.fill(f"#skills-{ws.agent_id}-categories", "late_delivery")
    page.click(f"#skills-{ws.agent_id}-save")
    page.wait_for_selector(f'#skills-{ws.agent_id}-languages[value="ru, en"]')
    with session_scope(write=False) as session:
        agent = session.get(routing.AgentRouting, ws.agent_id)
        assert agent is not None and (agent.languages, agent.categories) == (["ru", "en"], ["late_delivery"])
    page.check("#routing-out-of-hours")
    page.click("#workspace-routing-save")
    page.wait_for_selector("#routing-out-of-hours:checked")
    with session_scope(write=False) as session:
        assert routing.workspace_settings(session, ws.id).out_of_hours_to_open_team is True
