"""The customer panel and customer pages: history on every channel, notes, tasks, merge, escaping, isolation."""

from __future__ import annotations

import re

import pytest

from otklik.customers.tasks import create_task
from otklik.platform.db import session_scope
from tests.conftest import inbound
from tests.web.a2_support import count_statements, hx, receive, seed_cake_customer, sign_in

XSS = '<img src=x onerror=alert(1)>'


@pytest.fixture
def agent(client, ws):
    csrf = sign_in(client, ws.agent_email)
    yield csrf
    client.cookies.clear()


def _customer_with_history(client, ws):
    return seed_cake_customer(client, ws)


def test_panel_shows_history_on_every_channel(client, ws, agent):
    customer_id, conv_ids = _customer_with_history(client, ws)
    r = client.get(f"/ui/customers/{customer_id}/panel", params={"conversation_id": conv_ids[1]},
                   headers={"HX-Request": "true"})
    assert r.status_code == 200, r.text
    html = r.text
    assert 'id="cpanel"' in html
    channels = re.findall(r'class="history-item[^"]*" data-conversation-id="(\d+)" data-channel="(\w+)"', html)
    assert sorted(c for _, c in channels) == ["email", "phone", "telegram"]
    assert {int(i) for i, _ in channels} == set(conv_ids)
    assert f'class="history-item current" data-conversation-id="{conv_ids[1]}"' in html
    kinds = re.findall(r'class="identity" data-kind="(\w+)"', html)
    assert sorted(kinds) == ["email", "phone", "telegram"]
    assert "торт на субботу" in html or "Хочу заказать" in html


def test_panel_notes_and_tasks_inline(client, ws, agent):
    customer_id, conv_ids = _customer_with_history(client, ws)
    r = client.post(f"/ui/customers/{customer_id}/notes", data={"body": "Любит шоколадный бисквит",
                                                                 "conversation_id": conv_ids[0]}, headers=hx(agent))
    assert r.status_code == 200 and "Любит шоколадный бисквит" in r.text
    assert client.get(f"/api/v1/customers/{customer_id}/notes", headers=ws.admin).json()[0]["author_user_id"] == ws.agent_id
    r = client.post(f"/ui/customers/{customer_id}/tasks", data={"title": "Перезвонить про надпись",
                                                                 "due_at": "2026-12-01T10:00",
                                                                 "assignee_id": str(ws.agent_id)}, headers=hx(agent))
    assert r.status_code == 200, r.text
    task_id = int(re.search(r'class="task[^"]*" data-task-id="(\d+)"', r.text).group(1))
    task = client.get(f"/api/v1/tasks/{task_id}", headers=ws.admin).json()
    assert task["due_at"].startswith("2026-12-01T07:00")  # 10:00 Moscow
    r = client.post(f"/ui/tasks/{task_id}/complete", data={}, headers=hx(agent))
    assert r.status_code == 200 and f'data-task-id="{task_id}"' not in r.text
    # empty note: a short message for the toast, not a page
    r = client.post(f"/ui/customers/{customer_id}/notes", data={"body": "  "}, headers=hx(agent))
    assert r.status_code == 422 and "<html" not in r.text
    # without the CSRF token nothing is written
    r = client.post(f"/ui/customers/{customer_id}/notes", data={"body": "x"}, headers={"HX-Request": "true"})
    assert r.status_code == 403


def test_panel_escapes_customer_text(client, ws, agent):
    _, customer_id = receive(ws.id, "email", "email", "xss@example.com", XSS, name=XSS)
    client.post(f"/api/v1/customers/{customer_id}/notes", json={"body": XSS}, headers=ws.admin)
    client.patch(f"/api/v1/customers/{customer_id}", json={"attributes": {XSS: XSS, "plan": {"x": XSS}}}, headers=ws.admin)
    with session_scope() as session:
        create_task(session, ws.id, customer_id=customer_id, title=XSS, note=XSS)
    for url in (f"/ui/customers/{customer_id}/panel", f"/customers/{customer_id}", "/customers",
                f"/ui/customers/{customer_id}/merge-candidates?q=xss"):
        html = client.get(url).text
        assert "<img src=x" not in html, url
        assert "&lt;img src=x onerror=alert(1)&gt;" in html or url.endswith("q=xss"), url


def test_panel_isolation_and_merged_profiles(client, ws, other_ws, agent):
    foreign = inbound(client, other_ws, identity="foreign@example.com")
    foreign_customer = client.get(f"/api/v1/conversations/{foreign['conversation_id']}",
                                  headers=other_ws.admin).json()["customer"]["id"]
    assert client.get(f"/ui/customers/{foreign_customer}/panel").status_code == 404
    assert client.get(f"/customers/{foreign_customer}").status_code == 404
    r = client.post(f"/ui/customers/{foreign_customer}/notes", data={"body": "x"}, headers=hx(agent))
    assert r.status_code == 404
    mine = client.post("/api/v1/customers", json={"name": "Мой"}, headers=ws.admin).json()["id"]
    r = client.post(f"/ui/customers/{mine}/merge", data={"source_id": foreign_customer}, headers=hx(agent))
    assert r.status_code == 404


