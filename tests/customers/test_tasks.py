"""Customer tasks: the service other channels call for callback requests, and the tasks API."""

from __future__ import annotations

import datetime as dt

import pytest

from otklik.customers.tasks import create_task, list_tasks
from otklik.platform.db import session_scope
from otklik.platform.errors import InvalidInput, NotFound
from tests.conftest import inbound


def _customer(client, ws, email="task@example.com", name="Ольга"):
    r = client.post("/api/v1/customers", json={"name": name, "identities": [{"kind": "email", "external_id": email}]},
                    headers=ws.admin)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_service_signature_for_channels(client, ws):
    """A phone channel asks for a callback: create_task(session, workspace_id, *, customer_id, title, ...)."""
    got = inbound(client, ws, identity="+79161234567", kind="phone", text="Перезвоните мне")
    conv = client.get(f"/api/v1/conversations/{got['conversation_id']}", headers=ws.admin).json()
    due = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    with session_scope() as session:
        task = create_task(session, ws.id, customer_id=conv["customer"]["id"], title="Перезвонить клиенту",
                           conversation_id=got["conversation_id"], due_at=due, assignee_id=ws.agent_id,
                           note="звонок с сайта")
        task_id = task.id
    r = client.get(f"/api/v1/tasks/{task_id}", headers=ws.agent)
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "Перезвонить клиенту" and body["conversation_id"] == got["conversation_id"]
    assert body["created_by"] is None and body["done_at"] is None
    assert dt.datetime.fromisoformat(body["due_at"]) == due


def test_service_refuses_foreign_and_bad_input(client, ws, other_ws):
    mine = _customer(client, ws)
    theirs = _customer(client, other_ws, email="their@example.com")
    foreign_conv = inbound(client, other_ws, identity="x@example.com")["conversation_id"]
    with session_scope() as session, pytest.raises(NotFound):
        create_task(session, ws.id, customer_id=theirs, title="x")
    with session_scope() as session, pytest.raises(InvalidInput):
        create_task(session, ws.id, customer_id=mine, title="x", conversation_id=foreign_conv)
    with session_scope() as session, pytest.raises(InvalidInput):
        create_task(session, ws.id, customer_id=mine, title="x", assignee_id=other_ws.agent_id)
    with session_scope() as session, pytest.raises(InvalidInput):
        create_task(session, ws.id, customer_id=mine, title="   ")
    with session_scope() as session, pytest.raises(InvalidInput):
        create_task(session, ws.id, customer_id=mine, title="x", due_at=dt.datetime(2026, 1, 1))


def test_api_create_list_complete(client, ws):
    customer = _customer(client, ws)
    r = client.post("/api/v1/tasks", json={"customer_id": customer, "title": "Выслать счёт",
                                           "due_at": "2026-12-01T10:00:00+03:00", "assignee_id": ws.agent_id},
                    headers=ws.agent)
    assert r.status_code == 201, r.text
    task = r.json()
    assert task["created_by"] == ws.agent_id
    listed = client.get("/api/v1/tasks", params={"customer_id": customer}, headers=ws.agent).json()
    assert [t["id"] for t in listed["items"]] == [task["id"]]
    r = client.post(f"/api/v1/tasks/{task['id']}/complete", headers=ws.agent)
    assert r.status_code == 200 and r.json()["done_by"] == ws.agent_id
    assert client.post(f"/api/v1/tasks/{task['id']}/complete", headers=ws.agent).status_code == 409
    assert client.get("/api/v1/tasks", params={"customer_id": customer}, headers=ws.agent).json()["items"] == []
    done = client.get("/api/v1/tasks", params={"customer_id": customer, "include_done": True}, headers=ws.agent)
    assert [t["id"] for t in done.json()["items"]] == [task["id"]]
    r = client.patch(f"/api/v1/tasks/{task['id']}", json={"done": False, "title": "Выслать счёт снова"},
                     headers=ws.agent)
    assert r.status_code == 200 and r.json()["done_at"] is None and r.json()["title"] == "Выслать счёт снова"


def test_api_bad_input(client, ws, other_ws):
    customer = _customer(client, ws)
    cases = [
        {"customer_id": customer},
        {"customer_id": customer, "title": ""},
        {"customer_id": customer, "title": "x" * 301},
        {"customer_id": customer, "title": "x", "due_at": "завтра"},
        {"customer_id": customer, "title": "x", "unknown": 1},
        {"customer_id": customer, "title": "x", "assignee_id": other_ws.agent_id},
    ]
    for body in cases:
        r = client.post("/api/v1/tasks", json=body, headers=ws.admin)
        assert r.status_code == 422, (body, r.text)
    foreign = _customer(client, other_ws, email="f@example.com")
    assert client.post("/api/v1/tasks", json={"customer_id": foreign, "title": "x"}, headers=ws.admin).status_code == 404
    assert client.patch("/api/v1/tasks/1", json={"done": None}, headers=ws.admin).status_code in (404, 422)


def test_merge_moves_tasks(client, ws):
    a = _customer(client, ws, email="a@example.com")
    b = _customer(client, ws, email="b@example.com")
    task = client.post("/api/v1/tasks", json={"customer_id": b, "title": "Перезвонить"}, headers=ws.admin).json()
    assert client.post(f"/api/v1/customers/{a}/merge", json={"source_id": b}, headers=ws.admin).status_code == 200
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=ws.admin).json()["customer_id"] == a
    # a task for the merged duplicate lands on the survivor
    with session_scope() as session:
        assert create_task(session, ws.id, customer_id=b, title="ещё").customer_id == a
        rows, _ = list_tasks(session, ws.actor(), customer_id=a)
        assert len(rows) == 2


def test_delete_needs_author_or_supervisor(client, ws):
    customer = _customer(client, ws)
    task = client.post("/api/v1/tasks", json={"customer_id": customer, "title": "x"}, headers=ws.admin).json()
    assert client.delete(f"/api/v1/tasks/{task['id']}", headers=ws.agent).status_code == 403
    assert client.delete(f"/api/v1/tasks/{task['id']}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/tasks/{task['id']}", headers=ws.admin).status_code == 404
