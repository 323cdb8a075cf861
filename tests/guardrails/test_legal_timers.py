"""Issue 14 §1: legal deadlines join the SLA machinery (a timer per obligation, its warning and its breach fired
once by the sweep, the inbox's «due soonest» sort and the «legal deadline within 2 days» filter), the shop's own
more generous terms (the stricter for the seller is shown), the workspace's reasons mapped to situations, the
reply check on an overdue case, and the assistant handing off a customer whose own account puts a term past due.

Dates are computed by hand in each test's comments (ГК ст. 191–193 on the Russian production calendar)."""

from __future__ import annotations

import datetime as dt

from otklik.conversations import sla
from otklik.conversations.models import Conversation
from otklik.platform.db import session_scope
from tests.assistant.test_live import decisions, messages
from tests.assistant.test_live import shop as shop
from tests.conftest import inbound
from tests.web._ui import Browser


def _case(client, ws, cid: int, situation: str | None, **inputs):
    r = client.put(f"/api/v1/conversations/{cid}/consumer-law", json={"situation": situation, "inputs": inputs},
                   headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()


def _conversation(cid: int) -> Conversation:
    with session_scope() as session:
        c = session.get(Conversation, cid)
        assert c is not None
        session.expunge(c)
        return c


def _legal_timers(cid: int) -> dict[str, sla.SlaTimer]:
    with session_scope() as session:
        rows = [t for t in sla.timers_for(session, cid) if sla.is_legal(t.kind)]
        for t in rows:
            session.expunge(t)
    return {t.kind: t for t in rows}


def _audit(client, ws, cid: int) -> list[dict]:
    return client.get(f"/api/v1/audit?entity_type=conversation&entity_id={cid}", headers=ws.admin).json()


def test_a_legal_deadline_is_a_timer_that_warns_and_fires_once_and_joins_the_inbox(client, ws):
    cid = inbound(client, ws, text="Сломался пылесос, верните деньги", identity="timer@example.com")[
        "conversation_id"]
    today = dt.date.today()
    # a refund demanded 20 days ago: art. 22, ten days from the day after the demand -> 10 days ago (art. 193
    # may move it past a weekend or the New Year holidays, never up to today); replacement (art. 21): 7 days
    case = _case(client, ws, cid, "defect", demanded_on=(today - dt.timedelta(days=20)).isoformat(), price="5000",
                 in_stock=True, quality_check=False)
    refund = next(o for o in case["obligations"] if o["key"] == "refund")
    timers = _legal_timers(cid)
    assert set(timers) == {"legal_refund", "legal_replacement"}
    due = dt.date.fromisoformat(refund["due_on"])
    conv = _conversation(cid)
    assert conv.legal_due_at is not None and conv.sla_due_at is not None
    # the earliest legal due is the replacement's (7 days: already past) or the refund's, at the end of its day
    assert min(t.due_at for t in timers.values()) == conv.legal_due_at
    got = client.get("/api/v1/conversations?legal_due_within=2880", headers=ws.agent).json()["items"]
    assert [c["id"] for c in got] == [cid] and got[0]["legal_due_at"]
    assert client.get("/api/v1/conversations?sort=due", headers=ws.agent).json()["items"][0]["id"] == cid
    # the sweep fires each past deadline once, even when run twice
    with session_scope() as session:
        sla.sweep(session, workspace_id=ws.id)
    with session_scope() as session:
        sla.sweep(session, workspace_id=ws.id)
    overdue = [e["after"]["obligation"] for e in _audit(client, ws, cid) if e["action"] == "legal_overdue"]
    assert sorted(overdue) == ["refund", "replacement"], overdue
    assert {t.state for t in _legal_timers(cid).values()} == {sla.BREACHED}
    assert not _conversation(cid).sla_breached  # the law's matter, not the team's SLA figure
    # moving the demand moves the timers; solving stops them (late ones stay breached); re-opening resumes them
    _case(client, ws, cid, "defect", demanded_on=today.isoformat(), price="5000", in_stock=True,
          quality_check=False)
    moved = _legal_timers(cid)
    assert moved["legal_replacement"].state == sla.RUNNING and moved["legal_refund"].due_at > timers[
        "legal_refund"].due_at
    assert due < dt.date.fromisoformat(_case(client, ws, cid, "defect", demanded_on=today.isoformat())[
        "obligations"][0]["due_on"])
    assert client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"},
                        headers=ws.agent).status_code == 200
    assert _conversation(cid).legal_due_at is None
    # the refund is met (due after today); the replacement stopped when the case lost its in_stock input
    assert {k: t.state for k, t in _legal_timers(cid).items()} == {"legal_refund": sla.MET,
                                                                  "legal_replacement": sla.STOPPED}
    assert client.patch(f"/api/v1/conversations/{cid}", json={"status": "open"}, headers=ws.agent).status_code == 200
    assert _conversation(cid).legal_due_at is not None
    # a situation without dates has no timers; changing the situation stops the ones no longer owed
    _case(client, ws, cid, "return_in_store")
    assert _conversation(cid).legal_due_at is None
    assert {t.state for t in _legal_timers(cid).values()} == {sla.STOPPED}


