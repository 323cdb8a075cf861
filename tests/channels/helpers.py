"""Shared steps of the Telegram and MAX tests (set up an account, read what a workspace stored)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from otklik.conversations.models import Attachment, Conversation, Message, OutboxItem
from otklik.customers.models import Customer, Identity
from otklik.platform.db import session_scope


def create_account(client, ws, kind: str, *, config: dict, secrets: dict, name: str = "default") -> dict:
    r = client.post("/api/v1/channels/accounts", json={"kind": kind, "name": name, "config": config,
                                                       "secrets": secrets}, headers=ws.admin)
    assert r.status_code == 201, r.text
    return r.json()


def messages_of(workspace_id: int, channel: str) -> list[Message]:
    with session_scope(write=False) as s:
        rows = list(s.scalars(select(Message).where(Message.workspace_id == workspace_id, Message.channel == channel)
                              .order_by(Message.id)))
        s.expunge_all()
        return rows


def attachments_of(message_id: int) -> list[Attachment]:
    with session_scope(write=False) as s:
        rows = list(s.scalars(select(Attachment).where(Attachment.message_id == message_id).order_by(Attachment.id)))
        s.expunge_all()
        return rows


def identities_of_customer(workspace_id: int, kind: str, value: str) -> tuple[Customer | None, list[Identity]]:
    with session_scope(write=False) as s:
        identity = s.scalar(select(Identity).where(Identity.workspace_id == workspace_id, Identity.kind == kind,
                                                   Identity.external_id == value))
        if identity is None:
            return None, []
        customer = s.get(Customer, identity.customer_id)
        rows = list(s.scalars(select(Identity).where(Identity.customer_id == identity.customer_id)
                              .order_by(Identity.id)))
        s.expunge_all()
        return customer, rows


def conversation_of(message: Message) -> Conversation:
    with session_scope(write=False) as s:
        conv = s.get(Conversation, message.conversation_id)
        s.expunge_all()
        assert conv is not None
        return conv


def outbox_item(message_id: int) -> OutboxItem:
    with session_scope(write=False) as s:
        item = s.scalar(select(OutboxItem).where(OutboxItem.message_id == message_id))
        s.expunge_all()
        assert item is not None
        return item


def make_due(outbox_id: int) -> None:
    with session_scope() as s:
        s.execute(update(OutboxItem).where(OutboxItem.id == outbox_id)
                  .values(next_attempt_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))


def upload_photo_and_invoice(client, ws) -> list[int]:
    """An agent's two uploads for a reply with files: «фото.png» (conftest.PNG) and «счёт.pdf» (conftest.PDF)."""
    from tests.channels.conftest import PDF, PNG

    ids = []
    for name, data, ctype in (("фото.png", PNG, "image/png"), ("счёт.pdf", PDF, "application/pdf")):
        r = client.post("/api/v1/attachments", files={"file": (name, data, ctype)}, headers=ws.agent)
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    return ids
