"""Learning from agents (issue 12 §6): a question the assistant handed off, answered by an agent with an article,
becomes a proposed variant of that article; accepted in one click, the next customer asking that way gets the
bot's answer."""

from __future__ import annotations

import pytest

from otklik.assistant import learning
from otklik.knowledge.models import Article, VariantProposal
from otklik.platform.db import session_scope
from tests.assistant.test_live import decisions, enable, seed_kb
from tests.conftest import inbound

# The mini KB has no variants for these wordings; the assistant hands them off
HANDED_OFF = "мне нужно поменять пункт выдачи, куда везти посылку, как это сделать"
OFF_TOPIC = "какая завтра погода в Сочи"


@pytest.fixture
def shop(client, ws):
    seed_kb(ws)
    enable(client, ws)
    return ws


def article(ws, title: str) -> Article:
    with session_scope() as session:
        row = session.query(Article).filter_by(workspace_id=ws.id, title=title).one()
        session.expunge(row)
        return row


def agent_reply(client, ws, cid: int, text: str) -> dict:
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, headers=ws.agent)
    assert r.status_code in (200, 201), r.text
    return r.json()


def proposals(client, ws, status: str = "pending") -> list[dict]:
    r = client.get(f"/api/v1/knowledge/proposals?status={status}", headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()


def handed_off(client, ws, text: str, identity: str) -> int:
    got = inbound(client, ws, text=text, identity=identity)
    (d,) = decisions(client, ws, got["conversation_id"])
    assert d["action"] in {"handoff", "clarify"}, d
    return got["conversation_id"]


def test_mask_and_fold():
    assert learning.mask("мой заказ 4512789, почта ivan@example.com, тел +7 (912) 345-67-89") == \
        "мой заказ N, почта e-mail, тел телефон"
    assert learning.fold("Как  ВЕРНУТЬ ёлку?!") == learning.fold("как вернуть елку")


def test_a_link_to_the_article_in_the_agents_reply_proposes_the_question(client, shop):
    target = article(shop, "Как отследить заказ")
    cid = handed_off(client, shop, "посылка 4512 где она сейчас едет, номер отслеживания дадите?", "l1@example.com")
    agent_reply(client, shop, cid, f"Вот как это сделать: https://help.example/help/{shop.slug}/a/{target.slug}")
    (p,) = proposals(client, shop)
    assert p["article_id"] == target.id and p["source"] == "link" and p["conversation_id"] == cid
    assert p["text"] == "посылка N где она сейчас едет, номер отслеживания дадите?"  # the order number masked
    # the same reply again (a second agent message) proposes nothing more
    agent_reply(client, shop, cid, f"Ещё раз ссылка: /help/{shop.slug}/a/{target.slug}")
    assert len(proposals(client, shop)) == 1


def test_accepting_adds_the_variant_and_the_bot_then_answers_it(client, shop):
    target = article(shop, "Деньги списались дважды")
    question = "снялось два раза за одну покупку, верните лишнее"
    cid = handed_off(client, shop, question, "l2@example.com")
    agent_reply(client, shop, cid, f"Это блокировка банка: /help/{shop.slug}/a/{target.slug}")
    (p,) = proposals(client, shop)
    r = client.post(f"/api/v1/knowledge/proposals/{p['id']}/accept", headers=shop.agent)
    assert r.status_code == 403, r.text  # the KB editor (a supervisor) decides, not any agent
    r = client.post(f"/api/v1/knowledge/proposals/{p['id']}/accept", headers=shop.admin)
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    assert question in article(shop, "Деньги списались дважды").questions
    assert proposals(client, shop) == [] and len(proposals(client, shop, "accepted")) == 1
    r = client.post(f"/api/v1/knowledge/proposals/{p['id']}/accept", headers=shop.admin)
    assert r.status_code == 409, r.text
    # the next customer who asks that way gets the article from the bot
    again = inbound(client, shop, text=question, identity="l3@example.com")
    (d,) = decisions(client, shop, again["conversation_id"])
    assert d["action"] == "answer" and d["details"]["article_title"] == "Деньги списались дважды", d


def test_the_agents_own_words_propose_only_when_reply_and_question_agree(client, shop):
    cid = handed_off(client, shop, "купил чайник, а он течёт", "l4@example.com")
    agent_reply(client, shop, cid, "Пришлите, пожалуйста, фото брака и номер заказа: заменим товар или вернём "
                                   "деньги, гарантийный ремонт бесплатный.")
    got = proposals(client, shop)
    assert [p["article_id"] for p in got] == [article(shop, "Товар с браком").id]
    assert got[0]["source"] == "text" and got[0]["confidence"] >= learning.REPLY_MATCH
    # a reply that says nothing of an article proposes nothing
    cid = handed_off(client, shop, OFF_TOPIC, "l5@example.com")
    agent_reply(client, shop, cid, "Передал ваш вопрос коллегам, они свяжутся с вами.")
    assert len(proposals(client, shop)) == 1


def test_nothing_is_learned_from_answered_questions_notes_or_a_second_reply(client, shop):
    target = article(shop, "Режим работы")
    link = f"/help/{shop.slug}/a/{target.slug}"
    # the bot answered it: nothing to learn
    got = inbound(client, shop, text="Добрый день! Сколько стоит доставка по Москве?", identity="l6@example.com")
    agent_reply(client, shop, got["conversation_id"], f"Дополню: {link}")
    # an internal note with a link teaches nothing
    cid = handed_off(client, shop, HANDED_OFF, "l7@example.com")
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": link, "is_internal": True},
                    headers=shop.agent)
    assert r.status_code in (200, 201)
    assert proposals(client, shop) == []
    # the first agent reply answered the question; a later one with a link is about something else
    agent_reply(client, shop, cid, "Сейчас посмотрю.")
    agent_reply(client, shop, cid, f"И ещё: {link}")
    assert proposals(client, shop) == []


