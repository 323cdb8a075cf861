"""Settings pages: roles, users (create, deactivate, one-time reset link), teams, templates with preview,
workspace profile, API tokens shown once, own profile and password; the signed-out password pages."""

from __future__ import annotations

import re

import pytest

from otklik.accounts.password_reset_api import _per_address, _per_client
from otklik.platform.config import get_settings
from tests.conftest import PASSWORD
from tests.web.a2_support import count_statements, hx, receive, sign_in


@pytest.fixture(autouse=True)
def _fresh_limits():
    _per_client._hits.clear()
    _per_address._hits.clear()
    yield


@pytest.fixture
def admin(client, ws):
    yield sign_in(client, ws.admin_email)
    client.cookies.clear()


@pytest.fixture
def agent(client, ws):
    yield sign_in(client, ws.agent_email)
    client.cookies.clear()


ADMIN_PAGES = ["/settings/users", "/settings/workspace"]
SUPERVISOR_PAGES = ["/settings/teams", "/settings/templates"]
EVERYONE = ["/settings", "/settings/profile", "/settings/api-tokens"]


def test_agent_gets_403_pages_on_admin_settings(client, ws, agent):
    for url in ADMIN_PAGES + SUPERVISOR_PAGES:
        r = client.get(url)
        assert r.status_code == 403, url
        assert 'id="error-message"' in r.text
    for url in EVERYONE:
        assert client.get(url).status_code == 200, url
    r = client.post("/settings/users", data={"email": "x@example.com", "name": "x", "role": "admin"},
                    headers={"X-CSRF-Token": agent})
    assert r.status_code == 403
    index = client.get("/settings").text
    assert 'id="settings-link-users"' not in index and 'id="settings-link-profile"' in index


def test_admin_sees_every_page(client, ws, admin):
    for url in ADMIN_PAGES + SUPERVISOR_PAGES + EVERYONE:
        assert client.get(url).status_code == 200, url
    index = client.get("/settings").text
    for link in ("users", "teams", "templates", "workspace", "api-tokens", "channels", "widget", "assistant"):
        assert f'id="settings-link-{link}"' in index


