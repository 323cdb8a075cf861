"""Issue 19, «the agent's working day», in a real browser: what an agent meets in an ordinary day and what
went wrong there (attachments that would not open, a thread squeezed out at 1280×800, replies into a channel
that is not connected)."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def test_agent_opens_the_customers_attachment_from_the_thread(new_page, live_server):
    ws = make_workspace("e2eattach")
    content = "Накладная 4512: чайник, 2 шт.\n".encode()
    r = httpx.post(f"{live_server}/api/v1/attachments", headers=ws.agent, timeout=10,
                   files={"file": ("накладная.txt", content, "text/plain")})
    assert r.status_code == 201, r.text
    attachment_id = r.json()["id"]
    got = post_inbound(live_server, ws, text="Прикладываю накладную", customer_name="Анна",
                       attachment_ids=[attachment_id])
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{got['conversation_id']}")
    link = page.locator("#thread .msg-attachments a", has_text="накладная.txt")
    # the UI links to the API's own address for the file
    assert link.get_attribute("href") == f"/api/v1/attachments/{attachment_id}"
    with page.expect_download() as download_info:
        link.click()
    download = download_info.value
    assert download.failure() is None
    assert download.suggested_filename == "накладная.txt"
    with open(download.path(), "rb") as saved:
        assert saved.read() == content
    # the address earlier pages linked to works too, with the agent's session
    old = page.request.get(f"/api/v1/attachments/{attachment_id}/content")
    assert old.status == 200 and old.body() == content


def test_a_reply_into_a_channel_that_is_not_connected_is_warned_failed_and_listed(new_page, live_server):
    ws = make_workspace("e2eundelivered")
    got = post_inbound(live_server, ws, text="Где мой заказ 4512?", customer_name="Борис")  # the API channel,
    cid = got["conversation_id"]  # whose webhook this workspace never connected
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    # said before the agent types
    warning = page.locator("#composer #delivery-warning")
    assert warning.is_visible() and "не подключён" in warning.inner_text()
    page.fill("#reply-text", "Заказ 4512 уже в пути")
    page.click("#reply-send")
    sent = page.locator("#thread .msg.outbound", has_text="Заказ 4512 уже в пути")
    sent.wait_for()
    # marked not delivered at once, with the reason, instead of «queued» for hours
    failed = sent.locator(".ticks.failed")
    failed.wait_for(timeout=5_000)
    assert "not connected" in (failed.get_attribute("title") or "")
    screenshot(page, "conversation-reply-not-delivered")
    # and listed under «Недоставленные сообщения» for an admin to retry once the channel is connected
    admin = new_page()
    sign_in(admin, ws.admin_email, next_path="/settings/channels")
    row = admin.locator("#dead-letters tr[data-outbox-id]")
    row.first.wait_for()
    assert row.count() == 1 and "not connected" in row.inner_text() and "api" in row.inner_text()
    assert admin.locator("#dead-title").inner_text() == "Недоставленные сообщения"
