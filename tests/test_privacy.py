"""A person's data under 152-ФЗ (issue 17 §3): the export of everything held about a customer as a ZIP
(ст. 14), erasure that removes the personal data and keeps the statistics (ст. 21), the retention period of
closed conversations run by the worker (ст. 5 ч. 7); admins only, audited, workspace-isolated."""

from __future__ import annotations

import datetime as dt
import io
import json
import zipfile

from sqlalchemy import select, update

from otklik.accounts.models import AuditEntry
from otklik.conversations.models import Attachment, Conversation, Message
from otklik.customers.models import Customer, Identity
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope, utcnow
from otklik.privacy import service
from tests.conftest import inbound

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64 + b"privacy-test"


def _story(client, ws, email: str = "privacy@example.com") -> tuple[int, int, int]:
    """A customer who wrote twice, got a reply with a file, and has a staff note: (customer, conversation, file)."""
    first = inbound(client, ws, identity=email, text="Меня зовут Анна Петрова, мой телефон +7 916 555-12-34",
                    customer_name="Анна Петрова")
    cid = first["conversation_id"]
    inbound(client, ws, identity=email, text="Адрес доставки: Москва, ул. Ленина, 5, кв. 12")
    up = client.post("/api/v1/attachments", files={"file": ("накладная.png", PNG, "image/png")}, headers=ws.agent)
    assert up.status_code == 201, up.text
    r = client.post(f"/api/v1/conversations/{cid}/messages", headers=ws.agent,
                    json={"text": "Анна, вот ваша накладная", "attachment_ids": [up.json()["id"]]})
    assert r.status_code == 201, r.text
    customer_id = first["customer_id"]
    r = client.post(f"/api/v1/customers/{customer_id}/notes", headers=ws.agent,
                    json={"body": "Анна просила звонить после 18:00"})
    assert r.status_code == 201, r.text
    return customer_id, cid, up.json()["id"]


def test_export_holds_everything_about_the_customer(client, ws, other_ws):
    customer_id, _cid, file_id = _story(client, ws)
    r = client.get(f"/api/v1/customers/{customer_id}/export", headers=ws.admin)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/zip"
    assert f"customer-{customer_id}-" in r.headers["content-disposition"]
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert {"customer.json", "README.txt", "tables/identities.json", "tables/conversations.json",
            "tables/messages.json", "tables/customer_notes.json", "tables/attachments.json"} <= names
    people = json.loads(archive.read("customer.json"))
    assert [p["name"] for p in people] == ["Анна Петрова"] and "search_terms" not in people[0]
    texts = [m["body_text"] for m in json.loads(archive.read("tables/messages.json"))]
    assert "Адрес доставки: Москва, ул. Ленина, 5, кв. 12" in texts and "Анна, вот ваша накладная" in texts
    assert [i["external_id"] for i in json.loads(archive.read("tables/identities.json"))] == ["privacy@example.com"]
    assert json.loads(archive.read("tables/customer_notes.json"))[0]["body"] == "Анна просила звонить после 18:00"
    assert archive.read(f"attachments/{file_id}_накладная.png") == PNG
    with session_scope(write=False) as session:
        audit = session.scalar(select(AuditEntry).where(AuditEntry.workspace_id == ws.id,
                                                        AuditEntry.action == "customer.exported"))
        assert audit is not None and audit.entity_id == customer_id
        assert audit.after is not None and audit.after["tables"]["messages"] == 3 and audit.after["files"] == 1
    # admins only; another workspace's customer does not exist for us
    assert client.get(f"/api/v1/customers/{customer_id}/export", headers=ws.agent).status_code == 403
    assert client.get(f"/api/v1/customers/{customer_id}/export", headers=other_ws.admin).status_code == 404
    assert client.get(f"/api/v1/customers/{customer_id}/export").status_code == 401


