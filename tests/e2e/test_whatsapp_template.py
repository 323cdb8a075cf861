"""WhatsApp's 24-hour window is closed: the conversation page offers the approved-template form instead of only
warning (issue 19); the agent sends «order_update» with two parameters and the thread shows it; a bad name is
refused with the field named, in a toast."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import update

from otklik.conversations import service as conversations
from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in


def test_agent_sends_an_approved_template_when_the_window_is_closed(new_page, live_server):
    ws = make_workspace("e2ewa")
    with session_scope() as s:
        got = conversations.receive(s, ws.id, conversations.InboundMessage(
            channel="whatsapp", identity_kind="whatsapp", identity_value="79161234567", text="Где мой заказ?",
            customer_name="Алла"))
        cid = got.conversation.id
    with session_scope() as s:
        s.execute(update(Message).where(Message.conversation_id == cid, Message.direction == "inbound")
                  .values(created_at=dt.datetime.now(dt.UTC) - dt.timedelta(hours=30)))
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#reply-warning")
    page.wait_for_selector("#wa-template-form")
    page.fill("#wa-template-name", "Order Update!")
    page.evaluate("document.getElementById('wa-template-name').removeAttribute('pattern')")  # the server checks too
    page.click("#wa-template-send")
    page.wait_for_selector(".toast.error:has-text('name')")
    page.fill("#wa-template-name", "order_update")
    page.fill("#wa-template-params", "4512\nв пути")
    page.click("#wa-template-send")
    page.wait_for_selector("#thread .msg.outbound:has-text('order_update')")
    sent = httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent).json()["items"]
    out = [m for m in sent if m["direction"] == "outbound"]
    assert out and "4512 · в пути" in out[-1]["body_text"]
