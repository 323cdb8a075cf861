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


def test_settings_page_saves_the_lookup_and_imports_a_csv(app, ws):
    import re

    with TestClient(app) as ui:
        csrf = sign_in(ui, ws.admin_email)
        page = ui.get("/settings/orders")
        assert page.status_code == 200 and 'id="orders-settings-form"' in page.text
        assert 'id="settings-link-orders"' in ui.get("/settings").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        saved = ui.post("/settings/orders", data={
            "csrf_token": token, "lookup_url": "https://shop.example/api/orders/{number}", "auth_header": "X-API-KEY",
            "auth_value": "secret-1", "timeout_s": "1.5", "cache_s": "60", "mapping": '{"root": "order"}',
            "rotate_signing_secret": "on"})
        assert saved.status_code == 200, saved.text[-500:]
        assert 'id="orders-signing-secret"' in saved.text and "secret-1" not in saved.text
        bad = ui.post("/settings/orders", data={"csrf_token": token, "lookup_url": "ftp://x"})
        assert bad.status_code == 422 and 'id="orders-settings-error"' in bad.text
        csv = "number,customer_kind,customer_value,status\nS1,email,s1@example.com,paid\n"
        imported = ui.post("/settings/orders/import", data={"csrf_token": token},
                           files={"file": ("o.csv", csv.encode(), "text/csv")})
        assert imported.status_code == 200 and "1" in imported.text and 'id="orders-import-result"' in imported.text
        assert csrf
    with TestClient(app) as agent:
        sign_in(agent, ws.agent_email)
        assert agent.get("/settings/orders").status_code == 403
