"""Settings → «Фразы» and the report page (issue 14 §3): supervisors and admins add a phrase, switch a shipped
one off and back, see a form error naming the field; agents are refused; every text is escaped."""

from __future__ import annotations

from otklik.guardrails import phrase_api  # noqa: F401 - registers the phrase reply check
from tests.conftest import inbound
from tests.web._ui import Browser


def test_settings_page_adds_switches_off_and_reports(app, client, ws):
    agent = Browser(app, ws.agent_email)
    assert agent.get("/settings/phrases").status_code == 403
    admin = Browser(app, ws.admin_email)
    assert 'href="/settings/phrases"' in admin.get("/settings").text
    page = admin.get("/settings/phrases?language=ru")
    assert page.status_code == 200 and "Фразы" in page.text and "от (меня|нас)" in page.text
    bad = admin.post("/settings/phrases", {"language": "ru", "phrase": "(ваш", "severity": "never",
                                           "reason": "x"}, htmx=False)
    assert bad.status_code == 422 and "phrase:" in bad.text and 'id="phrase-error"' in bad.text
    made = admin.post("/settings/phrases", {"language": "ru", "phrase": "<b>ваш заказ потерян</b>",
                                            "severity": "never", "reason": "<script>x</script>"}, htmx=False)
    assert made.status_code == 422  # < is not in the phrase language
    made = admin.post("/settings/phrases", {"language": "ru", "phrase": "ваш заказ потерян", "severity": "never",
                                            "reason": "Не пугайте <клиента>", "alternatives": "Ищем ваш заказ\nНайдём"},
                      htmx=False)
    assert made.status_code == 303, made.text
    listed = admin.get("/settings/phrases?q=потерян").text
    assert "ваш заказ потерян" in listed and "Не пугайте &lt;клиента&gt;" in listed and "Ищем ваш заказ" in listed
    off = admin.post("/settings/phrases/ru.must.you", {"severity": "never"}, htmx=False)  # no «enabled»: off
    assert off.status_code == 303
    assert client.get("/api/v1/phrase-rules/ru.must.you", headers=ws.agent).json()["enabled"] is False
    assert admin.post("/settings/phrases/ru.must.you/delete", htmx=False).status_code == 303
    assert client.get("/api/v1/phrase-rules/ru.must.you", headers=ws.agent).json()["enabled"] is True
    cid = inbound(client, ws, identity="ui-report@example.com")["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/messages",
                    json={"text": "Ваш заказ потерян.", "acknowledge": ["phrase_never"]}, headers=ws.agent)
    assert r.status_code == 201, r.text
    report = admin.get("/reports/phrases?days=7")
    assert report.status_code == 200 and f'data-agent-id="{ws.agent_id}"' in report.text
    assert "«ваш заказ потерян»" in report.text


def test_the_reply_box_keeps_an_unsent_draft_per_agent(app, client, ws, other_ws):
    cid = inbound(client, ws, identity="draft@example.com")["conversation_id"]
    other_cid = inbound(client, other_ws, identity="draft@example.com")["conversation_id"]
    agent = Browser(app, ws.agent_email)
    draft = "Вы должны <b>прислать</b> чек"
    assert agent.post(f"/ui/conversations/{cid}/draft", {"text": draft}).status_code == 204
    assert agent.post(f"/ui/conversations/{other_cid}/draft", {"text": "x"}).status_code == 404
    page = agent.get(f"/conversations/{cid}").text
    assert "Вы должны &lt;b&gt;прислать&lt;/b&gt; чек</textarea>" in page
    assert "</textarea>" in Browser(app, ws.admin_email).get(f"/conversations/{cid}").text.split(
        'id="reply-text"')[1][:400]  # the admin has no draft here: an empty box
    assert "прислать" not in Browser(app, ws.admin_email).get(f"/conversations/{cid}").text.split(
        'id="reply-text"')[1][:400]
    sent = agent.post(f"/ui/conversations/{cid}/reply", {"text": "Пришлите, пожалуйста, чек."})
    assert sent.status_code == 204, sent.text
    assert "прислать</textarea>" not in agent.get(f"/conversations/{cid}").text