def test_merge_from_panel(client, ws, agent):
    target = client.post("/api/v1/customers", json={"name": "Ирина Петрова", "identities": [
        {"kind": "email", "external_id": "irina@example.com"}]}, headers=ws.admin).json()["id"]
    source = client.post("/api/v1/customers", json={"name": "Ирина (Telegram)", "identities": [
        {"kind": "telegram", "external_id": "555123"}]}, headers=ws.admin).json()["id"]
    receive(ws.id, "telegram", "telegram", "555123", "Это снова я")
    r = client.get(f"/ui/customers/{target}/merge-candidates", params={"q": "Ирина"}, headers={"HX-Request": "true"})
    assert f'data-customer-id="{source}"' in r.text and f'data-customer-id="{target}"' not in r.text
    r = client.post(f"/ui/customers/{target}/merge", data={"source_id": source}, headers=hx(agent))
    assert r.status_code == 200
    assert 'data-kind="telegram"' in r.text, r.text
    assert 'data-channel="telegram"' in r.text
    assert client.get(f"/api/v1/customers/{source}", headers=ws.admin).json()["merged_into_id"] == target
    # the old profile's page leads to the survivor
    r = client.get(f"/customers/{source}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/customers/{target}"


def test_panel_statement_count_does_not_grow_with_history(client, ws, agent):
    def panel_statements(customer_id):
        client.get(f"/ui/customers/{customer_id}/panel")
        with count_statements() as counter:
            assert client.get(f"/ui/customers/{customer_id}/panel").status_code == 200
        return counter["n"]

    small = inbound(client, ws, identity="small@example.com", text="один")
    small_id = client.get(f"/api/v1/conversations/{small['conversation_id']}", headers=ws.admin).json()["customer"]["id"]
    big = inbound(client, ws, identity="big@example.com", text="раз")
    big_id = client.get(f"/api/v1/conversations/{big['conversation_id']}", headers=ws.admin).json()["customer"]["id"]
    for i in range(6):
        client.post(f"/api/v1/customers/{big_id}/notes", json={"body": f"заметка {i}"}, headers=ws.admin)
        client.post("/api/v1/tasks", json={"customer_id": big_id, "title": f"задача {i}",
                                           "assignee_id": ws.agent_id}, headers=ws.admin)
        client.post("/api/v1/conversations", json={"customer_id": big_id, "channel": "email", "subject": f"тема {i}"},
                    headers=ws.admin)
    # six more notes, tasks and conversations: an N+1 would add six or more statements. (Other owners'
    # optional sections - page visits, identity suggestions - may vary by one or two with the data.)
    big_count, small_count = panel_statements(big_id), panel_statements(small_id)
    assert big_count - small_count < 3, (big_count, small_count)
    assert big_count <= 20


def test_customer_list_and_search(client, ws, agent):
    client.post("/api/v1/customers", json={"name": "Пётр Кондитеров", "identities": [
        {"kind": "email", "external_id": "petr@example.com"}]}, headers=ws.admin)
    r = client.get("/customers", params={"q": "Кондитеров"})
    assert r.status_code == 200 and "Пётр Кондитеров" in r.text
    assert "petr@example.com" in r.text
    r = client.get("/customers", params={"q": "!!!"})
    assert r.status_code == 200 and 'role="alert"' in r.text


def test_panel_offers_identity_match_suggestions(client, ws, agent):
    pytest.importorskip("otklik.customers.suggestions")
    _, mine = receive(ws.id, "email", "email", "ivan.petrov@mail.ru", "Здравствуйте", name="Иван Петров")
    _, twin = receive(ws.id, "email", "email", "ivan.petrov@yandex.ru", "Это я же", name="Иван Петров")
    html = client.get(f"/ui/customers/{mine}/panel").text
    assert 'id="cpanel-suggestions"' in html
    assert f'name="source_id" value="{twin}"' in html and "ivan.petrov@yandex.ru" in html
    r = client.post(f"/ui/customers/{mine}/merge", data={"source_id": twin}, headers=hx(agent))
    assert r.status_code == 200 and 'id="cpanel-suggestions"' not in r.text


def test_panel_lists_pages_visited_on_the_site(client, ws, agent):
    widget = pytest.importorskip("otklik.web.widget.service")
    with session_scope() as session:
        row = widget.get_settings_row(session, ws.id)
        visitor, _ = widget.start_session(session, row, token=None, language="ru", claim=None)
        got = widget.send_message(session, visitor, client_id="panel-visit-1", text="Есть торты без сахара?")
        widget.record_page_view(session, visitor, url="https://shop.example/cakes?diet=sugar-free", title=XSS)
        customer_id = visitor.customer_id
    assert customer_id and got
    html = client.get(f"/ui/customers/{customer_id}/panel").text
    assert 'id="cpanel-visits"' in html
    assert 'href="https://shop.example/cakes?diet=sugar-free"' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html and "<img src=x" not in html
