"""The inbox page: views, filters, unread counts, saved filters, signals in red, escaping, isolation."""

from __future__ import annotations

import re

import pytest

from otklik.accounts import service as accounts
from otklik.conversations import service as conversations
from otklik.conversations.signals import set_signals
from otklik.platform.db import session_scope
from otklik.platform.errors import InvalidInput
from tests.conftest import inbound
from tests.web._ui import Browser

ROW = re.compile(r'class="conv-row[^"]*" data-conversation-id="(\d+)"')


@pytest.fixture
def browser_for(app, client):
    return lambda email=None, **kw: Browser(app, email, **kw)


def ids(html: str) -> set[int]:
    return {int(x) for x in ROW.findall(html)}


def count(html: str, view: str) -> int:
    return int(re.search(rf'id="view-{view}"[^>]*>.*?data-count="(\d+)"', html, re.S).group(1))


def test_views_filters_and_unread_counts(browser_for, client, ws):
    a = inbound(client, ws, identity="a@example.com", text="Первый")["conversation_id"]
    b = inbound(client, ws, identity="b@example.com", text="Второй", kind="email")["conversation_id"]
    c = inbound(client, ws, identity="c@example.com", text="Третий")["conversation_id"]
    with session_scope() as s:
        admin = ws.actor("admin")
        team = accounts.create_team(s, admin, name="Доставка", member_ids=[ws.agent_id])
        conversations.update_conversation(s, admin, a, {"assignee_id": ws.agent_id, "priority": "high",
                                                        "tags": ["vip"], "category": "delivery"})
        conversations.update_conversation(s, admin, b, {"team_id": team.id, "language": "en"})
        conversations.update_conversation(s, admin, c, {"status": "solved"})
    agent = browser_for(ws.agent_email)
    page = agent.get("/inbox").text
    assert ids(page) == {a}  # "mine" is the default view
    assert count(page, "mine") == 1 and count(page, "unassigned") == 1 and count(page, "team") == 1
    assert count(page, "all") == 2  # the solved one is not active
    assert ids(agent.get("/inbox?view=unassigned").text) == {b}
    assert ids(agent.get("/inbox?view=team").text) == {b}
    assert ids(agent.get("/inbox?view=all").text) == {a, b}
    assert ids(agent.get("/inbox?view=all&status=solved").text) == {c}
    assert ids(agent.get("/inbox?view=all&status=any").text) == {a, b, c}
    assert ids(agent.get("/inbox?view=all&priority=high").text) == {a}
    assert ids(agent.get("/inbox?view=all&tag=vip").text) == {a}
    assert ids(agent.get("/inbox?view=all&category=delivery").text) == {a}
    assert ids(agent.get("/inbox?view=all&language=en").text) == {b}
    assert ids(agent.get("/inbox?view=all&channel=api").text) == {a, b}
    assert ids(agent.get("/inbox?view=all&channel=telegram").text) == set()
    assert ids(agent.get(f"/inbox?view=all&assignee={ws.agent_id}").text) == {a}
    assert ids(agent.get("/inbox?view=all&assignee=none").text) == {b}
    # sorted by waiting time (longest first) or by priority
    assert ids(agent.get("/inbox?view=all&sort=priority").text) == {a, b}
    assert ROW.findall(agent.get("/inbox?view=all&sort=priority").text)[0] == str(a)

    # opening a conversation marks it read for me (not for others)
    assert 'conv-row unread' in agent.get("/inbox").text
    agent.get(f"/conversations/{a}")
    page = agent.get("/inbox").text
    assert count(page, "mine") == 0 and count(page, "all") == 1 and "conv-row unread" not in page
    assert count(browser_for(ws.admin_email).get("/inbox").text, "all") == 2
    # a new customer message makes it unread again
    inbound(client, ws, identity="a@example.com", text="Ещё вопрос", conversation_id=a)
    assert count(agent.get("/inbox").text, "mine") == 1


