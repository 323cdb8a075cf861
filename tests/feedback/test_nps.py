"""NPS on its own schedule (docs/metrics.md «NPS»): asked 30 days after a contact or a delivered order, in the
customer's channel, never twice in 92 days, never to an opted-out customer, held back by the 7-day quiet period,
let go when more than 7 days late; the texts per language from the settings. The schedule below is worked out by
hand (T = a day 200 days ago):

- A: contact at T → due T+30d. Sweep at T+30d−1min: nothing; at T+30d: A asked (sent T+30d).
- C: contact at T but opted out: never. D: contact at T−10d → due T+20d, 10 days late at T+30d: let go.
- E: contact at T+1d (English) → due T+31d; a CSAT sent at T+28d holds it until T+35d (quiet period).
- B: order delivered at T+5d → due T+35d; a contact at T+20d → due T+50d.
- Sweep at T+31d: nothing (A this quarter, E quiet). At T+35d+1h: B (for the order, asked in its contact's
  conversation) and E (4 days late, within 7). At T+50d: nothing (B asked 15 days ago).
- A again: contacts at T+90d (due T+120d: 90 days after the last survey < 92 → no) and T+100d (due T+130d:
  100 days after → asked, in that new conversation).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation, Message
from otklik.customers import service as customers
from otklik.feedback import jobs, nps
from otklik.feedback.models import SurveyAnswer
from otklik.orders.models import Order, OrderEvent
from otklik.platform.db import session_scope, utcnow

DAY = dt.timedelta(days=1)


def _customer(ws, email: str, *, opted_out: bool = False, language: str = "ru") -> int:
    with session_scope() as s:
        customer, _ = customers.resolve_or_create(s, ws.id, kind="email", external_id=email, name=email,
                                                  language=language)
        if opted_out:
            customer.attributes = {**(customer.attributes or {}), "no_surveys": True}
        return customer.id


def _contact(ws, customer_id: int, at: dt.datetime) -> int:
    with session_scope() as s:
        conversation = conversations.create_conversation(s, ws.actor(), customer_id=customer_id, channel="email",
                                                         subject="Вопрос")
        conversation.created_at = at
        conversation.last_message_at = at
        return conversation.id


def _delivered(ws, customer_id: int, number: str, at: dt.datetime) -> None:
    with session_scope() as s:
        order = Order(workspace_id=ws.id, number=number, customer_id=customer_id, customer_kind="email",
                      customer_value="b@example.com", status="delivered", fingerprint="x" * 32, contacts={},
                      items=[], delivery={}, attributes={})
        s.add(order)
        s.flush()
        s.add(OrderEvent(workspace_id=ws.id, order_id=order.id, status="created", at=at - 3 * DAY))
        s.add(OrderEvent(workspace_id=ws.id, order_id=order.id, status="delivered", at=at))


def _asked(ws) -> list[tuple[int, int, dt.datetime]]:
    with session_scope(write=False) as s:
        return [(a.customer_id, a.conversation_id, a.sent_at.astimezone(dt.UTC)) for a in s.scalars(
            select(SurveyAnswer).where(SurveyAnswer.workspace_id == ws.id, SurveyAnswer.kind == "nps")
            .order_by(SurveyAnswer.id))]


def test_the_schedule_worked_out_by_hand(client, ws, other_ws):
    t = (utcnow() - 200 * DAY).replace(microsecond=0)
    r = client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={
        "enabled": True, "delay_days": 30,
        "texts": {"ru": {"question": "Посоветуете ли вы «Ромашку» друзьям? 0–10"},
                  "en": {"question": "Would you recommend Romashka? 0-10", "why": "Why?"}}})
    assert r.status_code == 200, r.text
    a, b, c, d = (_customer(ws, f"{x}@example.com") for x in "abcd")
    with session_scope() as s:
        from otklik.customers.models import Customer

        s.get(Customer, c).attributes = {"no_surveys": True}
    e = _customer(ws, "e@example.com", language="en")
    a1 = _contact(ws, a, t)
    _contact(ws, c, t)
    _contact(ws, d, t - 10 * DAY)
    e1 = _contact(ws, e, t + DAY)
    with session_scope() as s:  # E got a CSAT at T+28d: the quiet period holds the NPS until T+35d
        s.get(Conversation, e1).language = "en"
        s.add(SurveyAnswer(workspace_id=ws.id, conversation_id=e1, customer_id=e, kind="csat", channel="email",
                           sent_at=t + 28 * DAY, comment=""))
    _delivered(ws, b, "R-1", t + 5 * DAY)
    b1 = _contact(ws, b, t + 20 * DAY)
    # another workspace with the same timeline but NPS off: nothing is ever sent there
    other = _customer(other_ws, "a@example.com")
    _contact(other_ws, other, t)

    jobs.sweep_nps(t + 30 * DAY - dt.timedelta(minutes=1))
    assert _asked(ws) == []
    jobs.sweep_nps(t + 30 * DAY)
    assert _asked(ws) == [(a, a1, t + 30 * DAY)]
    jobs.sweep_nps(t + 30 * DAY)  # a second sweep at the same moment: no second survey
    jobs.sweep_nps(t + 31 * DAY)
    assert len(_asked(ws)) == 1
    jobs.sweep_nps(t + 35 * DAY + dt.timedelta(hours=1))
    assert _asked(ws)[1:] == [(e, e1, t + 35 * DAY + dt.timedelta(hours=1)),
                              (b, b1, t + 35 * DAY + dt.timedelta(hours=1))]
    jobs.sweep_nps(t + 50 * DAY)
    assert len(_asked(ws)) == 3
    _contact(ws, a, t + 90 * DAY)
    a3 = _contact(ws, a, t + 100 * DAY)
    jobs.sweep_nps(t + 120 * DAY)
    assert len(_asked(ws)) == 3
    jobs.sweep_nps(t + 130 * DAY)
    assert _asked(ws)[3:] == [(a, a3, t + 130 * DAY)]
    assert _asked(other_ws) == []

    with session_scope(write=False) as s:
        texts = {m.conversation_id: (m.body_text, m.author_kind, m.meta["survey"]) for m in s.scalars(
            select(Message).where(Message.conversation_id.in_((a1, e1, b1)), Message.author_kind == "system"))}
    body, author, meta = texts[a1]
    assert body.startswith("Посоветуете ли вы «Ромашку» друзьям? 0–10\n10 — ") and "/survey/" in body
    assert author == "system" and meta["kind"] == "nps" and meta["trigger"]["kind"] == "contact"
    assert body.count("/survey/") == 11 and meta["why"] == "Почему вы поставили такую оценку?"
    assert texts[e1][0].startswith("Would you recommend Romashka? 0-10") and texts[e1][2]["why"] == "Why?"
    assert texts[b1][2]["trigger"]["kind"] == "order" and texts[b1][2]["trigger"]["order"] == "R-1"


def test_answer_counts_in_the_summary_and_a_low_one_opens_a_follow_up(client, ws):
    client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={"enabled": True})
    now = utcnow()
    customer = _customer(ws, "nps@example.com")
    cid = _contact(ws, customer, now - 30 * DAY)
    assert jobs.sweep_nps(now, ws.id) == 1  # this workspace: other tests leave theirs on
    with session_scope(write=False) as s:
        body = s.scalar(select(Message.body_text).where(Message.conversation_id == cid,
                                                        Message.author_kind == "system"))
    token_of = {int(line.split(" — ")[0]): line.split("/survey/")[1] for line in body.splitlines()[1:]}
    assert sorted(token_of) == list(range(11))
    r = client.post("/api/v1/surveys/answer", json={"token": token_of[3], "comment": "Долго везли"})
    assert r.status_code == 200 and r.json() == {"kind": "nps", "score": 3, "comment": "Долго везли"}
    surveys = client.get(f"/api/v1/conversations/{cid}/surveys", headers=ws.agent).json()
    assert [(s["kind"], s["score"], s["low"], s["follow_up_task_id"] is not None) for s in surveys] == [
        ("nps", 3, True, True)]
    day = (now - 30 * DAY).date()
    summary = client.get("/api/v1/reports/summary", headers=ws.admin, params={
        "from": (day - DAY).isoformat(), "to": (day + DAY).isoformat()}).json()
    assert (summary["nps"], summary["nps_responses"]) == (-100.0, 1)  # one detractor: 0 % − 100 %
    r = client.post("/api/v1/surveys/answer", json={"token": token_of[10]})  # a second answer replaces it
    summary = client.get("/api/v1/reports/summary", headers=ws.admin, params={
        "from": (day - DAY).isoformat(), "to": (day + DAY).isoformat()}).json()
    assert (summary["nps"], summary["nps_responses"]) == (100.0, 1)


def test_settings_validation_roles_and_defaults(client, ws, other_ws):
    r = client.get("/api/v1/surveys/nps/settings", headers=ws.admin)
    assert r.status_code == 200
    assert r.json()["enabled"] is False and r.json()["delay_days"] == 30
    assert r.json()["texts"]["ru"]["why"] == "Почему вы поставили такую оценку?"
    assert client.get("/api/v1/surveys/nps/settings", headers=ws.agent).status_code == 403
    assert client.put("/api/v1/surveys/nps/settings", headers=ws.agent, json={"enabled": True}).status_code == 403
    for body, field in (({"delay_days": 0}, "delay_days"), ({"delay_days": 366}, "delay_days"),
                        ({"delay_days": "x"}, "delay_days"), ({"texts": {"de": {"question": "?"}}}, "texts"),
                        ({"texts": {"ru": {"question": "x" * 501}}}, "texts"), ({"nope": 1}, "nope")):
        r = client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json=body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"][0]["field"], (body, r.json())
    r = client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={"enabled": True, "delay_days": 14})
    assert r.json()["delay_days"] == 14
    assert client.get("/api/v1/surveys/nps/settings", headers=other_ws.admin).json()["enabled"] is False


def test_mystery_and_review_conversations_are_no_contact(client, ws):
    client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={"enabled": True})
    now = utcnow()
    customer = _customer(ws, "m@example.com")
    cid = _contact(ws, customer, now - 30 * DAY)
    with session_scope() as s:
        s.get(Conversation, cid).mystery = True
    with session_scope(write=False) as s:
        assert nps.due(s, ws.id, now=now, delay_days=30) == []


def test_the_workers_sweep_asks_the_due_customers(client, ws):
    """The rollup's minute sweep (run by `otklik worker` and the embedded worker) runs the NPS schedule every 10
    minutes: a customer whose contact is 30 days old is asked by it."""
    from otklik.reports import jobs as report_jobs

    client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={"enabled": True})
    cid = _contact(ws, _customer(ws, "worker@example.com"), utcnow() - 30 * DAY)
    out = report_jobs.sweep_schedules(force=True)
    assert out["nps"] >= 1
    assert [(asked[1]) for asked in _asked(ws)] == [cid]
    assert report_jobs.sweep_schedules() == {}  # within 10 minutes: not again
