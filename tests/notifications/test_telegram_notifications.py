"""Agent notifications in Telegram (issue 16): linking with a one-time code through the workspace bot's real
webhook, what reaches the agent (and what never does), once per event, bursts as one digest, and a reply to a
notification posted into the conversation. The bot is python-telegram-bot against the local Bot API stand-in."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from sqlalchemy import select, update

from otklik.accounts import service as accounts
from otklik.accounts.models import Role, User
from otklik.conversations import inbox
from otklik.conversations.models import Conversation, Message
from otklik.conversations.service import reply
from otklik.customers.models import Identity
from otklik.notifications import jobs, service
from otklik.notifications.models import AgentLinkCode, AgentNotification, AgentTelegramLink
from otklik.platform.db import session_scope
from tests.channels.conftest import BOT_TOKEN, fixture
from tests.channels.helpers import create_account, messages_of
from tests.conftest import PASSWORD, inbound

_ids = itertools.count(900_000_001)
AGENT_CHAT = 555000111
ADMIN_CHAT = 555000222


@pytest.fixture
def bot(client, ws, telegram_api):
    account = create_account(client, ws, "telegram", config={"api_base_url": telegram_api.url},
                             secrets={"bot_token": BOT_TOKEN})
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect",
                    json={"base_url": "https://support.example.ru"}, headers=ws.admin)
    assert r.status_code == 200, r.text
    account["secret"] = telegram_api.sent("setWebhook")[-1].fields["secret_token"]
    return account


@pytest.fixture(autouse=True)
def _open_slots():
    """Every test starts with the agents' send slots open (a real clock: no test waits for a window)."""
    yield
    with session_scope() as s:
        s.execute(update(AgentTelegramLink).values(next_send_at=None))


def text_update(chat_id: int, text: str, *, reply_to: int | None = None, name: str = "Ольга") -> dict:
    update_ = fixture("telegram", "update_text")
    update_["update_id"] = next(_ids)
    message = update_["message"]
    message["message_id"] = next(_ids) % 100_000
    message["from"].update(id=chat_id, first_name=name, last_name="", username=f"user{chat_id}")
    message["chat"].update(id=chat_id, first_name=name, username=f"user{chat_id}")
    message["text"] = text
    if reply_to is not None:
        message["reply_to_message"] = {"message_id": reply_to, "date": 1763950000,
                                       "chat": {"id": chat_id, "type": "private"},
                                       "from": {"id": 7012345678, "is_bot": True, "first_name": "Bot"},
                                       "text": "notification"}
    return update_


def post_update(client, bot, update_: dict):
    return client.post(bot["webhook_path"], content=json.dumps(update_, ensure_ascii=False).encode(), headers={
        "X-Telegram-Bot-Api-Secret-Token": bot["secret"], "Content-Type": "application/json"})


def sent_to(telegram_api, chat_id: int) -> list[str]:
    return [c.fields["text"] for c in telegram_api.sent("sendMessage") if int(c.fields["chat_id"]) == chat_id]


def link(client, bot, telegram_api, headers, chat_id: int) -> None:
    r = client.post("/api/v1/me/notifications/telegram/code", headers=headers)
    assert r.status_code == 201, r.text
    code = r.json()["code"]
    assert r.json()["send_to_bot"] == f"/start {code}"
    assert r.json()["link"] == f"https://t.me/romashka_support_bot?start={code}"  # the stand-in's getMe
    answer = post_update(client, bot, text_update(chat_id, f"/start {code}"))
    assert answer.status_code == 200 and answer.json()["result"] == "linked", answer.text
    assert sent_to(telegram_api, chat_id)[-1] == "Уведомления подключены"


def assigned_conversation(client, ws, *, to: int, customer: str = "Мария Соколова") -> int:
    first = inbound(client, ws, identity=f"c{next(_ids)}@example.com", text="Здравствуйте, вопрос по заказу",
                    customer_name=customer)
    cid = first["conversation_id"]
    r = client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": to}, headers=ws.admin)
    assert r.status_code == 200, r.text
    return cid


def customer_writes(client, ws, cid: int, text: str) -> None:
    with session_scope(write=False) as s:
        conv = s.get(Conversation, cid)
        identity = s.scalar(select(Identity.external_id).where(Identity.customer_id == conv.customer_id))
    r = client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": identity, "text": text},
                    headers=ws.admin)
    assert r.status_code in (200, 201), r.text


# -- linking ---------------------------------------------------------------------------------------------

