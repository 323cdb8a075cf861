"""CSAT surveys: sent in the conversation's channel when it is solved (once, by the rules), answered through a
signed link (a second answer replaces the first, a forged or expired link answers nothing), a low score opens a
follow-up task, and the summary's csat comes from the answers."""

from __future__ import annotations

import datetime as dt

from otklik.customers.tasks import Task
from otklik.feedback import service
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import session_scope, utcnow
from tests.conftest import inbound


def solved_conversation(client, ws, identity: str = "survey@example.com") -> int:
    cid = inbound(client, ws, identity=identity, text="Где мой заказ?")["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Заказ в пути, будет завтра."},
                    headers=ws.agent)
    assert r.status_code == 201, r.text
    r = client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.agent)
    assert r.status_code == 200, r.text
    return cid


def survey_message(client, ws, cid: int) -> dict:
    messages = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.admin).json()
    items = messages["items"] if isinstance(messages, dict) else messages
    found = [m for m in items if "/survey/" in m["body_text"]]
    assert len(found) == 1, items
    token = found[0]["body_text"].split("/survey/")[1].split()[0]  # the link of the top rating (5)
    return {**found[0], "token": token, "answer_id": int(token.split(".")[0])}


def test_solving_sends_one_survey_in_the_channel_and_keeps_it_solved(client, ws):
    cid = solved_conversation(client, ws)
    message = survey_message(client, ws, cid)
    assert "Насколько вы довольны" in message["body_text"] and "/survey/" in message["body_text"]
    assert message["author_kind"] == "system"
    conversation = client.get(f"/api/v1/conversations/{cid}", headers=ws.admin).json()
    assert conversation["status"] == "solved" and conversation["first_response_at"] is not None
    # re-open and solve again: no second survey
    inbound(client, ws, identity="survey@example.com", text="А можно быстрее?")
    client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Уже едет."}, headers=ws.agent)
    client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.agent)
    survey_message(client, ws, cid)
    surveys = client.get(f"/api/v1/conversations/{cid}/surveys", headers=ws.agent).json()
    assert [(s["kind"], s["score"]) for s in surveys] == [("csat", None)]


def test_answer_by_link_second_answer_replaces_the_first(client, ws):
    cid = solved_conversation(client, ws)
    token = survey_message(client, ws, cid)["token"]
    r = client.post("/api/v1/surveys/answer", json={"token": token, "score": 5})
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/surveys/answer", json={"token": token, "score": 4, "comment": "Спасибо"})
    assert r.json() == {"kind": "csat", "score": 4, "comment": "Спасибо"}
    surveys = client.get(f"/api/v1/conversations/{cid}/surveys", headers=ws.agent).json()
    assert [(s["score"], s["low"], s["follow_up_task_id"]) for s in surveys] == [(4, False, None)]
    day = utcnow().date()
    summary = client.get("/api/v1/reports/summary", params={
        "from": (day - dt.timedelta(days=2)).isoformat(), "to": (day + dt.timedelta(days=1)).isoformat()},
        headers=ws.admin).json()
    assert (summary["csat"], summary["csat_responses"]) == (1.0, 1)
    r = client.post("/api/v1/surveys/answer", json={"token": token, "score": 6})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "score"


def test_a_link_answers_its_own_survey_only(client, ws, other_ws):
    cid = solved_conversation(client, ws)
    token = survey_message(client, ws, cid)["token"]
    answer_id, expires, score, sig = token.split(".")
    theirs = solved_conversation(client, other_ws, identity="other@example.com")
    their_id = survey_message(client, other_ws, theirs)["answer_id"]
    for forged in (f"{their_id}.{expires}.{score}.{sig}", f"{answer_id}.{int(expires) + 1}.{score}.{sig}",
                   f"{answer_id}.{expires}.1.{sig}", f"{answer_id}.{expires}.-.{sig}", "1.2.3", "x.y.z.w", token[:-2] + "AA"):
        r = client.post("/api/v1/surveys/answer", json={"token": forged, "score": 1})
        assert r.status_code == 404, (forged, r.text)
    with session_scope() as s:
        answer = s.get(SurveyAnswer, int(answer_id))
        old = service.link_token(answer, now=utcnow() - service.LINK_TTL - dt.timedelta(minutes=1))
    r = client.post("/api/v1/surveys/answer", json={"token": old, "score": 1})
    assert r.status_code == 404 and "expired" in r.text
    assert client.get(f"/api/v1/conversations/{theirs}/surveys", headers=ws.admin).status_code == 404
    assert client.post(f"/api/v1/conversations/{theirs}/surveys/csat", headers=ws.admin).status_code == 404


def test_low_score_opens_a_follow_up_task(client, ws):
    cid = solved_conversation(client, ws)
    token = survey_message(client, ws, cid)["token"]
    client.post("/api/v1/surveys/answer", json={"token": token, "score": 1, "comment": "Долго и грубо"})
    client.post("/api/v1/surveys/answer", json={"token": token, "score": 2})
    surveys = client.get(f"/api/v1/conversations/{cid}/surveys", headers=ws.agent).json()
    assert surveys[0]["low"] is True and surveys[0]["comment"] == "Долго и грубо"
    with session_scope(write=False) as s:
        tasks = s.query(Task).filter_by(workspace_id=ws.id, conversation_id=cid).all()
        assert len(tasks) == 1 and "Низкая оценка CSAT 1" in tasks[0].title
        assert tasks[0].note == "Долго и грубо"


def test_rules_quiet_period_unanswered_and_opt_out(client, ws):
    first = solved_conversation(client, ws, identity="quiet@example.com")
    client.patch(f"/api/v1/conversations/{first}", json={"status": "closed"}, headers=ws.agent)
    # the same customer, another conversation solved the same week: no second survey
    cid = inbound(client, ws, identity="quiet@example.com", text="ещё вопрос")["conversation_id"]
    assert cid != first
    client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Ответ"}, headers=ws.agent)
    client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.agent)
    r = client.post(f"/api/v1/conversations/{cid}/surveys/csat", headers=ws.admin)
    assert r.status_code == 409 and "quiet period" in r.text
    # opted out: never asked
    opted = inbound(client, ws, identity="optout@example.com")
    customer_id = client.get(f"/api/v1/conversations/{opted['conversation_id']}", headers=ws.admin
                             ).json()["customer"]["id"]
    r = client.patch(f"/api/v1/customers/{customer_id}", json={"attributes": {"no_surveys": True}}, headers=ws.admin)
    assert r.status_code == 200, r.text
    client.post(f"/api/v1/conversations/{opted['conversation_id']}/messages", json={"text": "Ответ"},
                headers=ws.agent)
    client.patch(f"/api/v1/conversations/{opted['conversation_id']}", json={"status": "solved"}, headers=ws.agent)
    r = client.post(f"/api/v1/conversations/{opted['conversation_id']}/surveys/csat", headers=ws.admin)
    assert r.status_code == 409 and "opted out" in r.text
    # nobody answered: no survey
    lone = inbound(client, ws, identity="lone@example.com")["conversation_id"]
    client.patch(f"/api/v1/conversations/{lone}", json={"status": "solved"}, headers=ws.agent)
    r = client.post(f"/api/v1/conversations/{lone}/surveys/csat", headers=ws.admin)
    assert r.status_code == 409 and "never answered" in r.text
    assert client.get(f"/api/v1/conversations/{lone}/surveys", headers=ws.agent).json() == []
    assert client.post(f"/api/v1/conversations/{lone}/surveys/csat", headers=ws.agent).status_code == 403
