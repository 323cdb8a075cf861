"""The Proactive page in a real browser: a supervisor sees the triggers with their figures (a customer who
wrote «стоп» is counted as skipped), switches a trigger on, creates a campaign to a segment, opens it, edits
it (a bad time is refused with the field named) and schedules it."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_supervisor_toggles_a_trigger_and_creates_and_schedules_a_campaign(new_page, live_server):
    ws = make_workspace("e2epro")
    base = live_server
    assert httpx.put(base + "/api/v1/proactive/triggers/order_delivered", json={"enabled": True},
                     headers=ws.admin, timeout=10).status_code == 200
    post_inbound(base, ws, text="Где мой заказ?", identity="stop@example.com")
    post_inbound(base, ws, text="стоп", identity="stop@example.com")
    r = httpx.put(base + "/api/v1/orders/E1", json={"customer": {"kind": "email", "value": "stop@example.com"},
                                                    "status": "delivered", "items": [{"name": "Чайник"}]},
                  headers=ws.agent, timeout=10)
    assert r.status_code == 201, r.text

    page = new_page()
    sign_in(page, ws.admin_email, next_path="/inbox")
    page.click("#mainnav a[href='/proactive']")
    page.wait_for_url("**/proactive")
    row = page.locator("tr[data-trigger=order_delivered]")
    assert row.locator("[data-count=skipped]").inner_text() == "1"  # opted out: not written to
    assert "Отписался: 1" in row.locator("[data-count=skipped]").get_attribute("title")
    assert page.locator("#trigger-toggle-order_delivered").get_attribute("aria-pressed") == "true"
    # switch «cart abandoned» on
    page.click("#trigger-toggle-cart_abandoned")
    page.wait_for_selector("#trigger-toggle-cart_abandoned[aria-pressed=true]")
    # a new campaign to gold customers in Telegram
    page.fill("#new-campaign-name", "Зимняя распродажа")
    page.fill("#new-campaign-text-ru", "{{name}}, скидка 15 % до воскресенья")
    page.fill("#new-campaign-attributes", "loyalty_tier: gold")
    page.check("#new-campaign-channels input[value=telegram]")
    page.click("#new-campaign-save")
    page.wait_for_url("**/proactive/campaigns/*")
    assert page.locator("#campaign-name").inner_text() == "Зимняя распродажа"
    assert "Черновик" in page.locator("#campaign-status").inner_text()
    assert page.locator("#edit-campaign-attributes").input_value() == "loyalty_tier: gold"
    assert page.locator("#edit-campaign-channels input[value=telegram]").is_checked()
    # a name too long is refused, naming the field
    page.fill("#edit-campaign-name", "x" * 200 + "y")
    page.evaluate("document.querySelector('#edit-campaign-name').removeAttribute('maxlength')")
    page.fill("#edit-campaign-name", "x" * 201)
    page.click("#edit-campaign-save")
    page.wait_for_selector("#campaign-error")
    assert "name" in page.locator("#campaign-error").inner_text()
    page.click("#campaign-schedule")
    page.wait_for_selector("#campaign-status:has-text('Запланирована')")
    screenshot(page, "proactive-campaign")
    page.goto("/proactive")
    assert "Зимняя распродажа" in page.locator("#proactive-campaigns").inner_text()
    screenshot(page, "proactive")
    campaigns = httpx.get(base + "/api/v1/proactive/campaigns", headers=ws.admin, timeout=10).json()
    assert campaigns[0]["status"] == "scheduled" and campaigns[0]["segment"] == {
        "attributes": {"loyalty_tier": "gold"}, "channels": ["telegram"]}
