"""The conversation view: thread, replies and notes, template variables, side-bar changes, notifications."""

from __future__ import annotations

import re

import pytest

from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.conftest import inbound
from tests.web._ui import Browser


@pytest.fixture
def browser_for(app, client):
    return lambda email=None, **kw: Browser(app, email, **kw)


def test_thread_shows_messages_notes_and_system_events(browser_for, client, ws):
    conv = inbound(client, ws, text="Где заказ?")["conversation_id"]
    agent = browser_for(ws.agent_email)
    assert agent.post(f"/ui/conversations/{conv}/reply", {"text": "Уже везём"}).status_code == 204
    assert agent.post(f"/ui/conversations/{conv}/reply", {"text": "курьер опаздывает", "mode": "note"}
                      ).status_code == 204
    assert agent.post(f"/ui/conversations/{conv}/update", {"status": "pending"}).status_code == 200
    page = agent.get(f"/conversations/{conv}").text
    assert re.search(r'class="msg inbound".*Где заказ\?', page, re.S)
    assert re.search(r'class="msg outbound".*Уже везём', page, re.S)
    assert re.search(r'class="msg note".*курьер опаздывает', page, re.S)
    assert 'class="ticks' in page  # delivery status of the public reply (not delivered: no api webhook here)
    events = re.findall(r'class="sys event"[^>]*>([^<]*)', page)
    assert any("ожидает" in e for e in events) and any("назначил" in e for e in events)
    # the live-update fragment returns only what came after the ids the page has
    last = max(map(int, re.findall(r'data-message-id="(\d+)"', page)))
    last_event = max(map(int, re.findall(r'data-event-id="(\d+)"', page)))
    assert agent.get(f"/ui/conversations/{conv}/thread?after={last}&after_event={last_event}").text.strip() == ""
    inbound(client, ws, text="Спасибо!", conversation_id=conv)
    fresh = agent.get(f"/ui/conversations/{conv}/thread?after={last}&after_event={last_event}").text
    assert "Спасибо!" in fresh and "Уже везём" not in fresh
    # one message again (its delivery status changed): only that message, with its ticks
    reply_id = int(re.search(r'id="msg-(\d+)"[^>]*data-author-kind="agent"', page).group(1))
    one = agent.get(f"/ui/conversations/{conv}/thread?only={reply_id}").text
    assert one.count('class="msg ') == 1 and "Уже везём" in one and 'class="ticks' in one


def test_unresolved_template_variables_are_never_sent(browser_for, client, ws):
    conv = inbound(client, ws, text="Когда доставка?")["conversation_id"]
    agent = browser_for(ws.agent_email)
    r = agent.post(f"/ui/conversations/{conv}/reply", {"text": "Заказ {{ order_number }} в пути"})
    assert r.status_code == 409 and "order_number" in r.text
    # an internal note may keep the braces (it goes to no customer)
    assert agent.post(f"/ui/conversations/{conv}/reply", {"text": "шаблон {{x}}", "mode": "note"}).status_code == 204
    with session_scope(write=False) as s:
        items, _ = conversations.list_messages(s, ws.actor(), conv)
        assert not [m for m in items if m.direction == "outbound" and not m.is_internal]


def test_reply_input_is_checked(browser_for, client, ws):
    conv = inbound(client, ws, text="Привет")["conversation_id"]
    agent = browser_for(ws.agent_email)
    url = f"/ui/conversations/{conv}/reply"
    assert agent.post(url, {"text": "   "}).status_code == 422
    assert agent.post(url, {"text": "x", "mode": "shout"}).status_code == 422
    assert agent.post(url, {"text": "x", "channel": "telegram"}).status_code == 422  # no Telegram identity
    assert agent.post(url, {"text": "x" * 100_001}).status_code in (413, 422)
    assert agent.post("/ui/conversations/999999999/reply", {"text": "x"}).status_code == 404
    assert agent.post("/ui/conversations/abc/reply", {"text": "x"}).status_code == 422
    # send-as: the customer's e-mail identity is offered next to the conversation's own channel
    page = agent.get(f"/conversations/{conv}").text
    assert re.search(r'<select name="channel" id="reply-channel">.*value="api".*value="email"', page, re.S)
    assert agent.post(url, {"text": "по почте", "channel": "email"}).status_code == 204
    with session_scope(write=False) as s:
        items, _ = conversations.list_messages(s, ws.actor(), conv)
        assert items[-1].channel == "email" and items[-1].body_text == "по почте"