def test_erasure_removes_the_personal_data_and_keeps_the_figures(client, ws, other_ws):
    customer_id, cid, file_id = _story(client, ws, "erase-me@example.com")
    other = inbound(client, ws, identity="someone-else@example.com", text="Другой клиент, Москва")
    day = utcnow().date()
    span = {"from": (day - dt.timedelta(days=3)).isoformat(), "to": (day + dt.timedelta(days=1)).isoformat()}
    before = client.get("/api/v1/reports/summary", params=span, headers=ws.admin).json()
    with session_scope(write=False) as session:
        key = session.scalar(select(Attachment.storage_key).where(Attachment.id == file_id))
    assert key is not None and (get_settings().attachments_dir / key).is_file()

    for bad in ({}, {"confirm": False}, {"confirm": "yes"}, {"confirm": True, "also": 1}):
        r = client.post(f"/api/v1/customers/{customer_id}/erase", json=bad, headers=ws.admin)
        assert r.status_code == 422, (bad, r.text)
    assert client.post(f"/api/v1/customers/{customer_id}/erase", json={"confirm": True},
                       headers=ws.agent).status_code == 403
    assert client.post(f"/api/v1/customers/{customer_id}/erase", json={"confirm": True},
                       headers=other_ws.admin).status_code == 404

    r = client.post(f"/api/v1/customers/{customer_id}/erase", json={"confirm": True}, headers=ws.admin)
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["conversations"] == 1 and done["messages"] == 3 and done["files"] == 1
    assert done["rows"]["identities"] == 1 and done["rows"]["customer_notes"] == 1 and done["rows"]["attachments"] == 1

    with session_scope(write=False) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.name == "" and service.is_erased(customer)
        assert customer.search_terms == ""
        assert not session.scalars(select(Identity).where(Identity.customer_id == customer_id)).all()
        messages = session.scalars(select(Message).where(Message.conversation_id == cid)).all()
        assert len(messages) == 3 and all(m.body_text == "" and m.body_html == "" for m in messages)
        assert all(m.meta == {"erased": True} for m in messages)
        conversation = session.get(Conversation, cid)
        assert conversation is not None and conversation.subject == "" and conversation.last_message_preview == ""
        assert conversation.message_count == 3  # the figures stay
        assert session.get(Attachment, file_id) is None
        untouched = session.scalars(select(Message).where(
            Message.conversation_id == other["conversation_id"])).all()
        assert [m.body_text for m in untouched] == ["Другой клиент, Москва"]
        audit = session.scalar(select(AuditEntry).where(AuditEntry.workspace_id == ws.id,
                                                        AuditEntry.action == "customer.erased"))
        assert audit is not None and "Анна" not in json.dumps(audit.after, ensure_ascii=False)
    assert not (get_settings().attachments_dir / key).exists()  # the file is gone from storage

    # nothing of it is found any more, and the report counts the same conversations
    found = client.get("/api/v1/messages/search", params={"q": "Ленина"}, headers=ws.admin)
    assert found.status_code == 200 and found.json()["items"] == []
    after = client.get("/api/v1/reports/summary", params=span, headers=ws.admin).json()
    assert after["conversations"] == before["conversations"]
    # writing again makes a new, unlinked customer (the old identity is gone)
    again = inbound(client, ws, identity="erase-me@example.com", text="Здравствуйте ещё раз")
    assert again["customer_id"] != customer_id
    # erasing again changes nothing and still answers
    r = client.post(f"/api/v1/customers/{customer_id}/erase", json={"confirm": True}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["rows"].get("identities") is None


def test_erasure_takes_the_duplicates_merged_into_the_customer(client, ws):
    a = inbound(client, ws, identity="dup-a@example.com", text="Первый адрес")
    b = inbound(client, ws, identity="+79160000001", kind="phone", text="Второй канал")
    ca, cb = a["customer_id"], b["customer_id"]
    r = client.post(f"/api/v1/customers/{ca}/merge", json={"source_id": cb}, headers=ws.admin)
    assert r.status_code == 200, r.text
    done = client.post(f"/api/v1/customers/{ca}/erase", json={"confirm": True}, headers=ws.admin).json()
    assert done["customers"] == 2 and done["rows"]["identities"] == 2
    with session_scope(write=False) as session:
        texts = session.scalars(select(Message.body_text).where(
            Message.conversation_id.in_([a["conversation_id"], b["conversation_id"]]))).all()
        assert texts and set(texts) == {""}


def test_every_table_about_a_person_has_an_erasure_rule(app):
    """A new table linked to customers, conversations or messages must say what erasure does to it."""
    linked = service.linked_tables()
    assert {"messages", "identities", "survey_answers", "orders"} <= set(linked)
    missing = {t: cols for t, cols in linked.items() if t not in service.POLICY}
    assert not missing, f"add these tables to privacy.service.POLICY: {missing}"
    for table, cols in linked.items():
        rule = service.POLICY[table]
        unlinked = [c for c in cols if c not in rule.links and not c.startswith(("merged_into", "previous_"))
                    and not c.startswith("reply_")]
        assert not unlinked, f"{table}: POLICY does not follow {unlinked}"
        assert rule.action in ("delete", "blank", "keep") and (rule.action != "keep" or rule.why)
        assert rule.action != "blank" or rule.blank


def test_retention_deletes_old_closed_conversations_only(client, ws, other_ws):
    for days in (10, 0, -5, 40000):
        r = client.put("/api/v1/privacy/settings", json={"closed_retention_days": days}, headers=ws.admin)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "closed_retention_days", r.text
    assert client.put("/api/v1/privacy/settings", json={"closed_retention_days": 400},
                      headers=ws.agent).status_code == 403
    r = client.put("/api/v1/privacy/settings", json={"closed_retention_days": 400}, headers=ws.admin)
    assert r.status_code == 200 and r.json() == {"closed_retention_days": 400}
    assert client.get("/api/v1/privacy/settings", headers=ws.admin).json() == {"closed_retention_days": 400}
    assert client.get("/api/v1/privacy/settings", headers=other_ws.admin).json() == {"closed_retention_days": None}

    old_closed = inbound(client, ws, identity="old1@example.com", text="Старое закрытое")["conversation_id"]
    old_open = inbound(client, ws, identity="old2@example.com", text="Старое открытое")["conversation_id"]
    new_closed = inbound(client, ws, identity="new1@example.com", text="Недавно закрытое")["conversation_id"]
    theirs = inbound(client, other_ws, identity="old3@example.com", text="Чужое старое")["conversation_id"]
    for c in (old_closed, new_closed):
        for status in ("solved", "closed"):
            r = client.patch(f"/api/v1/conversations/{c}", json={"status": status}, headers=ws.agent)
            assert r.status_code == 200, r.text
    for status in ("solved", "closed"):
        client.patch(f"/api/v1/conversations/{theirs}", json={"status": status}, headers=other_ws.agent)
    long_ago = utcnow() - dt.timedelta(days=401)
    with session_scope() as session:
        session.execute(update(Conversation).where(Conversation.id.in_([old_closed, old_open, theirs]))
                        .values(closed_at=long_ago, updated_at=long_ago))
        session.execute(update(Conversation).where(Conversation.id == new_closed)
                        .values(closed_at=utcnow() - dt.timedelta(days=399)))

    deleted = service.sweep_retention()
    assert deleted.get(ws.id) == 1 and other_ws.id not in deleted
    with session_scope(write=False) as session:
        assert session.get(Conversation, old_closed) is None
        assert not session.scalars(select(Message).where(Message.conversation_id == old_closed)).all()
        assert session.get(Conversation, old_open) is not None  # open: never
        assert session.get(Conversation, new_closed) is not None  # 399 days < 400
        assert session.get(Conversation, theirs) is not None  # that workspace keeps everything
        audit = session.scalar(select(AuditEntry).where(AuditEntry.workspace_id == ws.id,
                                                        AuditEntry.action == "privacy.retention_deleted"))
        assert audit is not None and audit.after == {"conversations": 1, "closed_retention_days": 400}
    assert service.sweep_retention().get(ws.id) is None  # nothing left to do