def test_the_workspace_terms_show_the_stricter_for_the_shop_and_the_mapping(client, ws, other_ws):
    body = {"situation": "return_distance_sale", "delivered_on": "2026-03-02", "demanded_on": "2026-03-05",
            "return_terms_in_writing": True, "today": "2026-03-05"}
    law = client.post("/api/v1/consumer-law/deadlines", json=body, headers=ws.agent).json()["obligations"]
    # art. 26.1: 7 days after delivery on Mon 2 March -> Mon 9 March (8 March, a Sunday holiday, moved the
    # holiday to Mon 9 March: a non-working day) -> Tue 10 March; refund 10 days after 5 March -> 15 March,
    # a Sunday -> Mon 16 March
    assert [(o["key"], o["due_on"], o["source"]) for o in law] == [
        ("refuse_goods", "2026-03-10", "law"), ("refund", "2026-03-16", "law")]
    r = client.put("/api/v1/consumer-law/settings", headers=ws.admin, json={"terms": [
        {"situation": "return_distance_sale", "key": "refuse_goods", "days": 30, "title": "Возврат 30 дней"},
        {"situation": "return_distance_sale", "key": "refund", "days": 3}]})
    assert r.status_code == 200, r.text
    shop = client.post("/api/v1/consumer-law/deadlines", json=body, headers=ws.agent).json()["obligations"]
    # the shop's 30 days from 2 March -> 1 April (Wed); its refund in 3 days from 5 March -> 8 March, a holiday
    # Sunday, 9 March its transfer -> 10 March: earlier than the law's 16 March, so the shop's is shown
    assert [(o["key"], o["due_on"], o["source"], o["law_due_on"]) for o in shop] == [
        ("refuse_goods", "2026-04-01", "shop", "2026-03-10"), ("refund", "2026-03-10", "shop", "2026-03-16")]
    assert shop[0]["title"] == "Возврат 30 дней" and "ст. 26.1" in shop[0]["article"]
    # a promise less generous than the law is never shown
    assert client.put("/api/v1/consumer-law/settings", headers=ws.admin, json={"terms": [
        {"situation": "return_distance_sale", "key": "refuse_goods", "days": 5}]}).status_code == 200
    weak = client.post("/api/v1/consumer-law/deadlines", json=body, headers=ws.agent).json()["obligations"]
    assert weak[0]["due_on"] == "2026-03-10" and weak[0]["source"] == "law"
    # the other workspace is untouched
    other = client.post("/api/v1/consumer-law/deadlines", json=body, headers=other_ws.agent).json()
    assert other["obligations"][0]["source"] == "law"
    # errors name the field; agents cannot change the settings
    for bad, field in (({"terms": [{"situation": "nope", "key": "refund", "days": 3}]}, "terms.0.situation"),
                       ({"terms": [{"situation": "defect", "key": "nope", "days": 3}]}, "terms.0.key"),
                       ({"terms": [{"situation": "defect", "key": "refund", "days": 3, "months": 1}]}, "terms.0.days"),
                       ({"terms": [{"situation": "defect", "key": "refund", "days": -1}]}, "terms.0.days"),
                       ({"terms": [{"situation": "late_service", "key": "service", "days": 3}]}, "terms.0.key"),
                       ({"reason_situations": {"defective": "nope"}}, "reason_situations.defective"),
                       ({"warn_days": 99}, "warn_days")):
        r = client.put("/api/v1/consumer-law/settings", headers=ws.admin, json=bad)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == field, (bad, r.text)
    assert client.put("/api/v1/consumer-law/settings", headers=ws.agent, json={"warn_days": 1}).status_code == 403
    # the mapping: the workspace's own reason maps to a situation, a shipped one can be unmapped
    r = client.put("/api/v1/consumer-law/settings", headers=ws.admin,
                   json={"reason_situations": {"сломалось": "defect", "defective": ""}})
    got = r.json()["reason_situations"]
    assert got["сломалось"] == "defect" and "defective" not in got and got["warranty_repair"] == "warranty_repair"
    cid = inbound(client, ws, text="Сломалась кофемашина", identity="map@example.com")["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"category": "сломалось"}, headers=ws.agent)
    assert client.get(f"/api/v1/conversations/{cid}/consumer-law", headers=ws.agent).json()["situation"] == "defect"


def test_an_overdue_case_asks_the_agent_to_confirm_the_reply_once(client, ws):
    cid = inbound(client, ws, text="Где мои деньги за брак?", identity="late@example.com")["conversation_id"]
    _case(client, ws, cid, "defect", demanded_on=(dt.date.today() - dt.timedelta(days=40)).isoformat(),
          price="10000")
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Мы проверим ваш вопрос"},
                    headers=ws.agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "legal_overdue", r.text
    assert "ЗоЗПП ст. 22" in r.json()["error"]["message"] and "неустойка" in r.json()["error"]["message"]
    r = client.post(f"/api/v1/conversations/{cid}/messages", headers=ws.agent,
                    json={"text": "Возвращаем деньги и неустойку сегодня", "acknowledge": ["legal_overdue"]})
    assert r.status_code == 201, r.text
    # acknowledged once after the due date: the next reply goes without asking again
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Деньги отправлены"}, headers=ws.agent)
    assert r.status_code == 201, r.text
    # internal notes are never checked
    assert client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "x", "is_internal": True},
                       headers=ws.agent).status_code == 201


