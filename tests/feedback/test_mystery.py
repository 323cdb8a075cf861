"""Mystery shopping: a scenario's run opens a real widget session whose opening message reaches the inbox like any
visitor's; the conversation is flagged `mystery`, gets no CSAT survey, is scored by QA when solved, and is left
out of every customer figure. Worked out by hand: the workspace has two customer conversations today (both
answered, one solved with CSAT 5) → conversations 2, first responses 2, solved 1, CSAT 1.0 of 1 answer; after a
mystery run that is answered, solved and scored, every figure is the same."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from otklik.conversations.models import Conversation
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import session_scope, utcnow
from otklik.reports import service as reports
from tests.conftest import inbound


def _answer_and_solve(client, ws, cid: int, text: str) -> None:
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": text}, headers=ws.agent)
    assert r.status_code == 201, r.text
    r = client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.agent)
    assert r.status_code == 200, r.text


def _figures(client, ws) -> tuple[dict, dict, str, dict]:
    day = utcnow().date()
    params = {"from": (day - dt.timedelta(days=1)).isoformat(), "to": (day + dt.timedelta(days=1)).isoformat()}
    summary = client.get("/api/v1/reports/summary", params=params, headers=ws.admin).json()
    daily = client.get("/api/v1/reports/daily", params=params, headers=ws.admin).json()
    csv = client.get("/api/v1/reports/conversations.csv", params=params, headers=ws.admin).text
    qa = client.get("/api/v1/reports/qa", params=params, headers=ws.admin).json()
    with session_scope(write=False) as s:
        live = reports.summary(s, ws.id, reports.make_filters(params["from"], params["to"]), rollup=False)
    assert {k: v for k, v in live.items()} == summary
    return summary, daily, csv, qa


def test_a_run_is_worked_scored_and_kept_out_of_every_figure(client, ws):
    first = inbound(client, ws, identity="anna@example.com", text="Где мой заказ 12345?")["conversation_id"]
    _answer_and_solve(client, ws, first, "Здравствуйте! Заказ в пути, отправим трек сегодня. Хорошего дня!")
    with session_scope() as s:
        survey = s.scalar(select(SurveyAnswer).where(SurveyAnswer.conversation_id == first))
        survey.score, survey.answered_at = 5, utcnow()
    second = inbound(client, ws, identity="boris@example.com", text="Есть ли размер 42?")["conversation_id"]
    client.post(f"/api/v1/conversations/{second}/messages", json={"text": "Добрый день, есть."}, headers=ws.agent)
    before = _figures(client, ws)
    summary = before[0]
    assert (summary["conversations"], summary["first_responses"], summary["solved"]) == (2, 2, 1)
    assert (summary["csat"], summary["csat_responses"]) == (1.0, 1)
    assert before[2].count("\n") == 3  # the header and two rows

    r = client.post("/api/v1/mystery/scenarios", headers=ws.admin, json={
        "title": "Хочу вернуть товар", "opening": "Хочу вернуть товар, но не знаю как",
        "expected": "14 дней на возврат\nзаявление на возврат\nчек или номер заказа"})
    assert r.status_code == 201, r.text
    scenario = r.json()
    assert scenario["expected"] == ["14 дней на возврат", "заявление на возврат", "чек или номер заказа"]
    r = client.post(f"/api/v1/mystery/scenarios/{scenario['id']}/runs", headers=ws.admin, json={})
    assert r.status_code == 201, r.text
    run = r.json()
    cid = run["conversation_id"]
    # the agents meet it in the inbox like any visitor's conversation, in the widget channel
    conversation = client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()
    assert conversation["channel"] == "widget"
    messages = client.get(f"/api/v1/conversations/{cid}/messages", headers=ws.agent).json()
    items = messages["items"] if isinstance(messages, dict) else messages
    assert items[0]["body_text"] == "Хочу вернуть товар, но не знаю как" and items[0]["author_kind"] == "customer"
    with session_scope(write=False) as s:
        assert s.get(Conversation, cid).mystery is True
    _answer_and_solve(client, ws, cid, "Здравствуйте! Вернуть товар можно в течение 14 дней: оформите заявление "
                                       "на возврат, приложите чек. Хорошего дня!")
    with session_scope(write=False) as s:  # no CSAT survey for a supervisor's test
        assert s.scalar(select(SurveyAnswer.id).where(SurveyAnswer.conversation_id == cid)) is None
    run = client.get(f"/api/v1/mystery/runs/{run['id']}", headers=ws.admin).json()
    assert run["status"] == "solved" and run["score"] is not None and run["score"] > 50
    assert run["items"]["greeting"]["status"] == "pass" and run["items"]["closing"]["status"] == "pass"
    assert [p["message_id"] is not None for p in run["expected"]] == [True, True, True]
    assert run["expected_found"] == 3
    listed = client.get("/api/v1/mystery/runs", headers=ws.admin).json()
    assert [(r["id"], r["scenario"], r["score"]) for r in listed] == [(run["id"], "Хочу вернуть товар",
                                                                       run["score"])]

    after = _figures(client, ws)
    assert after[0] == before[0]  # summary (rollup and live)
    assert after[1] == before[1]  # the dashboard's daily series
    assert after[2] == before[2]  # the CSV export
    assert after[3] == before[3]  # QA per agent on the dashboard


def test_expected_points_not_covered_are_shown(client, ws):
    r = client.post("/api/v1/mystery/scenarios", headers=ws.admin, json={
        "title": "Доставка в Магадан", "opening": "Сколько стоит доставка в Магадан?",
        "expected": "стоимость доставки\nсрок доставки"})
    run = client.post(f"/api/v1/mystery/scenarios/{r.json()['id']}/runs", headers=ws.admin).json()
    client.post(f"/api/v1/conversations/{run['conversation_id']}/messages", headers=ws.agent,
                json={"text": "Срок доставки 10 дней."})
    run = client.get(f"/api/v1/mystery/runs/{run['id']}", headers=ws.admin).json()
    assert [(p["point"], p["message_id"] is not None) for p in run["expected"]] == [
        ("стоимость доставки", False), ("срок доставки", True)]
    assert run["score"] is None and run["status"] == "open"


def test_bad_input_roles_and_isolation(client, ws, other_ws):
    scenario = client.post("/api/v1/mystery/scenarios", headers=ws.admin, json={
        "title": "T", "opening": "Привет"}).json()
    for body, field in (({"opening": "x"}, "title"), ({"title": "t"}, "opening"),
                        ({"title": "", "opening": "x"}, "title"), ({"title": "t", "opening": "x" * 2001}, "opening"),
                        ({"title": "t", "opening": "x", "expected": "\n".join("p" * 3 + str(i) for i in range(21))},
                         "expected"), ({"title": "t", "opening": "x", "extra": 1}, "extra")):
        r = client.post("/api/v1/mystery/scenarios", headers=ws.admin, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["fields"][0]["field"].endswith(field), (body, r.json())
    r = client.post(f"/api/v1/mystery/scenarios/{scenario['id']}/runs", headers=ws.admin, json={"language": "de"})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"].endswith("language")
    assert client.get("/api/v1/mystery/runs", headers=ws.admin, params={"scenario_id": 0}).status_code == 422
    assert client.get("/api/v1/mystery/scenarios", headers=ws.agent).status_code == 403
    assert client.post(f"/api/v1/mystery/scenarios/{scenario['id']}/runs", headers=ws.agent).status_code == 403
    run = client.post(f"/api/v1/mystery/scenarios/{scenario['id']}/runs", headers=ws.admin).json()
    for method, path in (("GET", f"/api/v1/mystery/scenarios/{scenario['id']}"),
                         ("POST", f"/api/v1/mystery/scenarios/{scenario['id']}/runs"),
                         ("DELETE", f"/api/v1/mystery/scenarios/{scenario['id']}"),
                         ("GET", f"/api/v1/mystery/runs/{run['id']}"),
                         ("GET", f"/api/v1/mystery/runs?scenario_id={scenario['id']}")):
        assert client.request(method, path, headers=other_ws.admin).status_code == 404, path
    assert client.get("/api/v1/mystery/runs", headers=other_ws.admin).json() == []
    assert client.delete(f"/api/v1/mystery/scenarios/{scenario['id']}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/mystery/runs/{run['id']}", headers=ws.admin).status_code == 404
