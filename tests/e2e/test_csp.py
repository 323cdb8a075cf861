"""The Content-Security-Policy in Chromium (issue 17 §5–§6): every main page loads with no script, style or
eval blocked, and the things that used to be inline still work — a delete asks first (data-confirm), the
calendar's hour bars are placed, the assistant's suggestion fills the reply box, the widget demo's widget gets
its styles, the API docs render."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in

PAGES = ["/inbox", "/search", "/customers", "/knowledge", "/approvals", "/reports", "/settings/profile",
         "/settings/users", "/settings/teams", "/settings/api-tokens", "/settings/assistant", "/settings/calendars",
         "/settings/channels", "/settings/sla", "/settings/legal", "/settings/widget", "/settings/macros",
         "/settings/rules", "/settings/templates", "/settings/phrases", "/settings/workspace",
         "/settings/integrations", "/settings/authority", "/proactive"]


@pytest.fixture
def page(browser, live_server):
    """A page with the policy in force (the suite's other pages bypass it for Playwright's eval polling)."""
    ctx = browser.new_context(base_url=live_server, locale="ru-RU", viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(10_000)
    yield ctx.new_page()
    ctx.close()


def _watch(page) -> list[str]:
    blocked: list[str] = []
    page.on("console", lambda m: blocked.append(m.text) if "Content Security Policy" in m.text
            or "Refused to" in m.text else None)
    page.on("pageerror", lambda e: blocked.append(f"page error: {e}"))
    return blocked


def test_main_pages_load_with_nothing_blocked(page, live_server):
    ws = make_workspace("csp")
    conversation = post_inbound(live_server, ws, text="Где мой заказ 123?")
    blocked = _watch(page)
    sign_in(page, ws.admin_email)
    for path in [*PAGES, f"/conversations/{conversation['conversation_id']}",
                 f"/customers/{conversation['customer_id']}"]:
        response = page.goto(path)
        assert response is not None and response.status < 400, path
        page.wait_for_load_state("networkidle")
        assert blocked == [], (path, blocked)
    page.goto("/api/docs")
    page.wait_for_selector("#swagger-ui .swagger-ui", timeout=15_000)  # its script ran (nonce) and rendered
    assert blocked == [], ("/api/docs", blocked)


def test_what_was_inline_still_works(page, live_server):
    ws = make_workspace("csp2")
    blocked = _watch(page)
    sign_in(page, ws.admin_email, next_path="/settings/calendars")
    page.fill("#calendar-name", "Склад")
    page.locator("#calendar-create-form button[type=submit]").first.click()
    page.wait_for_url("**/settings/calendars/*")
    bar = page.locator(".week-bar").first
    assert bar.evaluate("b => b.style.width") not in ("", "0%")  # placed from data-width by app.js
    page.goto("/settings/calendars")
    dialogs: list[str] = []

    def dismiss(dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.locator("form[data-confirm] button[type=submit]").first.click()
    page.wait_for_timeout(300)
    assert dialogs and "/settings/calendars" in page.url  # asked, and dismissing kept it
    assert page.locator("form[data-confirm]").count() >= 1
    key = httpx.get(live_server + "/api/v1/widget/settings", headers=ws.admin, timeout=10).json()["public_key"]
    page.goto(f"/widget/demo?key={key}")
    launcher = page.locator("#otklik-widget >> .ow-launcher")
    launcher.wait_for()
    # the shadow root's <style> applied (it carries the page's nonce): the launcher is a round button
    assert launcher.evaluate("b => getComputedStyle(b).borderRadius") == "50%"
    assert blocked == [], blocked