def test_channel_reply_rule_is_shown_and_enforced(browser_for, client, ws):
    conv = inbound(client, ws, text="Через форму", identity="form@example.com")["conversation_id"]
    with session_scope() as s:
        conversation = conversations.get_conversation(s, ws.actor(), conv)
        channel = conversation.channel
    previous = reply_checks._checks.get(channel)
    reply_checks.register(channel, lambda session, c, meta: "Окно ответа закрыто: прошло 24 часа")
    try:
        agent = browser_for(ws.agent_email)
        page = agent.get(f"/conversations/{conv}").text
        assert 'id="reply-warning"' in page and "Окно ответа закрыто" in page
        r = agent.post(f"/ui/conversations/{conv}/reply", {"text": "ответ"})
        assert r.status_code == 409 and "Окно ответа закрыто" in r.text
        assert agent.post(f"/ui/conversations/{conv}/reply", {"text": "заметка", "mode": "note"}).status_code == 204
    finally:
        if previous is None:
            reply_checks._checks.pop(channel, None)
        else:
            reply_checks.register(channel, previous)


def test_side_bar_changes_and_shortcut_values(browser_for, client, ws):
    conv = inbound(client, ws, text="Вопрос")["conversation_id"]
    agent = browser_for(ws.agent_email)
    url = f"/ui/conversations/{conv}/update"
    r = agent.post(url, {"assignee": "me"})
    assert r.status_code == 200 and f'value="{ws.agent_id}" selected' in r.text
    assert agent.post(url, {"priority": "urgent"}).status_code == 200
    assert agent.post(url, {"tags": "vip, доставка"}).status_code == 200
    r = agent.post(url, {"status": "solved"})
    assert r.status_code == 200 and 'value="solved" selected' in r.text
    with session_scope(write=False) as s:
        c = conversations.get_conversation(s, ws.actor(), conv)
        assert (c.status, c.priority.value, c.assignee_id) == ("solved", "urgent", ws.agent_id)
        assert conversations.tags_of(s, [conv])[conv] == ["vip", "доставка"]
    assert agent.post(url, {"status": "archived"}).status_code == 422
    assert agent.post(url, {"assignee": "someone"}).status_code == 422
    assert agent.post(url, {"assignee": "99999999"}).status_code == 422
    assert agent.post(url, {}).status_code == 422
    assert agent.post(url, {"status": "closed"}).status_code == 200
    assert agent.post(url, {"status": "open"}).status_code == 409  # closed is final


def test_notification_only_for_my_conversations(browser_for, client, ws, other_ws):
    conv = inbound(client, ws, text="<b>Помогите</b>", customer_name="Зоя")["conversation_id"]
    with session_scope(write=False) as s:
        message_id = max(m.id for m in conversations.list_messages(s, ws.actor(), conv)[0])
    agent = browser_for(ws.agent_email)
    assert agent.get(f"/ui/notify/{message_id}").json()["notify"] is False
    agent.post(f"/ui/conversations/{conv}/update", {"assignee": "me"})
    info = agent.get(f"/ui/notify/{message_id}").json()
    assert info == {"notify": True, "title": "#1 Зоя", "body": "<b>Помогите</b>", "url": f"/conversations/{conv}"}
    assert browser_for(other_ws.agent_email).get(f"/ui/notify/{message_id}").status_code == 404
    with session_scope(write=False) as s:
        assert s.get(Message, message_id) is not None
