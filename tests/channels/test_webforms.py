"""Web forms: HTML and JSON posts, redirect only to the form's own sites, honeypot, rate limits, callback forms."""

from __future__ import annotations

import pytest

ORIGIN = "https://shop.example.ru"


@pytest.fixture
def form(client, ws):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "form", "name": "Контакты", "config": {"title": "Форма «Контакты»", "allowed_origins": [ORIGIN],
                                                        "per_ip_per_hour": 5}})
    assert r.status_code == 201, r.text
    token = r.json()["webhook_path"].rsplit("/", 1)[-1]
    return {"url": f"/forms/{token}", "token": token, "id": r.json()["id"]}


def form_conversations(client, ws):
    return client.get("/api/v1/conversations?channel=form", headers=ws.agent).json()["items"]


def messages_of(client, ws, conversation_id):
    return client.get(f"/api/v1/conversations/{conversation_id}/messages", headers=ws.agent).json()["items"]


def test_json_submission_becomes_a_conversation(client, ws, form):
    r = client.post(form["url"], json={"name": "Ольга", "email": "Olga@Example.ru", "message": "Как вернуть товар?",
                                       "order": "4512", "utm_source": "vk"}, headers={"origin": ORIGIN})
    assert r.status_code == 202 and r.json() == {"status": "accepted"}
    assert r.headers["access-control-allow-origin"] == ORIGIN
    conv = form_conversations(client, ws)[0]
    assert conv["subject"] == "Форма «Контакты»"
    text = messages_of(client, ws, conv["id"])[0]["body_text"]
    assert text.splitlines() == ["Как вернуть товар?", "order: 4512", "utm_source: vk"]
    customer = client.get(f"/api/v1/customers/{conv['customer']['id']}", headers=ws.agent).json()
    assert customer["name"] == "Ольга"
    assert [(i["kind"], i["external_id"], i["verified"]) for i in customer["identities"]] == [
        ("external", "claim:email:olga@example.ru", False)]  # a claim, not the address itself


