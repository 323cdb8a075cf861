"""The conversation rules: statuses, re-opening, closed is final, first response, assignment, merges."""

from __future__ import annotations

from tests.conftest import inbound


def conv(client, ws, cid):
    return client.get(f"/api/v1/conversations/{cid}", headers=ws.agent).json()


def test_inbound_creates_customer_and_new_conversation(client, ws):
    result = inbound(client, ws, identity="Olga@Example.com", text="Здравствуйте, где мой заказ №48213?",
                     customer_name="Ольга")
    c = conv(client, ws, result["conversation_id"])
    assert c["status"] == "new" and c["number"] == 1 and c["customer"]["name"] == "Ольга"
    customer = client.get(f"/api/v1/customers/{result['customer_id']}", headers=ws.agent).json()
    assert customer["identities"][0] == {**customer["identities"][0], "kind": "email",
                                         "external_id": "olga@example.com"}


def test_numbers_are_per_workspace(client, ws, other_ws):
    a = inbound(client, ws, identity="a@example.com")
    b = inbound(client, other_ws, identity="a@example.com")
    assert a["conversation_number"] == 1 and b["conversation_number"] == 1
    assert a["customer_id"] != b["customer_id"]


def test_duplicate_channel_message_is_accepted_once(client, ws):
    first = inbound(client, ws, message_id="vendor-1")
    second = client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": "ivan@example.com",
                                                  "text": "Где мой заказ?", "message_id": "vendor-1"},
                         headers=ws.agent)
    assert second.status_code == 200 and second.json()["duplicate"] is True
    assert second.json()["message_id"] == first["message_id"]
    msgs = client.get(f"/api/v1/conversations/{first['conversation_id']}/messages", headers=ws.agent).json()
    assert len(msgs["items"]) == 1


def test_first_public_reply_records_first_response_and_opens(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    note = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "проверю склад", "is_internal": True},
                       headers=ws.agent)
    assert note.status_code == 201 and note.json()["delivery_status"] == "not_sent"
    assert conv(client, ws, cid)["first_response_at"] is None
    reply = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "Заказ в пути"}, headers=ws.agent)
    assert reply.status_code == 201 and reply.json()["delivery_status"] in ("queued", "sent")
    c = conv(client, ws, cid)
    assert c["first_response_at"] == reply.json()["created_at"]
    assert c["status"] == "open" and c["assignee_id"] == ws.agent_id
    client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "ещё"}, headers=ws.agent)
    assert conv(client, ws, cid)["first_response_at"] == reply.json()["created_at"]


