"""Sign-in, CSRF, API tokens, roles."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update

from otklik.accounts.models import LoginSession, User
from otklik.platform.db import session_scope
from tests.conftest import PASSWORD


def login(client, ws, email=None, password=PASSWORD):
    client.cookies.clear()
    return client.post("/api/v1/auth/login", json={"email": email or ws.agent_email, "password": password,
                                                   "workspace": ws.slug})


def test_passwords_are_stored_as_argon2(ws):
    with session_scope() as session:
        user = session.get(User, ws.agent_id)
        assert user.password_hash.startswith("$argon2id$")
        assert PASSWORD not in user.password_hash


def test_login_sets_http_only_cookie_and_returns_csrf(client, ws):
    response = login(client, ws)
    assert response.status_code == 200, response.text
    assert response.json()["csrf_token"]
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert client.get("/api/v1/auth/me").json()["email"] == ws.agent_email
    client.cookies.clear()


def test_wrong_password_is_401_with_error_shape(client, ws):
    response = login(client, ws, password="not-the-password")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    assert response.json()["error"]["message"] == "wrong email or password"


def test_unsafe_request_with_cookie_needs_csrf_header(client, ws):
    csrf = login(client, ws).json()["csrf_token"]
    body = {"identity_kind": "email", "identity": "a@example.com", "text": "hi"}
    refused = client.post("/api/v1/inbound", json=body)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "csrf"
    wrong = client.post("/api/v1/inbound", json=body, headers={"X-CSRF-Token": "forged"})
    assert wrong.status_code == 403
    ok = client.post("/api/v1/inbound", json=body, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 201, ok.text
    client.cookies.clear()


def test_logout_ends_the_session(client, ws):
    csrf = login(client, ws).json()["csrf_token"]
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    assert client.get("/api/v1/auth/me").status_code == 401


def test_expired_session_is_refused(client, ws):
    login(client, ws)
    with session_scope() as session:
        session.execute(update(LoginSession).where(LoginSession.user_id == ws.agent_id)
                        .values(expires_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    response = client.get("/api/v1/auth/me")
    assert response.status_code == 401 and "expired" in response.json()["error"]["message"]
    client.cookies.clear()


def test_api_token_is_hashed_and_revocable(client, ws):
    created = client.post("/api/v1/api-tokens", json={"name": "crm"}, headers=ws.admin)
    assert created.status_code == 201
    token = created.json()["token"]
    assert token.startswith("otk_")
    with session_scope() as session:
        from otklik.accounts.models import ApiToken

        stored = session.scalar(select(ApiToken).where(ApiToken.id == created.json()["id"]))
        assert token not in stored.token_hash
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.delete(f"/api/v1/api-tokens/{created.json()['id']}", headers=ws.admin).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_malformed_authorization_header(client):
    response = client.get("/api/v1/auth/me", headers={"Authorization": "Basic abc"})
    assert response.status_code == 401 and "Bearer" in response.json()["error"]["message"]


def test_agents_cannot_manage_users_or_read_the_audit_log(client, ws):
    body = {"email": "new@example.com", "name": "New", "role": "admin"}
    assert client.post("/api/v1/users", json=body, headers=ws.agent).status_code == 403
    assert client.get("/api/v1/audit", headers=ws.agent).status_code == 403
    assert client.patch(f"/api/v1/users/{ws.agent_id}", json={"role": "admin"}, headers=ws.agent).status_code == 403
    created = client.post("/api/v1/users", json=body, headers=ws.admin)
    assert created.status_code == 201 and created.json()["role"] == "admin"


def test_agent_may_rename_themself(client, ws):
    response = client.patch(f"/api/v1/users/{ws.agent_id}", json={"name": "Мария"}, headers=ws.agent)
    assert response.status_code == 200 and response.json()["name"] == "Мария"


def test_deactivated_user_loses_access(client, ws):
    assert client.patch(f"/api/v1/users/{ws.agent_id}", json={"is_active": False},
                        headers=ws.admin).status_code == 200
    assert client.get("/api/v1/auth/me", headers=ws.agent).status_code == 401
    assert login(client, ws).status_code == 401


def test_teams_and_membership_are_audited(client, ws):
    team = client.post("/api/v1/teams", json={"name": "Доставка", "member_ids": [ws.agent_id]}, headers=ws.admin)
    assert team.status_code == 201 and team.json()["member_ids"] == [ws.agent_id]
    dup = client.post("/api/v1/teams", json={"name": "Доставка"}, headers=ws.admin)
    assert dup.status_code == 409
    bad = client.put(f"/api/v1/teams/{team.json()['id']}/members", json={"member_ids": [999999]}, headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "member_ids"
    audit = client.get("/api/v1/audit", params={"entity_type": "team"}, headers=ws.admin).json()
    assert {"created", "members_changed"} <= {a["action"] for a in audit}


def test_duplicate_user_email_is_409(client, ws):
    body = {"email": ws.agent_email.upper(), "name": "Again"}
    response = client.post("/api/v1/users", json=body, headers=ws.admin)
    assert response.status_code == 409 and response.json()["error"]["code"] == "duplicate"


def test_invalid_email_names_the_field(client, ws):
    response = client.post("/api/v1/users", json={"email": "not-an-email", "name": "X"}, headers=ws.admin)
    assert response.status_code == 422
    assert response.json()["error"]["fields"][0]["field"] == "email"
