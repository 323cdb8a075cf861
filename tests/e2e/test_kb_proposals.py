"""Learning from agents in a real browser (issue 12 §6): the assistant hands off a question its plain KB did not
cover, the agent answers it in the conversation with a link to the article, and the KB editor sees the question
proposed under «Вопросы из ответов операторов» and accepts it with one click; the article then lists it, and the
same question from the next customer is answered by the bot. Screenshot: artifacts/screenshots/kb-proposals.png."""

from __future__ import annotations

import httpx

from otklik.knowledge.models import Article
from otklik.platform.db import session_scope
from tests.assistant.test_live import seed_kb
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.e2e.test_widget import eventually

QUESTION = "снялось два раза за одну покупку, верните лишнее"


def _ask(live_server, ws, identity: str) -> int:
    """A customer's message through the API; the first one waits for the assistant's models and KB index."""
    r = httpx.post(f"{live_server}/api/v1/inbound", headers=ws.agent, timeout=180,
                   json={"identity_kind": "email", "identity": identity, "text": QUESTION})
    assert r.status_code in (200, 201), r.text
    return int(r.json()["conversation_id"])


def _decisions(live_server, ws, cid: int) -> list[dict]:
    r = httpx.get(f"{live_server}/api/v1/conversations/{cid}/assistant/decisions", headers=ws.agent, timeout=10)
    return r.json() if r.status_code == 200 else []


def test_agent_answer_becomes_a_variant_in_one_click(new_page, live_server):
    ws = make_workspace("e2elearn")
    seed_kb(ws)
    r = httpx.patch(f"{live_server}/api/v1/assistant/settings", json={"enabled": True}, headers=ws.admin, timeout=10)
    assert r.status_code == 200, r.text
    with session_scope(write=False) as session:
        target = session.query(Article).filter_by(workspace_id=ws.id, title="Деньги списались дважды").one()
        target_id, slug = target.id, target.slug
    cid = _ask(live_server, ws, "learn1@example.com")
    (first,) = eventually(lambda: _decisions(live_server, ws, cid), timeout=60)
    assert first["action"] in {"handoff", "clarify"}, first

    agent = new_page()
    sign_in(agent, ws.agent_email, next_path=f"/conversations/{cid}")
    agent.wait_for_function("!!window.otklikComposerReady")
    agent.fill("#reply-text", f"Это повторная блокировка банка, она снимется сама: {live_server}/help/{ws.slug}/a/{slug}")
    agent.click("#reply-send")
    eventually(lambda: httpx.get(f"{live_server}/api/v1/knowledge/proposals", headers=ws.admin, timeout=10).json(),
               timeout=60)

    editor = new_page()
    sign_in(editor, ws.admin_email, next_path="/knowledge")
    editor.wait_for_selector("#kb-proposals-count")
    assert editor.inner_text("#kb-proposals-count") == "1"
    editor.click("#kb-proposals")
    item = editor.locator("#kb-proposal-list li[data-proposal-id]")
    item.wait_for()
    assert f"«{QUESTION}»" in item.inner_text() and "Деньги списались дважды" in item.inner_text()
    screenshot(editor, "kb-proposals")
    item.locator(".kb-proposal-accept button[type=submit]").click()
    editor.wait_for_selector("#kb-proposals-empty")
    with session_scope(write=False) as session:
        assert QUESTION in session.get(Article, target_id).questions

    again = _ask(live_server, ws, "learn2@example.com")
    (second,) = eventually(lambda: _decisions(live_server, ws, again), timeout=60)
    assert second["action"] == "answer" and second["details"]["article_title"] == "Деньги списались дважды"
