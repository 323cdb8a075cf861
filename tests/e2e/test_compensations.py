"""Authority limits in a real browser: an agent asks for a refund above their 1,000 ₽ limit from the conversation's
side bar, the supervisor sees it counted in the nav and approves it in «Ждут согласования» with a comment, and
the agent's open conversation shows it approved without a reload (the WebSocket). Screenshot:
artifacts/screenshots/approvals-queue.png."""

from __future__ import annotations

import time

import httpx

from otklik.accounts.models import Role, User
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot
from tests.guardrails.test_compensations import user


def test_agent_asks_above_the_limit_supervisor_approves_agent_sees_it_live(new_page, live_server):
    ws = make_workspace("e2ecomp")
    sup_id, _ = user(ws, Role.supervisor)
    with session_scope(write=False) as session:
        sup_email = session.get(User, sup_id).email
    cid = post_inbound(live_server, ws, text="Заказ пришёл разбитым, верните деньги", customer_name="Анна Ким",
                       identity="anna.kim@example.com")["conversation_id"]

    agent = new_page()
    sign_in(agent, ws.agent_email, next_path=f"/conversations/{cid}")
    agent.wait_for_selector("#compensations")
    agent.wait_for_function("document.body.dataset.live === 'ready'")
    agent.click("#compensation-give summary")
    agent.select_option("#compensation-kind", "refund")
    agent.fill("#compensation-amount", "2500")
    agent.fill("#compensation-reason", "Товар разбит при доставке")
    # the conversation changes elsewhere while the agent is still in the form: the side bar refreshes, the
    # half-written compensation stays
    r = httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"priority": "high"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    agent.wait_for_function("document.getElementById('field-priority').value === 'high'")
    agent.wait_for_timeout(400)
    assert agent.input_value("#compensation-amount") == "2500"
    agent.click("#compensation-submit")
    pending = agent.locator('#compensations li.compensation[data-status="pending"]')
    pending.wait_for()
    compensation_id = pending.get_attribute("data-compensation-id")
    assert "ждёт согласования" in pending.inner_text()

    boss = new_page()
    sign_in(boss, sup_email, next_path="/approvals")
    boss.wait_for_selector(f"#approval-{compensation_id}")
    boss.wait_for_function("document.getElementById('approvals-count') && "
                           "document.getElementById('approvals-count').textContent === '1'")
    screenshot(boss, "approvals-queue")
    boss.fill(f"#queue-comment-{compensation_id}", "Согласовано, клиент постоянный")
    started = time.monotonic()
    boss.click(f"#queue-approve-{compensation_id}")
    boss.wait_for_selector("#approvals-empty")

    agent.wait_for_selector(f'#compensation-{compensation_id}[data-status="applied"]')
    latency = time.monotonic() - started
    text = agent.locator(f"#compensation-{compensation_id}").inner_text()
    assert "согласована" in text and "клиент постоянный" in text
    agent.wait_for_selector(".toast.compensation-toast")
    assert "согласована" in agent.locator(".toast.compensation-toast").first.inner_text()
    assert "Компенсация согласована" in agent.locator("#thread").inner_text()
    screenshot(agent, "conversation-compensations")
    print(f"approval → the agent's page shows it: {latency * 1000:.0f} ms")
