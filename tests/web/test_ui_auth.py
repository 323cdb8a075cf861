"""Sign-in, sign-out, session expiry, CSRF, role-aware navigation and the UI language."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import update

from otklik.accounts.models import LoginSession, User
from otklik.platform.db import session_scope
from tests.conftest import PASSWORD, inbound
from tests.web._ui import Browser


@pytest.fixture
def browser_for(app, client):  # `client` starts the app's lifespan (the event bus) once
    return lambda email=None, **kw: Browser(app, email, **kw)


def test_pages_redirect_to_login_when_signed_out(browser_for):
    b = browser_for()
    r = b.get("/inbox?view=all", follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"] == "/login?next=%2Finbox%3Fview%3Dall"
    # HTMX fragments ask the browser to go to the sign-in page instead of swapping it into the page
    r = b.get("/ui/inbox/list", headers={"HX-Request": "true", "HX-Current-URL": "http://t/inbox?view=all"},
              follow_redirects=False)
    assert r.headers["HX-Redirect"].startswith("/login?next=%2Finbox")
    assert b.get("/", follow_redirects=False).headers["location"] == "/login"


def test_sign_in_goes_to_next_and_refuses_open_redirects(browser_for, ws):
    b = browser_for()
    page = b.get("/login?next=/inbox%3Fview%3Dall")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert 'name="next" value="/inbox?view=all"' in page.text
    r = b.http.post("/login", data={"email": ws.agent_email, "password": PASSWORD, "csrf_token": token,
                                    "next": "//evil.example/x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    assert b.get("/", follow_redirects=False).headers["location"] == "/inbox"
    assert b.get("/login", follow_redirects=False).headers["location"] == "/inbox"


def test_wrong_password_and_missing_form_token_are_refused(browser_for, ws):
    b = browser_for()
    page = b.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = b.http.post("/login", data={"email": ws.agent_email, "password": "wrong-password", "csrf_token": token})
    assert r.status_code == 401 and 'id="login-error"' in r.text and "Неверная почта или пароль" in r.text
    r = b.http.post("/login", data={"email": ws.agent_email, "password": PASSWORD})  # no form token
    assert r.status_code == 403 and "otklik_session" not in r.cookies
    r = b.http.post("/login", data={"email": "x" * 300, "password": PASSWORD, "csrf_token": token})
    assert r.status_code == 422


def test_expired_session_redirects_with_a_notice(browser_for, ws):
    b = browser_for(ws.agent_email)
    assert b.get("/inbox").status_code == 200
    with session_scope() as s:
        s.execute(update(LoginSession).where(LoginSession.user_id == ws.agent_id)
                  .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)))
    r = b.get("/inbox", follow_redirects=False)
    assert r.status_code == 303 and "expired=1" in r.headers["location"]
    page = b.get(r.headers["location"])
    assert 'id="session-expired"' in page.text


def test_unsafe_requests_need_the_sessions_csrf_token(browser_for, ws):
    conv = inbound(browser_for().http, ws, text="Вопрос")  # seeded via the API with the agent's token
    b = browser_for(ws.agent_email)
    url = f"/ui/conversations/{conv['conversation_id']}/reply"
    assert b.post(url, {"text": "без токена"}, csrf=False).status_code == 403
    assert b.post(url, {"text": "чужой токен"}, csrf=False, headers={"X-CSRF-Token": "x" * 43}).status_code == 403
    # the hidden form field works for plain forms, the header for HTMX
    assert b.post(url, {"text": "поле формы", "csrf_token": b.csrf}, csrf=False).status_code == 204
    assert b.post(url, {"text": "заголовок"}).status_code == 204
    assert b.post("/logout", csrf=False).status_code == 403
    r = b.post("/logout", htmx=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert b.get("/inbox", follow_redirects=False).status_code == 303


def test_navigation_depends_on_the_role(browser_for, ws):
    agent = browser_for(ws.agent_email).get("/inbox").text
    admin = browser_for(ws.admin_email).get("/inbox").text
    for href in ("/inbox", "/search", "/customers", "/knowledge"):
        assert f'href="{href}"' in agent and f'href="{href}"' in admin
    assert 'data-nav="settings"' in admin and 'data-nav="settings"' not in agent


def test_language_follows_accept_language_then_the_users_choice(browser_for, ws):
    anon = browser_for(language="en-GB,en;q=0.9")
    assert 'lang="en"' in anon.get("/login").text and "Sign in" in anon.get("/login").text
    assert 'lang="ru"' in browser_for(language="de-DE").get("/login").text  # Russian first

    b = browser_for(ws.agent_email, language="en-US")
    assert "Входящие" in b.get("/inbox").text  # the user's stored language wins (ru by default)
    r = b.post("/ui/language", {"language": "en"}, htmx=False, headers={"referer": "http://testserver/inbox"})
    assert r.status_code == 303 and r.headers["location"] == "/inbox"
    page = b.get("/inbox").text
    assert 'lang="en"' in page and ">Inbox<" in page
    with session_scope(write=False) as s:
        assert s.get(User, ws.agent_id).language == "en"
    assert b.post("/ui/language", {"language": "xx"}).status_code == 400
