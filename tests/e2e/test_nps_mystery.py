"""NPS and the mystery shopper in a real browser (issue 15, third round). The customer opens the «9» link of an NPS
message sent 30 days after their contact: the rating is recorded at once, the page asks the workspace's own
question and «почему?», the answer is saved. A supervisor writes a mystery-shopper scenario on «Тайный
покупатель», starts a run (a real widget session: its message appears in the inbox), an agent answers and solves
it, and the run shows its QA score and the expected points covered.
Screenshots: artifacts/screenshots/nps-survey-page.png, mystery-page.png."""

from __future__ import annotations

import datetime as dt

import httpx
from sqlalchemy import select

from otklik.conversations.models import Message
from otklik.feedback import jobs
from otklik.platform.db import session_scope, utcnow
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.feedback.test_nps import _contact, _customer


def test_nps_link_records_the_score_and_asks_why(new_page, live_server):
    ws = make_workspace("e2enps")
    r = httpx.put(f"{live_server}/api/v1/surveys/nps/settings", headers=ws.admin, timeout=10, json={
        "enabled": True, "texts": {"ru": {"question": "Посоветуете ли вы «Ромашку» друзьям?",
                                          "why": "Что повлияло на вашу оценку?"}}})
    assert r.status_code == 200, r.text
    now = utcnow()
    cid = _contact(ws, _customer(ws, "nps-e2e@example.com"), now - dt.timedelta(days=30))
    assert jobs.sweep_nps(now, ws.id) == 1  # this workspace: other tests leave theirs on
    with session_scope(write=False) as s:
        body = s.scalar(select(Message.body_text).where(Message.conversation_id == cid,
                                                        Message.author_kind == "system"))
    link = next(line for line in body.splitlines() if line.startswith("9 — ")).split(" — ")[1]

    customer = new_page()
    customer.goto(link[link.index("/survey/"):])
    assert customer.locator("#survey-recorded").inner_text().endswith("9 / 10")
    assert customer.locator("#survey-nps legend").inner_text() == "Посоветуете ли вы «Ромашку» друзьям?"
    assert customer.locator("label[for='survey-comment']").inner_text() == "Что повлияло на вашу оценку?"
    assert customer.locator("input[name='score']").count() == 11
    assert customer.locator("input[name='score'][value='9']").is_checked()
    customer.check("input[name='score'][value='10']")
    customer.fill("#survey-comment", "Быстро привезли <script>alert(1)</script>")
    customer.click("#survey-form button[type='submit']")
    customer.wait_for_selector("#survey-saved")
    assert customer.locator("#survey-comment").input_value() == "Быстро привезли <script>alert(1)</script>"
    screenshot(customer, "nps-survey-page")
    surveys = httpx.get(f"{live_server}/api/v1/conversations/{cid}/surveys", headers=ws.agent, timeout=10).json()
    assert [(s["kind"], s["score"], s["comment"]) for s in surveys] == [
        ("nps", 10, "Быстро привезли <script>alert(1)</script>")]


def test_mystery_page_runs_a_scenario_and_shows_its_score(new_page, live_server):
    ws = make_workspace("e2emys")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/reports")
    page.click("#mystery-link")
    page.wait_for_selector("#mystery-form")
    page.fill("#mystery-title", "Хочу вернуть товар")
    page.fill("#mystery-opening", "Хочу вернуть товар, но не знаю как")
    page.fill("#mystery-expected", "14 дней\nзаявление на возврат")
    page.click("#mystery-create")
    page.wait_for_selector("#mystery-scenarios")
    page.click("#mystery-scenarios .mystery-start")
    page.wait_for_selector("#mystery-runs")
    row = page.locator("#mystery-runs tbody tr").first
    assert "Хочу вернуть товар" in row.inner_text() and row.locator(".mystery-expected").inner_text().startswith("0 / 2")
    href = row.locator("a").get_attribute("href") or ""
    cid = int(href.rsplit("/", 1)[1])

    api = httpx.Client(base_url=live_server + "/api/v1", headers=ws.agent, timeout=10)
    first = api.get(f"/conversations/{cid}/messages").json()["items"][0]
    assert first["body_text"] == "Хочу вернуть товар, но не знаю как"
    assert api.post(f"/conversations/{cid}/messages", json={
        "text": "Здравствуйте! Вернуть можно в течение 14 дней: оформите заявление на возврат. Хорошего дня!"}
    ).status_code == 201
    assert api.patch(f"/conversations/{cid}", json={"status": "solved"}).status_code == 200

    page.reload()
    row = page.locator("#mystery-runs tbody tr").first
    score = row.locator(".mystery-score").inner_text()
    assert score.replace(".", "").isdigit(), score
    assert row.locator(".mystery-expected").inner_text().startswith("2 / 2")
    screenshot(page, "mystery-page")
    # the run is in no customer figure: the dashboard counts nothing today
    page.goto("/reports")
    assert page.locator("#kpis [data-key='conversations'] dd").inner_text() == "0"
