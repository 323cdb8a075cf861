"""What the outside security test found in accounts (issue 17 §5), each a test that failed before the fix:
a password changed without the current one, API tokens surviving it, tokens that never expire and never record
their use, sign-in throttled per process and per form (and fooled by X-Forwarded-For, and blind to spraying),
the sign-in error telling whether an e-mail is in several workspaces, and no sign-ins in the audit log."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, update

from otklik.accounts import service as accounts
from otklik.accounts import signin
from otklik.accounts.models import ApiToken, AuditEntry
from otklik.platform.db import session_scope, utcnow
from otklik.platform.ratelimit import SharedWindow
from tests.conftest import PASSWORD, make_workspace

NEW_PASSWORD = "a-brand-new-passphrase"


@pytest.fixture(autouse=True)
def fresh_limits():
    signin.per_account.clear()
    signin.per_address.clear()
    yield
    signin.per_account.clear()
    signin.per_address.clear()


def _login(client, email, password=PASSWORD, workspace=None, **headers):
    body = {"email": email, "password": password}
    if workspace:
        body["workspace"] = workspace
    return client.post("/api/v1/auth/login", json=body, headers=headers)


def _audit(ws_id: int, action: str) -> list[AuditEntry]:
    with session_scope(write=False) as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.workspace_id == ws_id,
                                                        AuditEntry.action == action).order_by(AuditEntry.id)))


# -- the password ---------------------------------------------------------------------------------------

def test_own_password_change_needs_the_current_password(client, ws):
    url = f"/api/v1/users/{ws.agent_id}"
    r = client.patch(url, json={"password": NEW_PASSWORD}, headers=ws.agent)
    assert r.status_code == 403 and r.json()["error"]["code"] == "current_password_required"
    r = client.patch(url, json={"password": NEW_PASSWORD, "current_password": "not-my-password"}, headers=ws.agent)
    assert r.status_code == 403
    assert _login(client, ws.agent_email, workspace=ws.slug).status_code == 200  # unchanged
    r = client.patch(url, json={"password": NEW_PASSWORD, "current_password": PASSWORD}, headers=ws.agent)
    assert r.status_code == 200, r.text
    assert _login(client, ws.agent_email, NEW_PASSWORD, workspace=ws.slug).status_code == 200


def test_a_password_change_revokes_tokens_and_ends_sessions(client, ws):
    session = _login(client, ws.agent_email, workspace=ws.slug)
    cookie = session.cookies.get("otklik_session")
    client.cookies.clear()
    assert client.get("/api/v1/auth/me", cookies={"otklik_session": cookie}).status_code == 200
    r = client.patch(f"/api/v1/users/{ws.agent_id}", json={"password": NEW_PASSWORD, "current_password": PASSWORD},
                     headers=ws.agent)
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me", headers=ws.agent).status_code == 401  # the token is revoked
    assert client.get("/api/v1/auth/me", cookies={"otklik_session": cookie}).status_code == 401
    client.cookies.clear()
    # an admin setting someone's password (no current one needed) ends that person's access too
    with session_scope() as db:
        raw, _ = accounts.create_api_token(db, ws.actor("agent"), name="again")
    r = client.patch(f"/api/v1/users/{ws.agent_id}", json={"password": "admin-chose-this-one"}, headers=ws.admin)
    assert r.status_code == 200
    assert client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {raw}"}).status_code == 401
    assert client.get("/api/v1/auth/me", headers=ws.admin).status_code == 200  # the admin's own token stays


# -- API tokens -----------------------------------------------------------------------------------------

def test_api_tokens_expire(client, ws):
    past = (utcnow() - dt.timedelta(minutes=1)).isoformat()
    r = client.post("/api/v1/api-tokens", json={"name": "old", "expires_at": past}, headers=ws.admin)
    assert r.status_code == 422
    r = client.post("/api/v1/api-tokens", json={"name": "naive", "expires_at": "2099-01-01T00:00:00"},
                    headers=ws.admin)
    assert r.status_code == 422
    soon = (utcnow() + dt.timedelta(days=1)).isoformat()
    r = client.post("/api/v1/api-tokens", json={"name": "ci", "expires_at": soon}, headers=ws.admin)
    assert r.status_code == 201, r.text
    assert r.json()["expires_at"] is not None
    token, token_id = r.json()["token"], r.json()["id"]
    auth = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/auth/me", headers=auth).status_code == 200
    with session_scope() as db:
        db.execute(update(ApiToken).where(ApiToken.id == token_id).values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    assert client.get("/api/v1/auth/me", headers=auth).status_code == 401
    client.cookies.clear()  # no session cookie left by an earlier test: the socket must go by the token alone
    with client.websocket_connect("/api/v1/ws") as conn:  # nor does it open the event stream
        conn.send_json({"type": "auth", "token": token})
        assert conn.receive_json()["type"] == "error"


def test_last_used_at_is_written_at_most_once_a_minute(client, ws):
    def last_used(name: str) -> dt.datetime | None:
        with session_scope(write=False) as db:
            return db.scalar(select(ApiToken.last_used_at).where(ApiToken.workspace_id == ws.id,
                                                                 ApiToken.name == name))

    assert last_used("agent") is None
    assert client.get("/api/v1/auth/me", headers=ws.agent).status_code == 200
    first = last_used("agent")
    assert first is not None
    assert client.get("/api/v1/auth/me", headers=ws.agent).status_code == 200
    assert last_used("agent") == first  # within the minute: no second write
    with session_scope() as db:
        db.execute(update(ApiToken).where(ApiToken.workspace_id == ws.id, ApiToken.name == "agent")
                   .values(last_used_at=utcnow() - dt.timedelta(minutes=5)))
    assert client.get("/api/v1/auth/me", headers=ws.agent).status_code == 200
    assert last_used("agent") > first
    listed = client.get("/api/v1/api-tokens", headers=ws.agent).json()
    assert listed[0]["last_used_at"] is not None


# -- sign-in throttling ---------------------------------------------------------------------------------

@pytest.fixture
def quick_hashes(monkeypatch):
    """The throttle is the subject here, not argon2: a wrong password is refused without hashing."""
    real = accounts.verify_password
    monkeypatch.setattr(accounts, "verify_password", lambda stored, given: given == PASSWORD and real(stored, given))


def test_guessing_one_account_from_many_forwarded_addresses_is_throttled(client, ws, quick_hashes):
    codes = [_login(client, ws.agent_email, f"guess-{n}", workspace=ws.slug,
                    **{"X-Forwarded-For": f"203.0.113.{n}"}).status_code for n in range(30)]
    assert codes[:10] == [401] * 10
    assert codes[10:] == [429] * 20
    # even the right password waits now: the account is under attack
    assert _login(client, ws.agent_email, workspace=ws.slug).status_code == 429


def test_spraying_many_accounts_from_one_address_is_throttled(client, quick_hashes):
    spray = make_workspace("spray")
    codes = [_login(client, f"user{n}@{spray.slug}.example", "Summer2026!").status_code for n in range(40)]
    assert codes[:30] == [401] * 30
    assert 429 in codes[30:] and set(codes[30:]) == {429}


def test_the_api_and_the_form_share_one_allowance(client, ws, quick_hashes):
    client.cookies.clear()  # signed out: an earlier test's session cookie would skip the sign-in form
    for n in range(5):
        assert _login(client, ws.agent_email, f"wrong-{n}", workspace=ws.slug).status_code == 401
    page = client.get("/login")
    token = page.cookies.get("otklik_login_csrf") or client.cookies.get("otklik_login_csrf")
    for n in range(5):
        r = client.post("/login", data={"email": ws.agent_email, "password": f"form-{n}", "workspace": ws.slug,
                                        "csrf_token": token}, follow_redirects=False)
        assert r.status_code == 401
    assert _login(client, ws.agent_email, "eleventh", workspace=ws.slug).status_code == 429
    client.cookies.clear()


def test_two_processes_share_the_window_through_redis(monkeypatch):
    """Two limiter objects stand for two processes: with Redis they count together, without it each alone."""
    from otklik.platform.config import get_settings

    a, b = SharedWindow("test-two", limit=10, seconds=60), SharedWindow("test-two", limit=10, seconds=60)
    a.clear()
    for _ in range(5):
        a.add("k")
        b.add("k")
    if get_settings().redis_url:
        with pytest.raises(Exception, match="too many attempts"):
            a.check("k")
        with pytest.raises(Exception, match="too many attempts"):
            b.check("k")
    else:
        a.check("k")  # the embedded default: one process, its own window
    a.clear()
    # Redis down: the process's own window decides, sign-in never fails for it
    monkeypatch.setattr(get_settings(), "redis_url", "redis://127.0.0.1:1/0")
    c = SharedWindow("test-down", limit=2, seconds=60)
    c.add("k")
    c.add("k")
    with pytest.raises(Exception, match="too many attempts"):
        c.check("k")


# -- what the answer and the audit log say --------------------------------------------------------------

def test_the_error_does_not_say_an_email_is_in_several_workspaces(client, ws, other_ws):
    with session_scope() as db:  # the same e-mail, another workspace, another password
        actor = accounts.Actor.system(other_ws.id)
        accounts.create_user(db, actor, email=ws.agent_email, name="Twin", password="the-twins-password")
    unknown = _login(client, "nobody-at-all@example.com", "whatever-1")
    twice = _login(client, ws.agent_email, "whatever-1")
    assert unknown.status_code == twice.status_code == 401
    assert unknown.json()["error"]["message"] == twice.json()["error"]["message"] == "wrong email or password"
    # the password picks the account when no workspace is given
    r = _login(client, ws.agent_email, "the-twins-password")
    assert r.status_code == 200 and r.json()["user"]["name"] == "Twin"
    client.cookies.clear()


def test_sign_ins_are_audited_with_the_source_address(client, ws):
    assert _login(client, ws.agent_email, "wrong-one", workspace=ws.slug).status_code == 401
    assert _login(client, ws.agent_email, workspace=ws.slug).status_code == 200
    client.cookies.clear()
    failed, succeeded = _audit(ws.id, "sign_in_failed"), _audit(ws.id, "signed_in")
    assert [(e.entity_id, e.after["ip"], e.after["via"]) for e in failed] == [(ws.agent_id, "testclient", "api")]
    assert [(e.entity_id, e.actor_user_id, e.after["ip"]) for e in succeeded] == [(ws.agent_id, ws.agent_id,
                                                                                    "testclient")]
    listed = client.get("/api/v1/audit", params={"entity_type": "user", "entity_id": ws.agent_id},
                        headers=ws.admin).json()
    assert {"signed_in", "sign_in_failed"} <= {e["action"] for e in listed}


def test_forwarded_headers_are_believed_only_from_named_proxies(monkeypatch):
    import uvicorn

    from otklik import cli
    from otklik.platform.config import get_settings

    seen = {}
    monkeypatch.setattr(uvicorn, "run", lambda *a, **kw: seen.update(kw))
    cli._serve("127.0.0.1", 1)
    assert seen["proxy_headers"] is False  # uvicorn's own default would trust 127.0.0.1
    monkeypatch.setattr(get_settings(), "trusted_proxies", "127.0.0.1,10.0.0.0/8")
    cli._serve("127.0.0.1", 1)
    assert seen["proxy_headers"] is True and seen["forwarded_allow_ips"] == "127.0.0.1,10.0.0.0/8"


def test_sessions_are_listed_and_revocable(client, ws):
    first = _login(client, ws.agent_email, workspace=ws.slug)
    a_cookie, a_csrf = first.cookies.get("otklik_session"), first.json()["csrf_token"]
    client.cookies.clear()
    b_cookie = _login(client, ws.agent_email, workspace=ws.slug).cookies.get("otklik_session")
    client.cookies.clear()
    listed = client.get("/api/v1/auth/sessions", cookies={"otklik_session": a_cookie}).json()
    assert len(listed) == 2 and [s["current"] for s in listed].count(True) == 1
    assert {s["ip"] for s in listed} == {"testclient"} and listed[0]["user_agent"]
    other = next(s for s in listed if not s["current"])
    r = client.delete(f"/api/v1/auth/sessions/{other['id']}",
                      cookies={"otklik_session": a_cookie}, headers={"X-CSRF-Token": a_csrf})
    assert r.status_code == 204
    assert client.get("/api/v1/auth/me", cookies={"otklik_session": b_cookie}).status_code == 401
    assert client.get("/api/v1/auth/me", cookies={"otklik_session": a_cookie}).status_code == 200
    client.cookies.clear()
    # someone else's session is not there to revoke
    mine = client.get("/api/v1/auth/sessions", headers=ws.agent).json()
    assert client.delete(f"/api/v1/auth/sessions/{mine[0]['id']}", headers=ws.admin).status_code == 404
    assert _audit(ws.id, "session_revoked")


def test_two_factor_sign_in_with_recovery_codes(client, ws):
    import pyotp

    setup = client.post("/api/v1/auth/2fa/setup", headers=ws.agent)
    assert setup.status_code == 200 and setup.json()["otpauth_uri"].startswith("otpauth://totp/")
    totp = pyotp.TOTP(setup.json()["secret"])
    assert client.post("/api/v1/auth/2fa/enable", json={"code": "000000" if totp.now() != "000000" else "111111"},
                       headers=ws.agent).status_code == 403
    enabled = client.post("/api/v1/auth/2fa/enable", json={"code": totp.now()}, headers=ws.agent)
    assert enabled.status_code == 200, enabled.text
    codes = enabled.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10

    r = _login(client, ws.agent_email, workspace=ws.slug)
    assert r.status_code == 401 and r.json()["error"]["code"] == "otp_required"
    r = client.post("/api/v1/auth/login", json={"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug,
                                                "otp": "12345678"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "otp_invalid"
    assert _audit(ws.id, "sign_in_failed")[-1].after["reason"].startswith("the one-time code")
    body = {"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug}
    assert client.post("/api/v1/auth/login", json={**body, "otp": totp.now()}).status_code == 200
    assert client.post("/api/v1/auth/login", json={**body, "otp": codes[0]}).status_code == 200
    assert client.post("/api/v1/auth/login", json={**body, "otp": codes[0]}).status_code == 401  # spent
    client.cookies.clear()
    # the form asks for the code too
    page = client.get("/login")
    token = page.cookies.get("otklik_login_csrf") or client.cookies.get("otklik_login_csrf")
    form = {"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug, "csrf_token": token}
    assert client.post("/login", data=form, follow_redirects=False).status_code == 401
    assert client.post("/login", data={**form, "otp": totp.now()}, follow_redirects=False).status_code == 303
    client.cookies.clear()

    assert client.post("/api/v1/auth/2fa/disable", json={"password": "not-it"}, headers=ws.agent).status_code == 403
    assert client.post("/api/v1/auth/2fa/disable", json={"password": PASSWORD}, headers=ws.agent).status_code == 204
    assert _login(client, ws.agent_email, workspace=ws.slug).status_code == 200
    client.cookies.clear()
