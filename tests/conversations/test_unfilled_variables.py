"""A reply with a template variable left unfilled is refused on the server whatever the path (issue 14 §4: the
API used to queue «{{delivery_date}}» to the customer while the UI refused it); internal notes may keep one."""

from __future__ import annotations

import pytest

from otklik.conversations import service as conversations
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict
from tests.conftest import inbound


def test_api_refuses_an_unfilled_variable_and_keeps_a_note(client, ws):
    got = inbound(client, ws, text="Когда доставка?", identity="vars@example.com")
    cid = got["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Доставим {{ delivery_date }}."},
                    headers=ws.agent)
    assert r.status_code == 409 and r.json()["error"]["code"] == "unresolved_variables"
    assert "delivery_date" in r.json()["error"]["message"]
    note = client.post(f"/api/v1/conversations/{cid}/messages",
                       json={"text": "Шаблон: {{delivery_date}}", "is_internal": True}, headers=ws.agent)
    assert note.status_code == 201
    ok = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Доставим завтра."}, headers=ws.agent)
    assert ok.status_code == 201


def test_every_path_goes_through_the_service_check(ws, client):
    got = inbound(client, ws, text="Где заказ?", identity="vars2@example.com")
    with session_scope() as session, pytest.raises(Conflict):
        conversations.reply(session, ws.actor("agent"), got["conversation_id"], text="Заказ {{order_number}}")
