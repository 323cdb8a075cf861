"""The WebSocket stream: authorised agents get their workspace's events, nobody else's."""

from __future__ import annotations

import pytest
from starlette.websockets import WebSocketDisconnect

from tests.conftest import PASSWORD, inbound


def receive_type(ws_conn, wanted, limit=10):
    for _ in range(limit):
        event = ws_conn.receive_json()
        if event["type"] == wanted:
            return event
    raise AssertionError(f"no {wanted} event")


def test_token_auth_streams_message_events(client, ws):
    with client.websocket_connect("/api/v1/ws") as conn:
        conn.send_json({"type": "auth", "token": ws.agent_token})
        assert conn.receive_json()["type"] == "ready"
        got = inbound(client, ws, text="живое сообщение")
        event = receive_type(conn, "message.created")
        assert event["data"]["body_text"] == "живое сообщение"
        assert event["data"]["conversation_id"] == got["conversation_id"]
        conn.send_json({"type": "ping"})
        assert receive_type(conn, "pong")


def test_cookie_auth_works_for_browsers(client, ws):
    client.cookies.clear()
    client.post("/api/v1/auth/login", json={"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug})
    with client.websocket_connect("/api/v1/ws") as conn:
        assert conn.receive_json()["type"] == "ready"
    client.cookies.clear()


def test_cross_site_cookie_is_not_enough(client, ws):
    client.cookies.clear()
    client.post("/api/v1/auth/login", json={"email": ws.agent_email, "password": PASSWORD, "workspace": ws.slug})
    with client.websocket_connect("/api/v1/ws", headers={"origin": "https://evil.example"}) as conn:
        conn.send_json({"type": "hello"})
        assert conn.receive_json()["type"] == "error"
        with pytest.raises(WebSocketDisconnect):
            conn.receive_json()
    client.cookies.clear()


def test_bad_token_is_refused(client):
    with client.websocket_connect("/api/v1/ws") as conn:
        conn.send_json({"type": "auth", "token": "otk_nope"})
        event = conn.receive_json()
        assert event["type"] == "error" and event["error"]["code"] == "unauthorized"


def test_other_workspace_events_do_not_leak(client, ws, other_ws):
    with client.websocket_connect("/api/v1/ws") as conn:
        conn.send_json({"type": "auth", "token": ws.agent_token})
        assert conn.receive_json()["type"] == "ready"
        inbound(client, other_ws, text="чужое")
        inbound(client, ws, text="своё")
        event = receive_type(conn, "message.created")
        assert event["data"]["body_text"] == "своё"


def test_redis_channel_follows_the_database_number():
    """Redis delivers a publish on every database number: installs (or test workers) on one Redis server,
    each with its own database, must not share the event channel."""
    from otklik.platform.events import RedisEventBus

    assert RedisEventBus("redis://127.0.0.1:6379/0").channel == "otklik:events"
    assert RedisEventBus("redis://127.0.0.1:6379").channel == "otklik:events"
    assert RedisEventBus("redis://127.0.0.1:6379/3").channel == "otklik:events:3"
