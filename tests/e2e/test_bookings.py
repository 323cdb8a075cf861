"""Installation booking in a real browser (issue 16): the agent offers 3 slots beside the conversation, sends
them, books one; the customer opens the link from the chat (no sign-in), moves the visit to another time and
picks a slot on the offer page."""

from __future__ import annotations

import re

import httpx
from sqlalchemy import select

from otklik.bookings.models import Booking
from otklik.platform.db import session_scope
from tests.bookings._setup import make_shop
from tests.conftest import make_workspace
from tests.e2e._ui import post_inbound, sign_in
from tests.e2e.conftest import screenshot

PATH = re.compile(r"https?://[^\s/]+(/(?:book|booking)/[A-Za-z0-9._=-]+)")


def _messages(live_server, ws, cid):
    r = httpx.get(f"{live_server}/api/v1/conversations/{cid}/messages", headers=ws.agent, timeout=10)
    body = r.json()
    items = body.get("items", body) if isinstance(body, dict) else body
    return [m.get("body_text") or m.get("text") or "" for m in items]


def test_booking_from_the_conversation_and_on_the_public_slot_page(new_page, live_server):
    ws = make_workspace("e2ebook")
    shop = make_shop(ws)
    got = post_inbound(live_server, ws, identity="shkaf@example.com", text="Когда можете собрать шкаф?")
    cid = got["conversation_id"]
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{cid}")
    panel = page.locator("#bookings-panel #bookings")
    panel.wait_for()
    page.select_option("#booking-service", str(shop.assembly_id))
    page.fill("#booking-area", "Москва")
    page.fill("#booking-address", "ул. Садовая, 3")
    page.click("#booking-offer")
    slots = page.locator("#booking-offered li.booking-slot")
    slots.first.wait_for()
    assert slots.count() == 3
    screenshot(page, "bookings-01-three-slots")
    page.click("#booking-send-offer")
    page.locator("#booking-note").wait_for()
    offer = next(t for t in _messages(live_server, ws, cid) if t.startswith("Можем приехать"))
    offer_path = PATH.search(offer).group(1)
    assert offer_path.startswith("/book/")
    # book the first offered slot from the panel
    page.click("#booking-offer")
    page.locator("#booking-offered li.booking-slot").first.wait_for()
    page.click("#booking-book-1")
    card = page.locator("#bookings .booking[data-status='booked']")
    card.wait_for()
    assert "Сборка шкафа" in card.inner_text() and "ул. Садовая, 3" in card.inner_text()
    screenshot(page, "bookings-02-booked")
    confirmation = next(t for t in _messages(live_server, ws, cid) if t.startswith("Записали вас"))
    visit_path = PATH.search(confirmation).group(1)

    # the customer, no sign-in: moves the visit on its page
    customer = new_page()
    customer.goto(visit_path)
    assert customer.locator("#booking-state").get_attribute("data-status") == "booked"
    before = customer.locator("#booking-when").inner_text()
    customer.locator("#booking-move summary").click()
    customer.locator("form.booking-day button.slot").nth(2).click()
    customer.locator("#booking-changed").wait_for()
    assert customer.locator("#booking-when").inner_text() != before
    screenshot(customer, "bookings-03-moved-by-the-customer")
    # and picks another visit on the offer page from the chat
    customer.goto(offer_path)
    customer.locator("form.booking-day button.slot").first.wait_for()
    screenshot(customer, "bookings-04-public-slot-page")
    customer.locator("form.booking-day button.slot").nth(5).click()
    customer.wait_for_url("**/booking/**")
    assert customer.locator("#booking-state").get_attribute("data-status") == "booked"
    with session_scope(write=False) as s:
        statuses = s.scalars(select(Booking.status).where(Booking.customer_id == got["customer_id"])).all()
    assert sorted(statuses) == ["booked", "booked"]