def test_reject_edit_and_another_article(client, shop):
    target = article(shop, "Бонусы и программа лояльности")
    other = article(shop, "Возврат товара надлежащего качества")
    for i, text in enumerate(("сколько баллов я получу за покупку кроссовок", "баллы сгорают или нет")):
        cid = handed_off(client, shop, text, f"r{i}@example.com")
        agent_reply(client, shop, cid, f"/help/{shop.slug}/a/{target.slug}")
    first, second = sorted(proposals(client, shop), key=lambda p: p["id"])
    r = client.post(f"/api/v1/knowledge/proposals/{first['id']}/reject", headers=shop.admin)
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    r = client.post(f"/api/v1/knowledge/proposals/{second['id']}/accept", headers=shop.admin,
                    json={"text": "баллы сгорают?", "article_id": other.id})
    assert r.status_code == 200 and r.json()["article_id"] == other.id
    assert "баллы сгорают?" in article(shop, "Возврат товара надлежащего качества").questions
    assert "баллы сгорают?" not in article(shop, "Бонусы и программа лояльности").questions
    for bad in ({"text": ""}, {"text": "x" * 401}, {"article_id": 0}, {"nope": 1}):
        r = client.post(f"/api/v1/knowledge/proposals/{second['id']}/accept", headers=shop.admin, json=bad)
        assert r.status_code == 422, (bad, r.text)
    r = client.get("/api/v1/knowledge/proposals?status=everything", headers=shop.admin)
    assert r.status_code == 422


def test_another_workspace_sees_and_decides_nothing(client, shop, other_ws):
    target = article(shop, "Как отследить заказ")
    cid = handed_off(client, shop, "посылка где она сейчас едет, номер отслеживания дадите?", "i1@example.com")
    agent_reply(client, shop, cid, f"/help/{shop.slug}/a/{target.slug}")
    (p,) = proposals(client, shop)
    seed_kb(other_ws)
    enable(client, other_ws)
    assert proposals(client, other_ws) == []
    for action in ("accept", "reject"):
        r = client.post(f"/api/v1/knowledge/proposals/{p['id']}/{action}", headers=other_ws.admin)
        assert r.status_code == 404, r.text
    # a link to the first workspace's help center teaches the other one nothing
    cid = handed_off(client, other_ws, HANDED_OFF, "i2@example.com")
    agent_reply(client, other_ws, cid, f"/help/{shop.slug}/a/{target.slug}")
    assert proposals(client, other_ws) == []
    with session_scope() as session:
        assert session.query(VariantProposal).filter_by(workspace_id=other_ws.id).count() == 0