def test_bad_filter_values_are_a_clear_422(browser_for, ws):
    agent = browser_for(ws.agent_email)
    for query in ("view=nope", "status=deleted", "channel=fax", "priority=max", "sort=random",
                  "assignee=abc", "flagged=yes", "cursor=@@@", "tag=" + "x" * 300):
        r = agent.get("/inbox?" + query)
        assert r.status_code in (400, 422), query
        assert 'id="error-message"' in r.text
    r = agent.get("/ui/inbox/list?view=nope", headers={"HX-Request": "true"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("text/plain")


def test_urgent_and_negative_conversations_stand_out_and_filter(browser_for, client, ws):
    calm = inbound(client, ws, identity="calm@example.com", text="Спасибо")["conversation_id"]
    angry = inbound(client, ws, identity="angry@example.com", text="Ужасно!")["conversation_id"]
    urgent = inbound(client, ws, identity="fire@example.com", text="Срочно")["conversation_id"]
    with session_scope() as s:
        actor = ws.actor()
        assert set_signals(s, conversations.get_conversation(s, actor, angry), sentiment="negative")
        assert set_signals(s, conversations.get_conversation(s, actor, urgent), urgent=True)
        assert not set_signals(s, conversations.get_conversation(s, actor, urgent), urgent=True)  # no change
        with pytest.raises(InvalidInput):
            set_signals(s, conversations.get_conversation(s, actor, calm), sentiment="furious")
    agent = browser_for(ws.agent_email)
    page = agent.get("/inbox?view=all").text
    alert_rows = set(map(int, re.findall(r'class="conv-row[^"]*alert[^"]*" data-conversation-id="(\d+)"', page)))
    assert alert_rows == {angry, urgent}
    assert ids(agent.get("/inbox?view=all&flagged=1").text) == {angry, urgent}
    audit = agent.get(f"/conversations/{angry}").text
    assert "negative" in audit or "негатив" in audit


def test_mentions_view(browser_for, client, ws):
    conv = inbound(client, ws, text="Нужна помощь")["conversation_id"]
    admin = browser_for(ws.admin_email)
    with session_scope(write=False) as s:
        agent_name = accounts.get_user(s, ws.actor(), ws.agent_id).name
    r = admin.post(f"/ui/conversations/{conv}/reply", {"text": f"@{agent_name} посмотри, пожалуйста",
                                                       "mode": "note"})
    assert r.status_code == 204
    agent = browser_for(ws.agent_email)
    page = agent.get("/inbox").text
    assert count(page, "mentions") == 1
    assert ids(agent.get("/inbox?view=mentions").text) == {conv}
    agent.get(f"/conversations/{conv}")
    assert count(agent.get("/inbox").text, "mentions") == 0
    assert ids(agent.get("/inbox?view=mentions").text) == {conv}  # still listed, no longer unread
    # the admin who wrote the note is not mentioned, nor is anyone by a public reply
    assert count(admin.get("/inbox").text, "mentions") == 0


def test_saved_filters(browser_for, ws, other_ws):
    agent = browser_for(ws.agent_email)
    r = agent.post("/ui/saved-views", {"name": "Срочные в почте", "query": "view=all&priority=urgent&channel=email"},
                   htmx=False)
    assert r.status_code == 303 and "priority=urgent" in r.headers["location"]
    page = agent.get("/inbox").text
    saved = re.search(r'href="/inbox\?([^"]+)" data-saved-view="(\d+)">Срочные в почте<', page)
    assert saved and "channel=email" in saved.group(1)
    assert agent.post("/ui/saved-views", {"name": "bad", "query": "view=nope"}).status_code == 422
    assert agent.post("/ui/saved-views", {"name": "  ", "query": ""}).status_code == 422
    other = browser_for(other_ws.agent_email)
    assert other.post(f"/ui/saved-views/{saved.group(2)}/delete").status_code == 404  # not theirs
    assert agent.post(f"/ui/saved-views/{saved.group(2)}/delete", htmx=False).status_code == 303
    assert "Срочные в почте" not in agent.get("/inbox").text


def test_pagination_by_cursor(browser_for, client, ws):
    for i in range(33):
        inbound(client, ws, identity=f"p{i}@example.com", text=f"Сообщение {i}")
    agent = browser_for(ws.agent_email)
    page = agent.get("/inbox?view=all").text
    first = ids(page)
    assert len(first) == 30
    more = re.search(r'hx-get="(/ui/inbox/list\?[^"]*cursor=[^"]+)"', page).group(1).replace("&amp;", "&")
    rest = ids(agent.get(more, headers={"HX-Request": "true"}).text)
    assert len(rest) == 3 and not rest & first


def test_customer_text_is_escaped_in_the_inbox_and_thread(browser_for, client, ws):
    hostile = '<script>alert(1)</script><img src=x onerror=alert(2)> <a href="javascript:alert(3)">x</a>'
    conv = inbound(client, ws, text=hostile, customer_name='<img src=x onerror=alert("name")>')["conversation_id"]
    agent = browser_for(ws.agent_email)
    for url in ("/inbox?view=all", f"/conversations/{conv}", f"/ui/conversations/{conv}/thread",
                "/ui/inbox/list?view=all"):
        html = agent.get(url).text
        assert "<script>alert" not in html and "<img src=x" not in html and 'href="javascript:' not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html or "&lt;img src=x" in html, url


def test_other_workspaces_conversations_are_not_found(browser_for, client, ws, other_ws):
    theirs = inbound(client, other_ws, text="Чужое")["conversation_id"]
    agent = browser_for(ws.agent_email)
    assert agent.get(f"/conversations/{theirs}").status_code == 404
    assert agent.get(f"/ui/conversations/{theirs}/thread").status_code == 404
    assert agent.post(f"/ui/conversations/{theirs}/reply", {"text": "hi"}).status_code == 404
    assert agent.post(f"/ui/conversations/{theirs}/update", {"status": "solved"}).status_code == 404
    assert theirs not in ids(agent.get("/inbox?view=all&status=any").text)


def test_active_views_order_by_waiting_across_statuses_and_page_without_gaps(browser_for, client, ws):
    import datetime as dt

    from sqlalchemy import update

    from otklik.conversations.models import Conversation

    made = [inbound(client, ws, identity=f"w{i}@example.com", text=f"Ждёт {i}")["conversation_id"]
            for i in range(36)]
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    with session_scope() as s:
        for i, cid in enumerate(made):
            # waiting times interleave the statuses; each query per status must merge into one order
            s.execute(update(Conversation).where(Conversation.id == cid).values(
                status=("new", "open", "pending")[i % 3],
                last_customer_message_at=base + dt.timedelta(minutes=(i * 7) % 36),
                last_message_at=base + dt.timedelta(minutes=(i * 7) % 36)))
    expected = sorted(made, key=lambda cid: ((made.index(cid) * 7) % 36, cid))
    agent = browser_for(ws.agent_email)
    page = agent.get("/inbox?view=all").text
    first = [int(x) for x in ROW.findall(page)]
    more = re.search(r'hx-get="(/ui/inbox/list\?[^"]*cursor=[^"]+)"', page).group(1).replace("&amp;", "&")
    rest = [int(x) for x in ROW.findall(agent.get(more, headers={"HX-Request": "true"}).text)]
    assert first + rest == expected
    by_priority = [int(x) for x in ROW.findall(agent.get("/inbox?view=all&sort=priority").text)]
    assert by_priority == sorted(made, reverse=True)[:30]  # all normal priority: newest id first
