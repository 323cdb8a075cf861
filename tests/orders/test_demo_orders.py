"""The demo shop has orders for its customers, and the widget answers «где мой заказ 4512?» for the demo visitor
whose order it is (signed in on the shop's site), and asks anyone else for the phone on the order."""

from __future__ import annotations

import json
import re
import uuid

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from otklik.demo import EMAIL, PASSWORD, SLUG, seed_demo
from otklik.orders.demo_seed import DEMO_ORDER, DEMO_VISITOR
from otklik.orders.models import Order
from otklik.platform.db import session_scope
from tests.web.a2_support import sign_in


def _ask(client, key: str, text: str, identity: dict | None = None) -> list[str]:
    body = {"key": key, "language": "ru", **({"identity": identity} if identity else {})}
    visitor = client.post("/api/v1/widget/session", json=body)
    assert visitor.status_code == 200, visitor.text
    token = visitor.json()["token"]
    if identity:
        assert visitor.json()["verified"] is True
    sent = client.post("/api/v1/widget/messages", headers={"X-Otklik-Visitor": token},
                       json={"text": text, "client_id": uuid.uuid4().hex})
    assert sent.status_code == 201, sent.text
    history = client.get("/api/v1/widget/messages", headers={"X-Otklik-Visitor": token}).json()["messages"]
    return [m.get("text") or m.get("body_text") or "" for m in history]


def test_the_demo_visitor_gets_order_4512_and_a_stranger_is_asked_for_the_phone(app, client):
    info = seed_demo()
    headers = {"Authorization": f"Bearer {info['token']}"}
    order = client.get(f"/api/v1/orders/{DEMO_ORDER}", headers=headers).json()
    assert order["status"] == "shipped" and order["delivery"]["tracking_url"]
    with session_scope(write=False) as s:
        from otklik.accounts.models import Workspace

        ws_id = s.scalar(select(Workspace.id).where(Workspace.slug == SLUG))
        count = s.scalar(select(func.count()).select_from(Order).where(Order.workspace_id == ws_id))
        owners = s.scalar(select(func.count(func.distinct(Order.customer_id))).where(Order.workspace_id == ws_id))
    assert count >= 60 and owners >= 30
    key = info["widget_key"]
    # the shop page signs the visitor in for a signed-in agent previewing it; nobody else gets a claim
    assert "otklikSettings" not in client.get(f"/widget/demo?key={key}&as={DEMO_VISITOR}").text
    with TestClient(app) as agent:
        sign_in(agent, EMAIL, PASSWORD)
        page = agent.get(f"/widget/demo?key={key}&as={DEMO_VISITOR}").text
    claim = json.loads(re.search(r"window\.otklikSettings = (\{.*?\});</script>", page).group(1))["user"]
    assert claim["user_id"] == DEMO_VISITOR and len(claim["user_hash"]) == 64
    texts = _ask(client, key, "где мой заказ 4512?", identity=claim)
    answer = texts[-1]
    assert "Заказ № 4512 передан в доставку" in answer and order["delivery"]["tracking_url"] in answer, texts
    stranger = _ask(client, key, "где мой заказ 4512?")
    assert "телефон из заказа" in stranger[-1] and order["delivery"]["tracking_url"] not in " ".join(stranger)
