"""The review workflow in a real browser (issue 15): a negative review arrives through the API; the agent opens
its conversation, sees the site, the stars and the four-step draft, edits it, copies it, marks it published (the
conversation shows the reply as the first response) and creates the follow-up task; the admin sees the review
by platform and rating and the agent's QA score on «Отчёты». Screenshots: review-workflow.png,
reports-reviews-qa.png."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot


def test_review_workflow(new_page, live_server):
    ws = make_workspace("e2erev")
    api = httpx.Client(base_url=live_server + "/api/v1", headers=ws.agent, timeout=20)
    r = api.post("/reviews", json={
        "platform": "yandex_maps", "rating": 2, "author": "Анна Петрова", "external_id": "ya-e2e-1",
        "text": "Заказ привезли на неделю позже обещанного, курьер не позвонил.",
        "link": "https://yandex.ru/maps/org/1/reviews?review=ya-e2e-1"})
    assert r.status_code == 200, r.text
    cid = r.json()["conversation_id"]

    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_selector("#review-block")
    assert page.locator("#review-stars").inner_text() == "★★☆☆☆"
    assert page.locator("#review-steps li").count() == 4
    draft = page.locator("#review-reply").input_value()
    assert draft.startswith("Анна, спасибо") and "жаль" in draft
    page.fill("#review-reply", draft + " Ваш менеджер Ольга.")
    page.click("#review-copy")
    page.wait_for_selector("#review-copy[data-done='yes']")
    page.click("#review-publish")
    page.wait_for_selector("#review-published")
    page.click("#review-task-create")
    page.wait_for_selector("#review-task")
    page.locator("#review-block").scroll_into_view_if_needed()
    assert "На отзыв отвечают на его сайте" in page.locator("body").inner_text()  # the composer warns
    screenshot(page, "review-workflow")
    view = api.get(f"/conversations/{cid}/review").json()
    assert view["reply_text"].endswith("Ваш менеджер Ольга.") and view["follow_up_task_id"]
    assert api.get(f"/conversations/{cid}").json()["first_response_at"] is not None
    # a chat reply from the composer is refused: the review site is where the answer goes
    assert api.post(f"/conversations/{cid}/messages", json={"text": "Здравствуйте"}).status_code == 409

    assert api.patch(f"/conversations/{cid}", json={"status": "solved"}).status_code == 200
    admin = new_page()
    sign_in(admin, ws.admin_email, next_path="/reports")

    admin.wait_for_selector("#reviews-table")
    row = admin.locator("#reviews-table tr[data-platform='yandex_maps']")
    assert row.locator("td").nth(1).inner_text() == "1"
    admin.wait_for_selector("#qa-table")
    screenshot(admin, "reports-reviews-qa")
    admin.goto(f"/conversations/{cid}")
    admin.wait_for_selector("#qa-items")
    assert admin.locator("#qa-items li[data-item='greeting']").count() == 1
    admin.click("#qa-review summary")
    admin.select_option("#qa-item-greeting", "fail")
    admin.click("#qa-review-save")
    admin.wait_for_selector("#qa-manual")