def test_users_create_deactivate_reset_link(client, ws, admin, monkeypatch):
    monkeypatch.setattr(get_settings(), "smtp_host", None)
    page = client.get("/settings/users").text
    assert 'id="mail-not-configured"' in page
    r = client.post("/settings/users", data={"email": "new.agent@example.com", "name": "Новый <агент>",
                                             "role": "supervisor", "csrf_token": admin})
    assert r.status_code == 201, r.text
    link = re.search(r'id="reset-link">([^<]+)<', r.text).group(1)
    assert "/password/reset#token=" in link and "Новый &lt;агент&gt;" in r.text
    users = client.get("/api/v1/users", headers=ws.admin).json()
    new = next(u for u in users if u["email"] == "new.agent@example.com")
    assert new["role"] == "supervisor"
    # the new user sets a password through the link
    token = link.split("#token=")[1]
    client.cookies.clear()
    reset_page = client.get("/password/reset")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', reset_page.text).group(1)
    r = client.post("/password/reset", data={"token": token, "password": "new-password-123",
                                             "confirm_password": "new-password-123", "csrf_token": csrf})
    assert r.status_code == 200 and 'id="reset-done"' in r.text
    sign_in(client, "new.agent@example.com", "new-password-123")
    admin = sign_in(client, ws.admin_email)
    # duplicate email: the form comes back with the error
    r = client.post("/settings/users", data={"email": "new.agent@example.com", "name": "x", "role": "agent",
                                             "csrf_token": admin})
    assert r.status_code == 409 and 'id="users-error"' in r.text
    r = client.post(f"/settings/users/{new['id']}", data={"active": "false", "csrf_token": admin}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/api/v1/users/{new['id']}", headers=ws.admin).json()["is_active"] is False
    r = client.post(f"/settings/users/{ws.agent_id}/reset-link", data={"csrf_token": admin})
    assert r.status_code == 200 and 'id="reset-link"' in r.text
    assert r.headers["cache-control"] == "no-store"
    r = client.post(f"/settings/users/{ws.admin_id}", data={"active": "false", "csrf_token": admin})
    assert r.status_code == 409


def test_teams(client, ws, admin):
    r = client.post("/settings/teams", data={"name": "Кондитерская", "member_ids": [str(ws.agent_id)],
                                             "csrf_token": admin}, follow_redirects=False)
    assert r.status_code == 303
    team = client.get("/api/v1/teams", headers=ws.admin).json()[0]
    assert team["member_ids"] == [ws.agent_id]
    r = client.post(f"/settings/teams/{team['id']}/members", data={"member_ids": [str(ws.admin_id), str(ws.agent_id)],
                                                                   "csrf_token": admin}, follow_redirects=False)
    assert client.get(f"/api/v1/teams/{team['id']}", headers=ws.admin).json()["member_ids"] == sorted([ws.admin_id, ws.agent_id])
    r = client.post("/settings/teams", data={"name": "Кондитерская", "csrf_token": admin})
    assert r.status_code == 409 and 'id="teams-error"' in r.text
    r = client.post("/settings/teams", data={"name": "x", "member_ids": ["abc"], "csrf_token": admin})
    assert r.status_code == 422
    r = client.post(f"/settings/teams/{team['id']}/delete", headers=hx(admin))
    assert r.status_code == 204 and r.headers["hx-redirect"] == "/settings/teams"


def test_templates_create_edit_preview(client, ws, admin):
    conv, _ = receive(ws.id, "email", "email", "anna@example.com", "Где заказ №458213?", name="Анна Смирнова")
    number = client.get(f"/api/v1/conversations/{conv}", headers=ws.admin).json()["number"]
    body = "Здравствуйте, {{customer.first_name}}! Заказ {{order_number}} в пути. {{delivery_date}} <b>"
    r = client.post("/ui/settings/templates/preview", data={"body": body}, headers=hx(admin))
    assert r.status_code == 200
    assert "Здравствуйте, Анна!" in r.text and "&lt;b&gt;" in r.text
    assert '<mark class="unfilled">{{delivery_date}}</mark>' in r.text and 'id="template-preview-unresolved"' in r.text
    r = client.post("/ui/settings/templates/preview", data={"body": body, "conversation": f"#{number}"}, headers=hx(admin))
    assert "Заказ 458213" in r.text
    assert re.search(r'id="template-preview-source">[^<]*№' + str(number) + r"\b", r.text)
    r = client.post("/ui/settings/templates/preview", data={"body": body, "conversation": "999999"}, headers=hx(admin))
    assert 'id="template-preview-error"' in r.text
    r = client.post("/settings/templates", data={"name": "Где заказ", "shortcut": "/where", "body": body,
                                                 "language": "ru", "csrf_token": admin}, follow_redirects=False)
    assert r.status_code == 303
    items = client.get("/api/v1/templates", params={"q": "where"}, headers=ws.agent).json()["items"]
    assert len(items) == 1 and items[0]["shortcut"] == "where"
    page = client.get(f"/settings/templates/{items[0]['id']}").text
    assert 'value="Где заказ"' in page and 'id="template-preview-text"' in page
    r = client.post(f"/settings/templates/{items[0]['id']}", data={"name": "Где заказ?", "shortcut": "where",
                                                                   "body": "Ок", "csrf_token": admin}, follow_redirects=False)
    assert r.status_code == 303
    assert client.get(f"/api/v1/templates/{items[0]['id']}", headers=ws.admin).json()["body"] == "Ок"
    r = client.post("/settings/templates", data={"name": "x", "shortcut": "where", "body": "y", "csrf_token": admin})
    assert r.status_code == 409 and 'id="template-error"' in r.text
    r = client.post(f"/settings/templates/{items[0]['id']}/delete", headers=hx(admin))
    assert r.status_code == 204
    assert client.get("/api/v1/templates", headers=ws.admin).json()["items"] == []


def test_templates_page_statements_do_not_grow(client, ws, admin):
    def statements():
        with count_statements() as counter:
            assert client.get("/settings/templates").status_code == 200
        return counter["n"]

    few = statements()
    for i in range(8):
        client.post("/api/v1/templates", json={"name": f"T{i}", "body": "{{customer.name}}"}, headers=ws.admin)
    assert statements() == few


def test_workspace_profile(client, ws, admin):
    r = client.post("/settings/workspace", data={"name": "Торты «Ваниль»", "language": "en",
                                                 "timezone": "Asia/Yekaterinburg", "csrf_token": admin},
                    follow_redirects=False)
    assert r.status_code == 303
    got = client.get("/api/v1/workspace", headers=ws.admin).json()
    assert (got["name"], got["language"], got["timezone"]) == ("Торты «Ваниль»", "en", "Asia/Yekaterinburg")
    r = client.post("/settings/workspace", data={"name": "x", "language": "ru", "timezone": "Mars/Olympus",
                                                 "csrf_token": admin})
    assert r.status_code == 422 and 'id="workspace-error"' in r.text
    r = client.patch("/api/v1/workspace", json={"timezone": "../../etc/passwd"}, headers=ws.admin)
    assert r.status_code == 422
    assert client.patch("/api/v1/workspace", json={"name": "y"}, headers=ws.agent).status_code == 403


def test_api_tokens_shown_once_and_revoked(client, ws, admin):
    r = client.post("/settings/api-tokens", data={"name": "amoCRM", "csrf_token": admin})
    assert r.status_code == 201
    raw = re.search(r'id="new-token">([^<]+)<', r.text).group(1)
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 200
    page = client.get("/settings/api-tokens").text
    assert raw not in page and "amoCRM" in page
    token_id = next(t["id"] for t in client.get("/api/v1/api-tokens", headers=ws.admin).json() if t["name"] == "amoCRM")
    r = client.post(f"/settings/api-tokens/{token_id}/revoke", headers=hx(admin))
    assert r.status_code == 204
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert client.post("/settings/api-tokens", data={"name": " ", "csrf_token": admin}).status_code == 422


def test_agent_tokens_are_their_own(client, ws, agent):
    r = client.post("/settings/api-tokens", data={"name": "мой", "user_id": str(ws.admin_id), "csrf_token": agent})
    assert r.status_code == 403


def test_profile_and_password_change(client, ws, agent):
    r = client.post("/settings/profile", data={"name": "Мария", "language": "en", "csrf_token": agent},
                    follow_redirects=False)
    assert r.status_code == 303
    me = client.get("/api/v1/auth/me").json()
    assert (me["name"], me["language"]) == ("Мария", "en")
    assert "My profile" in client.get("/settings/profile").text
    r = client.post("/settings/profile/password", data={"current_password": "wrong-password", "new_password": "x" * 12,
                                                        "confirm_password": "x" * 12, "csrf_token": agent})
    assert r.status_code == 422 and 'id="password-error"' in r.text
    r = client.post("/settings/profile/password", data={"current_password": PASSWORD, "new_password": "short",
                                                        "confirm_password": "short", "csrf_token": agent})
    assert r.status_code == 422
    r = client.post("/settings/profile/password", data={"current_password": PASSWORD, "new_password": "x" * 12,
                                                        "confirm_password": "x" * 12, "csrf_token": agent},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert client.get("/api/v1/auth/me").status_code == 401  # this session ended too
    sign_in(client, ws.agent_email, "x" * 12)


def test_forgot_page_without_mail_says_so(client, monkeypatch):
    monkeypatch.setattr(get_settings(), "smtp_host", None)
    client.cookies.clear()
    r = client.get("/password/forgot")
    assert r.status_code == 200 and 'id="forgot-no-mail"' in r.text and 'id="forgot-form"' not in r.text


def test_forgot_page_with_mail(client, ws, monkeypatch):
    from aiosmtpd.controller import Controller

    from tests.accounts.test_password_reset import Inbox, _port

    inbox = Inbox()
    port = _port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = get_settings()
        monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
        monkeypatch.setattr(settings, "smtp_port", port)
        monkeypatch.setattr(settings, "smtp_starttls", False)
        client.cookies.clear()
        page = client.get("/password/forgot")
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        r = client.post("/password/forgot", data={"email": "nobody@example.com", "csrf_token": csrf})
        assert r.status_code == 200 and 'id="forgot-sent"' in r.text
        r2 = client.post("/password/forgot", data={"email": ws.agent_email, "csrf_token": csrf})
        assert r2.status_code == 200 and 'id="forgot-sent"' in r2.text
        assert [m["X-Envelope-To"] for m in inbox.messages] == [ws.agent_email]
        assert client.post("/password/forgot", data={"email": ws.agent_email, "csrf_token": "forged"}).status_code == 403
        token = re.search(r"#token=([\w-]+)", inbox.messages[0].get_payload(decode=True).decode()).group(1)
        r = client.post("/password/reset", data={"token": token, "password": "abcdefghijk",
                                                 "confirm_password": "abcdefghijX", "csrf_token": csrf})
        assert r.status_code == 422 and 'id="reset-error"' in r.text
        r = client.post("/password/reset", data={"token": "bogus", "password": "abcdefghijk",
                                                 "confirm_password": "abcdefghijk", "csrf_token": csrf})
        assert r.status_code == 422 and "/password/forgot" in r.text
    finally:
        controller.stop()
        client.cookies.clear()
