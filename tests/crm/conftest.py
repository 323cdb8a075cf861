"""Fixtures of the CRM tests: the vendors' stand-ins, customers with verified (or claimed) identities, a solved
conversation, and a connection made through the admin API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from otklik.conversations import service as conversations
from otklik.customers import service as customers
from otklik.platform.db import session_scope
from tests.conftest import WS
from tests.crm.stand_ins import AmoCrmStandIn, Bitrix24StandIn, RetailCrmStandIn


@pytest.fixture
def retail() -> Iterator[RetailCrmStandIn]:
    stand_in = RetailCrmStandIn()
    yield stand_in
    stand_in.close()


def make_customer(ws: WS, name: str, *, phone: str | None = None, email: str | None = None,
                  verified: bool = True) -> int:
    idents = []
    if phone:
        idents.append(customers.IdentityInput("phone", phone, verified=verified))
    if email:
        idents.append(customers.IdentityInput("email", email, verified=verified))
    with session_scope() as session:
        return customers.create_customer(session, ws.actor(), name=name, identities=idents).id


def solved_conversation(client: Any, ws: WS, *, phone: str = "+79161234567", text: str = "Где мой заказ 12345?",
                        reply: str = "Заказ передан в доставку, будет завтра.",
                        before_solve: Any = None) -> tuple[int, int]:
    """A WhatsApp conversation (the phone is verified by WhatsApp), answered and solved through the API."""
    with session_scope() as session:
        received = conversations.receive(session, ws.id, conversations.InboundMessage(
            channel="whatsapp", identity_kind="whatsapp", identity_value=phone, text=text, customer_name="Анна",
            identity_verified=True))
        conversation_id, customer_id = received.conversation.id, received.conversation.customer_id
    response = client.post(f"/api/v1/conversations/{conversation_id}/messages", json={"text": reply},
                           headers=ws.agent)
    assert response.status_code in (200, 201), response.text
    if before_solve is not None:
        before_solve(conversation_id, customer_id)
    solve(client, ws, conversation_id)
    return conversation_id, customer_id


def solve(client: Any, ws: WS, conversation_id: int) -> None:
    response = client.patch(f"/api/v1/conversations/{conversation_id}", json={"status": "solved"}, headers=ws.agent)
    assert response.status_code == 200, response.text


def connect(client: Any, ws: WS, kind: str, config: dict[str, Any], secrets: dict[str, str]) -> dict[str, Any]:
    response = client.post("/api/v1/integrations/crm/connections",
                           json={"kind": kind, "config": config, "secrets": secrets}, headers=ws.admin)
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
def amo() -> Iterator[AmoCrmStandIn]:
    stand_in = AmoCrmStandIn()
    yield stand_in
    stand_in.close()


def amo_config(amo: AmoCrmStandIn, **extra: Any) -> dict[str, Any]:
    return {"base_url": amo.base, "client_id": amo.client_id, "redirect_uri": amo.redirect_uri, **extra}


@pytest.fixture
def b24() -> Iterator[Bitrix24StandIn]:
    stand_in = Bitrix24StandIn()
    yield stand_in
    stand_in.close()


def b24_secrets(b24: Bitrix24StandIn) -> dict[str, str]:
    return {"webhook_code": b24.code, "application_token": b24.application_token}
