"""Issue 19, «the agent's working day», in a real browser: what an agent meets in an ordinary day and what
went wrong there (attachments that would not open, a thread squeezed out at 1280×800, replies into a channel
that is not connected)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import shop  # noqa: F401  (the fixture: a shop page on another origin)


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


LONG_QUESTION = ("Здравствуйте! Заказала 3 декабря чайник и блендер, заказ 4512, оплатила картой сразу.\n"
                 "Обещали доставку курьером по Москве на следующий день, но прошла уже неделя.\n"
                 "В личном кабинете статус «передан в доставку», трек-номер в СМС не пришёл.\n"
                 "Подскажите, пожалуйста, сколько стоит доставка и когда привезут? Если не привезут до пятницы,\n"
                 "хочу отменить заказ и вернуть деньги на карту.")


def test_the_thread_keeps_two_thirds_of_the_column_at_1280x800(new_page, live_server):
    from tests.assistant.test_live import seed_kb

    ws = make_workspace("e2elayout")
    seed_kb(ws)
    r = httpx.patch(f"{live_server}/api/v1/assistant/settings", json={"enabled": True}, headers=ws.admin,
                    timeout=60)
    assert r.status_code == 200, r.text
    got = post_inbound(live_server, ws, text=LONG_QUESTION, customer_name="Анна Смирнова")
    cid = got["conversation_id"]
    r = httpx.post(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent, timeout=30,
                   json={"text": "Анна, здравствуйте! Заказ 4512 передан курьеру, привезём завтра до 18:00."})
    assert r.status_code == 201, r.text
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.locator("#delivery-warning").wait_for()  # the channel's warning (this API channel is not connected)
    page.locator("#assist-suggestions .assist-item").first.wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(300)

    def box(selector: str) -> dict:
        found = page.locator(selector).first.bounding_box()
        assert found is not None, selector
        return found

    def assert_the_thread_is_the_page() -> None:
        column, thread = box("#conversation"), box("#thread")
        assert thread["height"] >= column["height"] * 2 / 3, (thread, column)
        # the customer's message is whole (not squeezed to a clipped line), the agent's reply in view
        question = page.locator("#thread .msg.inbound", has_text="Заказала 3 декабря").first
        heights = question.evaluate(
            "el => [el.clientHeight, el.scrollHeight, el.querySelector('.msg-body').clientHeight]")
        assert heights[0] >= heights[1] - 1 and heights[2] > 4 * 16, heights
        reply = box("#thread .msg.outbound[data-author-kind='agent']")
        assert thread["y"] <= reply["y"] and reply["y"] + reply["height"] <= thread["y"] + thread["height"] + 1, (
            reply, thread)
        # the reply box and the send button stay on screen
        send = box("#reply-send")
        assert send["y"] + send["height"] <= 800 and box("#reply-text")["height"] >= 40

    assert_the_thread_is_the_page()
    path = screenshot(page, "conversation-long-thread-1280x800")
    # all of it open (the suggestions, the summary): they scroll in their own third, the thread stays
    for closed in page.locator("#composer details:not([open]) > summary").all():
        closed.click()
    page.click("#assist-summary-button")
    page.locator("#assist-summary-text").wait_for(state="attached", timeout=30_000)
    page.wait_for_timeout(300)
    assert_the_thread_is_the_page()
    extras = page.locator("#composer-extras").evaluate("el => [el.scrollHeight, el.clientHeight]")
    assert extras[0] > extras[1]  # more than fits: a scroll area, not a taller composer
    if os.environ.get("OTKLIK_DOCS_SCREENSHOTS") == "1":  # refresh the copy in docs/ on purpose, not on every run
        docs = Path(__file__).resolve().parents[2] / "docs" / "screenshots" / "conversation-long-thread-1280x800.png"
        shutil.copyfile(path, docs)


def test_a_callback_request_reaches_the_agent_with_the_assistants_note_and_no_failing_job(
        new_page, live_server, shop):  # noqa: F811  (the fixture imported above)
    from tests.e2e.test_widget import eventually, shop_page, widget_conversation

    ws = make_workspace("e2ecallback")
    key = httpx.get(f"{live_server}/api/v1/widget/settings", headers=ws.admin, timeout=10).json()["public_key"]
    r = httpx.patch(f"{live_server}/api/v1/assistant/settings", json={"enabled": True}, headers=ws.admin,
                    timeout=60)
    assert r.status_code == 200, r.text
    log = Path(os.environ["OTKLIK_DATA_DIR"]) / f"live-server-{live_server.rsplit(':', 1)[1]}.log"
    log_before = log.stat().st_size if log.exists() else 0
    visitor = new_page()
    visitor.goto(shop_page(shop, live_server, key, "callback-19.html"))
    visitor.locator("#otklik-widget[data-state=ready]").wait_for(state="attached")
    visitor.locator(".ow-launcher").click()
    visitor.locator(".ow-menu [data-kind=callback]").click()
    form = visitor.locator(".ow-callback-form")
    form.locator("[name=name]").fill("Олег")
    form.locator("[name=phone]").fill("8 (999) 765-43-21")
    form.locator("button[type=submit]").click()
    visitor.locator(".ow-done").wait_for()
    conversation = eventually(lambda: widget_conversation(live_server, ws, "phone"))
    assert isinstance(conversation, dict)
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{conversation['id']}")
    page.locator("#thread .msg.inbound", has_text="Просьба перезвонить").wait_for()
    # the assistant handed it to a person with its note, and wrote nothing into the phone conversation
    page.locator("#thread .msg.note[data-author-kind='assistant']").wait_for()
    assert page.locator("#thread .msg.outbound[data-author-kind='assistant']").count() == 0
    assert page.locator("#reply-warning").is_visible()  # the phone channel's own rule, said to the agent
    new_log = log.read_bytes()[log_before:].decode(errors="replace") if log.exists() else ""
    assert "Traceback" not in new_log and "takes no written replies" not in new_log, new_log[-2000:]
