"""Password reset end to end through a real SMTP server (aiosmtpd on 127.0.0.1)."""

from __future__ import annotations

import datetime as dt
import email
import re
import socket

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

from otklik.accounts.password_reset import PasswordReset
from otklik.accounts.security import token_digest
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope, utcnow
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-password"


class Inbox:
    def __init__(self):
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content)
        msg["X-Envelope-To"] = ",".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp(monkeypatch):
    inbox = Inbox()
    port = _port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings = get_settings()
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", port)
    monkeypatch.setattr(settings, "smtp_starttls", False)
    monkeypatch.setattr(settings, "smtp_from", "support@shop.example")
    yield inbox
    controller.stop()


def _login(client, ws, email_addr, password):
    return client.post("/api/v1/auth/login", json={"email": email_addr, "password": password, "workspace": ws.slug})


def _token_from(msg) -> str:
    body = msg.get_payload(decode=True).decode()
    match = re.search(r"/password/reset#token=([\w-]+)", body)
    assert match, body
    return match.group(1)


def test_reset_by_email_end_to_end(client, ws, smtp, caplog):
    caplog.set_level("DEBUG")
    old = _login(client, ws, ws.agent_email, PASSWORD)
    assert old.status_code == 200
    old_cookie = client.cookies.get("otklik_session")
    client.cookies.clear()
    r = client.post("/api/v1/auth/password-reset", json={"email": ws.agent_email.upper(), "workspace": ws.slug})
    assert r.status_code == 202 and r.json() == {"status": "sent_if_known"}
    assert len(smtp.messages) == 1
    msg = smtp.messages[0]
    assert msg["X-Envelope-To"] == ws.agent_email and "Сброс пароля" in str(email.header.make_header(
        email.header.decode_header(msg["Subject"])))
    token = _token_from(msg)
    assert token not in caplog.text  # never logged
    # the old password still works until the reset is done
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
    assert r.status_code == 422
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 204
    # single use
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD + "x"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_token"
    # old sessions are gone, the old password is refused, the new one works
    client.cookies.set("otklik_session", old_cookie)
    assert client.get("/api/v1/auth/me").status_code == 401
    client.cookies.clear()
    assert _login(client, ws, ws.agent_email, PASSWORD).status_code == 401
    assert _login(client, ws, ws.agent_email, NEW_PASSWORD).status_code == 200
    client.cookies.clear()
    assert token not in caplog.text


def test_emailed_link_ignores_a_forged_host_header(client, ws, smtp, monkeypatch):
    monkeypatch.setattr(get_settings(), "public_url", "https://support.shop.example")
    r = client.post("/api/v1/auth/password-reset", json={"email": ws.admin_email, "workspace": ws.slug},
                    headers={"Host": "evil.example"})
    assert r.status_code == 202
    body = smtp.messages[-1].get_payload(decode=True).decode()
    assert "https://support.shop.example/password/reset#token=" in body and "evil.example" not in body


def test_unknown_email_answers_the_same(client, ws, smtp):
    known = client.post("/api/v1/auth/password-reset", json={"email": ws.admin_email})
    unknown = client.post("/api/v1/auth/password-reset", json={"email": "nobody-here@example.com"})
    assert known.status_code == unknown.status_code == 202
    assert known.json() == unknown.json()
    assert [m["X-Envelope-To"] for m in smtp.messages] == [ws.admin_email]


def test_token_expires(client, ws, smtp):
    client.post("/api/v1/auth/password-reset", json={"email": ws.admin_email, "workspace": ws.slug})
    token = _token_from(smtp.messages[-1])
    with session_scope() as session:
        session.execute(update(PasswordReset).where(PasswordReset.token_hash == token_digest(token))
                        .values(expires_at=utcnow() - dt.timedelta(seconds=1)))
    r = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": NEW_PASSWORD})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_token"
    assert _login(client, ws, ws.admin_email, PASSWORD).status_code == 200
    client.cookies.clear()


def test_a_new_link_spends_the_older_ones_on_use(client, ws, smtp):
    for _ in range(2):
        client.post("/api/v1/auth/password-reset", json={"email": ws.admin_email, "workspace": ws.slug})
    first, second = (_token_from(m) for m in smtp.messages[-2:])
    assert client.post("/api/v1/auth/password-reset/confirm",
                       json={"token": second, "password": NEW_PASSWORD}).status_code == 204
    assert client.post("/api/v1/auth/password-reset/confirm",
                       json={"token": first, "password": NEW_PASSWORD}).status_code == 422


def test_without_smtp_admin_issues_a_link(client, ws, monkeypatch):
    monkeypatch.setattr(get_settings(), "smtp_host", None)
    r = client.post("/api/v1/auth/password-reset", json={"email": ws.agent_email})
    assert r.status_code == 409 and r.json()["error"]["code"] == "email_not_configured"
    assert client.post(f"/api/v1/users/{ws.agent_id}/password-reset-link", headers=ws.agent).status_code == 403
    r = client.post(f"/api/v1/users/{ws.agent_id}/password-reset-link", headers=ws.admin)
    assert r.status_code == 201
    url = r.json()["url"]
    assert "/password/reset#token=" in url
    token = url.split("#token=")[1]
    with session_scope() as session:
        row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == token_digest(token)))
        assert row is not None and row.issued_by == ws.admin_id
    assert client.post("/api/v1/auth/password-reset/confirm",
                       json={"token": token, "password": NEW_PASSWORD}).status_code == 204
    assert _login(client, ws, ws.agent_email, NEW_PASSWORD).status_code == 200
    client.cookies.clear()


def test_bad_input(client, ws, smtp):
    for body in [{}, {"email": ""}, {"email": "x" * 300}, {"email": "a@b.c", "extra": 1}]:
        assert client.post("/api/v1/auth/password-reset", json=body).status_code == 422, body
    for body in [{}, {"token": "", "password": NEW_PASSWORD}, {"token": "x" * 201, "password": NEW_PASSWORD},
                 {"token": "nope", "password": NEW_PASSWORD}]:
        assert client.post("/api/v1/auth/password-reset/confirm", json=body).status_code == 422, body


def test_mail_outage_is_not_a_500(client, ws, monkeypatch):
    settings = get_settings()
    monkeypatch.setattr(settings, "smtp_host", "127.0.0.1")
    monkeypatch.setattr(settings, "smtp_port", _port())  # nothing listens there
    monkeypatch.setattr(settings, "smtp_starttls", False)
    monkeypatch.setattr(settings, "smtp_timeout_seconds", 2.0)
    r = client.post("/api/v1/auth/password-reset", json={"email": ws.admin_email, "workspace": ws.slug})
    assert r.status_code == 202
