"""The agent sees the customer's orders (status, history, tracking) on the customer page and the order the
conversation mentions beside it, its number linking to the order on the customer's page."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import inbound
from tests.orders.test_orders_api import ORDER, put
from tests.web.a2_support import sign_in


def test_customer_page_and_conversation_show_the_orders(app, client, ws):
    put(client, ws, "4512", ORDER)
    put(client, ws, "4512", {"status": "shipped"})
    put(client, ws, "4513", {**ORDER, "status": "delivered"})
    got = inbound(client, ws, kind="phone", identity="+79165551234", text="Где заказ 4513? И что с заказом 9999?")
    with TestClient(app) as ui:
        sign_in(ui, ws.agent_email)
        page = ui.get(f"/customers/{got['customer_id']}?tab=orders")
        assert page.status_code == 200
        html = page.text
        assert 'id="order-4512"' in html and "передан в доставку" in html and "История статусов" in html
        assert "https://track.example/AB1" in html and 'id="order-4513"' in html
        cards = ui.get(f"/ui/conversations/{got['conversation_id']}/orders", headers={"HX-Request": "true"})
        assert cards.status_code == 200
        text = cards.text
        # the mentioned order first, then the customer's open one; an unknown number said so
        assert text.index('id="order-card-4513"') < text.index('id="order-card-4512"')
        assert f'href="/customers/{got["customer_id"]}?tab=orders#order-4513"' in text
        assert 'data-order="9999"' in text and "нет среди заказов магазина" in text
        conversation = ui.get(f"/conversations/{got['conversation_id']}").text
        assert f'hx-get="/ui/conversations/{got["conversation_id"]}/orders"' in conversation
        other = ui.get("/ui/conversations/999999999/orders", headers={"HX-Request": "true"})
        assert other.status_code == 404
