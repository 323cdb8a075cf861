"""Helpers for the agent-workspace browser tests: seed through the real API, sign in through the real form."""

from __future__ import annotations

import httpx

from tests.conftest import PASSWORD, WS


def post_inbound(base: str, ws: WS, *, text: str, identity: str = "ivan@example.com", kind: str = "email",
                 customer_name: str = "", **extra) -> dict:
    body = {"identity_kind": kind, "identity": identity, "text": text, "customer_name": customer_name, **extra}
    r = httpx.post(base + "/api/v1/inbound", json=body, headers=ws.agent, timeout=10)
    assert r.status_code in (200, 201), r.text
    return r.json()


def sign_in(page, email: str, *, next_path: str = "/inbox") -> None:
    page.goto(next_path)
    page.wait_for_url("**/login**")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector("#mainnav")
