"""Hostile customer text is shown as text everywhere an agent sees it: list, thread, notification, panel."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot

NAME = '<img src=x onerror="window.__xss=1;alert(1)">'
TEXT = '<script>window.__xss=2;alert(2)</script> <a href="javascript:alert(3)">жми</a> javascript:alert(4)'
HTML = '<p>Привет <a href="javascript:window.__xss=3">ссылка</a><img src=x onerror="window.__xss=4"></p>'


def test_customer_markup_is_text_in_list_thread_notification_and_panel(new_page, live_server):
    ws = make_workspace("e2exss")
    cid = post_inbound(live_server, ws, text=TEXT, customer_name=NAME)["conversation_id"]
    r = httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"assignee_id": ws.agent_id},
                    headers=ws.admin, timeout=10)
    assert r.status_code == 200
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    sign_in(page, ws.agent_email, next_path="/inbox?view=all")
    row = page.locator("#conversation-list .conv-row").first
    assert NAME in row.inner_text()
    assert "<script>window.__xss=2" in row.inner_text()
    assert row.locator("img, script").count() == 0

    page.goto(f"/conversations/{cid}")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    thread = page.locator("#thread")
    assert TEXT in thread.inner_text()
    assert NAME in page.locator("#conversation-customer").inner_text()
    assert thread.locator("a[href^='javascript'], img, script").count() == 0

    # a live message (notification toast + appended to the thread) with an HTML body
    post_inbound(live_server, ws, text="", html=HTML, customer_name=NAME)
    page.wait_for_selector(".toast.message-toast >> text=Привет")
    toast = page.locator(".toast.message-toast >> text=Привет").first
    assert NAME in toast.inner_text()
    assert toast.locator("img, a, script").count() == 0
    page.wait_for_selector("#thread .msg.inbound >> nth=1")
    assert "Привет" in thread.inner_text()
    assert thread.locator("a[href^='javascript'], img, script").count() == 0

    # the customer panel (another owner's fragment) loads into the page: still text
    page.wait_for_function("!document.querySelector('#customer-panel').textContent.includes('…')")
    panel = page.locator("#customer-panel")
    assert panel.locator("img[onerror], script, a[href^='javascript']").count() == 0
    if "onerror" in panel.inner_text() or "<img" in panel.inner_text():
        assert NAME in panel.inner_text()

    page.wait_for_timeout(500)
    screenshot(page, "ui-xss")
    assert dialogs == []
    assert page.evaluate("window.__xss") is None
