"""The whole story in two browsers: a visitor writes in the widget on a shop site, an agent sees it appear live
in the inbox, answers with a template, the visitor sees the answer, the agent solves the conversation.
"""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import eventually, shop, shop_page  # noqa: F401 - `shop` is a fixture

QUESTION = "Здравствуйте! Где мой заказ 4512? <b>срочно</b>"


def test_widget_to_inbox_and_back(new_page, live_server, shop):  # noqa: F811
    ws = make_workspace("story")
    key = httpx.get(live_server + "/api/v1/widget/settings", headers=ws.admin, timeout=10).json()["public_key"]
    r = httpx.post(live_server + "/api/v1/templates", headers=ws.admin, timeout=10, json={
        "name": "Где заказ", "shortcut": "zakaz",
        "body": "Здравствуйте! Ваш заказ уже в пути и приедет завтра до 18:00."})
    assert r.status_code == 201, r.text

    # the agent opens the inbox first and keeps it open
    agent = new_page(locale="ru-RU", viewport=(1280, 800))
    sign_in(agent, ws.agent_email, next_path="/inbox?view=all")
    agent.wait_for_function("document.body.dataset.live === 'ready'")
    agent.evaluate("window.__loads = performance.getEntriesByType('navigation').length")
    screenshot(agent, "story-01-empty-inbox")

    # a visitor on the shop's site (another origin) writes in the widget
    visitor = new_page(locale="ru-RU", viewport=(1100, 760))
    visitor.goto(shop_page(shop, live_server, key, "story.html", title="Магазин «Пример»"))
    visitor.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    visitor.locator(".ow-launcher").click()
    visitor.locator(".ow-menu [data-kind=chat]").click()
    visitor.locator(".ow-input").fill(QUESTION)
    visitor.locator(".ow-send").click()
    visitor.locator(".ow-visitor .ow-status", has_text="отправлено").wait_for()
    screenshot(visitor, "story-02-visitor-writes")

    # it appears in the agent's inbox without a reload, as text
    agent.wait_for_selector("#conversation-list .conv-row >> text=Где мой заказ 4512")
    assert agent.evaluate("window.__loads") == 1
    assert agent.locator("#conversation-list b", has_text="срочно").count() == 0
    screenshot(agent, "story-03-inbox-live")

    # the agent opens it and answers with the template (typed as /zak)
    agent.locator("#conversation-list .conv-row", has_text="Где мой заказ 4512").first.click()
    agent.wait_for_selector("#reply-text")
    agent.wait_for_function("document.body.dataset.live === 'ready'")
    # typing indicators both ways: the visitor types (the agent sees it), the agent types (the widget shows it)
    visitor.locator(".ow-input").press_sequentially("А ещё", delay=30)
    agent.wait_for_selector("#presence >> text=печатает")
    agent.click("#reply-text")
    agent.keyboard.type("Сейчас ")
    visitor.locator(".ow-typing", has_text="печатает").wait_for()
    screenshot(visitor, "story-04a-visitor-sees-agent-typing")
    agent.fill("#reply-text", "")
    agent.keyboard.type("/zak")
    agent.wait_for_selector("#template-picker li[role=option]")
    agent.keyboard.press("Enter")
    agent.wait_for_function("document.querySelector('#reply-text').value.includes('приедет завтра')")
    agent.click("#reply-send")
    agent.wait_for_selector("#thread .msg.outbound >> text=приедет завтра до 18:00")
    screenshot(agent, "story-05-agent-replied")

    # the visitor sees the answer live, and the widget reports it read
    visitor.locator(".ow-agent .ow-text", has_text="приедет завтра до 18:00").wait_for()
    screenshot(visitor, "story-06-visitor-sees-reply")
    cid = int(agent.locator("#conversation").get_attribute("data-conversation-id"))

    def reply_read() -> bool:
        items = httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent,
                          timeout=10).json()["items"]
        return any(m["direction"] == "outbound" and m["delivery_status"] == "read" for m in items)

    eventually(reply_read)

    # the agent solves the conversation
    agent.select_option("#field-status", "solved")
    eventually(lambda: httpx.get(f"{live_server}/api/v1/conversations/{cid}", headers=ws.agent,
                                 timeout=10).json()["status"] == "solved")
    agent.wait_for_function("document.querySelector('#field-status').value === 'solved'")
    screenshot(agent, "story-07-solved")
