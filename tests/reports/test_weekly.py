"""The weekly report by e-mail: the past Monday–Sunday beside the week before, sent through the platform mailer to
a real SMTP server (aiosmtpd) once per week and address — a second sweep sends nothing, a refused delivery is
tried again by the next sweep. The figures are worked out by hand:

- Workspace time zone Europe/Moscow. The sweep runs on Monday 30.11.2026 at 09:00 Moscow (06:00 UTC): the week due
  is 23.11–29.11, the one before 16.11–22.11 (at 07:59 Moscow the due week is still 16.11–22.11).
- Week 23.11–29.11: 3 conversations; first responses after 10, 20 and 60 minutes → median 20 min; CSAT 5 and 2 →
  50 % of 2 answers. Week 16.11–22.11: 2 conversations, one answered after 30 minutes → median 30 min; no CSAT.
"""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from otklik.accounts.models import User
from otklik.conversations import service as conversations
from otklik.customers import service as customers
from otklik.feedback.models import SurveyAnswer
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope
from otklik.reports import jobs, weekly
from otklik.reports.models import WeeklyReportDelivery
from tests.channels.email_peers import MailSink

UTC = dt.UTC
MONDAY_9_MSK = dt.datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


@pytest.fixture
def sink(monkeypatch):
    server = MailSink(username=None)
    settings = get_settings()
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", server.port)
    monkeypatch.setattr(settings, "smtp_starttls", False)
    monkeypatch.setattr(settings, "smtp_username", None)
    yield server
    server.close()


def _conversation(ws, email: str, start: dt.datetime, first_after_min: int | None, csat: int | None = None) -> None:
    with session_scope() as s:
        customer, _ = customers.resolve_or_create(s, ws.id, kind="email", external_id=email, name=email)
        conversation = conversations.create_conversation(s, ws.actor(), customer_id=customer.id, channel="email")
        conversation.created_at = start
        if first_after_min is not None:
            conversation.first_response_at = start + dt.timedelta(minutes=first_after_min)
        if csat is not None:
            s.add(SurveyAnswer(workspace_id=ws.id, conversation_id=conversation.id, customer_id=customer.id,
                               kind="csat", channel="email", sent_at=start, score=csat, comment="",
                               answered_at=start))


def _timeline(ws) -> None:
    noon = dt.time(9, 0, tzinfo=UTC)  # 12:00 in Moscow
    _conversation(ws, "a@example.com", dt.datetime.combine(dt.date(2026, 11, 23), noon), 10, csat=5)
    _conversation(ws, "b@example.com", dt.datetime.combine(dt.date(2026, 11, 25), noon), 20, csat=2)
    _conversation(ws, "c@example.com", dt.datetime.combine(dt.date(2026, 11, 29), noon), 60)
    _conversation(ws, "d@example.com", dt.datetime.combine(dt.date(2026, 11, 16), noon), 30)
    _conversation(ws, "e@example.com", dt.datetime.combine(dt.date(2026, 11, 22), noon), None)
    _conversation(ws, "f@example.com", dt.datetime.combine(dt.date(2026, 11, 30), noon), 5)  # this week: not in


def test_week_due_turns_at_monday_eight():
    from zoneinfo import ZoneInfo

    msk = ZoneInfo("Europe/Moscow")
    assert weekly.week_due(dt.datetime(2026, 11, 30, 7, 59, tzinfo=msk)) == dt.date(2026, 11, 16)
    assert weekly.week_due(dt.datetime(2026, 11, 30, 8, 0, tzinfo=msk)) == dt.date(2026, 11, 23)
    assert weekly.week_due(dt.datetime(2026, 12, 6, 23, 59, tzinfo=msk)) == dt.date(2026, 11, 23)


