"""The survey and the dashboard in a real browser (issue 15): a solved conversation gets its CSAT message, the
customer opens the e-mail's «2» link (recorded at once), adds a comment and a CES answer; the admin opens
«Отчёты», sees CSAT with the low answer in red and the SVG charts, filters by channel, and reaches the CSV export.
Screenshots: artifacts/screenshots/reports-dashboard.png, survey-page.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot


def _survey_link(live_server, ws, cid: int, score: int) -> str:
    items = httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.admin,
                      timeout=10).json()["items"]
    text = next(m["body_text"] for m in items if "/survey/" in m["body_text"])
    line = next(line for line in text.splitlines() if line.startswith(f"{score} — "))
    return "/survey/" + line.split("/survey/")[1].strip()


def test_survey_link_then_the_dashboard(new_page, live_server):
    ws = make_workspace("e2erep")
    cid = post_inbound(live_server, ws, text="<b>Где</b> мой заказ?", customer_name="Анна")["conversation_id"]
    api = httpx.Client(base_url=live_server + "/api/v1", headers=ws.agent, timeout=10)
    assert api.post(f"/conversations/{cid}/messages", json={"text": "Заказ приедет завтра."}).status_code == 201
    assert api.patch(f"/conversations/{cid}", json={"status": "solved"}).status_code == 200
    post_inbound(live_server, ws, text="Вопрос по доставке", identity="oleg@example.com")

    customer = new_page()
    customer.goto(_survey_link(live_server, ws, cid, 2))
    assert customer.locator("#survey-recorded").inner_text().endswith("2 / 5")
    customer.check("input[name='ces'][value='3']")
    customer.fill("#survey-comment", "Долго ждал ответа <script>alert(1)</script>")
    customer.click("#survey-form button[type='submit']")
    customer.wait_for_selector("#survey-saved")
    screenshot(customer, "survey-page")
    surveys = httpx.get(f"{live_server}/api/v1/conversations/{cid}/surveys", headers=ws.agent, timeout=10).json()
    assert surveys[0]["score"] == 2 and surveys[0]["low"] and surveys[0]["follow_up_task_id"]

    page = new_page()
    sign_in(page, ws.admin_email, next_path="/reports")
    page.click("#mainnav a[href='/reports']")
    page.wait_for_selector("#kpis")
    assert page.locator("#kpis [data-key='conversations'] dd").inner_text() == "2"
    csat = page.locator("#kpis [data-key='csat']")
    assert csat.locator("dd").inner_text() == "0 %" and "below" in (csat.get_attribute("class") or "")
    assert page.locator("#kpis [data-key='ces_avg'] dd").inner_text() == "3.0 / 7"
    assert page.locator("#chart-volume rect").count() >= 1
    assert page.locator("#chart-first-response circle").count() >= 1
    screenshot(page, "reports-dashboard")
    page.select_option("#report-filters select[name='channel']", "telegram")
    page.click("#report-filters button[type='submit']")
    page.wait_for_url("**channel=telegram**")
    assert page.locator("#kpis [data-key='conversations'] dd").inner_text() == "0"
    href = page.locator("#export-csv").get_attribute("href") or ""
    assert href.startswith("/api/v1/reports/conversations.csv?") and "channel=telegram" in href
    page.fill("#report-filters input[name='from']", "2026-12-31")
    page.fill("#report-filters input[name='to']", "2026-01-01")
    page.click("#report-filters button[type='submit']")
    assert page.locator("#report-error").get_attribute("data-field") == "from"