def test_start_code_links_the_agent_and_is_never_a_customer_message(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    assert messages_of(ws.id, "telegram") == []  # the code did not open a conversation
    state = client.get("/api/v1/me/notifications", headers=ws.agent).json()
    assert state["telegram"]["username"] == f"user{AGENT_CHAT}" and state["telegram_bot_connected"] is True
    assert client.get("/api/v1/me/notifications", headers=ws.admin).json()["telegram"] is None
    # a message from the linked chat is the agent's, not a customer's
    r = post_update(client, bot, text_update(AGENT_CHAT, "привет"))
    assert r.json()["result"] == "agent"
    assert "чат уведомлений" in sent_to(telegram_api, AGENT_CHAT)[-1]
    edited = text_update(AGENT_CHAT, "привет!")  # and so is an edit there
    edited["edited_message"] = edited.pop("message")
    edited["edited_message"]["edit_date"] = 1763950100
    assert post_update(client, bot, edited).json()["result"] == "ignored"
    assert messages_of(ws.id, "telegram") == []


def test_a_code_works_once_for_its_own_workspace_and_not_after_it_expired(client, ws, other_ws, bot, telegram_api):
    code = client.post("/api/v1/me/notifications/telegram/code", headers=ws.agent).json()["code"]
    assert post_update(client, bot, text_update(AGENT_CHAT, f"/start {code}")).json()["result"] == "linked"
    # spent: a second chat sending the same code is told so and links nothing
    again = post_update(client, bot, text_update(777001, f"/start {code}"))
    assert again.json()["result"] == "bad_code"
    assert "Код не подошёл" in sent_to(telegram_api, 777001)[-1]
    with session_scope(write=False) as s:
        assert s.get(AgentTelegramLink, ws.agent_id).chat_id == str(AGENT_CHAT)
    # expired
    code = client.post("/api/v1/me/notifications/telegram/code", headers=ws.admin).json()["code"]
    with session_scope() as s:
        s.execute(update(AgentLinkCode).where(AgentLinkCode.user_id == ws.admin_id)
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert post_update(client, bot, text_update(ADMIN_CHAT, f"/start {code}")).json()["result"] == "bad_code"
    # another workspace's code means nothing to this workspace's bot
    other_code = client.post("/api/v1/channels/accounts", headers=other_ws.admin, json={
        "kind": "telegram", "name": "default", "config": {"api_base_url": telegram_api.url},
        "secrets": {"bot_token": BOT_TOKEN}})
    assert other_code.status_code == 201, other_code.text
    foreign = client.post("/api/v1/me/notifications/telegram/code", headers=other_ws.agent).json()["code"]
    assert post_update(client, bot, text_update(777002, f"/start {foreign}")).json()["result"] == "bad_code"
    with session_scope(write=False) as s:
        assert s.get(AgentTelegramLink, other_ws.agent_id) is None


def test_a_customer_word_shaped_like_a_code_is_still_a_customer_message(client, ws, bot):
    r = post_update(client, bot, text_update(777003, "ABCDEFGH"))
    assert r.json()["result"] == "stored"
    assert [m.body_text for m in messages_of(ws.id, "telegram")] == ["ABCDEFGH"]


def test_unlink_from_the_profile_api_and_with_stop(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    assert client.delete("/api/v1/me/notifications/telegram", headers=ws.agent).status_code == 204
    assert client.delete("/api/v1/me/notifications/telegram", headers=ws.agent).status_code == 404
    assert client.get("/api/v1/me/notifications", headers=ws.agent).json()["telegram"] is None
    # unlinked: the chat is an ordinary customer again
    assert post_update(client, bot, text_update(AGENT_CHAT, "привет")).json()["result"] == "stored"
    link(client, bot, telegram_api, ws.admin, ADMIN_CHAT)
    assert post_update(client, bot, text_update(ADMIN_CHAT, "/stop")).json()["result"] == "unlinked"
    assert "Уведомления отключены" in sent_to(telegram_api, ADMIN_CHAT)[-1]
    assert client.get("/api/v1/me/notifications", headers=ws.admin).json()["telegram"] is None


# -- what reaches the agent --------------------------------------------------------------------------------

def test_a_customer_reply_reaches_the_assignee_once_with_name_words_and_link(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    link(client, bot, telegram_api, ws.admin, ADMIN_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    before_admin = len(sent_to(telegram_api, ADMIN_CHAT))
    long_text = "Посылка пришла <b>мятая</b> & *без* инструкции, " + "очень " * 60 + "жду ответа"
    customer_writes(client, ws, cid, long_text)
    text = sent_to(telegram_api, AGENT_CHAT)[-1]
    lines = text.split("\n")
    assert lines[0].startswith("💬 Клиент ответил в обращении #")
    assert lines[1] == "Мария Соколова"
    assert lines[2].startswith("«Посылка пришла <b>мятая</b> & *без* инструкции") and lines[2].endswith("…»")
    assert len(lines[2]) <= service.PREVIEW_CHARS + 3
    assert lines[3].endswith(f"/conversations/{cid}")
    call = [c for c in telegram_api.sent("sendMessage") if int(c.fields["chat_id"]) == AGENT_CHAT][-1]
    assert "parse_mode" not in call.fields  # plain text: nothing of the customer's is read as markup
    assert len(sent_to(telegram_api, ADMIN_CHAT)) == before_admin  # not the admin's conversation
    # the same event again (a replayed job) notifies nobody a second time
    with session_scope(write=False) as s:
        message = s.scalar(select(Message).where(Message.conversation_id == cid).order_by(Message.id.desc()))
        data = {"id": message.id, "conversation_id": cid}
    count = len(sent_to(telegram_api, AGENT_CHAT))
    assert jobs.notify_for_event.call_local("message.created", ws.id, data) == 0
    with session_scope(write=False) as s:
        keys = list(s.scalars(select(AgentNotification.event_key).where(AgentNotification.user_id == ws.agent_id,
                                                                        AgentNotification.kind == "customer_reply")))
    assert keys == [f"message:{message.id}"]
    assert len(sent_to(telegram_api, AGENT_CHAT)) == count


def test_a_burst_goes_out_as_one_digest_after_the_window(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    before = len(sent_to(telegram_api, AGENT_CHAT))
    for n in range(4):
        customer_writes(client, ws, cid, f"сообщение {n}")
    assert len(sent_to(telegram_api, AGENT_CHAT)) == before + 1  # the first at once, the rest held
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=service.GROUP_SECONDS + 1)
    assert jobs.sweep(now=later) == 1
    texts = sent_to(telegram_api, AGENT_CHAT)
    assert len(texts) == before + 2
    assert texts[-1].startswith("🔔 Уведомлений: 3") and texts[-1].count(f"/conversations/{cid}") == 3
    assert jobs.sweep(now=later + dt.timedelta(seconds=service.GROUP_SECONDS + 1)) == 0  # nothing left


def test_choices_are_respected(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    r = client.patch("/api/v1/me/notifications/preferences", json={"customer_reply": False}, headers=ws.agent)
    assert r.status_code == 200 and r.json()["customer_reply"] is False and r.json()["mention"] is True
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    before = len(sent_to(telegram_api, AGENT_CHAT))
    customer_writes(client, ws, cid, "ну что там?")
    assert len(sent_to(telegram_api, AGENT_CHAT)) == before


def test_a_new_conversation_in_my_team(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    team = client.post("/api/v1/teams", json={"name": "Доставка", "member_ids": [ws.agent_id]}, headers=ws.admin)
    assert team.status_code == 201, team.text
    customer = inbound(client, ws, identity="team-case@example.com", text="старт")["customer_id"]
    r = client.post("/api/v1/conversations", json={"customer_id": customer, "channel": "email",
                                                  "subject": "Курьер не приехал", "team_id": team.json()["id"]},
                    headers=ws.admin)
    assert r.status_code == 201, r.text
    text = sent_to(telegram_api, AGENT_CHAT)[-1]
    assert text.startswith(f"🆕 Новое обращение #{r.json()['number']} в команде «Доставка»")
    assert "Курьер не приехал" in text
    # moved into my team later: news once per move; other changes are not
    cid = inbound(client, ws, identity="moved@example.com", text="Где мой заказ 4512?")["conversation_id"]
    before = len(sent_to(telegram_api, AGENT_CHAT))
    client.patch(f"/api/v1/conversations/{cid}", json={"priority": "high"}, headers=ws.admin)
    assert len(sent_to(telegram_api, AGENT_CHAT)) == before
    client.patch(f"/api/v1/conversations/{cid}", json={"team_id": team.json()["id"]}, headers=ws.admin)
    client.patch(f"/api/v1/conversations/{cid}", json={"priority": "urgent"}, headers=ws.admin)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=service.GROUP_SECONDS + 1)
    jobs.sweep(now=later)
    texts = sent_to(telegram_api, AGENT_CHAT)
    assert len(texts) == before + 1 and "передано в команду «Доставка»" in texts[-1] and "4512" in texts[-1]


def test_a_mention_in_an_internal_note(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = inbound(client, ws, identity="mention@example.com", text="Хочу вернуть товар")["conversation_id"]
    with session_scope() as s:
        admin = s.get(User, ws.admin_id)
        agent = s.get(User, ws.agent_id)
        note = reply(s, accounts.actor_for(admin), cid, text=f"@{agent.name.split()[0]} глянь, пожалуйста",
                     is_internal=True)
        assert inbox.record_mentions(s, accounts.actor_for(admin), note) == [ws.agent_id]
    text = sent_to(telegram_api, AGENT_CHAT)[-1]
    assert text.startswith("📣 Administrator упоминает вас в заметке к обращению #")
    assert "глянь, пожалуйста" in text


def test_an_approval_request_reaches_the_approver(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.admin, ADMIN_CHAT)
    cid = inbound(client, ws, identity="late@example.com", text="Заказ опоздал на неделю")["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/compensations",
                    json={"kind": "refund", "amount": "5000", "reason": "опоздание"}, headers=ws.agent)
    assert r.status_code == 202 and r.json()["status"] == "pending", r.text
    text = sent_to(telegram_api, ADMIN_CHAT)[-1]
    assert text.startswith("✅ Нужно согласование компенсации (5000") and f"/conversations/{cid}" in text


def test_sla_warning_goes_to_those_the_timer_names_and_never_across_workspaces(client, ws, other_ws, bot,
                                                                             telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    data = {"conversation_id": cid, "kind": "first_response", "due_at": "2026-12-07T12:00:00+00:00",
            "notify_user_ids": [ws.agent_id, other_ws.agent_id]}
    assert jobs.notify_for_event.call_local("sla.warning", ws.id, data) == 1
    assert "срок SLA скоро истечёт" in sent_to(telegram_api, AGENT_CHAT)[-1]
    # the same conversation id announced in another workspace reaches nobody
    assert jobs.notify_for_event.call_local("sla.warning", other_ws.id, data) == 0


def test_a_real_sla_warning_from_the_sweep_reaches_the_assignee(client, ws, bot, telegram_api):
    from zoneinfo import ZoneInfo

    from otklik.conversations import service as conversations
    from otklik.conversations import sla

    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    r = client.post("/api/v1/sla-policies", json={"name": "Чат", "first_response_minutes": 10,
                                                  "business_hours": False, "warn_share": 0.5}, headers=ws.admin)
    assert r.status_code == 201, r.text
    start = dt.datetime(2027, 3, 4, 10, 0, tzinfo=ZoneInfo("Europe/Moscow")).astimezone(dt.UTC)
    with session_scope() as s:
        cid = conversations.receive(s, ws.id, conversations.InboundMessage(
            channel="email", identity_kind="email", identity_value="sla@example.com", text="Срочно!",
            sent_at=start)).conversation.id
    assert client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": ws.agent_id},
                        headers=ws.admin).status_code == 200
    before = len(sent_to(telegram_api, AGENT_CHAT))
    with session_scope() as s:
        assert sla.sweep(s, start + dt.timedelta(minutes=6), ws.id) == {"warned": 1, "breached": 0}
    texts = sent_to(telegram_api, AGENT_CHAT)
    assert len(texts) == before + 1 and "срок SLA скоро истечёт" in texts[-1] and "«Срочно!»" in texts[-1]


def test_never_to_an_agent_who_cannot_open_the_conversation(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    with session_scope() as s:
        s.get(User, ws.agent_id).is_active = False
    try:
        before = len(sent_to(telegram_api, AGENT_CHAT))
        customer_writes(client, ws, cid, "алло?")
        assert len(sent_to(telegram_api, AGENT_CHAT)) == before
    finally:
        with session_scope() as s:
            s.get(User, ws.agent_id).is_active = True


# -- replying from Telegram ---------------------------------------------------------------------------------

def _last_sent_id(telegram_api, chat_id: int) -> int:
    # the stand-in answers sendMessage with increasing ids; the notification row stored the one it got
    with session_scope(write=False) as s:
        return s.scalar(select(AgentNotification.telegram_message_id).where(
            AgentNotification.chat_id == str(chat_id)).order_by(AgentNotification.id.desc()))


def test_a_reply_to_a_notification_is_the_agents_reply_in_that_conversation(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    customer_writes(client, ws, cid, "где посылка?")
    notified = _last_sent_id(telegram_api, AGENT_CHAT)
    r = post_update(client, bot, text_update(AGENT_CHAT, "Уже едет, будет завтра", reply_to=notified))
    assert r.json()["result"] == "replied", r.text
    with session_scope(write=False) as s:
        last = s.scalar(select(Message).where(Message.conversation_id == cid).order_by(Message.id.desc()))
        assert (last.body_text, last.author_user_id, last.is_internal) == ("Уже едет, будет завтра", ws.agent_id,
                                                                           False)
    assert sent_to(telegram_api, AGENT_CHAT)[-1].startswith("Ответ отправлен в обращение #")
    # someone else's chat replying to the same message id is just a customer writing
    assert post_update(client, bot, text_update(777004, "и я", reply_to=notified)).json()["result"] == "stored"


def test_a_reply_needs_the_agent_to_still_see_the_conversation(client, ws, bot, telegram_api):
    link(client, bot, telegram_api, ws.agent, AGENT_CHAT)
    cid = assigned_conversation(client, ws, to=ws.agent_id)
    customer_writes(client, ws, cid, "где посылка?")
    notified = _last_sent_id(telegram_api, AGENT_CHAT)
    with session_scope() as s:
        s.get(User, ws.agent_id).is_active = False
    try:
        r = post_update(client, bot, text_update(AGENT_CHAT, "ответ", reply_to=notified))
        assert r.json()["result"] == "agent"
        assert sent_to(telegram_api, AGENT_CHAT)[-1] == "Это обращение вам недоступно."
    finally:
        with session_scope() as s:
            s.get(User, ws.agent_id).is_active = True
    with session_scope(write=False) as s:
        assert s.scalar(select(Message.body_text).where(Message.conversation_id == cid)
                        .order_by(Message.id.desc())) == "где посылка?"


# -- the API's edges -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, field", [
    ({"customer_reply": "maybe"}, "customer_reply"),
    ({"loud": True}, "loud"),
    ({"sla": [True]}, "sla"),
])
def test_bad_preferences_are_a_422_naming_the_field(client, ws, body, field):
    r = client.patch("/api/v1/me/notifications/preferences", json=body, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_no_bot_no_code_and_anonymous_is_401(client, ws):
    r = client.post("/api/v1/me/notifications/telegram/code", headers=ws.agent)
    assert r.status_code == 409 and "Telegram bot" in r.json()["error"]["message"]
    assert client.get("/api/v1/me/notifications").status_code == 401
    assert client.delete("/api/v1/me/notifications/telegram", headers=ws.agent).status_code == 404


def test_preferences_are_per_agent(client, ws, other_ws):
    client.patch("/api/v1/me/notifications/preferences", json={"mention": False}, headers=ws.agent)
    assert client.get("/api/v1/me/notifications", headers=ws.agent).json()["preferences"]["mention"] is False
    assert client.get("/api/v1/me/notifications", headers=ws.admin).json()["preferences"]["mention"] is True
    assert client.get("/api/v1/me/notifications", headers=other_ws.agent).json()["preferences"]["mention"] is True


def test_codes_are_stored_as_digests_only(client, ws, bot, telegram_api):
    telegram_api.fail_next["getMe"] = ["response_401"]  # the bot's name unknown: the code alone still works
    issued = client.post("/api/v1/me/notifications/telegram/code", headers=ws.agent).json()
    code = issued["code"]
    assert issued["link"] is None and issued["bot_username"] is None
    with session_scope(write=False) as s:
        rows = list(s.scalars(select(AgentLinkCode).where(AgentLinkCode.user_id == ws.agent_id)))
    assert len(rows) == 1 and code not in rows[0].code_hash and len(rows[0].code_hash) == 64
    assert service.normalise_code(f"/start {code.lower()[:4]}-{code.lower()[4:]}") == code


def test_role_does_not_matter_for_ones_own_link(client, ws, bot, telegram_api):
    with session_scope() as s:
        admin = accounts.Actor(workspace_id=ws.id, user_id=ws.admin_id, role=Role.admin)
        sup = accounts.create_user(s, admin, email=f"sup-{ws.id}@example.com", name="Sup", role=Role.supervisor,
                                   password=PASSWORD)
        token, _ = accounts.create_api_token(s, accounts.actor_for(sup), name="t")
    link(client, bot, telegram_api, {"Authorization": f"Bearer {token}"}, 555000333)
