"""The agent-assist fragment above the reply box and the /settings/assistant page."""

from __future__ import annotations

from tests.assistant.test_live import decisions, enable, seed_kb
from tests.conftest import inbound
from tests.web._ui import Browser


def test_settings_page_saves_and_validates(app, client, ws):
    b = Browser(app, ws.admin_email)
    page = b.get("/settings/assistant")
    assert page.status_code == 200 and "ИИ-помощник" in page.text and "Рабочие часы" in page.text
    assert "/settings/calendars" in page.text
    r = b.post("/settings/assistant", {"enabled": "true", "channels": ["telegram", "widget"],
                                       "answer_threshold": "0.7", "negativity_threshold": "0.9",
                                       "urgency_threshold": "0.8", "tone": "friendly", "greeting": "Привет!",
                                       "out_of_hours_message": "Ответим {when}",
                                       "bot_name": "Алиса", "reasons": "delivery | сроки доставки\n\nother|всё"},
               htmx=False)
    assert r.status_code == 303
    s = client.get("/api/v1/assistant/settings", headers=ws.admin).json()
    assert s["bot_name"] == "Алиса"
    assert s["reasons"] == [{"name": "delivery", "description": "сроки доставки", "examples": []},
                            {"name": "other", "description": "всё", "examples": []}]
    page = b.get("/settings/assistant")
    assert "delivery | сроки доставки\nother | всё" in page.text and 'value="Алиса"' in page.text
    assert s["enabled"] is True and s["channels"] == ["telegram", "widget"] and s["tone"] == "friendly"
    assert "working_hours" not in s  # hours live in the business calendar now (issue 13)
    bad = b.post("/settings/assistant", {"enabled": "true", "tone": "rude"}, htmx=False)
    assert bad.status_code == 422 and "tone" in bad.text
    agent = Browser(app, ws.agent_email)
    assert agent.get("/settings/assistant", follow_redirects=False).status_code in (302, 303, 403)


def test_suggestions_fragment_shows_kb_team_and_what_the_assistant_did(app, client, ws):
    seed_kb(ws)
    enable(client, ws)
    got = inbound(client, ws, text="Как вернуть товар? <script>alert(1)</script>", identity="ui@example.com")
    cid = got["conversation_id"]
    assert decisions(client, ws, cid)
    b = Browser(app, ws.agent_email)
    r = b.get(f"/ui/conversations/{cid}/suggestions", params={"q": "как вернуть товар"})
    assert r.status_code == 200
    assert "Возврат товара надлежащего качества" in r.text
    assert 'data-source="kb"' in r.text and "уверенность" in r.text
    assert "<script>alert(1)</script>" not in r.text  # customer text is escaped wherever it shows
    s = b.get(f"/ui/conversations/{cid}/summary")
    assert s.status_code == 200 and "Клиент пишет" in s.text and "&lt;script&gt;" in s.text
    other = Browser(app, None)
    assert other.get(f"/ui/conversations/{cid}/suggestions", follow_redirects=False).status_code in (302, 303, 401)
