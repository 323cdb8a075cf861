"""Settings → «Опросы и отчёты» and «Тайный покупатель» as pages: what an admin, a supervisor and an agent may do,
errors naming the field (422), escaping, and the NPS survey's landing page with the workspace's own texts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from otklik.accounts import service as accounts
from otklik.accounts.models import Role
from otklik.conversations.models import Message
from otklik.feedback import jobs
from otklik.platform.db import session_scope, utcnow
from tests.conftest import PASSWORD
from tests.feedback.test_nps import _contact, _customer
from tests.web._ui import Browser


def _supervisor(ws) -> str:
    with session_scope() as s:
        user = accounts.create_user(s, ws.actor(), email=f"sup-{ws.id}@example.com", name="Sup",
                                    role=Role.supervisor, password=PASSWORD)
        return user.email


def test_surveys_settings_page_saves_and_refuses(app, ws):
    admin = Browser(app, ws.admin_email)
    assert 'href="/settings/surveys" id="settings-link-surveys"' in admin.get("/settings").text
    page = admin.get("/settings/surveys")
    assert page.status_code == 200 and "Опросы и отчёты" in page.text and 'id="nps-form"' in page.text
    r = admin.post("/settings/surveys/nps", {"enabled": "on", "delay_days": "14",
                                             "question_ru": "Посоветуете нас? <b>0–10</b>", "why_ru": "",
                                             "question_en": "", "why_en": "Why?"})
    assert r.status_code == 200 and 'id="surveys-saved"' in r.text
    assert "Посоветуете нас? &lt;b&gt;0–10&lt;/b&gt;" in r.text and "<b>0–10</b>" not in r.text
    settings = admin.http.get("/api/v1/surveys/nps/settings", headers={"X-CSRF-Token": admin.csrf}).json()
    assert settings["enabled"] is True and settings["delay_days"] == 14
    assert settings["texts"]["ru"]["why"] == "Почему вы поставили такую оценку?"  # empty: the built-in one
    assert settings["texts"]["en"]["why"] == "Why?"
    r = admin.post("/settings/surveys/nps", {"delay_days": "0"})
    assert r.status_code == 422 and 'data-field="delay_days"' in r.text
    r = admin.post("/settings/surveys/nps", {"delay_days": "abc"})
    assert r.status_code == 422 and 'data-field="delay_days"' in r.text
    r = admin.post("/settings/surveys/nps", {"delay_days": "30", "question_ru": "x" * 600})
    assert r.status_code == 422 and 'data-field="texts.ru.question"' in r.text
    r = admin.post("/settings/surveys/weekly", {"addresses": "boss@shop.example\nnot an address"})
    assert r.status_code == 422 and 'data-field="addresses"' in r.text
    r = admin.post("/settings/surveys/weekly", {"addresses": "boss@shop.example"})
    assert r.status_code == 200 and "boss@shop.example" in r.text
    r = admin.post("/settings/surveys/weekly/me", {"subscribed": "on"})
    assert r.status_code == 200 and ws.admin_email in r.text.split('id="weekly-recipients"')[1][:300]

    supervisor = Browser(app, _supervisor(ws))
    page = supervisor.get("/settings/surveys")
    assert page.status_code == 200 and 'id="nps-save"' not in page.text and 'id="weekly-form"' not in page.text
    assert supervisor.post("/settings/surveys/nps", {"delay_days": "5"}).status_code == 403
    assert supervisor.post("/settings/surveys/weekly/me", {"subscribed": "on"}).status_code == 200
    agent = Browser(app, ws.agent_email)
    assert agent.get("/settings/surveys").status_code == 403
    assert agent.post("/settings/surveys/weekly/me", {"subscribed": "on"}).status_code == 403
    assert admin.post("/settings/surveys/weekly/me", {"subscribed": "on"}, csrf=False).status_code == 403


def test_mystery_page_creates_runs_and_refuses(app, ws, other_ws):
    admin = Browser(app, ws.admin_email)
    page = admin.get("/mystery")
    assert page.status_code == 200 and "Тайный покупатель" in page.text and 'id="mystery-no-scenarios"' in page.text
    r = admin.post("/mystery/scenarios", {"title": "<i>Доставка</i>", "opening": "Сколько стоит доставка в Магадан?",
                                          "expected": "стоимость\nсрок"})
    assert r.status_code in (200, 204, 303)
    page = admin.get("/mystery")
    assert "&lt;i&gt;Доставка&lt;/i&gt;" in page.text and "<i>Доставка</i>" not in page.text
    scenario_id = int(page.text.split('data-scenario="')[1].split('"')[0])
    r = admin.post(f"/mystery/scenarios/{scenario_id}/runs", {"language": "ru"})
    assert r.status_code in (200, 204, 303), r.text
    page = admin.get("/mystery")
    assert 'id="mystery-runs"' in page.text and "0 / 2" in page.text and "после решения" in page.text
    r = admin.post("/mystery/scenarios", {"title": "", "opening": "x"})
    assert r.status_code == 422 and 'data-field="title"' in r.text
    r = admin.post(f"/mystery/scenarios/{scenario_id}/runs", {"language": "de"})
    assert r.status_code == 422 and 'data-field="language"' in r.text
    other = Browser(app, other_ws.admin_email)
    assert other.post(f"/mystery/scenarios/{scenario_id}/runs", {"language": "ru"}).status_code == 404
    assert other.post(f"/mystery/scenarios/{scenario_id}/delete").status_code == 404
    assert "Доставка" not in other.get("/mystery").text
    agent = Browser(app, ws.agent_email)
    assert agent.get("/mystery").status_code == 403
    assert agent.post("/mystery/scenarios", {"title": "t", "opening": "x"}).status_code == 403
    assert admin.post(f"/mystery/scenarios/{scenario_id}/delete").status_code in (200, 204, 303)
    assert 'id="mystery-no-scenarios"' in admin.get("/mystery").text


def test_nps_landing_page_asks_the_workspaces_question_and_why(app, client, ws):
    client.put("/api/v1/surveys/nps/settings", headers=ws.admin, json={
        "enabled": True, "texts": {"ru": {"question": "Посоветуете «Ромашку»?", "why": "Что повлияло на оценку?"}}})
    now = utcnow()
    cid = _contact(ws, _customer(ws, "landing@example.com"), now - dt.timedelta(days=30))
    jobs.sweep_nps(now, ws.id)
    with session_scope(write=False) as s:
        body = s.scalar(select(Message.body_text).where(Message.conversation_id == cid,
                                                        Message.author_kind == "system"))
    link = next(line for line in body.splitlines() if line.startswith("7 — ")).split(" — ")[1]
    visitor = Browser(app)
    page = visitor.get(link[link.index("/survey/"):])
    assert page.status_code == 200
    assert "7</strong> / 10" in page.text and "Посоветуете «Ромашку»?" in page.text
    assert "Что повлияло на оценку?" in page.text and 'name="ces"' not in page.text
    assert page.text.count('name="score"') == 11
