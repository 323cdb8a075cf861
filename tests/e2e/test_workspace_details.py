"""Issue 19, the small things an agent or admin meets first, in a real browser: where an admin lands in the
inbox, the page icon, the assistant's thresholds in words and percentages, the help center's language switch
on an article."""

from __future__ import annotations

import httpx

from otklik.accounts.service import Actor
from otklik.knowledge import transfer
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in


def test_an_admin_with_nothing_assigned_lands_on_the_unassigned_view(new_page, live_server):
    ws = make_workspace("e2elanding")
    for n in range(3):
        post_inbound(live_server, ws, text=f"Вопрос {n}", identity=f"c{n}@example.com", customer_name=f"Клиент {n}")
    admin = new_page()
    sign_in(admin, ws.admin_email)  # the plain /inbox, as the sign-in lands
    admin.wait_for_selector("#view-unassigned[aria-current=page]")
    assert admin.locator("li.conv-row[data-conversation-id]").count() == 3
    # «Мои» is still one click away and stays there (the link names the view)
    admin.click("#view-mine")
    admin.wait_for_url("**view=mine**")
    assert admin.locator("#view-mine").get_attribute("aria-current") == "page"
    # an agent keeps «Мои» as the start (the auto-landing is for those who hand the work out)
    agent = new_page()
    sign_in(agent, ws.agent_email)
    assert agent.locator("#view-mine").get_attribute("aria-current") == "page"


def test_nothing_in_the_inbox_lands_an_admin_on_all(new_page, live_server):
    ws = make_workspace("e2elandall")
    admin = new_page()
    sign_in(admin, ws.admin_email)
    admin.wait_for_selector("#view-all[aria-current=page]")


def test_every_page_has_an_icon_and_no_404_for_it(new_page, live_server):
    ws = make_workspace("e2efavicon")
    r = httpx.get(live_server + "/favicon.ico", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    assert r.content[:4] == b"\x00\x00\x01\x00"  # an ICO
    page = new_page()
    failed: list[str] = []
    page.on("response", lambda resp: failed.append(resp.url) if resp.status >= 400 else None)
    sign_in(page, ws.admin_email, next_path="/inbox?view=all")
    page.goto("/settings")
    page.wait_for_load_state("networkidle")
    assert failed == []
    assert page.locator("link[rel=icon]").get_attribute("href") == "/favicon.ico"
    # and Settings lists the assistant once (it was there twice)
    assert page.get_by_text("ИИ-помощник", exact=True).count() == 1


def test_assistant_thresholds_read_as_percentages_with_what_happens(new_page, live_server):
    ws = make_workspace("e2ethresholds")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings/assistant")
    page.fill("#answer-threshold", "73.1")
    page.click("#assistant-save")
    page.wait_for_selector("#assistant-saved")
    assert page.input_value("#answer-threshold") == "73.1"
    got = httpx.get(live_server + "/api/v1/assistant/settings", headers=ws.admin, timeout=10).json()
    assert abs(got["answer_threshold"] - 0.731) < 1e-9
    help_text = page.locator("#answer-threshold-help").inner_text()
    assert "73.1%" in help_text and "отвечает клиенту сам" in help_text and "передаёт обращение человеку" in help_text
    assert "0.731" not in page.locator("main").inner_text()
    assert page.locator("label[for=answer-threshold]").inner_text().endswith("в процентах")
    for field in ("negativity", "urgency"):
        assert page.input_value(f"#{field}-threshold") == "95"
        assert "95%" in page.locator(f"#{field}-threshold-help").inner_text()


def test_the_language_switch_on_an_article_opens_its_translation(new_page, live_server):
    ws = make_workspace("e2ehclang")
    with session_scope() as session:
        transfer.import_rows(session, Actor.system(ws.id), transfer.store_kb_rows())
    page = new_page(locale="ru-RU")
    page.goto(f"/help/{ws.slug}/a/delivery-cost-times")
    ru_title = page.locator("h1").inner_text()
    page.click(".hc-langs a[hreflang=en]")
    page.wait_for_load_state()
    assert "/a/" in page.url, page.url  # an article, not the help center's home page
    assert page.locator("h1").inner_text() == "Delivery times and prices"
    assert page.locator("html").get_attribute("lang") == "en"
    page.click(".hc-langs a[hreflang=ru]")
    page.wait_for_load_state()
    assert page.locator("h1").inner_text() == ru_title