def test_html_form_is_redirected_back_only_to_allowed_sites(client, ws, form):
    data = {"name": "Иван", "phone": "8 916 000-11-22", "message": "Перезвоните", "website": ""}
    r = client.post(form["url"], data=data, headers={"referer": f"{ORIGIN}/contacts?x=1"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"{ORIGIN}/contacts?x=1&otklik_form=sent"
    evil = client.post(form["url"], data={**data, "_redirect": "https://evil.example.com/phish"},
                       headers={"referer": "https://evil.example.com/"}, follow_redirects=False)
    assert evil.status_code == 200 and "Спасибо" in evil.text and "evil" not in evil.text
    assert len(form_conversations(client, ws)) == 1  # the same phone: the same customer's conversation
    assert client.options(form["url"], headers={"origin": "https://evil.example.com"}).headers.get(
        "access-control-allow-origin") is None
    preflight = client.options(form["url"], headers={"origin": ORIGIN})
    assert preflight.status_code == 204 and preflight.headers["access-control-allow-origin"] == ORIGIN


def test_honeypot_is_accepted_silently_and_dropped(client, ws, form):
    r = client.post(form["url"], json={"email": "bot@spam.example", "message": "cheap pills", "website": "http://x"})
    assert r.status_code == 202 and r.json() == {"status": "accepted"}
    html = client.post(form["url"], data={"email": "bot@spam.example", "message": "x", "website": "http://x"},
                       headers={"referer": f"{ORIGIN}/"}, follow_redirects=False)
    assert html.status_code == 303
    assert form_conversations(client, ws) == []


def test_rate_limit_per_ip(client, ws, form):
    for i in range(5):
        assert client.post(form["url"], json={"email": f"p{i}@example.ru", "message": "hi"}).status_code == 202
    r = client.post(form["url"], json={"email": "p9@example.ru", "message": "hi"})
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"


@pytest.mark.parametrize(("kwargs", "status", "field"), [
    ({"json": {"email": "a@example.ru"}}, 422, "message"),
    ({"json": {"message": "без контакта"}}, 422, "email"),
    ({"json": {"email": "not-an-email", "message": "x"}}, 422, "email"),
    ({"json": {"phone": "123", "message": "x"}}, 422, "phone"),
    ({"json": {"email": "a@example.ru", "message": ["list"]}}, 400, None),
    ({"json": {"email": "a@example.ru", "message": "x" * 6000}}, 422, "message"),
    ({"content": b"{broken", "headers": {"content-type": "application/json"}}, 400, None),
    ({"content": b"message=hi", "headers": {"content-type": "text/plain"}}, 400, None),
])
def test_bad_submissions_get_precise_errors(client, ws, form, kwargs, status, field):
    r = client.post(form["url"], **kwargs)
    assert r.status_code == status, r.text
    if field:
        assert r.json()["error"]["fields"][0]["field"] == field
    assert form_conversations(client, ws) == []


def test_unknown_form_is_404(client):
    assert client.post("/forms/no-such-form", json={"email": "a@example.ru", "message": "x"}).status_code == 404


def test_callback_form_makes_a_callback_request_with_a_task(client, ws):
    r = client.post("/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "form", "name": "Перезвоните мне", "config": {"creates": "callback", "allowed_origins": [ORIGIN]}})
    url = "/forms/" + r.json()["webhook_path"].rsplit("/", 1)[-1]
    sent = client.post(url, json={"name": "Пётр", "phone": "+7 916 555-44-33", "preferred_time": "после 18:00",
                                  "message": "Вопрос по доставке"})
    assert sent.status_code == 202, sent.text
    conv = client.get("/api/v1/conversations?channel=phone", headers=ws.agent).json()["items"][0]
    text = messages_of(client, ws, conv["id"])[0]["body_text"]
    assert "+79165554433" in text and "после 18:00" in text and "Вопрос по доставке" in text
    tasks = client.get(f"/api/v1/tasks?customer_id={conv['customer']['id']}", headers=ws.agent).json()["items"]
    assert len(tasks) == 1


def test_reply_to_a_form_without_email_is_refused_with_a_reason(client, ws, form):
    client.post(form["url"], json={"phone": "+7 916 000-11-22", "message": "Позвоните"})
    conv = form_conversations(client, ws)[0]
    r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Ответ"}, headers=ws.agent)
    assert r.status_code == 409 and "no e-mail" in r.json()["error"]["message"]


def test_the_api_webhook_path_works_too(client, ws, form):
    r = client.post(f"/api/v1/channels/form/webhook/{form['token']}", json={"email": "z@example.ru", "message": "x"})
    assert r.status_code == 202


def test_reply_to_a_form_goes_out_by_email(client, ws, form):
    from tests.channels.email_peers import MailSink, make_email_account

    sink = MailSink()
    try:
        make_email_account(ws.id, ws.actor(), addresses=[f"support-{ws.id}@shop.example"], smtp_host="127.0.0.1",
                           smtp_port=sink.port, smtp_security="none", smtp_username="support@shop.example")
        client.post(form["url"], json={"name": "Ольга", "email": "olga@example.ru", "message": "Как вернуть товар?"})
        conv = form_conversations(client, ws)[0]
        r = client.post(f"/api/v1/conversations/{conv['id']}/messages", json={"text": "Оформим возврат сегодня"},
                        headers=ws.agent)
        assert r.status_code == 201, r.text
        mails = sink.wait_for(1)
        assert len(mails) == 1 and mails[0]["rcpt_tos"] == ["olga@example.ru"]
        assert "Оформим возврат сегодня" in mails[0]["message"].get_body(("plain",)).get_content()
        stored = next(m for m in messages_of(client, ws, conv["id"]) if m["id"] == r.json()["id"])
        assert stored["delivery_status"] == "sent"
    finally:
        sink.close()
