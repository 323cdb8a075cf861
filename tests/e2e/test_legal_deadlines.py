"""«Сроки по закону» in a real browser: a defective-item conversation, the agent enters the demand date and the
price, sees the refund (ЗоЗПП ст. 22) overdue in red with its penalty, and the replacement with its own term.
Screenshot: docs/screenshots/conversation-legal-deadlines.png."""

from __future__ import annotations

import datetime as dt

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_agent_counts_the_legal_deadlines_of_a_defect(new_page, live_server):
    ws = make_workspace("e2elaw")
    got = post_inbound(live_server, ws, text="Чайник сломался через неделю, верните деньги!",
                       customer_name="Пётр Сидоров")
    cid = got["conversation_id"]
    r = httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"category": "defective"}, headers=ws.agent)
    assert r.status_code == 200, r.text
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector('#legal-case[data-situation="defect"]')
    assert "дата требования клиента" in page.locator("#legal-missing").inner_text()
    demanded = (dt.date.today() - dt.timedelta(days=30)).isoformat()
    page.fill("#legal-demanded_on", demanded)
    page.fill("#legal-price", "4990")
    page.select_option("#legal-in_stock", "yes")
    page.select_option("#legal-quality_check", "no")
    page.click("#legal-save")
    refund = page.locator('#legal-case .legal-obligation[data-key="refund"]')
    refund.wait_for()
    assert "overdue" in (refund.get_attribute("class") or "")
    text = refund.inner_text()
    assert "ЗоЗПП ст. 22" in text and "просрочено" in text and "неустойка" in text
    assert page.locator('#legal-case .legal-obligation[data-key="replacement"]').count() == 1
    assert page.locator(".toast.error").count() == 0  # the form is not the side panel's: no status requests
    screenshot(page, "conversation-legal-deadlines")


def test_admin_maps_a_reason_and_adds_a_shop_term_and_the_inbox_filters_by_legal_deadline(new_page, live_server):
    ws = make_workspace("e2elaw2")
    got = post_inbound(live_server, ws, text="Ремонт затянулся, верните телефон", customer_name="Анна Орлова")
    cid = got["conversation_id"]
    r = httpx.put(f"{live_server}/api/v1/conversations/{cid}/consumer-law", headers=ws.agent, json={
        "situation": "warranty_repair", "inputs": {"demanded_on": (dt.date.today() - dt.timedelta(days=60)).isoformat(),
                                                   "price": "20000"}})
    assert r.status_code == 200, r.text
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.admin_email, next_path="/settings/legal")
    page.wait_for_selector("#legal-mapping")
    page.select_option('#legal-mapping select[data-reason="installation"]', "")
    page.select_option("#legal-term-1-obligation", "return_distance_sale:refuse_goods")
    page.fill("#legal-term-1-amount", "30")
    page.fill("#legal-term-1-title", "Возврат 30 дней")
    page.click("#legal-settings-save")
    page.wait_for_selector("#legal-settings-saved")
    assert page.locator("#legal-term-1-amount").input_value() == "30"
    view = httpx.get(f"{live_server}/api/v1/consumer-law/settings", headers=ws.admin).json()
    assert "installation" not in view["reason_situations"] and view["terms"][0]["days"] == 30
    page.goto(f"{live_server}/inbox?view=all&sla=legal_overdue")
    row = page.locator(f'[data-conversation-id="{cid}"], #conv-{cid}').first
    row.wait_for()
    chip = page.locator(".legal-due.late").first
    assert chip.count() == 1 and "просрочен" in chip.inner_text()
    assert page.locator(".toast.error").count() == 0
