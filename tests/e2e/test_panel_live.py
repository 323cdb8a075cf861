"""Issue 19: the customer panel beside a conversation follows the conversation. Its history showed «новый» /
«открыт» after the status had changed, here or in another agent's browser, until the page was reloaded."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in


def test_the_panel_history_shows_the_status_as_it_changes(new_page, live_server):
    ws = make_workspace("e2epanelstatus")
    older = post_inbound(live_server, ws, text="Где заказ 51?", customer_name="Ольга")
    got = post_inbound(live_server, ws, text="И ещё вопрос про доставку", customer_name="Ольга")
    cid = got["conversation_id"]
    if cid == older["conversation_id"]:  # a second mail joined the open conversation: make another
        httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"status": "closed"}, headers=ws.agent,
                    timeout=10).raise_for_status()
        cid = post_inbound(live_server, ws, text="Новый вопрос про возврат", customer_name="Ольга")["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    current = page.locator(f'#cpanel-history .history-item[data-conversation-id="{cid}"] .badge')
    current.wait_for()
    before = current.get_attribute("class") or ""
    assert "status-solved" not in before and "status-pending" not in before
    # the agent changes the status in the side bar: the history says so without a reload
    page.select_option("#field-status", "pending")
    page.wait_for_selector(f'#cpanel-history .history-item[data-conversation-id="{cid}"] .badge.status-pending')
    # a note half typed in the panel survives a change made elsewhere, and the panel catches up after
    page.fill("#cpanel-note-body", "Перезвонить вечером")
    httpx.patch(f"{live_server}/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.admin,
                timeout=10).raise_for_status()
    page.wait_for_selector('#field-status[data-value="solved"]')
    page.wait_for_timeout(600)
    assert page.input_value("#cpanel-note-body") == "Перезвонить вечером"
    page.fill("#cpanel-note-body", "")
    page.locator("#reply-text").focus()
    page.wait_for_selector(f'#cpanel-history .history-item[data-conversation-id="{cid}"] .badge.status-solved')
