"""The search page: conversations, messages with an escaped highlighted snippet, customers; by number too."""

from __future__ import annotations

import pytest

from otklik.web.ui.search import highlight
from tests.web.a2_support import count_statements, receive, sign_in


@pytest.fixture
def agent(client, ws):
    yield sign_in(client, ws.agent_email)
    client.cookies.clear()


def test_highlight_escapes_and_marks():
    html = str(highlight("Где мой <b>заказ</b>? Заказа всё нет", "заказ"))
    assert "<b>" not in html and "&lt;b&gt;" in html
    assert html.count("<mark>") == 2 and "<mark>Заказа</mark>" in html
    long = "слово " * 100 + "торт"
    assert str(highlight(long, "торт")).startswith("…") and "<mark>торт</mark>" in str(highlight(long, "торт"))


def test_search_finds_messages_conversations_customers(client, ws, other_ws, agent):
    conv, customer = receive(ws.id, "email", "email", "marina@example.com",
                             "Здравствуйте! <script>alert(1)</script> Где мой заказ с тортом?", name="Марина Тортова")
    receive(other_ws.id, "email", "email", "spy@example.com", "чужой торт")
    r = client.get("/search", params={"q": "торт"})
    assert r.status_code == 200
    html = r.text
    assert f'class="search-conversation" data-conversation-id="{conv}"' in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<mark>тортом</mark>" in html
    assert f'class="search-customer" data-customer-id="{customer}"' in html
    assert "чужой" not in html and "spy@example.com" not in html
    number = client.get(f"/api/v1/conversations/{conv}", headers=ws.admin).json()["number"]
    r = client.get("/search", params={"q": f"#{number}"})
    assert 'id="search-by-number"' in r.text and f'data-conversation-id="{conv}"' in r.text


def test_search_bad_and_empty_queries(client, ws, agent):
    assert client.get("/search").status_code == 200
    r = client.get("/search", params={"q": "!!!"})
    assert r.status_code == 200 and 'id="search-error"' in r.text
    assert client.get("/search", params={"q": "x" * 201}).status_code == 422
    client.cookies.clear()
    r = client.get("/search", params={"q": "торт"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_search_statements_do_not_grow_with_results(client, ws, agent):
    def statements():
        with count_statements() as counter:
            assert client.get("/search", params={"q": "пирожное"}).status_code == 200
        return counter["n"]

    receive(ws.id, "email", "email", "p0@example.com", "пирожное", name="Пирожков 0")
    few = statements()
    for i in range(1, 8):
        receive(ws.id, "telegram", "telegram", str(9000 + i), f"пирожное {i}", name=f"Пирожков {i}")
    assert statements() == few
