"""Presence over the WebSocket (who views / types in a conversation), on the in-process bus or Redis."""

from __future__ import annotations


def receive_type(conn, wanted, limit=20):
    for _ in range(limit):
        event = conn.receive_json()
        if event["type"] == wanted:
            return event
    raise AssertionError(f"no {wanted} event")


def test_presence_reaches_other_agents_of_the_workspace_only(client, ws, other_ws):
    with client.websocket_connect("/api/v1/ws") as viewer, client.websocket_connect("/api/v1/ws") as typist, \
            client.websocket_connect("/api/v1/ws") as outsider:
        viewer.send_json({"type": "auth", "token": ws.admin_token})
        typist.send_json({"type": "auth", "token": ws.agent_token})
        outsider.send_json({"type": "auth", "token": other_ws.agent_token})
        for conn in (viewer, typist, outsider):
            assert conn.receive_json()["type"] == "ready"
        typist.send_json({"type": "presence", "conversation_id": 42, "state": "viewing", "hello": True})
        event = receive_type(viewer, "presence")["data"]
        assert event["conversation_id"] == 42 and event["user_id"] == ws.agent_id
        assert event["state"] == "viewing" and event["hello"] is True and event["ttl"] > 0
        assert event["name"].startswith("Agent")
        typist.send_json({"type": "presence", "conversation_id": 42, "state": "typing"})
        assert receive_type(viewer, "presence")["data"]["state"] == "typing"
        # malformed frames are ignored, the socket stays usable
        for bad in ({"type": "presence", "conversation_id": "42", "state": "viewing"},
                    {"type": "presence", "conversation_id": 42, "state": "dancing"},
                    {"type": "presence", "conversation_id": True, "state": "viewing"},
                    {"type": "presence"}, ["presence"]):
            typist.send_json(bad)
        typist.send_text("{not json")
        typist.send_json({"type": "presence", "conversation_id": 42, "state": "left"})
        assert receive_type(viewer, "presence")["data"]["state"] == "left"
        # the other workspace heard none of it
        outsider.send_json({"type": "ping"})
        assert outsider.receive_json()["type"] == "pong"


def test_presence_flood_is_capped(client, ws):
    with client.websocket_connect("/api/v1/ws") as viewer, client.websocket_connect("/api/v1/ws") as flooder:
        viewer.send_json({"type": "auth", "token": ws.admin_token})
        flooder.send_json({"type": "auth", "token": ws.agent_token})
        assert viewer.receive_json()["type"] == "ready" and flooder.receive_json()["type"] == "ready"
        for i in range(40):
            flooder.send_json({"type": "presence", "conversation_id": 7, "state": "viewing", "n": i})
        flooder.send_json({"type": "ping"})
        assert receive_type(flooder, "pong", limit=100)
        viewer.send_json({"type": "ping"})
        seen = 0
        while True:
            event = viewer.receive_json()
            if event["type"] == "pong":
                break
            seen += event["type"] == "presence"
        assert 1 <= seen <= 10  # at most a few per second get through
