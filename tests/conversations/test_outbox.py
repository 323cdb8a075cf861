"""Outbound delivery through the outbox, against a real HTTP receiver: signed, retried, applied once."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from otklik.conversations import outbox
from otklik.conversations.models import Message, OutboxItem
from otklik.platform.db import session_scope
from tests.conftest import inbound
from tests.stand_ins import WebhookReceiver


@pytest.fixture
def receiver(client, ws):
    rec = WebhookReceiver()
    r = client.put("/api/v1/channels/api", json={"webhook_url": rec.url}, headers=ws.admin)
    assert r.status_code == 200, r.text
    rec.secret = r.json()["secret"]
    yield rec
    rec.close()


def reply(client, ws, text="Ваш заказ отправлен"):
    cid = inbound(client, ws)["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, headers=ws.agent)
    assert r.status_code == 201
    return r.json()


def item_for(message_id):
    with session_scope(write=False) as s:
        return s.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))


def make_due(outbox_id, **values):
    with session_scope() as s:
        s.execute(update(OutboxItem).where(OutboxItem.id == outbox_id)
                  .values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1), **values))


def status_of(client, ws, message):
    msgs = client.get(f"/api/v1/conversations/{message['conversation_id']}/messages", headers=ws.agent).json()
    return next(m for m in msgs["items"] if m["id"] == message["id"])


def test_reply_is_delivered_signed_with_idempotency_key(client, ws, receiver):
    message = reply(client, ws)
    assert len(receiver.requests) == 1
    req = receiver.requests[0]
    assert req["signature_ok"] and req["body"]["text"] == "Ваш заказ отправлен"
    assert req["body"]["recipients"] == [{"kind": "email", "id": "ivan@example.com"}]
    stored = status_of(client, ws, message)
    assert stored["delivery_status"] == "sent" and stored["channel_message_id"] == "remote-1"
    assert item_for(message["id"]).status == "sent"


def test_server_error_is_retried_with_backoff_and_same_key(client, ws, receiver):
    receiver.fail_next = [503]
    message = reply(client, ws)
    item = item_for(message["id"])
    assert item.status == "pending" and item.attempts == 1 and "503" in item.last_error
    assert item.next_attempt_at > dt.datetime.now(dt.UTC)
    assert outbox.deliver(item.id) == "skipped"  # not due yet
    make_due(item.id)
    assert outbox.deliver(item.id) == "sent"
    keys = [r["key"] for r in receiver.requests]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert len(receiver.applied) == 1


def test_client_error_goes_dead_and_is_visible(client, ws, receiver):
    receiver.fail_next = [400]
    message = reply(client, ws)
    assert item_for(message["id"]).status == "dead"
    stored = status_of(client, ws, message)
    assert stored["delivery_status"] == "failed" and "400" in stored["delivery_error"]
    dead = client.get("/api/v1/outbox", params={"status": "dead"}, headers=ws.admin).json()
    assert [d["message_id"] for d in dead] == [message["id"]]
    retried = client.post(f"/api/v1/outbox/{dead[0]['id']}/retry", headers=ws.admin)
    assert retried.status_code == 200
    assert item_for(message["id"]).status == "sent"


def test_rate_limit_honours_retry_after(client, ws, receiver):
    receiver.fail_next = [429]
    message = reply(client, ws)
    item = item_for(message["id"])
    assert item.status == "pending" and "429" in item.last_error


def test_worker_dying_mid_delivery_does_not_double_apply(client, ws, receiver):
    """The row is left `sending` with a lease (as if the worker was killed after the POST went out)."""
    message = reply(client, ws)
    item = item_for(message["id"])
    # simulate: a worker claimed it, delivered, and died before recording the result
    make_due(item.id, status="sending", locked_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
    with session_scope() as s:
        s.execute(update(Message).where(Message.id == message["id"]).values(delivery_status="queued"))
    assert item.id in outbox.due_ids()
    assert outbox.deliver(item.id) == "sent"
    assert len(receiver.requests) == 2  # delivered again (at least once) ...
    assert len(receiver.applied) == 1  # ... and applied once, thanks to the idempotency key


def test_live_lease_is_not_stolen(client, ws, receiver):
    message = reply(client, ws)
    item = item_for(message["id"])
    make_due(item.id, status="sending", locked_until=dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert outbox.deliver(item.id) == "skipped"
    assert item.id not in outbox.due_ids()


def test_a_reply_with_no_channel_to_deliver_through_fails_at_once_with_the_reason(client, ws):
    """Issue 19: it used to sit «queued» through eight attempts over hours, listed nowhere."""
    message = reply(client, ws)
    item = item_for(message["id"])
    assert item.status == "dead" and item.attempts == 1 and "not connected" in item.last_error
    stored = status_of(client, ws, message)
    assert stored["delivery_status"] == "failed" and "not connected" in stored["delivery_error"]
    assert item.id not in outbox.due_ids()
    assert [d["id"] for d in client.get("/api/v1/outbox?status=dead", headers=ws.admin).json()] == [item.id]
    assert not outbox.can_deliver("api", ws.id)
    # connected afterwards: the admin's retry from the undelivered list delivers it
    rec = WebhookReceiver()
    try:
        r = client.put("/api/v1/channels/api", json={"webhook_url": rec.url}, headers=ws.admin)
        assert r.status_code == 200, r.text
        rec.secret = r.json()["secret"]
        assert outbox.can_deliver("api", ws.id)
        assert client.post(f"/api/v1/outbox/{item.id}/retry", headers=ws.admin).status_code == 200
        assert status_of(client, ws, message)["delivery_status"] == "sent" and len(rec.applied) == 1
        # switched off: the next reply fails at once again, and says why
        from otklik.channels.models import ChannelAccount

        with session_scope() as s:
            s.execute(update(ChannelAccount).where(ChannelAccount.workspace_id == ws.id).values(enabled=False))
        second = client.post(f"/api/v1/conversations/{message['conversation_id']}/messages",
                             json={"text": "Ещё одно"}, headers=ws.agent).json()
        assert status_of(client, ws, second)["delivery_status"] == "failed"
        assert item_for(second["id"]).status == "dead" and len(rec.applied) == 1
    finally:
        rec.close()


def test_internal_note_has_no_outbox_row(client, ws, receiver):
    cid = inbound(client, ws)["conversation_id"]
    note = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "заметка", "is_internal": True},
                       headers=ws.agent).json()
    assert item_for(note["id"]) is None and receiver.requests == []
