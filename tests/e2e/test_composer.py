"""The reply box in a real browser (issues 19 and 14): the agent attaches a file with 📎 and sends it (a file
bigger than the channel takes is refused in the page, before any upload), and a reply on a conversation whose
consumer-law deadline has passed asks once for confirmation, then goes out acknowledged."""

from __future__ import annotations

import datetime as dt

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _messages(live_server, ws, cid: int) -> list[dict]:
    return httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent).json()["items"]


def test_agent_attaches_a_file_and_an_oversize_one_is_refused_in_the_page(new_page, live_server):
    ws = make_workspace("e2efiles")
    cid = post_inbound(live_server, ws, text="Пришлите схему подключения", customer_name="Игорь")["conversation_id"]
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#reply-files", state="attached")
    page.wait_for_function("window.otklikComposerReady === true")
    page.set_input_files("#reply-files", files=[{"name": "огромный.pdf", "mimeType": "application/pdf",
                                                 "buffer": b"%PDF-" + b"0" * (21 * 1_048_576)}])
    page.wait_for_selector(".toast.error")
    assert page.locator("#reply-file-list li").count() == 0  # refused before any upload
    page.set_input_files("#reply-files", files=[{"name": "схема.png", "mimeType": "image/png", "buffer": PNG}])
    page.wait_for_selector("#reply-file-list li[data-attachment-id]")
    page.fill("#reply-text", "Схема во вложении")
    page.click("#reply-send")
    page.wait_for_function("document.querySelectorAll('#reply-file-list li').length === 0")
    sent = [m for m in _messages(live_server, ws, cid) if m["direction"] == "outbound"]
    assert sent and [a["filename"] for a in sent[-1]["attachments"]] == ["схема.png"]


def test_a_reply_on_an_overdue_legal_case_asks_once(new_page, live_server):
    ws = make_workspace("e2elegalreply")
    cid = post_inbound(live_server, ws, text="Где деньги за сломанный пылесос?", customer_name="Нина")[
        "conversation_id"]
    r = httpx.put(f"{live_server}/api/v1/conversations/{cid}/consumer-law", headers=ws.agent, json={
        "situation": "defect", "inputs": {"demanded_on": (dt.date.today() - dt.timedelta(days=40)).isoformat(),
                                          "price": "9000"}})
    assert r.status_code == 200, r.text
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    asked: list[str] = []

    def answer(dialog):
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.wait_for_function("window.otklikComposerReady === true")
    page.fill("#reply-text", "Возвращаем деньги и неустойку сегодня")
    page.click("#reply-send")
    page.wait_for_function("document.getElementById('reply-text').value === ''")
    assert len(asked) == 1 and "ЗоЗПП ст. 22" in asked[0]
    sent = [m for m in _messages(live_server, ws, cid) if m["direction"] == "outbound"]
    assert sent and sent[-1]["body_text"] == "Возвращаем деньги и неустойку сегодня"
    assert page.locator(".toast.error").count() == 0


def test_a_note_mentions_a_colleague_by_picking_them_and_the_box_returns_to_reply(new_page, live_server):
    ws = make_workspace("e2emention")
    cid = post_inbound(live_server, ws, text="Нужна помощь старшего", customer_name="Олег")["conversation_id"]
    admin = httpx.get(f"{live_server}/api/v1/users/{ws.admin_id}", headers=ws.admin).json()
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.check("#mode-note")
    page.click("#reply-text")
    page.keyboard.type("Посмотри, пожалуйста, @" + admin["name"][:2])
    page.wait_for_selector("#mention-picker li")
    assert admin["name"] in page.locator("#mention-picker").inner_text()
    page.keyboard.press("Enter")
    assert page.locator("#mention-picker").is_hidden()
    assert page.locator("#reply-text").input_value() == f"Посмотри, пожалуйста, @{admin['name']} "
    page.click("#reply-send")
    page.wait_for_function("document.getElementById('reply-text').value === ''")
    assert page.locator("#mode-reply").is_checked()  # the next message is a reply again, not a note
    note = [m for m in _messages(live_server, ws, cid) if m["is_internal"]][-1]
    assert note["body_text"].strip().endswith(f"@{admin['name']}")
    page2 = new_page(viewport=(1280, 800))
    sign_in(page2, ws.admin_email, next_path="/inbox?view=mentions")
    page2.wait_for_selector(f'#conversation-list .conv-row[data-conversation-id="{cid}"]')
