"""A new unassigned conversation in my team makes a toast (and a sound) for me, not only ones assigned to me
(issue 19); an agent who turns it off in «Мой профиль» gets none; one outside the team never does."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in


def test_team_members_hear_about_new_unassigned_conversations(new_page, live_server):
    ws = make_workspace("e2eteam")
    team = httpx.post(f"{live_server}/api/v1/teams", headers=ws.admin,
                      json={"name": "Доставка", "member_ids": [ws.agent_id]}).json()
    customer = post_inbound(live_server, ws, text="Первое", customer_name="Вера")
    customer_id = httpx.get(f"{live_server}/api/v1/conversations/{customer['conversation_id']}",
                            headers=ws.agent).json()["customer"]["id"]

    def new_team_conversation(subject: str) -> int:
        r = httpx.post(f"{live_server}/api/v1/conversations", headers=ws.admin, json={
            "customer_id": customer_id, "channel": "email", "subject": subject, "team_id": team["id"]})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path="/inbox?view=all")
    page.wait_for_selector("#conversation-list .conv-row")
    page.wait_for_timeout(500)  # the socket connects
    new_team_conversation("Где курьер?")
    toast = page.locator(".toast.team-toast")
    toast.wait_for()
    assert "Новое обращение команды" in toast.inner_text() and "Где курьер?" in toast.inner_text()

    # the admin is in no team: no toast for them
    admin_page = new_page(viewport=(1280, 800))
    sign_in(admin_page, ws.admin_email, next_path="/inbox?view=all")
    admin_page.wait_for_selector("#conversation-list .conv-row")
    admin_page.wait_for_timeout(500)
    new_team_conversation("Второй вопрос")
    page.locator(".toast.team-toast:has-text('Второй вопрос')").wait_for()
    admin_page.wait_for_timeout(1000)
    assert admin_page.locator(".toast.team-toast").count() == 0

    # turned off in the profile: no more toasts
    page.goto(f"{live_server}/settings/profile")
    page.uncheck("#profile-notify-team")
    page.click("#profile-save")
    page.wait_for_selector("#profile-saved")
    page.goto(f"{live_server}/inbox?view=all")
    page.wait_for_selector("#conversation-list .conv-row")
    page.wait_for_timeout(500)
    new_team_conversation("Третий вопрос")
    page.wait_for_timeout(1500)
    assert page.locator(".toast.team-toast").count() == 0
