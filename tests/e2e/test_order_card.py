"""The order card in a real browser (issue 16): beside the conversation, the order the customer wrote about
with its status, tracking link and history; a click on its number opens it on the customer's page, where every
order of the customer is listed with its history."""

from __future__ import annotations

import httpx

from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot
from tests.orders.test_orders_api import ORDER


def test_order_card_beside_the_conversation_links_to_the_customers_orders(new_page, live_server):
    ws = make_workspace("e2eorders")
    for number, body in (("4512", ORDER), ("4512", {"status": "shipped"}), ("4400", {**ORDER, "status": "delivered"})):
        r = httpx.put(f"{live_server}/api/v1/orders/{number}", json=body, headers=ws.agent, timeout=10)
        assert r.status_code in (200, 201), r.text
    got = post_inbound(live_server, ws, kind="phone", identity="+79165551234", text="Где мой заказ 4512?")
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{got['conversation_id']}")
    card = page.locator("#orders-panel #order-card-4512")
    card.wait_for()
    assert card.get_attribute("data-status") == "shipped"
    text = card.inner_text()
    assert "№ 4512" in text and "передан в доставку" in text and "упомянут в обращении" in text
    assert card.locator("a.order-track").get_attribute("href") == "https://track.example/AB1"
    card.locator("details.order-history summary").click()
    history = card.locator("details.order-history li")
    assert history.count() == 2 and "передан в доставку" in history.nth(1).inner_text()
    screenshot(page, "orders-01-card-beside-conversation")
    card.locator("a.order-link").click()
    page.wait_for_url(f"**/customers/{got['customer_id']}?tab=orders#order-4512")
    row = page.locator("#customer-shop-orders #order-4512")
    row.wait_for()
    assert "передан в доставку" in row.inner_text()
    assert page.locator("#customer-shop-orders #order-4400").get_attribute("data-status") == "delivered"
    screenshot(page, "orders-02-customer-orders-tab")
