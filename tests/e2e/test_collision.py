"""Two agents in one conversation: each sees that the other is viewing, then typing — live, in the browser."""

from __future__ import annotations

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_two_agents_see_each_other_viewing_and_typing(new_page, live_server):
    ws = make_workspace("e2ecoll")
    cid = post_inbound(live_server, ws, text="Помогите с возвратом", customer_name="Дарья")["conversation_id"]
    admin = new_page()
    sign_in(admin, ws.admin_email, next_path=f"/conversations/{cid}")
    admin.wait_for_function("document.body.dataset.live === 'ready'")
    agent = new_page()
    sign_in(agent, ws.agent_email, next_path=f"/conversations/{cid}")
    agent.wait_for_function("document.body.dataset.live === 'ready'")

    # the newcomer announces itself; the one already there answers at once (not at its next heartbeat)
    admin.wait_for_function("document.querySelector('#presence').textContent.includes('Agent')", timeout=3000)
    agent.wait_for_function("document.querySelector('#presence').textContent.includes('Administrator')",
                            timeout=3000)
    assert "смотрит" in admin.locator("#presence").inner_text()

    agent.click("#reply-text")
    agent.keyboard.type("Сейчас посмотрю")
    admin.wait_for_function("document.querySelector('#presence').textContent.includes('печатает')", timeout=3000)
    screenshot(admin, "ui-collision")

    # leaving clears the notice for the other agent
    agent.goto("/inbox")
    admin.wait_for_function("!document.querySelector('#presence').textContent.includes('Agent')", timeout=15000)
