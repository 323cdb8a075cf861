"""Customers: identities normalised and unique, merges move everything, search with morphology."""

from __future__ import annotations

from tests.conftest import inbound


def create(client, ws, **body):
    return client.post("/api/v1/customers", json=body, headers=ws.agent)


def test_identities_are_normalised(client, ws):
    r = create(client, ws, name="Анна", identities=[{"kind": "phone", "external_id": "8 (916) 123-45-67"},
                                                    {"kind": "email", "external_id": " Anna@Mail.RU "},
                                                    {"kind": "telegram", "external_id": "123456789"}])
    assert r.status_code == 201, r.text
    values = {i["kind"]: i["external_id"] for i in r.json()["identities"]}
    assert values == {"phone": "+79161234567", "email": "anna@mail.ru", "telegram": "123456789"}


def test_invalid_phone_email_and_ids_are_422_with_field(client, ws):
    for ident, field in [({"kind": "phone", "external_id": "12345"}, "identities.0.external_id"),
                         ({"kind": "email", "external_id": "anna@"}, "identities.0.external_id"),
                         ({"kind": "telegram", "external_id": "@anna"}, "identities.0.external_id")]:
        r = create(client, ws, name="X", identities=[ident])
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"][0]["field"] == field
    r = create(client, ws, name="X", identities=[{"kind": "fax", "external_id": "1"}])
    assert r.status_code == 422


def test_identity_is_unique_per_workspace_only(client, ws, other_ws):
    ident = [{"kind": "email", "external_id": "same@example.com"}]
    assert create(client, ws, identities=ident).status_code == 201
    dup = create(client, ws, identities=ident)
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "duplicate"
    assert client.post("/api/v1/customers", json={"identities": ident}, headers=other_ws.agent).status_code == 201


def test_same_person_across_channels_by_identity(client, ws):
    first = inbound(client, ws, kind="phone", identity="+7 916 000-00-01", text="звонил")
    second = inbound(client, ws, kind="phone", identity="89160000001", text="пишу снова")
    assert first["customer_id"] == second["customer_id"]


def test_merge_moves_identities_conversations_and_notes(client, ws):
    a = inbound(client, ws, kind="telegram", identity="111", text="из телеграма")
    b = inbound(client, ws, kind="email", identity="cake@example.com", text="из почты")
    client.post(f"/api/v1/customers/{b['customer_id']}/notes", json={"body": "любит торты"}, headers=ws.agent)
    client.patch(f"/api/v1/customers/{b['customer_id']}", json={"attributes": {"vip": True}}, headers=ws.agent)
    r = client.post(f"/api/v1/customers/{a['customer_id']}/merge", json={"source_id": b["customer_id"]},
                    headers=ws.agent)
    assert r.status_code == 200, r.text
    merged = r.json()
    assert {i["kind"] for i in merged["identities"]} == {"telegram", "email"}
    assert merged["attributes"] == {"vip": True}
    convs = client.get("/api/v1/conversations", params={"customer_id": a["customer_id"]}, headers=ws.agent).json()
    assert {c["id"] for c in convs["items"]} == {a["conversation_id"], b["conversation_id"]}
    notes = client.get(f"/api/v1/customers/{a['customer_id']}/notes", headers=ws.agent).json()
    assert [n["body"] for n in notes] == ["любит торты"]
    source = client.get(f"/api/v1/customers/{b['customer_id']}", headers=ws.agent).json()
    assert source["merged_into_id"] == a["customer_id"] and source["identities"] == []
    # the email now resolves to the surviving customer
    again = inbound(client, ws, kind="email", identity="cake@example.com", text="ещё вопрос")
    assert again["customer_id"] == a["customer_id"]
    audit = client.get("/api/v1/audit", params={"entity_type": "customer", "entity_id": a["customer_id"]},
                       headers=ws.admin).json()
    assert any(e["action"] == "merged" and e["after"]["moved"]["conversations"] == 1 for e in audit)


def test_merge_twice_or_into_self_is_refused(client, ws):
    a = create(client, ws, name="A").json()
    b = create(client, ws, name="B").json()
    assert client.post(f"/api/v1/customers/{a['id']}/merge", json={"source_id": a["id"]},
                       headers=ws.agent).status_code == 422
    assert client.post(f"/api/v1/customers/{a['id']}/merge", json={"source_id": b["id"]},
                       headers=ws.agent).status_code == 200
    assert client.post(f"/api/v1/customers/{a['id']}/merge", json={"source_id": b["id"]},
                       headers=ws.agent).status_code == 409


def test_customer_search_by_name_and_identity(client, ws):
    create(client, ws, name="Екатерина Смирнова", identities=[{"kind": "email", "external_id": "kate@shop.ru"}])
    create(client, ws, name="Пётр Иванов")
    found = client.get("/api/v1/customers", params={"q": "Смирновой"}, headers=ws.agent).json()["items"]
    assert [c["name"] for c in found] == ["Екатерина Смирнова"]
    by_prefix = client.get("/api/v1/customers", params={"q": "екат"}, headers=ws.agent).json()["items"]
    assert [c["name"] for c in by_prefix] == ["Екатерина Смирнова"]
    by_email = client.get("/api/v1/customers", params={"identity": "KATE@shop.ru", "identity_kind": "email"},
                          headers=ws.agent).json()["items"]
    assert len(by_email) == 1
    empty = client.get("/api/v1/customers", params={"q": "!!!"}, headers=ws.agent)
    assert empty.status_code == 422


def test_oversize_attributes_are_422(client, ws):
    r = create(client, ws, name="X", attributes={"blob": "x" * 20_000})
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "attributes"
