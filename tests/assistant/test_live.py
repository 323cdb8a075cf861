"""The assistant in the product: inbound customer message -> decision -> reply or hand-off, per workspace.

Each hand-off rule is proven here (abuse, legal threat, request for a person, urgency, negativity, not covered,
second failed answer in a row), plus out-of-hours, idempotency, isolation and the settings API.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from otklik.assistant import service
from otklik.assistant.models import AssistantDecision
from otklik.knowledge import service as knowledge
from otklik.platform.db import session_scope
from tests.conftest import inbound

DATA = Path(__file__).parent / "data"


def seed_kb(ws) -> None:
    with session_scope() as session:
        actor = ws.actor()
        ids: dict[str, int] = {}
        for line in (DATA / "mini_kb.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            original = ids.get(r["id"].removeprefix("en-")) if r["id"].startswith("en-") else None
            art = knowledge.create_article(session, actor, title=r["title"], body=r["body"], language=r["language"],
                                           questions=r.get("questions"), translation_of_id=original)
            ids[r["id"]] = art.id


def enable(client, ws, **extra) -> dict:
    r = client.patch("/api/v1/assistant/settings", json={"enabled": True, **extra}, headers=ws.admin)
    assert r.status_code == 200, r.text
    return r.json()


def messages(client, ws, conversation_id: int) -> list[dict]:
    r = client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()["items"]


def decisions(client, ws, conversation_id: int) -> list[dict]:
    r = client.get(f"/api/v1/conversations/{conversation_id}/assistant/decisions", headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()


def conversation(client, ws, conversation_id: int) -> dict:
    return client.get(f"/api/v1/conversations/{conversation_id}", headers=ws.agent).json()


@pytest.fixture
def shop(client, ws):
    seed_kb(ws)
    enable(client, ws)
    return ws


def test_answers_from_the_kb_and_marks_it(client, shop):
    got = inbound(client, shop, text="Добрый день! Сколько стоит доставка по Москве?", identity="a@example.com")
    msgs = messages(client, shop, got["conversation_id"])
    replies = [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert len(replies) == 1
    assert "390" in replies[0]["body_text"]
    (d,) = decisions(client, shop, got["conversation_id"])
    assert d["action"] == "answer" and d["reason"] == "confident"
    assert d["confidence"] >= 0.85 and d["reply_message_id"] == replies[0]["id"]
    assert d["details"]["article_title"] == "Сроки и стоимость доставки"


def test_english_question_gets_the_english_article(client, shop):
    got = inbound(client, shop, text="Hi, how much is delivery in Moscow?", identity="en@example.com")
    reply = next(m for m in messages(client, shop, got["conversation_id"]) if m["author_kind"] == "assistant")
    assert "390 RUB" in reply["body_text"]


@pytest.mark.parametrize(("text", "expected"), [
    ("Здравствуйте!", "Чем могу помочь"),
    ("спасибо большое", "Пожалуйста"),
    ("thanks", "You're welcome"),
])
def test_a_greeting_or_thanks_gets_a_polite_word_not_a_person(client, shop, text, expected):
    got = inbound(client, shop, text=text, identity=f"polite-{len(text)}@example.com")
    (d,) = decisions(client, shop, got["conversation_id"])
    assert d["action"] == "clarify" and d["reason"] == "courtesy"
    msgs = messages(client, shop, got["conversation_id"])
    public = [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert len(public) == 1 and expected in public[0]["body_text"]
    assert not [m for m in msgs if m["is_internal"]]  # no hand-off note: nothing for an agent to do
    assert conversation(client, shop, got["conversation_id"])["priority"] == "normal"


def _handoff(client, ws, text, identity):
    got = inbound(client, ws, text=text, identity=identity)
    (d,) = decisions(client, ws, got["conversation_id"])
    msgs = messages(client, ws, got["conversation_id"])
    notes = [m for m in msgs if m["is_internal"] and m["author_kind"] == "assistant"]
    return got, d, msgs, notes


@pytest.mark.parametrize(("text", "reason", "priority"), [
    ("вы там совсем охренели? идиоты, верните деньги", "abuse", "high"),
    ("если не вернёте деньги до пятницы, подаю в суд и пишу в Роспотребнадзор", "legal_threat", "urgent"),
    ("позовите живого человека, не хочу с ботом", "human_requested", "normal"),
    ("какая завтра погода в Сочи", "not_covered", "normal"),
])
def test_hand_off_rules(client, shop, text, reason, priority):
    got, d, msgs, notes = _handoff(client, shop, text, f"{reason}@example.com")
    assert d["action"] == "handoff" and d["reason"] == reason
    conv = conversation(client, shop, got["conversation_id"])
    assert conv["priority"] == priority
    assert conv["category"]  # the contact reason, for routing
    assert len(notes) == 1 and "Клиент пишет" in notes[0]["body_text"]
    public = [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    if reason == "abuse":
        assert public == []  # no automatic chatter with an abusive customer
    else:
        assert len(public) == 1 and "сотрудник" in public[0]["body_text"]
        assert "ИИ-ассистент" in public[0]["body_text"]  # the bot's first message says what it is


def test_urgency_over_the_threshold_hands_off_and_lights_red(client, shop):
    enable(client, shop, urgency_threshold=0.5)
    got, d, _, notes = _handoff(client, shop, "Где мой заказ 458213???!!! Уже неделю жду, срочно!", "u@example.com")
    assert d["action"] == "handoff" and d["reason"] == "urgent"
    conv = conversation(client, shop, got["conversation_id"])
    assert conv["priority"] == "urgent"
    with session_scope(write=False) as session:
        from otklik.conversations.models import Conversation

        row = session.get(Conversation, got["conversation_id"])
        assert row.urgent is True and row.sentiment == "negative"
    assert "458213" in notes[0]["body_text"]  # the facts, so nobody asks again


def test_negativity_over_the_threshold_hands_off(client, shop):
    enable(client, shop, negativity_threshold=0.5)
    _, d, _, _ = _handoff(client, shop, "Ужасный сервис, курьер опоздал и нахамил, больше не закажу", "n@example.com")
    assert d["action"] == "handoff" and d["reason"] == "negative"


def test_second_failed_answer_in_a_row_hands_off(client, shop):
    first = inbound(client, shop, text="Сколько бонусов начисляется за покупку?", identity="r@example.com")
    cid = first["conversation_id"]
    assert decisions(client, shop, cid)[0]["action"] == "answer"
    # the customer says it did not help: a failure, the assistant asks once to rephrase
    inbound(client, shop, text="не помогло, вы не поняли вопрос", identity="r@example.com")
    second = decisions(client, shop, cid)[-1]
    assert second["action"] == "clarify" and second["reason"] == "not_helped"
    # a second failure in a row: a person takes over
    inbound(client, shop, text="это не ответ, опять не помогло", identity="r@example.com")
    third = decisions(client, shop, cid)[-1]
    assert third["action"] == "handoff" and third["reason"] == "repeated_failure"
    assert conversation(client, shop, cid)["priority"] == "high"


def test_out_of_hours_tells_the_customer_when(client, shop):
    import zoneinfo

    today = dt.datetime.now(zoneinfo.ZoneInfo("Europe/Moscow")).weekday()
    names = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
    hours = {n: ([] if i == today else [["09:00", "18:00"]]) for i, n in enumerate(names)}  # nobody on duty now
    r = client.post("/api/v1/calendars", json={"name": "Смена", "time_zone": "Europe/Moscow", "hours": hours,
                                               "holidays": None, "is_default": True}, headers=shop.admin)
    assert r.status_code == 201, r.text
    enable(client, shop)
    got = inbound(client, shop, text="позовите оператора", identity="night@example.com")
    public = [m for m in messages(client, shop, got["conversation_id"])
              if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert len(public) == 1 and "не на связи" in public[0]["body_text"]
    assert "завтра в 09:00" in public[0]["body_text"]


def test_next_opening_is_computed_on_the_teams_calendar_in_its_time_zone(client, ws):
    week = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
    moscow = client.post("/api/v1/calendars", json={"name": "Москва", "time_zone": "Europe/Moscow", "hours": week,
                                                    "holidays": "RU"}, headers=ws.admin).json()
    vlad = client.post("/api/v1/calendars", json={"name": "Владивосток", "time_zone": "Asia/Vladivostok",
                                                  "hours": week, "holidays": "RU"}, headers=ws.admin).json()
    team = client.post("/api/v1/teams", json={"name": "Дальний Восток", "member_ids": []}, headers=ws.admin).json()
    client.put(f"/api/v1/teams/{team['id']}/calendar", json={"calendar_id": vlad["id"]}, headers=ws.admin)
    friday_night = dt.datetime(2026, 11, 27, 20, 0, tzinfo=dt.UTC)  # 23:00 in Moscow, Friday
    monday_noon = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)  # 12:00 in Moscow, 19:00 in Vladivostok
    with session_scope() as db:
        opening = service.next_opening(db, ws.id, None, friday_night)  # no team: the default (Moscow)
        assert opening is not None and opening.isoformat() == "2026-11-30T09:00:00+03:00"
        assert service.next_opening(db, ws.id, None, monday_noon) is None
        assert moscow["is_default"] and service.next_opening(db, ws.id, team["id"], monday_noon).isoformat() \
            == "2026-12-01T09:00:00+10:00"


def test_idempotent_per_message_and_quiet_once_an_agent_owns_it(client, shop):
    got = inbound(client, shop, text="как вернуть товар если не подошел", identity="i@example.com")
    with session_scope() as session:
        assert service.process_message(session, got["message_id"]).status == "duplicate"
    assert len(decisions(client, shop, got["conversation_id"])) == 1
    r = client.post(f"/api/v1/conversations/{got['conversation_id']}/messages", json={"text": "Сейчас проверю"},
                    headers=shop.agent)
    assert r.status_code == 201
    inbound(client, shop, text="а сколько стоит доставка?", identity="i@example.com")
    ds = decisions(client, shop, got["conversation_id"])
    assert ds[-1]["action"] == "silent" and ds[-1]["reason"] == "agent_owns"
    assistant_msgs = [m for m in messages(client, shop, got["conversation_id"]) if m["author_kind"] == "assistant"]
    assert len(assistant_msgs) == 1  # only the first answer


def test_disabled_or_unconfigured_workspace_is_left_alone(client, ws):
    seed_kb(ws)
    got = inbound(client, ws, text="Сколько стоит доставка?", identity="off@example.com")
    assert decisions(client, ws, got["conversation_id"]) == []
    assert all(m["author_kind"] != "assistant" for m in messages(client, ws, got["conversation_id"]))
    enable(client, ws, channels=["telegram"])  # on, but not for this channel
    got = inbound(client, ws, text="Сколько стоит доставка?", identity="off@example.com")
    (d,) = decisions(client, ws, got["conversation_id"])
    assert d["action"] == "silent"


def test_kb_edits_reach_the_assistant(client, shop):
    got = inbound(client, shop, text="Сколько стоит подарочный сертификат?", identity="g1@example.com")
    before = decisions(client, shop, got["conversation_id"])[0]
    assert before["details"]["article_title"] != "Подарочные сертификаты"
    with session_scope() as session:
        knowledge.create_article(session, shop.actor(), title="Подарочные сертификаты",
                                 body="Сертификаты бывают на 1 000, 3 000 и 5 000 ₽, действуют год.",
                                 questions=["Сколько стоит подарочный сертификат?", "Какие есть сертификаты?"])
    got = inbound(client, shop, text="Сколько стоит подарочный сертификат?", identity="g2@example.com")
    (d,) = decisions(client, shop, got["conversation_id"])
    assert d["action"] == "answer" and d["details"]["article_title"] == "Подарочные сертификаты"


def test_settings_api_validates_and_is_per_workspace(client, ws, other_ws):
    assert client.get("/api/v1/assistant/settings", headers=ws.agent).json()["enabled"] is False
    assert client.patch("/api/v1/assistant/settings", json={"enabled": True}, headers=ws.agent).status_code == 403
    for bad in ({"answer_threshold": 2}, {"tone": "rude"}, {"channels": ["pigeon"]}, {"nope": 1},
                {"working_hours": {"days": [1]}},
                {"handoff_team_id": 999999}):
        r = client.patch("/api/v1/assistant/settings", json=bad, headers=ws.admin)
        assert r.status_code == 422, (bad, r.text)
    body = enable(client, ws, tone="friendly", greeting="Привет! Я бот магазина.")
    assert body["tone"] == "friendly" and body["enabled"] is True
    assert client.get("/api/v1/assistant/settings", headers=other_ws.admin).json()["enabled"] is False
    got = inbound(client, ws, text="x", identity="iso@example.com")
    r = client.get(f"/api/v1/conversations/{got['conversation_id']}/assistant/decisions", headers=other_ws.admin)
    assert r.status_code == 404


def test_agent_assist_suggestions_and_summary(client, shop):
    got = inbound(client, shop, text="у меня заказ 12345, хочу вернуть куртку, не подошла", identity="s@example.com")
    cid = got["conversation_id"]
    r = client.get(f"/api/v1/conversations/{cid}/assistant/suggestions", params={"q": "как вернуть товар"},
                   headers=shop.agent)
    assert r.status_code == 200
    kb = [s for s in r.json() if s["source"] == "kb"]
    assert kb and kb[0]["title"] == "Возврат товара надлежащего качества"
    # a team reply to a similar message becomes a suggestion for the next one
    client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Оформил вам возврат, курьер заберёт завтра."},
                headers=shop.agent)
    other = inbound(client, shop, text="хочу вернуть куртку, размер не подошел", identity="s2@example.com")
    r = client.get(f"/api/v1/conversations/{other['conversation_id']}/assistant/suggestions", headers=shop.agent)
    team = [s for s in r.json() if s["source"] == "team"]
    assert team and "курьер заберёт" in team[0]["text"]
    r = client.get(f"/api/v1/conversations/{cid}/assistant/summary", headers=shop.agent)
    assert r.status_code == 200 and "12345" in r.json()["summary"]


def test_decision_row_is_unique_per_message(client, shop):
    got = inbound(client, shop, text="как потратить бонусы", identity="u1@example.com")
    with session_scope(write=False) as session:
        from sqlalchemy import func, select

        n = session.scalar(select(func.count()).select_from(AssistantDecision).where(
            AssistantDecision.message_id == got["message_id"]))
    assert n == 1


def test_sweep_decides_messages_a_crash_left_behind(client, shop):
    from otklik.assistant.jobs import sweep_pending
    from otklik.conversations import service as conversations
    from otklik.platform.events import discard_after_commit

    with session_scope() as session:  # stored, but the process "died" before the event went out
        got = conversations.receive(session, shop.id, conversations.InboundMessage(
            channel="api", identity_kind="email", identity_value="crash@example.com",
            text="Сколько стоит доставка по Москве?"))
        message_id, cid = got.message.id, got.conversation.id
        discard_after_commit(session)
    assert decisions(client, shop, cid) == []
    assert sweep_pending() >= 1
    (d,) = decisions(client, shop, cid)
    assert d["message_id"] == message_id and d["action"] == "answer"
    sweep_pending()  # nothing left: no second decision, no second answer
    assert len(decisions(client, shop, cid)) == 1


def test_the_sweep_keeps_enabled_workspaces_indexes_built(client, shop, other_ws):
    from otklik.assistant import service
    from otklik.assistant.jobs import sweep_pending

    seed_kb(other_ws)  # a KB, but the assistant is off there
    service.clear_cache()
    sweep_pending()
    index = service.cached_index(shop.id)
    assert index is not None and len(index) > 0 and service.cached_index(other_ws.id) is None
    sweep_pending()
    assert service.cached_index(shop.id) is index  # unchanged KB: not rebuilt
    with session_scope() as session:
        knowledge.create_article(session, shop.actor(), title="Подарочная упаковка", body="Упакуем за 200 ₽.",
                                 language="ru", questions=["можно упаковать в подарок"])
    sweep_pending()
    rebuilt = service.cached_index(shop.id)
    assert rebuilt is not None and rebuilt is not index and len(rebuilt) == len(index) + 1


def test_llm_generates_the_answer_when_configured_and_falls_back_on_refusal(client, shop, monkeypatch):
    from otklik.platform.config import get_settings
    from tests.assistant.test_llm import StandIn

    server = StandIn()
    monkeypatch.setenv("OTKLIK_LLM_BASE_URL", server.url)
    get_settings.cache_clear()
    try:
        server.completion("Доставка по Москве стоит 390 ₽, от 5 000 ₽ бесплатно [1].")
        got = inbound(client, shop, text="Сколько стоит доставка по Москве?", identity="llm1@example.com")
        reply = next(m for m in messages(client, shop, got["conversation_id"]) if m["author_kind"] == "assistant")
        assert reply["body_text"].endswith("\n\nДоставка по Москве стоит 390 ₽, от 5 000 ₽ бесплатно [1].")
        sent = server.requests[-1]["body"]["messages"][1]["content"]
        assert "Сроки и стоимость доставки" in sent  # grounded in the retrieved article
        (d,) = decisions(client, shop, got["conversation_id"])
        assert "generated by the LLM" in d["details"]["note"]
        server.completion("NO_ANSWER")
        got = inbound(client, shop, text="Сколько стоит доставка по Москве?", identity="llm2@example.com")
        reply = next(m for m in messages(client, shop, got["conversation_id"]) if m["author_kind"] == "assistant")
        assert "390" in reply["body_text"] and "[1]" not in reply["body_text"]  # the article's passage itself
        (d,) = decisions(client, shop, got["conversation_id"])
        assert d["action"] == "answer" and "LLM refused: no_answer" in d["details"]["note"]
    finally:
        monkeypatch.delenv("OTKLIK_LLM_BASE_URL")
        get_settings.cache_clear()
        server.server.shutdown()
        server.server.server_close()


def test_the_bot_says_once_that_it_is_an_ai_assistant_and_greets_once(client, shop):
    first = inbound(client, shop, text="Сколько стоит доставка по Москве?", identity="twice@example.com")
    inbound(client, shop, text="А как вернуть товар который не подошел?", identity="twice@example.com")
    replies = [m["body_text"] for m in messages(client, shop, first["conversation_id"])
               if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert len(replies) == 2
    assert replies[0].startswith("Здравствуйте! Я ИИ-ассистент") and "390" in replies[0]
    assert "Здравствуйте" not in replies[1] and "ИИ-ассистент" not in replies[1]
    for text in replies:  # chat text: no Markdown, no cut-off «…», the article's title not echoed as a heading
        assert "**" not in text and "…" not in text


def test_the_workspace_names_its_bot(client, shop):
    enable(client, shop, bot_name="Алиса, ИИ-помощник «Домосферы»")
    got = inbound(client, shop, text="Сколько стоит доставка по Москве?", identity="named@example.com")
    reply = next(m for m in messages(client, shop, got["conversation_id"]) if m["author_kind"] == "assistant")
    assert "Я Алиса, ИИ-помощник «Домосферы»" in reply["body_text"]
    r = client.patch("/api/v1/assistant/settings", json={"bot_name": "x" * 81}, headers=shop.admin)
    assert r.status_code == 422


@pytest.mark.parametrize(("text", "says", "never"), [
    ("Wie wird das Wetter morgen in Berlin?", "Mitarbeiter", "Передаю"),
    ("What will the weather be in Sochi tomorrow?", "member of our team", "Передаю"),
])
def test_fixed_texts_are_in_the_customers_language(client, shop, text, says, never):
    _got, d, msgs, _notes = _handoff(client, shop, text, f"lang-{len(text)}@example.com")
    assert d["action"] == "handoff"
    public = [m["body_text"] for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert len(public) == 1 and says in public[0] and never not in public[0]


def test_a_public_wall_comment_gets_no_chat_text_from_the_bot(client, shop):
    got = inbound(client, shop, text="Сколько стоит доставка по Москве?", identity="wall@example.com",
                  meta={"kind": "wall_comment"})
    (d,) = decisions(client, shop, got["conversation_id"])
    assert d["action"] == "handoff" and d["reason"] == "public_comment"
    msgs = messages(client, shop, got["conversation_id"])
    assert not [m for m in msgs if m["author_kind"] == "assistant" and not m["is_internal"]]
    assert [m for m in msgs if m["is_internal"]]  # the agent still gets the summary and the suggested article


def test_the_workspace_own_contact_reasons_classify_its_messages(client, shop):
    reasons = [{"name": "delivery", "description": "стоимость и сроки доставки, курьер, доставка в город"},
               {"name": "returns", "description": "вернуть или обменять товар, который не подошёл"},
               {"name": "other", "description": "всё остальное"}]
    settings = enable(client, shop, reasons=reasons)
    assert [r["name"] for r in settings["reasons"]] == ["delivery", "returns", "other"]
    got = inbound(client, shop, text="хочу сдать обратно куртку, не подошел размер", identity="own-r@example.com")
    (d,) = decisions(client, shop, got["conversation_id"])
    assert d["details"]["understanding"]["reason"] == "returns"
    assert conversation(client, shop, got["conversation_id"])["category"] == "returns"
    for bad, field in (([{"name": "Доставка"}], "reasons.0.name"),
                       ([{"name": "a"}, {"name": "a"}], "reasons.1.name"),
                       ([{"name": "a", "examples": "x"}], "reasons.0.examples")):
        r = client.patch("/api/v1/assistant/settings", json={"reasons": bad}, headers=shop.admin)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == field, r.text