def test_the_settings_page_maps_reasons_and_adds_a_term(app, client, ws):
    b = Browser(app, ws.admin_email)
    page = b.get("/settings/legal")
    assert page.status_code == 200 and "legal-mapping" in page.text and "Сроки по закону" in page.text
    r = b.post("/settings/legal", {"map:defective": "defect", "map:late_delivery": "",
                                   "term_obligation": "return_distance_sale:refuse_goods", "term_amount": "30",
                                   "term_unit": "days", "term_title": "Возврат 30 дней", "warn_days": "3"})
    assert r.status_code in (200, 204, 303), r.text
    view = client.get("/api/v1/consumer-law/settings", headers=ws.admin).json()
    assert view["warn_days"] == 3 and "late_delivery" not in view["reason_situations"]
    assert view["terms"] == [{"situation": "return_distance_sale", "key": "refuse_goods", "days": 30,
                              "title": "Возврат 30 дней"}]
    bad = b.post("/settings/legal", {"term_obligation": "defect:refund", "term_amount": "много",
                                     "term_unit": "days", "warn_days": "2"})
    assert bad.status_code == 422 and "legal-settings-error" in bad.text
    assert Browser(app, ws.agent_email).get("/settings/legal").status_code in (403, 303)
    inbox = b.get("/inbox?sla=legal_soon")
    assert inbox.status_code == 200 and 'value="legal_soon" selected' in inbox.text
    assert b.get("/inbox?sla=nope").status_code == 422


def test_the_assistant_hands_off_a_repair_the_customer_says_is_past_45_days(client, shop):
    ws = shop
    got = inbound(client, ws, text="Сдал телефон в гарантийный ремонт, прошло уже 50 дней, а его всё не вернули",
                  identity="repair@example.com")
    cid = got["conversation_id"]
    (d,) = decisions(client, ws, cid)
    assert d["action"] == "handoff" and d["reason"] == "legal_deadline", d
    note = next(m for m in messages(client, ws, cid) if m["is_internal"])["body_text"]
    assert "ЗоЗПП ст. 20 п. 1" in note and "50 дн" in note
    case = client.get(f"/api/v1/conversations/{cid}/consumer-law", headers=ws.agent).json()
    assert case["situation"] == "warranty_repair"
    assert case["inputs"]["demanded_on"] == (dt.date.today() - dt.timedelta(days=50)).isoformat()
    assert case["obligations"][0]["overdue_days"] > 0 and "price" in case["missing"]
    conv = client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()
    assert conv["priority"] == "urgent" and conv["legal_due_at"] is not None
    # within the term the assistant may answer as usual; the date still goes on the case for the agent
    other = inbound(client, ws, text="Телефон в гарантийном ремонте уже 10 дней, сколько ещё ждать?",
                    identity="repair2@example.com")["conversation_id"]
    (d2,) = decisions(client, ws, other)
    assert d2["reason"] != "legal_deadline"
    case2 = client.get(f"/api/v1/conversations/{other}/consumer-law", headers=ws.agent).json()
    assert case2["inputs"].get("demanded_on") == (dt.date.today() - dt.timedelta(days=10)).isoformat()
