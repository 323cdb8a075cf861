"""RetailCRM against its stand-in: the API key, matching by verified identities only, creating a contact once,
the solved conversation's note once (also after a crash between the CRM's write and ours), orders with their
status names in the customer's cache, the change feed (history paging) and the trigger webhook, 429 honoured."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select

from otklik.crm import service
from otklik.crm.base import CrmAuthError, CrmRateLimited, VendorHttp
from otklik.crm.models import CrmLink, CrmNote
from otklik.crm.retailcrm import RetailCrm
from otklik.platform.db import session_scope
from tests.crm.conftest import connect, make_customer, solve, solved_conversation
from tests.crm.stand_ins import RetailCrmStandIn


def _connector(retail: RetailCrmStandIn, key: str = "retail-key") -> RetailCrm:
    return RetailCrm({"base_url": retail.base, "site": "shop"}, {"api_key": key})


def test_wrong_key_is_an_auth_error_with_the_vendors_words(retail):
    with pytest.raises(CrmAuthError, match="apiKey"):
        _connector(retail, "nope").test_connection()
    assert "shop" in _connector(retail).test_connection()


def test_finds_by_exact_phone_or_email_only(retail):
    anna = retail.add_customer(first="Анна", phone="+7 (916) 123-45-67")
    retail.add_customer(first="Иван", phone="+79161234500")
    crm = _connector(retail)
    found = crm.find_contact(phones=["+79161234567"], emails=[])
    assert found is not None and found.id == str(anna)
    assert crm.find_contact(phones=["+7916123"], emails=[]) is None  # a substring is no match
    assert crm.find_contact(phones=[], emails=["nobody@example.com"]) is None


def test_create_twice_resolves_to_the_same_customer_by_external_id(retail):
    crm = _connector(retail)
    first = crm.create_contact(name="Анна Петрова", phones=["+79161234567"], emails=[], otklik_id=7)
    second = crm.create_contact(name="Анна Петрова", phones=["+79161234567"], emails=[], otklik_id=7)
    assert first.id == second.id and len(retail.customers) == 1


def test_429_waits_for_retry_after_then_succeeds(retail):
    retail.inject.append((429, {"success": False, "errorMsg": "Too many requests"}, {"Retry-After": "1"}))
    started = time.monotonic()
    assert "shop" in _connector(retail).test_connection()
    assert time.monotonic() - started >= 1.0


def test_long_retry_after_goes_back_to_the_job_queue(retail):
    retail.inject.append((429, {"success": False}, {"Retry-After": "120"}))
    with pytest.raises(CrmRateLimited) as caught:
        _connector(retail).test_connection()
    assert caught.value.retry_after == 120


def test_retry_after_as_http_date():
    from email.utils import formatdate

    from otklik.crm.base import retry_after_seconds

    assert 1 <= retry_after_seconds(formatdate(time.time() + 3, usegmt=True)) <= 3
    assert retry_after_seconds("garbage") == 1.0
    assert VendorHttp.MAX_INLINE_WAIT >= 1


def test_solved_conversation_lands_once_in_the_customers_notes(client, ws, retail):
    contact = retail.add_customer(first="Анна", phone="+79161234567")
    order = retail.add_order(contact, "A-1001", "assembling", 2500)
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base, "site": "shop"}, {"api_key": "retail-key"})
    assert conn["secrets"] == {"api_key": "set"} and "retail-key" not in str(conn)
    conversation_id, customer_id = solved_conversation(client, ws)
    notes = list(retail.notes.values())
    assert len(notes) == 1 and notes[0]["customer"]["id"] == contact
    assert "Где мой заказ 12345?" in notes[0]["text"] and f"/conversations/{conversation_id}" in notes[0]["text"]
    assert "Заказ передан в доставку" in notes[0]["text"]
    # a retry of the same job (a worker that died after the write) adds nothing
    assert service.write_conversation_note(conn["id"], conversation_id) == "already"
    with session_scope() as session:
        session.execute(CrmNote.__table__.update().values(status="pending", external_id=None))
    assert service.write_conversation_note(conn["id"], conversation_id) == "done"
    assert len(retail.notes) == 1  # found by its key in the CRM, not written again
    # the customer's orders: cached with the status name, read without a vendor call
    assert service.refresh_customer_deals(conn["id"], customer_id) == 1
    response = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent)
    assert response.status_code == 200
    [view] = response.json()
    assert view["contact_id"] == str(contact) and view["matched_by"] == "phone:+79161234567"
    assert view["deals"][0]["number"] == "A-1001" and view["deals"][0]["status"] == "Комплектуется"
    # the order changes in RetailCRM; the trigger webhook nudges, the history feed is read page by page
    retail.set_status(order, "complete")
    token = conn["webhook_path"].rsplit("/", 1)[1]
    hook = client.post(f"/api/v1/integrations/crm/webhook/{token}", data={"order_id": str(order),
                                                                           "customer_id": str(contact)})
    assert hook.status_code == 200, hook.text
    view = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()[0]
    assert view["deals"][0]["status"] == "Выполнен"


def test_a_claimed_phone_never_matches(client, ws, retail):
    retail.add_customer(first="Анна", phone="+79161234567")
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base, "create_contacts": True},
                   {"api_key": "retail-key"})
    customer = make_customer(ws, "Самозванец", phone="+79161234567", verified=False)
    assert service.link_customer(conn["id"], customer) is None
    assert len(retail.customers) == 1 and not retail.calls("/api/v5/customers/create")


def test_a_new_customer_gets_a_contact_when_the_connection_creates_them(client, ws, retail):
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base, "create_contacts": True},
                   {"api_key": "retail-key"})
    customer = make_customer(ws, "Пётр Сидоров", email="petr@example.com")
    link = service.link_customer(conn["id"], customer)
    assert link is not None and link.matched_by == "created"
    created = retail.customers[int(link.external_id)]
    assert created["email"] == "petr@example.com" and created["externalId"] == f"otklik-{customer}"
    assert service.link_customer(conn["id"], customer).external_id == link.external_id  # stored: no second call
    assert len(retail.customers) == 1


def test_failure_is_visible_and_retry_writes_it(client, ws, retail):
    retail.add_customer(first="Анна", phone="+79161234567")
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    conversation_id, _ = solved_conversation(client, ws, before_solve=lambda *_: retail.inject.append(
        (500, {"success": False, "errorMsg": "Internal error"}, {})))
    state = client.get(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin).json()
    assert state["status"] == "error" and "500" in state["last_error"] and state["notes_failed"] == 1
    assert not retail.notes
    retry = client.post(f"/api/v1/integrations/crm/connections/{conn['id']}/retry", headers=ws.admin)
    assert retry.status_code == 200 and retry.json()["message"].startswith("1")
    state = client.get(f"/api/v1/integrations/crm/connections/{conn['id']}", headers=ws.admin).json()
    assert state["status"] == "ok" and state["notes_failed"] == 0 and state["notes_done"] == 1
    assert len(retail.notes) == 1
    # re-opened and solved again: a second note for the second solve, still one per solve
    client.patch(f"/api/v1/conversations/{conversation_id}", json={"status": "open"}, headers=ws.agent)
    time.sleep(1.01)  # the key holds the solve time in seconds
    solve(client, ws, conversation_id)
    assert len(retail.notes) == 2
    with session_scope() as session:
        assert session.scalar(select(CrmLink.matched_by)) is not None


def test_a_new_conversation_shows_the_crm_orders_before_it_is_solved(client, ws, retail):
    contact = retail.add_customer(first="Анна", phone="+79161234567")
    retail.add_order(contact, "A-5", "new", 100)
    connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    seen = {}

    def look(conversation_id: int, customer_id: int) -> None:
        seen["view"] = client.get(f"/api/v1/integrations/crm/customers/{customer_id}", headers=ws.agent).json()
        seen["notes"] = len(retail.notes)

    solved_conversation(client, ws, before_solve=look)
    [view] = seen["view"]
    assert view["contact_id"] == str(contact) and view["deals"][0]["number"] == "A-5" and seen["notes"] == 0
    assert len(retail.notes) == 1


def test_the_assistants_hand_off_summary_is_the_note(client, ws, retail):
    from otklik.conversations.models import Message

    retail.add_customer(first="Анна", phone="+79161234567")
    connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})

    def handed_off(conversation_id: int, customer_id: int) -> None:
        with session_scope() as session:
            session.add(Message(workspace_id=ws.id, conversation_id=conversation_id, channel="whatsapp",
                                direction="outbound", author_kind="assistant", is_internal=True,
                                body_text="Итог: клиент ждёт заказ 12345, просит перезвонить.", delivery_status="sent",
                                meta={"assistant": {"summary": True}}))

    solved_conversation(client, ws, before_solve=handed_off)
    [note] = retail.notes.values()
    assert "Итог: клиент ждёт заказ 12345" in note["text"] and "Клиент: Где мой заказ" not in note["text"]
