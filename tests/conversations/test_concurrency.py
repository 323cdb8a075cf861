"""Concurrent writers: one winner per version, one stored message per vendor id, never a 500."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.conftest import inbound


def test_concurrent_updates_with_the_same_version(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    version = client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()["version"]

    def patch(priority):
        return client.patch(f"/api/v1/conversations/{cid}", json={"priority": priority, "version": version},
                            headers=ws.agent).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(patch, ["high", "urgent", "low", "high"] * 2))
    assert codes.count(200) == 1 and codes.count(409) == 7, codes


def test_concurrent_retries_of_one_vendor_message_store_it_once(client, ws):
    body = {"identity_kind": "telegram", "identity": "424242", "text": "повтор", "message_id": "tg-777"}

    def post(_):
        return client.post("/api/v1/inbound", json=body, headers=ws.agent).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(post, range(16)))
    assert codes.count(201) == 1 and codes.count(200) == 15, codes
    with session_scope(write=False) as s:
        assert s.scalar(select(func.count()).select_from(Message).where(
            Message.workspace_id == ws.id, Message.channel_message_id == "tg-777")) == 1


def test_concurrent_first_messages_from_one_new_person(client, ws):
    def post(i):
        return client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": "new@example.com",
                                                    "text": f"сообщение {i}"}, headers=ws.agent)

    with ThreadPoolExecutor(6) as pool:
        responses = list(pool.map(post, range(12)))
    assert all(r.status_code == 201 for r in responses), [r.text for r in responses if r.status_code != 201]
    assert len({r.json()["customer_id"] for r in responses}) == 1
    assert len({r.json()["conversation_id"] for r in responses}) == 1
