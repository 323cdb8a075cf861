"""SLA in a real browser: the inbox row's countdown, sorted «SLA due soonest», ticks down live and turns red when
its due time passes (the due time is moved in the page to see it flip without waiting a minute); the side panel
shows the timers; Settings → SLA creates a policy. Screenshot: docs/screenshots/inbox-sla-countdown.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_countdown_ticks_and_turns_red(new_page, live_server):
    ws = make_workspace("e2esla")
    r = httpx.post(f"{live_server}/api/v1/sla-policies", json={"name": "Чат", "first_response_minutes": 20,
                                                               "business_hours": False}, headers=ws.admin)
    assert r.status_code == 201, r.text
    post_inbound(live_server, ws, text="Где мой заказ 12345?", customer_name="Иван Петров")
    post_inbound(live_server, ws, text="Верните деньги", identity="olga@example.com", customer_name="Ольга")
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.admin_email, next_path="/inbox?view=all&sort=due")
    chips = page.locator("#conversation-list .sla-due")
    assert chips.count() == 2
    first = chips.first
    assert first.get_attribute("data-sla-state") == "ok" and "SLA " in first.inner_text()
    before = first.locator(".sla-left").inner_text()
    assert "мин" in before
    # the due time is three seconds away: the next tick shows seconds, then «over» in red
    page.evaluate("""() => { const el = document.querySelector('#conversation-list .sla-due');
                           el.dataset.due = new Date(Date.now() + 3000).toISOString(); }""")
    page.wait_for_function("document.querySelector('#conversation-list .sla-due').dataset.slaState === 'over'",
                           timeout=15_000)
    assert "over" in (first.get_attribute("class") or "") and first.locator(".sla-left").inner_text().startswith("−")
    screenshot(page, "inbox-sla-countdown")
    page.locator("#conversation-list .conv-row a").first.click()
    page.wait_for_selector("#sla-timers")
    assert page.locator('#sla-timers [data-sla-kind="first_response"]').count() == 1
    assert "идёт" in page.locator("#sla-timers").inner_text()


def test_supervisor_creates_a_policy_in_settings(new_page, live_server):
    ws = make_workspace("e2eslaset")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings")
    page.click("#settings-link-sla")
    page.wait_for_url("**/settings/sla")
    page.fill("#new-name", "Мессенджеры")
    page.fill("#new-first", "15")
    page.fill("#new-next", "30 мин")
    page.fill("#new-resolution", "24 ч")
    page.check('#sla-create-form input[name="channels"][value="telegram"]')
    page.click("#sla-create-submit")
    page.wait_for_selector("[data-policy-id]")
    assert "первый ответ 15 мин" in page.locator("[data-policy-id]").first.inner_text()
    screenshot(page, "settings-sla")
