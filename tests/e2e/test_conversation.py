"""The conversation view in a real browser: live messages without reload, templates by `/`, notifications."""

from __future__ import annotations

import time

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_new_inbound_message_appears_live_and_notifies_the_owner(new_page, live_server):
    ws = make_workspace("e2elive")
    got = post_inbound(live_server, ws, text="Первое сообщение", customer_name="Анна")
    cid = got["conversation_id"]
    r = httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"assignee_id": ws.agent_id},
                    headers=ws.admin, timeout=10)
    assert r.status_code == 200, r.text
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    page.evaluate("window.__loads = performance.getEntriesByType('navigation').length")
    post_inbound(live_server, ws, text="Второе сообщение, живьём", customer_name="Анна")
    page.wait_for_selector("#thread .msg.inbound >> text=Второе сообщение, живьём")
    # a notice for a new message in my own conversation, as text
    toast = page.wait_for_selector(".toast.message-toast >> text=Второе сообщение, живьём")
    assert "Анна" in toast.inner_text()
    # no reload happened: the marker set on this document is still there
    assert page.evaluate("window.__loads") == 1

    # a status change made elsewhere repaints the side bar
    r = httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"status": "pending"},
                    headers=ws.admin, timeout=10)
    assert r.status_code == 200, r.text
    page.wait_for_function("document.querySelector('#field-status').value === 'pending'")
    page.wait_for_selector("#thread .event")


def test_inbox_list_updates_live(new_page, live_server):
    ws = make_workspace("e2elist")
    post_inbound(live_server, ws, text="Есть вопрос", customer_name="Борис")
    page = new_page()
    sign_in(page, ws.agent_email, next_path="/inbox?view=all")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    assert page.locator("#conversation-list .conv-row").count() == 1
    post_inbound(live_server, ws, text="Новый клиент пишет", identity="new@example.com", customer_name="Вера")
    page.wait_for_selector("#conversation-list .conv-row >> text=Вера")
    page.wait_for_function("document.querySelector('#view-all .count').textContent.trim() === '2'")


def test_template_inserted_by_slash_and_unresolved_variables_block_sending(new_page, live_server):
    ws = make_workspace("e2etpl")
    got = post_inbound(live_server, ws, text="Когда доставка?", customer_name="Глеб Орлов")
    cid = got["conversation_id"]
    r = httpx.post(f"{live_server}/api/v1/templates", headers=ws.admin, timeout=10, json={
        "name": "Доставка", "shortcut": "dost",
        "body": "Здравствуйте, {{customer.first_name}}! Заказ {{order_number}} приедет завтра."})
    assert r.status_code == 201, r.text
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.click("#reply-text")
    page.keyboard.type("/dos")
    page.wait_for_selector("#template-picker li[role=option]")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#reply-text').value.includes('Глеб')")
    text = page.locator("#reply-text").input_value()
    assert "{{order_number}}" in text and "/dos" not in text
    assert "order_number" in page.locator("#reply-unresolved").inner_text()
    page.click("#reply-send")
    page.wait_for_timeout(500)
    assert page.locator("#thread .msg.outbound").count() == 0  # refused while a variable is unfilled
    screenshot(page, "ui-template-unresolved")
    page.fill("#reply-text", text.replace("{{order_number}}", "12345"))
    page.click("#reply-send")
    page.wait_for_selector("#thread .msg.outbound >> text=Заказ 12345 приедет завтра")


def test_a_change_made_right_after_the_side_bar_repaints_is_not_lost(new_page, live_server):
    """The side bar is re-rendered on every change made elsewhere. A field changed in the moment between a
    re-render and the page wiring up the new fields (here: inside htmx's afterSwap, before its settle step)
    must still be saved: the CI run of 2026-11-24 lost a «solved» that way."""
    ws = make_workspace("e2eside")
    cid = post_inbound(live_server, ws, text="Вопрос про возврат", customer_name="Дина")["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_function("document.body.dataset.live === 'ready'")
    page.evaluate("""() => {
      document.body.addEventListener("htmx:afterSwap", function once(e) {
        if (!e.detail.target || e.detail.target.id !== "conversation-side") return;
        document.body.removeEventListener("htmx:afterSwap", once);
        var s = document.querySelector("#field-status");
        s.value = "solved";
        s.dispatchEvent(new Event("change", { bubbles: true }));
        window.__changedInSwap = true;
      });
      htmx.trigger(document.body, "otklik:refresh-side");
    }""")
    page.wait_for_function("window.__changedInSwap === true")
    deadline = time.monotonic() + 10
    while httpx.get(f"{live_server}/api/v1/conversations/{cid}", headers=ws.agent,
                    timeout=10).json()["status"] != "solved":
        assert time.monotonic() < deadline, "the change made during the repaint was lost"
        time.sleep(0.1)
    page.wait_for_function("document.querySelector('#field-status').value === 'solved'")
