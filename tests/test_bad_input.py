"""Bad input gets a precise 4xx in one error shape, never a 500, and nothing half-written."""

from __future__ import annotations

import json

from sqlalchemy import func, select

from otklik.conversations.models import Conversation
from otklik.platform.db import session_scope
from tests.conftest import inbound

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def error(r, status, code=None):
    assert r.status_code == status, r.text
    body = r.json()["error"]
    assert set(body) == {"code", "message", "fields"} and body["message"]
    if code:
        assert body["code"] == code, body
    return body


def test_malformed_json(client, ws):
    r = client.post("/api/v1/inbound", content=b'{"text": ', headers={**ws.agent, "content-type": "application/json"})
    error(r, 400, "malformed_json")


def test_wrong_types_name_the_field(client, ws):
    r = client.post("/api/v1/inbound", json={"identity": 5, "text": ["x"]}, headers=ws.agent)
    body = error(r, 422, "invalid")
    assert {f["field"] for f in body["fields"]} >= {"identity", "text"}


def test_unknown_fields_are_refused(client, ws):
    r = client.post("/api/v1/inbound", json={"identity": "a@example.com", "identity_kind": "email", "text": "x",
                                             "admin": True}, headers=ws.agent)
    assert error(r, 422)["fields"][0]["field"] == "admin"


def test_unknown_ids_are_404(client, ws):
    error(client.get("/api/v1/conversations/999999", headers=ws.agent), 404, "not_found")
    error(client.post("/api/v1/conversations/999999/messages", json={"text": "x"}, headers=ws.agent), 404)
    error(client.get("/api/v1/nope", headers=ws.agent), 404)
    error(client.get("/api/v1/conversations/abc", headers=ws.agent), 422)


def test_oversize_body_is_413_before_parsing(client, ws):
    big = json.dumps({"identity": "a@example.com", "text": "я" * 1_100_000})
    error(client.post("/api/v1/inbound", content=big, headers={**ws.agent, "content-type": "application/json"}),
          413, "too_large")


def test_oversize_body_without_content_length_is_413(client, ws):
    def stream():
        for _ in range(40):
            yield b"x" * 65536

    r = client.post("/api/v1/inbound", content=stream(), headers={**ws.agent, "content-type": "application/json"})
    error(r, 413, "too_large")


def test_text_too_long_for_a_message_is_422(client, ws):
    r = client.post("/api/v1/inbound", json={"identity": "a@example.com", "identity_kind": "email",
                                             "text": "a" * 100_001}, headers=ws.agent)
    error(r, 422)


def test_empty_message_is_422(client, ws):
    r = client.post("/api/v1/inbound", json={"identity": "a@example.com", "identity_kind": "email", "text": "  "},
                    headers=ws.agent)
    error(r, 422)


def test_invalid_phone_is_422_and_nothing_is_written(client, ws):
    before = _count(ws)
    r = client.post("/api/v1/inbound", json={"identity": "+7 000", "identity_kind": "phone", "text": "x"},
                    headers=ws.agent)
    assert "phone" in error(r, 422)["message"]
    assert _count(ws) == before


def test_batch_is_all_or_nothing(client, ws):
    before = _count(ws)
    r = client.post("/api/v1/inbound/batch", json={"messages": [
        {"identity": "ok@example.com", "identity_kind": "email", "text": "первое"},
        {"identity": "bad", "identity_kind": "phone", "text": "второе"}]}, headers=ws.agent)
    body = error(r, 422)
    assert body["fields"][0]["field"].startswith("messages.1")
    assert _count(ws) == before
    ok = client.post("/api/v1/inbound/batch", json={"messages": [
        {"identity": "ok@example.com", "identity_kind": "email", "text": "первое", "message_id": "b1"},
        {"identity": "ok@example.com", "identity_kind": "email", "text": "первое", "message_id": "b1"}]},
        headers=ws.agent)
    assert ok.status_code == 201 and [x["duplicate"] for x in ok.json()] == [False, True]


def test_attachment_type_checked_against_content(client, ws):
    r = client.post("/api/v1/attachments", files={"file": ("x.png", b"MZ\x90\x00 not a png", "image/png")},
                    headers=ws.agent)
    error(r, 415, "unsupported_type")
    r = client.post("/api/v1/attachments", files={"file": ("x.exe", b"MZ\x90\x00", "application/x-msdownload")},
                    headers=ws.agent)
    error(r, 415)
    r = client.post("/api/v1/attachments", files={"file": ("e.txt", b"", "text/plain")}, headers=ws.agent)
    error(r, 422)


def test_attachment_roundtrip_and_safe_download(client, ws):
    r = client.post("/api/v1/attachments", files={"file": ("../../чек.png", PNG, "image/png")}, headers=ws.agent)
    assert r.status_code == 201, r.text
    att = r.json()
    assert att["filename"] == "чек.png" and att["size"] == len(PNG)
    got = inbound(client, ws, text="фото чека", attachment_ids=[att["id"]])
    msgs = client.get(f"/api/v1/conversations/{got['conversation_id']}/messages", headers=ws.agent).json()
    assert msgs["items"][0]["attachments"][0]["id"] == att["id"]
    dl = client.get(f"/api/v1/attachments/{att['id']}", headers=ws.agent)
    assert dl.status_code == 200 and dl.content == PNG
    assert dl.headers["x-content-type-options"] == "nosniff"
    again = client.post("/api/v1/inbound", json={"identity": "x@example.com", "identity_kind": "email",
                                                 "text": "x", "attachment_ids": [att["id"]]}, headers=ws.agent)
    error(again, 422)


def test_oversize_attachment_is_413(client, ws, monkeypatch):
    from otklik.platform.config import get_settings

    monkeypatch.setattr(get_settings(), "max_attachment_bytes", 1000)
    r = client.post("/api/v1/attachments", files={"file": ("big.png", PNG + b"\x00" * 2000, "image/png")},
                    headers=ws.agent)
    error(r, 413, "too_large")


def test_invalid_enum_and_limits(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    error(client.patch(f"/api/v1/conversations/{cid}", json={"status": "deleted"}, headers=ws.agent), 422)
    error(client.get("/api/v1/conversations", params={"limit": 100000}, headers=ws.agent), 422)
    error(client.get("/api/v1/conversations", params={"sort": "secret"}, headers=ws.agent), 422)
    error(client.patch(f"/api/v1/conversations/{cid}", json={"tags": ["x" * 49]}, headers=ws.agent), 422)


def test_method_not_allowed_uses_the_error_shape(client, ws):
    error(client.delete("/api/v1/conversations", headers=ws.agent), 405)


def _count(ws) -> int:
    with session_scope(write=False) as s:
        return s.scalar(select(func.count()).select_from(Conversation).where(Conversation.workspace_id == ws.id))


def test_ids_beyond_64_bits_are_422_not_500(client, ws):
    for url in ("/api/v1/customers/18446744073709551616/notes", "/api/v1/conversations/18446744073709551616"):
        error(client.get(url, headers=ws.agent), 422, "out_of_range")


def test_null_for_required_fields_is_precise(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    r = client.patch(f"/api/v1/conversations/{cid}", json={"subject": None}, headers=ws.agent)
    assert r.status_code == 200 and r.json()["subject"] == ""
    cust = client.post("/api/v1/customers", json={"name": "A"}, headers=ws.agent).json()
    error(client.patch(f"/api/v1/customers/{cust['id']}", json={"name": None}, headers=ws.agent), 422)
