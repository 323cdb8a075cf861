"""Search in a real browser (issue 19): conversations most relevant first, past ten, with «Ещё обращения»."""

from __future__ import annotations

from otklik.accounts import service as accounts
from otklik.conversations import service as conversations
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.web.a2_support import receive


def test_the_most_relevant_conversation_comes_first_and_more_are_a_click_away(new_page, live_server):
    ws = make_workspace("e2erank")
    best, _ = receive(ws.id, "email", "email", "fan@example.com", "Торт «Наполеон»: торты у вас лучшие, торт на 5 кг?",
                      name="Фанат")
    with session_scope() as s:
        conversations.update_conversation(s, accounts.Actor.system(ws.id), best, {"subject": "Торт на юбилей"})
    for i in range(29):  # newer than the best one, each mentioning «торт» once
        receive(ws.id, "email", "email", f"c{i}@example.com", f"Здравствуйте, вопрос про торт {i}", name=f"К{i}")
    page = new_page(viewport=(1280, 800))
    sign_in(page, ws.agent_email, next_path="/search?q=торт")
    rows = page.locator("#search-conversations .search-conversation")
    rows.first.wait_for()
    assert int(rows.first.get_attribute("data-conversation-id")) == best
    assert rows.count() == 25
    page.click("#search-more")
    page.wait_for_url("**page=2**")
    assert page.locator("#search-conversations .search-conversation").count() == 5
