"""The integrations API: admin only, secrets write-only, another workspace's connection is a 404 everywhere,
hostile bodies on the CRMs' webhook are 4xx (never a 500), and the bulk sync (resumable, no duplicates)."""

from __future__ import annotations

import pytest

from otklik.crm import service
from otklik.crm.models import CrmLink, CrmSync
from otklik.platform.db import session_scope
from tests.crm.conftest import connect, make_customer


def test_admin_only_and_secrets_never_shown(client, ws, retail):
    assert client.get("/api/v1/integrations/crm/kinds", headers=ws.agent).status_code == 403
    kinds = client.get("/api/v1/integrations/crm/kinds", headers=ws.admin).json()
    assert {k["kind"] for k in kinds} == {"amocrm", "bitrix24", "retailcrm"}
    assert all("base_url" in k["config_schema"]["properties"] for k in kinds)
    assert client.post("/api/v1/integrations/crm/connections", headers=ws.agent,
                       json={"kind": "retailcrm", "config": {"base_url": retail.base}}).status_code == 403
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    listed = client.get("/api/v1/integrations/crm/connections", headers=ws.admin)
    assert "retail-key" not in listed.text and listed.json()[0]["secrets"] == {"api_key": "set"}
    bad = client.post("/api/v1/integrations/crm/connections", headers=ws.admin,
                      json={"kind": "retailcrm", "name": "x", "config": {"base_url": "ftp://nope"}})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "config.base_url"
    unknown = client.post("/api/v1/integrations/crm/connections", headers=ws.admin, json={"kind": "sap"})
    assert unknown.status_code == 422
    wrong_secret = client.patch(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin,
                                json={"secrets": {"password": "x"}})
    assert wrong_secret.status_code == 422
    kept = client.patch(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin,
                        json={"secrets": {"api_key": ""}, "name": "Магазин"})
    assert kept.status_code == 200 and kept.json()["secrets"] == {"api_key": "set"} and kept.json()["name"] == "Магазин"


def test_another_workspace_cannot_see_or_use_the_connection(client, ws, other_ws, retail):
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    cid = conn["id"]
    base = f"/api/v1/integrations/crm/connections/{cid}"
    assert client.get(base, headers=other_ws.admin).status_code == 404
    assert client.patch(base, json={"name": "mine"}, headers=other_ws.admin).status_code == 404
    assert client.post(f"{base}/test", headers=other_ws.admin).status_code == 404
    assert client.post(f"{base}/retry", headers=other_ws.admin).status_code == 404
    assert client.post(f"{base}/sync", json={}, headers=other_ws.admin).status_code == 404
    assert client.delete(base, headers=other_ws.admin).status_code == 404
    assert client.get("/api/v1/integrations/crm/connections", headers=other_ws.admin).json() == []
    customer = make_customer(ws, "Анна", phone="+79161234567")
    assert client.get(f"/api/v1/integrations/crm/customers/{customer}", headers=other_ws.agent).status_code == 404
    assert client.post(f"/api/v1/integrations/crm/customers/{customer}/refresh",
                       headers=other_ws.admin).status_code == 404
    sync = client.post(f"{base}/sync", json={}, headers=ws.admin).json()
    assert client.get(f"/api/v1/integrations/crm/syncs/{sync['id']}", headers=other_ws.admin).status_code == 404
    assert client.get(base, headers=ws.admin).status_code == 200
    assert client.delete(base, headers=ws.admin).status_code == 204


HOSTILE = [
    ("application/json", b'{"order_id": "1", '),
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json", b'{"x": "\\ud800"}'),
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b"[1, 2]"),
    ("application/json", b'{"order_id": {"deep": [1, {"a": null}]}, "customer_id": 1e999}'),
    ("application/x-www-form-urlencoded", b"\xff\xfe=\x00"),
    ("application/x-www-form-urlencoded", b"contacts[update][0][id]=99999999999999999999999"),
    ("application/x-www-form-urlencoded", b"leads[status][0][id]=-1&leads[add][x][id]=1"),
    ("application/x-www-form-urlencoded", b"&".join(b"k%d=v" % i for i in range(3000))),
    ("application/x-www-form-urlencoded", b"event=ONCRMDEALUPDATE&data[FIELDS][ID]=%ED%A0%80"),
    ("text/plain", b"\x00\x01\x02"),
    ("", b""),
]


