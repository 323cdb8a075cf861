"""The customer's own page (issue 19): the name once, tabs; every conversation paged 50 at a time; the orders
the customer wrote about, each with its conversations; tasks open and done; notes; a bad tab is a 422; another
workspace's customer is a 404."""

from __future__ import annotations

import pytest

from otklik.conversations import service as conversations
from otklik.platform.db import session_scope
from tests.web.a2_support import receive, sign_in


@pytest.fixture
def agent(client, ws):
    csrf = sign_in(client, ws.agent_email)
    yield csrf
    client.cookies.clear()


def test_tabs_page_the_conversations_and_list_the_orders(client, ws, other_ws, agent):
    _, customer_id = receive(ws.id, "email", "email", "many@example.com", "Где мой заказ № 45123?", name="Лев")
    receive(ws.id, "email", "email", "many@example.com", "И ещё по заказу 77001: не та модель", name="Лев")
    from otklik.accounts import service as accounts

    with session_scope() as s:
        actor = accounts.Actor.system(ws.id)
        for i in range(58):
            conversations.create_conversation(s, actor, customer_id=customer_id, channel="email", subject=f"Вопрос {i}")
    page = client.get(f"/customers/{customer_id}")
    assert page.status_code == 200
    assert page.text.count('id="customer-title"') == 1 and 'id="cpanel-name"' not in page.text
    assert page.text.count("<tr data-conversation-id=") == 50 and 'id="customer-more"' in page.text
    older = client.get(f"/customers/{customer_id}?tab=conversations&cursor="
                       + page.text.split('cursor=')[1].split('"')[0])
    assert older.status_code == 200 and older.text.count("<tr data-conversation-id=") >= 9
    orders = client.get(f"/customers/{customer_id}?tab=orders").text
    assert 'data-order="45123"' in orders and 'data-order="77001"' in orders
    assert client.get(f"/customers/{customer_id}?tab=nope").status_code == 422
    for tab in ("tasks", "notes", "profile"):
        assert client.get(f"/customers/{customer_id}?tab={tab}").status_code == 200
    _, foreign = receive(other_ws.id, "email", "email", "x@example.com", "Здравствуйте", name="Чужой")
    assert client.get(f"/customers/{foreign}").status_code == 404


def test_search_ranks_conversations_by_relevance_and_pages_past_ten(client, ws, agent):
    from otklik.accounts import service as accounts

    for i in range(29):
        receive(ws.id, "email", "email", f"c{i}@example.com", f"Здравствуйте, вопрос про торт {i}", name=f"К{i}")
    best, _ = receive(ws.id, "email", "email", "fan@example.com", "Торт «Наполеон»: торты у вас лучшие, торт на 5 кг?",
                      name="Фанат")
    with session_scope() as s:
        actor = accounts.Actor.system(ws.id)
        conversations.update_conversation(s, actor, best, {"subject": "Торт на юбилей"})
    page = client.get("/search", params={"q": "торт"})
    assert page.status_code == 200
    rows = page.text.split('id="search-conversations"')[1].split("</ul>")[0]
    first = rows.split('data-conversation-id="')[1].split('"')[0]
    assert int(first) == best  # three «торт» in its message and in its subject: first, although not the newest
    assert rows.count('class="search-conversation"') == 25 and 'id="search-more"' in page.text
    assert ">30<" in page.text.split('id="search-conversations-title"')[1].split("</h2>")[0]
    second = client.get("/search", params={"q": "торт", "page": 2})
    assert second.text.split('id="search-conversations"')[1].split("</ul>")[0].count('class="search-conversation"') == 5
    assert client.get("/search", params={"q": "торт", "page": 0}).status_code == 422
