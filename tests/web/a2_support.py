"""Helpers for the customer panel, search and settings page tests: sign in through the real form."""

from __future__ import annotations

import re
import threading
from contextlib import contextmanager

from sqlalchemy import event

from otklik.platform.db import get_engine
from tests.conftest import PASSWORD


def sign_in(client, email: str, password: str = PASSWORD) -> str:
    """Sign in through /login; returns the CSRF token for unsafe UI requests."""
    client.cookies.clear()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text[-500:]
    inbox = client.get("/api/v1/auth/me")
    assert inbox.status_code == 200
    page = client.get("/settings/profile")
    match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert match, page.text[-500:]
    return match.group(1)


def hx(csrf: str) -> dict[str, str]:
    return {"HX-Request": "true", "X-CSRF-Token": csrf}


@contextmanager
def count_statements():
    """Counts SQL statements run inside the block (to catch N+1 queries).

    Statements of the app's own background threads (the outbox/assistant/SLA sweeps of `Periodic`, channel
    pollers: threads named "otklik-…") are not the request's: a sweep that fell inside the block used to add one
    (more often on a loaded machine, as under pytest-xdist)."""
    counter = {"n": 0}

    def before(*_args, **_kwargs):
        if not threading.current_thread().name.startswith("otklik-"):
            counter["n"] += 1

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", before)


def receive(workspace_id: int, channel: str, kind: str, identity: str, text: str, name: str = "") -> tuple[int, int]:
    """A customer message arriving on a channel, through the service channels use; (conversation, customer)."""
    from otklik.conversations.service import InboundMessage
    from otklik.conversations.service import receive as receive_message
    from otklik.platform.db import session_scope

    with session_scope() as session:
        got = receive_message(session, workspace_id, InboundMessage(
            channel=channel, identity_kind=kind, identity_value=identity, text=text, customer_name=name))
        return got.conversation.id, got.conversation.customer_id


def seed_cake_customer(client, ws) -> tuple[int, list[int]]:
    """The seeds' cake-shop example: one person writes by email, then Telegram, then calls."""
    first, customer_id = receive(ws.id, "email", "email", "olga@example.com",
                                 "Хочу заказать торт на субботу, заказ № 51234", name="Ольга Кондитерова")
    for kind, value in (("telegram", "777001"), ("phone", "+79161112233")):
        r = client.post(f"/api/v1/customers/{customer_id}/identities", json={"kind": kind, "external_id": value},
                        headers=ws.admin)
        assert r.status_code == 201, r.text
    second, _ = receive(ws.id, "telegram", "telegram", "777001", "Можно надпись «С днём рождения»?")
    third, _ = receive(ws.id, "phone", "phone", "+79161112233", "Звонок: уточнить время доставки торта")
    return customer_id, [first, second, third]
