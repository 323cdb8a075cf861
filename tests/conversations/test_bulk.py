"""Bulk actions (issue 19): one change to many conversations, each changed on its own (audited, evented), the
ones that cannot change reported with the reason; merging one customer's conversations into the oldest;
validation, workspaces, limits."""

from __future__ import annotations

from tests.conftest import inbound


def _new(client, ws, n: int, identity: str = "bulk{}@example.com") -> list[int]:
    return [inbound(client, ws, text=f"Вопрос {i}", identity=identity.format(i))["conversation_id"] for i in range(n)]


def _get(client, ws, cid: int) -> dict:
    return client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()


def test_one_change_to_many_and_the_failures_named(client, ws, other_ws):
    ids = _new(client, ws, 4)
    foreign = _new(client, other_ws, 1)[0]
    # one of them is merged meanwhile: it cannot change, the others do
    merged = client.post(f"/api/v1/conversations/{ids[0]}/merge", json={"source_id": ids[3]}, headers=ws.agent)
    assert merged.status_code in (200, 201), merged.text
    r = client.post("/api/v1/conversations/bulk", headers=ws.agent, json={
        "ids": [*ids, foreign], "changes": {"status": "pending", "priority": "high", "assignee_id": ws.agent_id},
        "add_tags": ["акция"]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["updated"] == ids[:3]
    assert {f["id"]: f["code"] for f in body["failed"]} == {ids[3]: "merged", foreign: "not_found"}
    for cid in ids[:3]:
        c = _get(client, ws, cid)
        assert (c["status"], c["priority"], c["assignee_id"]) == ("pending", "high", ws.agent_id)
        assert "акция" in c["tags"]
    assert _get(client, other_ws, foreign)["priority"] == "normal"  # untouched
    audit = client.get(f"/api/v1/audit?entity_type=conversation&entity_id={ids[1]}", headers=ws.admin).json()
    assert {"status_changed", "priority_changed", "assigned"} <= {e["action"] for e in audit}
    # unassign in bulk: assignee_id null
    r = client.post("/api/v1/conversations/bulk", headers=ws.agent, json={"ids": ids[:2],
                                                                       "changes": {"assignee_id": None}})
    assert r.json()["updated"] == ids[:2] and _get(client, ws, ids[0])["assignee_id"] is None


def test_bad_input_is_a_422_naming_the_field(client, ws):
    ids = _new(client, ws, 2, "bad{}@example.com")
    for body, field in (({"ids": [], "changes": {"status": "open"}}, "ids"),
                        ({"ids": ids, "changes": {"status": "nope"}}, "changes.status"),
                        ({"ids": ids, "changes": {}}, "changes"),
                        ({"ids": list(range(1, 300)), "changes": {"status": "open"}}, "ids"),
                        ({"ids": ids, "changes": {"subject": "x"}}, "changes.subject")):
        r = client.post("/api/v1/conversations/bulk", headers=ws.agent, json=body)
        assert r.status_code == 422, (body, r.text)
        assert r.json()["error"]["fields"][0]["field"].startswith(field), (body, r.text)
    assert client.post("/api/v1/conversations/bulk", json={"ids": ids, "changes": {"status": "open"}}).status_code \
        == 401


def test_merge_one_customers_conversations_into_the_oldest(client, ws, other_ws):
    same = _new(client, ws, 1, "merge@example.com")
    second = client.post("/api/v1/conversations", headers=ws.agent, json={
        "customer_id": _get(client, ws, same[0])["customer"]["id"], "channel": "email", "subject": "ещё"})
    assert second.status_code == 201, second.text
    third = client.post("/api/v1/conversations", headers=ws.agent, json={
        "customer_id": _get(client, ws, same[0])["customer"]["id"], "channel": "email", "subject": "и ещё"})
    ids = [same[0], second.json()["id"], third.json()["id"]]
    r = client.post("/api/v1/conversations/bulk/merge", headers=ws.agent, json={"ids": list(reversed(ids))})
    assert r.status_code == 200, r.text
    assert r.json()["target_id"] == ids[0] and sorted(r.json()["merged"]) == sorted(ids[1:])
    assert _get(client, ws, ids[1])["merged_into_id"] == ids[0]
    # another customer's conversation: refused, nothing merged
    other = _new(client, ws, 1, "someone-else@example.com")[0]
    fresh = _new(client, ws, 1, "merge2@example.com")[0]
    r = client.post("/api/v1/conversations/bulk/merge", headers=ws.agent, json={"ids": [fresh, other]})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "ids"
    foreign = _new(client, other_ws, 1)[0]
    assert client.post("/api/v1/conversations/bulk/merge", headers=ws.agent,
                       json={"ids": [fresh, foreign]}).status_code == 404
    assert client.post("/api/v1/conversations/bulk/merge", headers=ws.agent, json={"ids": [fresh]}).status_code == 422
