"""Rules and macros in a real browser: an admin creates a rule in Settings → Rules, a customer's message
triggers it, and the conversation shows its effect and the rule's run; an agent applies a macro (template reply +
tag + pending) from the conversation's side bar. Screenshots: docs/screenshots/settings-rule*.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_a_rule_made_in_settings_acts_on_a_customer_message(new_page, live_server):
    ws = make_workspace("e2erule")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings")
    page.click("#settings-link-rules")
    page.wait_for_url("**/settings/rules")
    page.click("#rule-new")
    page.fill("#rule-name", "Юрист / суд / Роспотребнадзор")
    page.select_option("#rule-trigger", "customer_message")
    page.select_option("#c0_field", "text")
    page.select_option("#c0_op", "contains")
    page.fill("#c0_value", "юрист, суд, роспотребнадзор")
    page.select_option("#a0_type", "set_priority")
    page.fill("#a0_value", "urgent")
    page.select_option("#a1_type", "add_tag")
    page.fill("#a1_value", "претензия")
    page.select_option("#a2_type", "add_note")
    page.fill("#a2_value", "Претензия: передать старшему смены")
    page.click("#rule-save")
    page.wait_for_selector("#rule-saved")
    screenshot(page, "settings-rule")
    calm = post_inbound(live_server, ws, text="Где мой заказ?", identity="calm@example.com")
    angry = post_inbound(live_server, ws, text="Я обращусь в Роспотребнадзор!", identity="angry@example.com")
    page.click("#rule-dry-run-button")
    page.wait_for_selector("#dry-run-result")
    matches = page.locator("#dry-run-matches").inner_text()
    assert f"#{angry['conversation_number']}" in matches and f"#{calm['conversation_number']}" not in matches
    page.goto(f"/conversations/{angry['conversation_id']}")
    page.wait_for_selector("#rule-runs")
    assert page.locator("#field-priority").input_value() == "urgent"
    assert "претензия" in page.locator("#field-tags").input_value()
    runs = page.locator("#rule-runs").inner_text()
    assert "Юрист / суд / Роспотребнадзор" in runs and "set_priority:urgent" in runs
    assert "передать старшему смены" in page.locator("#thread").inner_text()
    screenshot(page, "conversation-rule-run")


def test_an_agent_applies_a_macro_in_one_click(new_page, live_server):
    ws = make_workspace("e2emacro")
    r = httpx.post(live_server + "/api/v1/templates", json={"name": "Фото для возврата",
                                                             "body": "Пришлите, пожалуйста, фото товара и упаковки."},
                   headers=ws.admin, timeout=10)
    assert r.status_code == 201, r.text
    admin = new_page()
    sign_in(admin, ws.admin_email, next_path="/settings/macros")
    admin.click("#macro-new")
    admin.fill("#macro-name", "Возврат: запросить фото")
    admin.select_option("#a0_type", "send_template")
    admin.fill("#a0_value", "Фото для возврата")
    admin.select_option("#a1_type", "add_tag")
    admin.fill("#a1_value", "возврат")
    admin.select_option("#a2_type", "set_status")
    admin.fill("#a2_value", "pending")
    admin.click("#macro-save")
    admin.wait_for_selector("#macro-saved")
    conv = post_inbound(live_server, ws, text="Хочу вернуть чайник", identity="ret@example.com")
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{conv['conversation_id']}")
    page.wait_for_selector("#macro-apply")
    page.select_option("#macro-select", label="Возврат: запросить фото")
    page.click("#macro-apply")
    page.wait_for_selector("#thread >> text=Пришлите, пожалуйста, фото товара и упаковки.")
    assert page.locator("#field-status").input_value() == "pending"
    assert page.locator("#field-tags").input_value() == "возврат"
    screenshot(page, "conversation-macro")
