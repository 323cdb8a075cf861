"""Bulk actions in a real browser (issue 19): the agent picks rows with a click, a shift-click and `x`, assigns
them to herself and marks them pending in one go, then merges one customer's two conversations; the rows, the
toasts and the server agree. Screenshot: docs/screenshots/ui-inbox-bulk.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def _get(live_server, ws, cid: int) -> dict:
    return httpx.get(f"{live_server}/api/v1/conversations/{cid}", headers=ws.agent).json()


def test_agent_changes_many_conversations_at_once_and_merges_two(new_page, live_server):
    ws = make_workspace("e2ebulk")
    ids = [post_inbound(live_server, ws, text=f"Вопрос номер {i}", identity=f"bulk{i}@example.com",
                        customer_name=f"Клиент {i}")["conversation_id"] for i in range(4)]
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path="/inbox?view=all&sort=waiting")
    rows = page.locator("#conversation-list .conv-row")
    rows.nth(3).wait_for()
    assert rows.count() == 4
    assert page.locator("#bulk-bar").is_hidden()
    order = [int(rows.nth(i).get_attribute("data-conversation-id")) for i in range(4)]
    # click the first box, shift-click the third: three picked
    rows.nth(0).locator(".bulk-pick").click()
    rows.nth(2).locator(".bulk-pick").click(modifiers=["Shift"])
    assert page.locator("#bulk-bar").is_visible() and "3" in page.locator("#bulk-count").inner_text()
    # `x` on the selected row (j selects the first) toggles it off
    page.locator("#list-title").evaluate("el => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("j")
    page.keyboard.press("x")
    assert "2" in page.locator("#bulk-count").inner_text()
    page.select_option("#bulk-assignee", "me")
    page.select_option("#bulk-status", "pending")
    page.fill("#bulk-tag", "разобрать")
    screenshot(page, "ui-inbox-bulk")
    page.click("#bulk-apply")
    page.wait_for_selector(".toast:has-text('Изменено: 2')")
    page.wait_for_selector("#bulk-bar", state="hidden")
    changed = [_get(live_server, ws, cid) for cid in order[1:3]]
    assert all(c["status"] == "pending" and c["assignee_id"] == ws.agent_id and "разобрать" in c["tags"]
               for c in changed)
    untouched = _get(live_server, ws, order[0])
    assert untouched["status"] == "new" and untouched["assignee_id"] is None
    assert page.locator(".toast.error").count() == 0

    # one customer writes twice: merge the two into the older
    again = post_inbound(live_server, ws, text="И ещё вопрос", identity="bulk0@example.com",
                         customer_name="Клиент 0")["conversation_id"]
    if again == ids[0]:  # the same open conversation took the message: start a second one by hand
        customer = _get(live_server, ws, ids[0])["customer"]["id"]
        again = httpx.post(f"{live_server}/api/v1/conversations", headers=ws.agent,
                           json={"customer_id": customer, "channel": "email", "subject": "Второе"}).json()["id"]
    page.goto(f"{live_server}/inbox?view=all&sort=waiting")
    for cid in (ids[0], again):
        page.locator(f'#conversation-list .conv-row[data-conversation-id="{cid}"] .bulk-pick').click()
    page.once("dialog", lambda d: d.accept())
    page.click("#bulk-merge")
    page.wait_for_selector(".toast:has-text('Объединено')")
    assert _get(live_server, ws, again)["merged_into_id"] == ids[0]
    assert page.locator(".toast.error").count() == 0