def test_sent_once_per_week_and_address_with_the_figures_worked_out_by_hand(client, ws, other_ws, sink):
    _timeline(ws)
    r = client.put("/api/v1/reports/weekly/subscription", headers=ws.admin, json={"subscribed": True})
    assert r.status_code == 200 and r.json()["subscribed"] is True
    r = client.put("/api/v1/reports/weekly", headers=ws.admin,
                   json={"addresses": "boss@shop.example\nowner@shop.example, boss@shop.example"})
    assert r.status_code == 200 and r.json()["addresses"] == ["boss@shop.example", "owner@shop.example"]
    with session_scope() as s:
        s.get(User, ws.admin_id).language = "en"

    sink.refuse_rcpt.append("451 4.3.0 try later")  # the first address is refused this time
    assert jobs.send_weekly_report.call_local(ws.id, MONDAY_9_MSK.isoformat()) == 2
    first = sink.wait_for(2)
    assert sorted(m["rcpt_tos"][0] for m in first) == ["boss@shop.example", "owner@shop.example"]
    ru = next(m["message"] for m in first if m["rcpt_tos"] == ["boss@shop.example"])
    assert ru["Subject"] == f"Отклик: неделя 23.11.2026–29.11.2026, Shop {ws.slug.rsplit('-', 1)[1]}"
    body = ru.get_content()
    assert "Обращений: 3 (было 2)" in body
    assert "Первый ответ, медиана: 20 мин (было 30 мин)" in body
    assert "CSAT (доля оценок 4–5): 50 % (2 ответов) (было — (0 ответов))" in body
    assert "/reports?from=2026-11-23&to=2026-11-29" in body

    # the next sweeps: the refused admin's copy is tried again, nobody gets a second one
    jobs.sweep_weekly(MONDAY_9_MSK + dt.timedelta(minutes=10))
    jobs.sweep_weekly(MONDAY_9_MSK + dt.timedelta(minutes=20))
    ours = [m for m in sink.wait_for(3) if m["rcpt_tos"][0] in (ws.admin_email, "boss@shop.example",
                                                                  "owner@shop.example")]
    assert sorted(m["rcpt_tos"][0] for m in ours) == sorted([ws.admin_email, "boss@shop.example",
                                                             "owner@shop.example"])
    en = next(m["message"] for m in ours if m["rcpt_tos"] == [ws.admin_email]).get_content()
    assert "Conversations: 3 (was 2)" in en and "First response, median: 20 min (was 30 min)" in en
    with session_scope(write=False) as s:
        rows = {(r.email, r.status, r.attempts) for r in s.scalars(select(WeeklyReportDelivery).where(
            WeeklyReportDelivery.workspace_id == ws.id))}
    assert rows == {(ws.admin_email, "sent", 2), ("boss@shop.example", "sent", 1),
                    ("owner@shop.example", "sent", 1)}
    # the next Monday: the next week, once
    assert jobs.send_weekly_report.call_local(ws.id, (MONDAY_9_MSK + dt.timedelta(days=7)).isoformat()) == 3
    assert jobs.send_weekly_report.call_local(ws.id, (MONDAY_9_MSK + dt.timedelta(days=7, hours=2)).isoformat()) == 0
    # another workspace sees none of it
    other = client.get("/api/v1/reports/weekly", headers=other_ws.admin).json()
    assert other["addresses"] == [] and other["deliveries"] == [] and other["recipients"] == []


def test_preview_roles_and_bad_input(client, ws, other_ws):
    _timeline(ws)
    r = client.get("/api/v1/reports/weekly/preview", headers=ws.admin, params={"week": "2026-11-26"})
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["week"] == {"from": "2026-11-23", "to": "2026-11-29"}
    assert (data["this"]["conversations"], data["before"]["conversations"]) == (3, 2)
    assert data["this"]["first_response_median_s"] == 1200 and data["this"]["csat"] == 0.5
    assert "Обращений: 3 (было 2)" in data["text"]
    assert client.get("/api/v1/reports/weekly/preview", headers=other_ws.admin,
                      params={"week": "2026-11-26"}).json()["this"]["conversations"] == 0
    r = client.get("/api/v1/reports/weekly/preview", headers=ws.admin, params={"week": "2026-13-01"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "week"
    for headers, path, body in ((ws.agent, "/api/v1/reports/weekly/subscription", {"subscribed": True}),
                                (ws.agent, "/api/v1/reports/weekly", {"addresses": "a@b.example"})):
        assert client.put(path, headers=headers, json=body).status_code == 403
    assert client.get("/api/v1/reports/weekly", headers=ws.agent).status_code == 403
    for body, field in (({"addresses": "not-an-address"}, "addresses"), ({"addresses": 5}, "addresses"),
                        ({}, "addresses")):
        r = client.put("/api/v1/reports/weekly", headers=ws.admin, json=body)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"].endswith(field), r.text
    r = client.put("/api/v1/reports/weekly/subscription", headers=ws.admin, json={"subscribed": "maybe"})
    assert r.status_code == 422


def test_nothing_is_sent_without_smtp(client, ws, monkeypatch):
    monkeypatch.setattr(get_settings(), "smtp_host", None)
    client.put("/api/v1/reports/weekly", headers=ws.admin, json={"addresses": "boss@shop.example"})
    assert weekly.send_workspace(ws.id, now=MONDAY_9_MSK) == 0
    with session_scope(write=False) as s:
        assert s.scalar(select(WeeklyReportDelivery.id).where(WeeklyReportDelivery.workspace_id == ws.id)) is None
