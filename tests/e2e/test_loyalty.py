"""Loyalty in a real browser (issue 16): an admin sets the seed's tiers on Settings → Loyalty (5 / 10 / 20
purchases), edits one and deletes another; the agent then sees the customer's tier as a badge on the customer
panel beside the conversation, with the loyalty block (purchases, the way to the next tier, a referral code)."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_admin_sets_tiers_and_the_agent_sees_the_badge(new_page, live_server):
    ws = make_workspace("e2eloyalty")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings/loyalty")
    page.locator("#loyalty-no-tiers").wait_for()
    for name, threshold in (("Бронза", "5"), ("Серебро", "10"), ("Золото", "20"), ("Лишний", "50")):
        page.fill("#new-tier-name", name)
        page.fill("#new-tier-threshold", threshold)
        page.click("#new-tier-submit")
        page.locator(f'#loyalty-tiers tr[data-tier-name="{name}"]').wait_for()
    rows = page.locator("#loyalty-tiers tbody tr")
    assert rows.count() == 4
    extra = page.locator('#loyalty-tiers tr[data-tier-name="Лишний"]')
    tier_id = extra.get_attribute("data-tier-id")
    page.once("dialog", lambda d: d.accept())
    page.click(f"#tier-delete-{tier_id}")
    page.locator("#loyalty-saved").wait_for()
    assert page.locator("#loyalty-tiers tbody tr").count() == 3
    bronze = page.locator('#loyalty-tiers tr[data-tier-name="Бронза"]').get_attribute("data-tier-id")
    page.fill(f"#tier-{bronze}-threshold", "3")
    page.click(f"#tier-save-{bronze}")
    page.locator("#loyalty-saved").wait_for()
    assert page.locator(f"#tier-{bronze}-threshold").input_value() == "3"
    page.fill(f"#tier-{bronze}-threshold", "abc")
    page.click(f"#tier-save-{bronze}")
    assert "threshold" in page.locator("#loyalty-error").inner_text()
    screenshot(page, "loyalty-01-settings-tiers")
    tiers = httpx.get(f"{live_server}/api/v1/loyalty/tiers", headers=ws.agent, timeout=10).json()
    assert [(t["name"], t["threshold"]) for t in tiers] == [("Бронза", 3), ("Серебро", 10), ("Золото", 20)]

    for i in range(4):
        r = httpx.put(f"{live_server}/api/v1/orders/LY{i}", json={
            "customer": {"kind": "phone", "value": "+79165553333", "name": "Ольга"}, "status": "delivered",
            "total": 1500, "paid": True}, headers=ws.agent, timeout=10)
        assert r.status_code == 201, r.text
    got = post_inbound(live_server, ws, kind="phone", identity="+79165553333", text="Здравствуйте, есть вопрос")
    agent = new_page()
    sign_in(agent, ws.agent_email, next_path=f"/conversations/{got['conversation_id']}")
    badge = agent.locator("#cpanel-loyalty-tier")
    badge.wait_for()
    assert badge.inner_text() == "Бронза"
    block = agent.locator("#cpanel-loyalty-block")
    block.wait_for()
    assert "Покупок: 4" in block.inner_text() and "Серебро" in agent.locator("#cpanel-loyalty-next").inner_text()
    agent.click("#cpanel-referral-create")
    code = agent.locator("#cpanel-referral-code")
    code.wait_for()
    assert len(code.inner_text()) == 8
    screenshot(agent, "loyalty-02-badge-on-customer-panel")
