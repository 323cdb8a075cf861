"""Agents attach files to replies (issue 19): the files go with the reply; what the conversation's channel cannot
carry (the vendor's limits: WhatsApp 5 MB images, e-mail 25 MB in all, VK and Telegram 10 files…) is refused
with a 422 naming the file before anything is queued; the composer's UI route takes attachment ids."""

from __future__ import annotations

import pytest

from otklik.conversations import reply_checks
from otklik.platform.errors import InvalidInput
from tests.conftest import inbound
from tests.web._ui import Browser

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _upload(client, ws, name: str, body: bytes = PNG, kind: str = "image/png") -> int:
    r = client.post("/api/v1/attachments", files={"file": (name, body, kind)}, headers=ws.agent)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_shipped_vendor_limits(app):  # the app loads the channel plugins, which register their limits
    mb = 1_048_576
    reply_checks.check_files("whatsapp", [("doc.pdf", "application/pdf", 90 * mb)])  # documents: 100 MB
    reply_checks.check_files("whatsapp", [("voice.ogg", "audio/ogg", 20 * mb)])  # sent as a document
    with pytest.raises(InvalidInput) as exc:
        reply_checks.check_files("whatsapp", [("ok.pdf", "application/pdf", mb), ("photo.jpg", "image/jpeg", 6 * mb)])
    assert exc.value.fields[0]["field"] == "attachment_ids.1" and "5 MB" in exc.value.message
    with pytest.raises(InvalidInput) as exc:
        reply_checks.check_files("email", [("a.pdf", "application/pdf", 13 * mb), ("b.pdf", "application/pdf", 13 * mb)])
    assert exc.value.fields[0]["field"] == "attachment_ids" and "25 MB" in exc.value.message
    with pytest.raises(InvalidInput):
        reply_checks.check_files("vk", [(f"{i}.png", "image/png", 10) for i in range(11)])
    with pytest.raises(InvalidInput):
        reply_checks.check_files("telegram", [("big.png", "image/png", 11 * mb)])  # photos: 10 MB
    reply_checks.check_files("widget", [("any.png", "image/png", 11 * mb)])  # no vendor limit: the upload cap only


def test_a_reply_carries_files_and_the_channel_limit_is_checked_first(client, ws, monkeypatch):
    cid = inbound(client, ws, text="Пришлите, пожалуйста, инструкцию", identity="files@example.com")["conversation_id"]
    one, two = _upload(client, ws, "схема.png"), _upload(client, ws, "чек.png")
    monkeypatch.setitem(reply_checks._file_limits, "api",
                        reply_checks.FileLimits(total_bytes=100, note="a small test limit"))
    r = client.post(f"/api/v1/conversations/{cid}/messages", headers=ws.agent,
                    json={"text": "Вот схема и чек", "attachment_ids": [one, two]})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "attachment_ids", r.text
    before = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.agent).json()["items"]
    assert not [m for m in before if m["direction"] == "outbound"]  # nothing queued
    monkeypatch.undo()
    r = client.post(f"/api/v1/conversations/{cid}/messages", headers=ws.agent,
                    json={"text": "Вот схема и чек", "attachment_ids": [one, two]})
    assert r.status_code == 201, r.text
    assert [a["filename"] for a in r.json()["attachments"]] == ["схема.png", "чек.png"]


def test_the_composer_sends_files_without_text(app, client, ws):
    cid = inbound(client, ws, text="Нужен акт", identity="act@example.com")["conversation_id"]
    att = _upload(client, ws, "акт.png")
    b = Browser(app, ws.agent_email)
    page = b.get(f"/conversations/{cid}")
    assert page.status_code == 200 and 'id="reply-files"' in page.text and 'data-max-bytes="20971520"' in page.text
    r = b.post(f"/ui/conversations/{cid}/reply", {"text": "", "mode": "reply", "attachment_ids": str(att)})
    assert r.status_code == 204, r.text
    msgs = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.agent).json()["items"]
    sent = [m for m in msgs if m["direction"] == "outbound"]
    assert sent and sent[-1]["attachments"][0]["filename"] == "акт.png"
    assert b.post(f"/ui/conversations/{cid}/reply", {"text": "", "mode": "reply"}).status_code == 422
