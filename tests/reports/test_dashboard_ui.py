"""The «Отчёты» page and the customer's survey page: figures, SVG charts, filters, errors naming the field,
roles, escaping; the one-click rating, the comment and CES, an expired link."""

from __future__ import annotations

from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import session_scope
from tests.feedback.test_surveys import solved_conversation, survey_message
from tests.web._ui import Browser


def test_dashboard_shows_figures_and_charts(app, client, ws):
    solved_conversation(client, ws, identity="dash@example.com")
    client.post("/api/v1/teams", json={"name": "<script>alert(1)</script>"}, headers=ws.admin)
    page = Browser(app, ws.admin_email).get("/reports")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Отчёты" in html and 'href="/reports"' in html  # the nav link
    for chart in ("chart-volume", "chart-first-response"):
        assert f'id="{chart}"' in html
    assert 'data-key="csat"' in html and "<rect" in html
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert 'id="export-csv" href="/api/v1/reports/conversations.csv?from=' in html


def test_dashboard_refuses_bad_dates_and_agents(app, ws):
    admin = Browser(app, ws.admin_email)
    r = admin.get("/reports", params={"from": "2026-03-10", "to": "2026-03-01"})
    assert r.status_code == 422 and 'data-field="from"' in r.text
    r = admin.get("/reports", params={"from": "вчера", "to": "2026-03-01", "channel": "<b>"})
    assert r.status_code == 422 and "<b>" not in r.text
    agent = Browser(app, ws.agent_email)
    assert agent.get("/reports").status_code == 403
    assert 'href="/reports"' not in agent.get("/inbox").text


def test_survey_page_records_the_click_then_the_comment(app, client, ws):
    cid = solved_conversation(client, ws, identity="page@example.com")
    link = survey_message(client, ws, cid)["token"]  # the «5» link
    visitor = Browser(app)
    page = visitor.get(f"/survey/{link}")
    assert page.status_code == 200 and 'id="survey-recorded"' in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]
    with session_scope(write=False) as s:
        assert s.query(SurveyAnswer).filter_by(conversation_id=cid, kind="csat").one().score == 5
    r = visitor.http.post(f"/survey/{link}", data={"score": "3", "ces": "6", "comment": "<img src=x onerror=1>"})
    assert r.status_code == 200 and 'id="survey-saved"' in r.text and "<img src=x" not in r.text
    with session_scope(write=False) as s:
        answers = {a.kind: (a.score, a.comment) for a in s.query(SurveyAnswer).filter_by(conversation_id=cid)}
    assert answers == {"csat": (3, "<img src=x onerror=1>"), "ces": (6, "")}
    assert visitor.get(f"/survey/{link[:-3]}xyz").status_code == 404


def test_low_score_shows_red_on_the_conversation(app, client, ws, other_ws):
    cid = solved_conversation(client, ws, identity="red@example.com")
    link = survey_message(client, ws, cid)["token"]
    client.post("/api/v1/surveys/answer", json={"token": link, "score": 1, "comment": "<b>плохо</b>"})
    browser = Browser(app, ws.agent_email)
    page = browser.get(f"/conversations/{cid}")
    assert f'hx-get="/ui/conversations/{cid}/surveys"' in page.text
    block = browser.get(f"/ui/conversations/{cid}/surveys")
    assert block.status_code == 200 and "survey-low" in block.text and "badge flag" in block.text
    assert "&lt;b&gt;плохо&lt;/b&gt;" in block.text
    theirs = solved_conversation(client, other_ws, identity="x@example.com")
    assert browser.get(f"/ui/conversations/{theirs}/surveys").status_code == 404