def test_customer_message_reopens_solved(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    assert client.patch(f"/api/v1/conversations/{cid}", json={"status": "solved"}, headers=ws.agent).json()[
        "status"] == "solved"
    again = inbound(client, ws, text="Так и не пришёл")
    assert again["conversation_id"] == cid and again["new_conversation"] is False
    c = conv(client, ws, cid)
    assert c["status"] == "open" and c["solved_at"] is None


def test_pending_goes_back_to_open_when_customer_answers(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    client.patch(f"/api/v1/conversations/{cid}", json={"status": "pending"}, headers=ws.agent)
    inbound(client, ws, text="вот номер заказа: 123")
    assert conv(client, ws, cid)["status"] == "open"


def test_closed_is_final_and_a_new_message_opens_a_linked_conversation(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    assert client.patch(f"/api/v1/conversations/{cid}", json={"status": "closed"}, headers=ws.agent).status_code == 200
    reopen = client.patch(f"/api/v1/conversations/{cid}", json={"status": "open"}, headers=ws.agent)
    assert reopen.status_code == 409 and reopen.json()["error"]["code"] == "transition"
    reply = client.post(f"/api/v1/conversations/{cid}/messages", json={"text": "x"}, headers=ws.agent)
    assert reply.status_code == 409 and reply.json()["error"]["code"] == "closed"
    new = inbound(client, ws, text="Снова я")
    assert new["new_conversation"] is True and new["conversation_id"] != cid
    assert conv(client, ws, new["conversation_id"])["previous_conversation_id"] == cid


def test_assignment_and_team_changes_are_audited(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    team = client.post("/api/v1/teams", json={"name": "Первая линия"}, headers=ws.admin).json()
    r = client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": ws.agent_id, "team_id": team["id"]},
                     headers=ws.admin)
    assert r.status_code == 200 and r.json()["assignee_id"] == ws.agent_id
    audit = client.get("/api/v1/audit", params={"entity_type": "conversation", "entity_id": cid},
                       headers=ws.admin).json()
    by_action = {a["action"]: a for a in audit}
    assert by_action["assigned"]["before"] == {"assignee_id": None}
    assert by_action["assigned"]["after"] == {"assignee_id": ws.agent_id}
    assert by_action["assigned"]["actor_user_id"] == ws.admin_id
    assert by_action["team_changed"]["after"] == {"team_id": team["id"]}


def test_unknown_assignee_or_team_is_422(client, ws, other_ws):
    cid = inbound(client, ws)["conversation_id"]
    r = client.patch(f"/api/v1/conversations/{cid}", json={"assignee_id": other_ws.agent_id}, headers=ws.agent)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "assignee_id"
    r = client.patch(f"/api/v1/conversations/{cid}", json={"team_id": 987654}, headers=ws.agent)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "team_id"


def test_stale_version_is_409_and_changes_nothing(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    version = conv(client, ws, cid)["version"]
    first = client.patch(f"/api/v1/conversations/{cid}", json={"priority": "high", "version": version},
                         headers=ws.agent)
    assert first.status_code == 200
    second = client.patch(f"/api/v1/conversations/{cid}", json={"priority": "low", "version": version},
                          headers=ws.agent)
    assert second.status_code == 409 and second.json()["error"]["code"] == "stale"
    assert conv(client, ws, cid)["priority"] == "high"


def test_tags_filter_and_normalise(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    inbound(client, ws, identity="other@example.com")
    r = client.patch(f"/api/v1/conversations/{cid}", json={"tags": ["Возврат", "возврат ", "VIP"]}, headers=ws.agent)
    assert r.json()["tags"] == ["vip", "возврат"]
    listed = client.get("/api/v1/conversations", params={"tag": "возврат"}, headers=ws.agent).json()["items"]
    assert [c["id"] for c in listed] == [cid]


def test_merge_conversations_moves_messages(client, ws):
    a = inbound(client, ws, identity="a@example.com", text="первое")
    b = client.post("/api/v1/inbound", json={"identity_kind": "phone", "identity": "+7 916 123-45-67",
                                             "text": "второе"}, headers=ws.agent).json()
    r = client.post(f"/api/v1/conversations/{a['conversation_id']}/merge",
                    json={"source_id": b["conversation_id"]}, headers=ws.agent)
    assert r.status_code == 200
    texts = [m["body_text"] for m in client.get(f"/api/v1/conversations/{a['conversation_id']}/messages",
                                                headers=ws.agent).json()["items"]]
    assert "первое" in texts and "второе" in texts
    source = conv(client, ws, b["conversation_id"])
    assert source["merged_into_id"] == a["conversation_id"] and source["status"] == "closed"
    again = client.post(f"/api/v1/conversations/{a['conversation_id']}/merge",
                        json={"source_id": b["conversation_id"]}, headers=ws.agent)
    assert again.status_code == 409


def test_merge_into_itself_is_422(client, ws):
    cid = inbound(client, ws)["conversation_id"]
    r = client.post(f"/api/v1/conversations/{cid}/merge", json={"source_id": cid}, headers=ws.agent)
    assert r.status_code == 422


def test_html_is_sanitised_and_text_kept(client, ws):
    r = inbound(client, ws, text=None, html='<p onclick="x()">Привет <script>alert(1)</script>'
                                              '<a href="javascript:alert(1)">ссылка</a><b>!</b></p>')
    msg = client.get(f"/api/v1/conversations/{r['conversation_id']}/messages", headers=ws.agent).json()["items"][0]
    assert "<script" not in msg["body_html"] and "onclick" not in msg["body_html"]
    assert "javascript:" not in msg["body_html"] and "<b>!</b>" in msg["body_html"]
    assert msg["body_text"].startswith("Привет")


def test_plain_text_is_escaped_in_html(client, ws):
    r = inbound(client, ws, text="<img src=x onerror=alert(1)>")
    msg = client.get(f"/api/v1/conversations/{r['conversation_id']}/messages", headers=ws.agent).json()["items"][0]
    assert msg["body_html"] == "<p>&lt;img src=x onerror=alert(1)&gt;</p>"


def test_listing_filters_sort_and_cursor(client, ws):
    ids = [inbound(client, ws, identity=f"c{i}@example.com", text=f"вопрос {i}")["conversation_id"]
           for i in range(7)]
    client.patch(f"/api/v1/conversations/{ids[0]}", json={"priority": "urgent"}, headers=ws.agent)
    client.patch(f"/api/v1/conversations/{ids[1]}", json={"status": "pending"}, headers=ws.agent)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "created_at", "order": "asc", "status": ["new"]}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/api/v1/conversations", params=params, headers=ws.agent).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [i for i in ids if i != ids[1]]
    top = client.get("/api/v1/conversations", params={"sort": "priority", "limit": 1}, headers=ws.agent).json()
    assert top["items"][0]["id"] == ids[0]
    urgent = client.get("/api/v1/conversations", params={"priority": "urgent"}, headers=ws.agent).json()
    assert [c["id"] for c in urgent["items"]] == [ids[0]]
    mine = client.get("/api/v1/conversations", params={"unassigned": "true", "limit": 200}, headers=ws.agent).json()
    assert len(mine["items"]) == 7


def test_bad_cursor_is_422(client, ws):
    r = client.get("/api/v1/conversations", params={"cursor": "garbage!!"}, headers=ws.agent)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "cursor"


def test_agent_created_conversation(client, ws):
    cust = client.post("/api/v1/customers", json={"name": "Пётр", "identities": [
        {"kind": "phone", "external_id": "8 (916) 555-11-22"}]}, headers=ws.agent).json()
    r = client.post("/api/v1/conversations", json={"customer_id": cust["id"], "channel": "phone",
                                                   "subject": "Перезвонить", "tags": ["звонок"]}, headers=ws.agent)
    assert r.status_code == 201 and r.json()["status"] == "open" and r.json()["tags"] == ["звонок"]
