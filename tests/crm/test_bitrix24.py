"""Bitrix24 against its stand-in: the incoming webhook's code, contacts by verified identity (paged by 50),
a contact created once (ORIGIN_ID looked up first), timeline comments once per solve, deals with stage names,
503 QUERY_LIMIT_EXCEEDED waited out, and the outgoing webhook's application_token."""

from __future__ import annotations

import time

from otklik.crm import service
from tests.crm.conftest import b24_secrets, connect, make_customer, solved_conversation


def test_wrong_code_is_visible_on_the_status_line(client, ws, b24):
    conn = connect(client, ws, "bitrix24", {"base_url": b24.base}, {"webhook_code": "wrong"})
    test = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin)
    assert test.status_code == 200 and test.json()["ok"] is False
    assert "Invalid request credentials" in test.json()["message"]
    assert "wrong" not in test.text
    shown = client.get(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin).json()
    assert shown["status"] == "error"
    client.patch(f"/api/v1/integrations/crm/connections/{conn['id']}", json={"secrets": b24_secrets(b24)},
                 headers=ws.admin)
    test = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin)
    assert test.status_code == 200 and "Мария" in test.json()["message"]


def test_rate_limit_503_is_waited_out(client, ws, b24):
    b24.inject.append((503, {"error": "QUERY_LIMIT_EXCEEDED", "error_description": "Too many requests"},
                       {"Retry-After": "1"}))
    conn = connect(client, ws, "bitrix24", {"base_url": b24.base}, b24_secrets(b24))
    started = time.monotonic()
    assert client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/test", headers=ws.admin).status_code == 200
    assert time.monotonic() - started >= 1.0


def test_comment_once_deals_and_the_outgoing_webhook(client, ws, b24):
    for i in range(60):  # more than a page of other contacts
        b24.add_contact(f"Клиент {i}", email=f"c{i}@example.com")
    anna = b24.add_contact("Анна", phone="8 (916) 123-45-67")
    deal = b24.add_deal(anna, "Диван угловой", "PREPARATION", "45000.00")
    conn = connect(client, ws, "bitrix24", {"base_url": b24.base}, b24_secrets(b24))
    conversation_id, customer_id = solved_conversation(client, ws)
    [comment] = b24.comments.values()
    assert comment["ENTITY_ID"] == str(anna) and f"/conversations/{conversation_id}" in comment["COMMENT"]
    assert service.write_conversation_note(conn["id"], conversation_id) == "already"
    assert service.refresh_customer_deals(conn["id"], customer_id) == 1
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["deals"][0]["status"] == "Подготовка" and view["deals"][0]["amount"] == "45000.00"
    token = conn["webhook_path"].rsplit("/", 1)[1]
    b24.deals[deal]["STAGE_ID"] = "WON"
    refused = client.post(f"/api/v1/integrations/crm/webhook/{token}", data=b24.event("ONCRMDEALUPDATE", deal, "bad"))
    assert refused.status_code == 403
    hook = client.post(f"/api/v1/integrations/crm/webhook/{token}", data=b24.event("ONCRMDEALUPDATE", deal))
    assert hook.status_code == 200 and hook.json()["changes"] == 1
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["deals"][0]["status"] == "Сделка успешна"
    client.post(f"/api/v1/integrations/crm/webhook/{token}", data=b24.event("ONCRMDEALDELETE", deal))
    [view] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
    assert view["deals"] == [] and view["contact_id"] == str(anna)


def test_create_is_idempotent_by_origin_id(client, ws, b24):
    conn = connect(client, ws, "bitrix24", {"base_url": b24.base, "create_contacts": True}, b24_secrets(b24))
    customer = make_customer(ws, "Пётр Сидоров", email="petr@example.com")
    connector = service.open_connector(service.Snapshot(conn["id"], ws.id, "bitrix24",
                                                        {"base_url": b24.base}, b24_secrets(b24), {}))
    first = connector.create_contact(name="Пётр Сидоров", phones=[], emails=["petr@example.com"], otklik_id=customer)
    link = service.link_customer(conn["id"], customer)  # found by its verified e-mail, not created again
    assert link is not None and link.external_id == first.id and link.matched_by == "email:petr@example.com"
    again = connector.create_contact(name="Пётр Сидоров", phones=[], emails=[], otklik_id=customer)
    assert again.id == first.id and len(b24.contacts) == 1
    assert b24.contacts[int(first.id)]["LAST_NAME"] == "Сидоров"


def test_same_phone_reads_the_russian_trunk_prefix():
    from otklik.crm.base import phone_variants, same_phone

    assert same_phone("+79161234567", "8 (916) 123-45-67") and same_phone("+79161234567", "+7 916 123 45 67")
    assert not same_phone("+79161234567", "+79161234568") and not same_phone("+79161234567", "")
    assert not same_phone("+19161234567", "89161234567")
    assert phone_variants("+79161234567") == ["+79161234567", "89161234567", "79161234567"]