@pytest.mark.parametrize("kind", ["retailcrm", "amocrm", "bitrix24"])
def test_hostile_webhook_bodies_are_never_a_500(client, ws, retail, kind):
    config = {"base_url": retail.base}
    if kind == "amocrm":
        config.update(client_id="c", redirect_uri="https://x.example/cb")
    secrets = {"bitrix24": {"webhook_code": "c", "application_token": "t"}}.get(kind, {})
    conn = connect(client, ws, kind, config, secrets)
    token = conn["webhook_path"].rsplit("/", 1)[1]
    for ctype, body in HOSTILE:
        response = client.post(f"/api/v1/integrations/crm/webhook/{token}", content=body,
                               headers={"content-type": ctype} if ctype else {})
        assert response.status_code < 500, (kind, ctype, body[:40], response.text)
    for bad in ("nope", "x" * 300, "%00", "../../etc"):
        response = client.post(f"/api/v1/integrations/crm/webhook/{bad}", json={"order_id": 1})
        assert response.status_code in (404, 405), response.text
    oauth = client.get("/api/v1/integrations/crm/amocrm/oauth", params={"code": "x", "state": "1" * 40 + ".y"})
    assert oauth.status_code == 404


def test_disabled_connection_takes_no_webhook(client, ws, retail):
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    client.patch(f"/api/v1/integrations/crm/connections/{conn['id']}", json={"enabled": False}, headers=ws.admin)
    token = conn["webhook_path"].rsplit("/", 1)[1]
    assert client.post(f"/api/v1/integrations/crm/webhook/{token}", data={"order_id": "1"}).status_code == 404


def test_bulk_sync_resumes_after_a_killed_worker_without_duplicates(client, ws, retail):
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    existing = retail.add_customer(first="Старый", phone="+79990000007")
    ids = [make_customer(ws, f"Клиент {i}", phone=f"+7999000000{i}") for i in range(8)]
    ids.append(make_customer(ws, "Без подтверждения", phone="+79990000099", verified=False))
    with session_scope() as session:
        sync = service.start_sync(session, ws.actor(), conn["id"], create_missing=True)
        sync_id = sync.id
    # worker A does one batch of 3, then "dies" in the middle of the next: the CRM created two more
    # contacts that were never linked here, and its lease is still held
    assert service.sync_step(sync_id, "worker-a", batch=3) is True
    connector = service.open_connector(service.Snapshot(conn["id"], ws.id, "retailcrm",
                                                        {"base_url": retail.base}, {"api_key": "retail-key"}, {}))
    for customer_id, i in zip(ids[3:5], (3, 4), strict=True):
        connector.create_contact(name=f"Клиент {i}", phones=[f"+7999000000{i}"], emails=[], otklik_id=customer_id)
    assert service.sync_step(sync_id, "worker-b", batch=3) is False  # the lease is A's for now
    with session_scope() as session:
        session.execute(CrmSync.__table__.update().values(lease_until=None))  # ...until it runs out
        assert service.syncs_to_resume(session) == [sync_id]
    assert service.run_sync(sync_id, owner="worker-b", batch=3) is False
    with session_scope() as session:
        done = session.get(CrmSync, sync_id)
        links = session.query(CrmLink).filter(CrmLink.connection_id == conn["id"]).count()
    assert done.status == "done" and done.processed == 9 and done.skipped == 1 and links == 8
    phones = [p["number"] for c in retail.customers.values() for p in c.get("phones", [])]
    assert len(phones) == len(set(phones)) == 8  # 7 created + the one that existed; none twice
    assert any(c["id"] == existing for c in retail.customers.values())
    # the API shows it; a second sync matches everything and creates nothing
    again = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/sync", json={"create_missing": True},
                        headers=ws.admin)
    assert again.status_code == 202 and again.json()["status"] == "done" and again.json()["created"] == 0
    assert len(retail.customers) == 8


def test_demo_connections_are_present_switched_off_with_example_settings(client, ws):
    with session_scope() as session:
        service.add_demo_connections(session, ws.actor())
    shown = client.get("/api/v1/integrations/crm/connections", headers=ws.admin).json()
    assert {c["kind"] for c in shown} == {"amocrm", "bitrix24", "retailcrm"}
    assert all(not c["enabled"] and c["status"] == "disconnected" for c in shown)
    by_kind = {c["kind"]: c for c in shown}
    assert by_kind["retailcrm"]["config"]["base_url"] == "https://myshop.retailcrm.ru"
    assert by_kind["bitrix24"]["secrets"] == {"webhook_code": "missing", "application_token": "missing"}
