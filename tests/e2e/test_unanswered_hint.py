"""In the reply box (issue 14 §3): a reply that may not answer the customer's question gets a gentle hint; the
page's test agrees with Python's on every case."""

from __future__ import annotations

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.guardrails.test_unanswered import CASES


def test_a_reply_that_ignores_the_question_gets_a_hint(new_page, live_server):
    ws = make_workspace("e2eunans")
    cid = post_inbound(live_server, ws, text="Когда привезут диван?", customer_name="Вика")["conversation_id"]
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    page.wait_for_function("!!(window.OtklikPhrases && window.OtklikPhrases.unanswered)")
    got = page.evaluate("cases => cases.map(c => window.OtklikPhrases.unanswered(c[0], c[1]))",
                        [[q, r] for q, r, _ in CASES])
    assert got == [expected for _, _, expected in CASES]
    page.fill("#reply-text", "Спасибо за обращение, мы всегда рады помочь")
    page.wait_for_selector('[data-code="tone_unanswered"]')
    assert "Когда привезут диван?" in page.locator('[data-code="tone_unanswered"]').inner_text()
    page.fill("#reply-text", "Диван привезут завтра до обеда")
    page.wait_for_selector('[data-code="tone_unanswered"]', state="detached")
