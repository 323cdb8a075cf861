"""The inbox in a real browser: sign-in, the list, opening a conversation, at desktop and phone width."""

from __future__ import annotations

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_agent_signs_in_and_works_the_inbox_at_1280(new_page, live_server):
    ws = make_workspace("e2einbox")
    first = post_inbound(live_server, ws, text="Здравствуйте! Где мой заказ 12345?", customer_name="Иван Петров")
    post_inbound(live_server, ws, text="Хочу вернуть товар", identity="olga@example.com", customer_name="Ольга")
    page = new_page(viewport=(1280, 800))
    page.goto("/")
    page.wait_for_selector("#login-form")
    screenshot(page, "ui-login")
    sign_in(page, ws.agent_email, next_path="/inbox?view=all")
    rows = page.locator("#conversation-list .conv-row")
    assert rows.count() == 2
    assert page.locator("#view-all .count").inner_text() == "2"  # both unread
    assert "Иван Петров" in page.locator("#conversation-list").inner_text()
    screenshot(page, "ui-inbox")

    # j selects the first row, o opens it
    page.keyboard.press("j")
    page.keyboard.press("o")
    page.wait_for_selector("#thread")
    assert page.locator(f'#conversation[data-conversation-id="{first["conversation_id"]}"], #conversation').count()
    assert page.locator("#view-all .count").inner_text() in ("1", "2")

    # r focuses the reply box; send a reply
    page.keyboard.press("r")
    page.keyboard.type("Добрый день! Заказ уже в пути.")
    page.click("#reply-send")
    page.wait_for_selector("#thread .msg.outbound")
    assert "Заказ уже в пути" in page.locator("#thread .msg.outbound").last.inner_text()
    assert page.locator("#reply-text").input_value() == ""
    screenshot(page, "ui-conversation")

    # e solves it
    page.locator("#thread").click()
    page.keyboard.press("e")
    page.wait_for_function("document.querySelector('#field-status').value === 'solved'")
    # the status change shows up inline as a system event
    page.reload()
    assert page.locator("#thread .event").count() >= 1


def test_inbox_and_conversation_at_phone_width(new_page, live_server):
    ws = make_workspace("e2ephone")
    got = post_inbound(live_server, ws, text="Не работает оплата картой", customer_name="Пётр")
    page = new_page(viewport=(390, 844))
    sign_in(page, ws.agent_email, next_path="/inbox?view=all")
    row = page.locator("#conversation-list .conv-row").first
    assert row.is_visible()
    box = row.bounding_box()
    assert box is not None and box["width"] <= 390
    screenshot(page, "ui-inbox-phone")
    row.locator("a").click()
    page.wait_for_selector("#reply-text")
    # at phone width the list gives way to the thread; the way back is a link
    assert not page.locator("#conversation-list").is_visible()
    assert page.locator("#back-to-inbox").is_visible()
    assert page.locator("#reply-text").bounding_box()["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 392
    screenshot(page, "ui-conversation-phone")
    assert str(got["conversation_id"]) in page.url
