"""The «Визиты» block beside a conversation and the customer's signed pages, through HTTP as a browser sends it:
offer 3 slots, send them, book one; /book/<token> picks a slot, /booking/<token> moves, cancels and answers
«Всё ли удобно?»; a forged link is a 404; the agent's block needs a session and CSRF; another workspace's
conversation is a 404."""

from __future__ import annotations

import re

from sqlalchemy import select

from otklik.bookings import service
from otklik.bookings.models import Booking
from otklik.conversations.models import Message
from otklik.platform.db import session_scope
from tests.bookings._setup import make_shop
from tests.conftest import inbound, make_workspace
from tests.web._ui import Browser

LINK = re.compile(r"https?://[^\s]+/(book|booking)/([A-Za-z0-9._=-]+)")


def _last_text(conversation_id):
    with session_scope(write=False) as s:
        return s.scalars(select(Message.body_text).where(Message.conversation_id == conversation_id)
                         .order_by(Message.id.desc()).limit(1)).one()


def test_agent_offers_sends_and_books_from_the_conversation(app, client, ws, other_ws):
    shop = make_shop(ws)
    got = inbound(client, ws, identity="ui@example.com", text="Когда можете собрать шкаф?")
    cid = got["conversation_id"]
    agent = Browser(app, ws.agent_email)
    panel = agent.get(f"/ui/conversations/{cid}/bookings")
    assert panel.status_code == 200 and "Предложить 3 слота" in panel.text and "Сборка шкафа" in panel.text
    offered = agent.post(f"/ui/conversations/{cid}/bookings/offer", {"service_id": shop.assembly_id,
                                                                     "area": "Москва"})
    assert offered.status_code == 200, offered.text
    assert offered.text.count('class="booking-slot"') == 3
    sent = agent.post(f"/ui/conversations/{cid}/bookings/send-offer", {"service_id": shop.assembly_id,
                                                                       "area": "Москва"})
    assert sent.status_code == 200 and "отправлены клиенту" in sent.text
    text = _last_text(cid)
    assert text.startswith("Можем приехать (Сборка шкафа)") and text.count("\n— ") == 3
    assert LINK.search(text).group(1) == "book"
    start = re.findall(r'name="start" value="(\d+)"', offered.text)[0]
    booked = agent.post(f"/ui/conversations/{cid}/bookings", {
        "service_id": shop.assembly_id, "installer_id": shop.ivan_id, "start": start, "area": "Москва",
        "address": "ул. Мира, 5"})
    assert booked.status_code == 200 and 'data-status="booked"' in booked.text and "ул. Мира, 5" in booked.text
    assert "Записали вас" in _last_text(cid)
    again = agent.post(f"/ui/conversations/{cid}/bookings", {
        "service_id": shop.assembly_id, "installer_id": shop.ivan_id, "start": start, "area": "Москва"})
    assert again.status_code == 422 and "booked" in again.text
    bad = agent.post(f"/ui/conversations/{cid}/bookings/offer", {"service_id": "x", "area": "Москва"})
    assert bad.status_code == 422 and "service_id" in bad.text
    # mark it missed: the penalty line appears
    with session_scope(write=False) as s:
        bid = s.scalar(select(Booking.id).where(Booking.conversation_id == cid))
    missed = agent.post(f"/ui/bookings/{bid}/missed", {"conversation_id": cid})
    assert missed.status_code == 200 and "ЗоЗПП ст. 28 п. 5" in missed.text
    # CSRF and workspaces
    assert agent.post(f"/ui/conversations/{cid}/bookings/offer", {"service_id": shop.assembly_id},
                      csrf=False).status_code in (400, 403)
    stranger = Browser(app, other_ws.agent_email)
    assert stranger.get(f"/ui/conversations/{cid}/bookings").status_code == 404
    assert stranger.post(f"/ui/bookings/{bid}/cancel", {"conversation_id": cid}).status_code == 404


def test_the_customer_picks_moves_rates_and_cancels_by_the_links(app, client):
    ws = make_workspace("bookpub")
    shop = make_shop(ws)
    got = inbound(client, ws, identity="pub@example.com", text="Соберите шкаф")
    link = service.OfferLink(ws.id, got["customer_id"], got["conversation_id"], shop.assembly_id, "Москва")
    token = service.offer_token(link)
    visitor = Browser(app)  # no session
    page = visitor.get(f"/book/{token}")
    assert page.status_code == 200 and "Сборка шкафа" in page.text
    assert "script-src 'none'" in page.headers["content-security-policy"]
    starts = re.findall(r'name="start" value="(\d+)"', page.text)
    assert len(starts) > 10
    picked = visitor.post(f"/book/{token}", {"start": starts[0]}, csrf=False, htmx=False)
    assert picked.status_code == 303 and picked.headers["location"].startswith("/booking/")
    visit_url = picked.headers["location"]
    assert "Записали вас" in _last_text(got["conversation_id"])
    # the same time again from the offer link: taken
    for bad in ("99999999999", "-5", "x", "1" * 40):  # a year past 9999, not a number: named, never a 500
        r = visitor.post(f"/book/{token}", {"start": bad}, csrf=False, htmx=False)
        assert r.status_code == 422 and 'id="booking-error"' in r.text
    taken = visitor.post(f"/book/{token}", {"start": starts[0]}, csrf=False, htmx=False)
    assert taken.status_code == 409 and 'id="booking-taken"' in taken.text
    visit = visitor.get(visit_url)
    assert visit.status_code == 200 and 'data-status="booked"' in visit.text
    other_start = re.findall(r'name="start" value="(\d+)"', visit.text)[3]
    moved = visitor.post(f"{visit_url}/reschedule", {"start": other_start}, csrf=False, htmx=False)
    assert moved.status_code == 303
    assert "перенесён" in visitor.get(moved.headers["location"]).text
    with session_scope(write=False) as s:
        row = s.scalar(select(Booking).where(Booking.conversation_id == got["conversation_id"]))
        assert int(row.start_at.timestamp()) == int(other_start) and row.reschedules == 1
        bid = row.id
    # after the visit: «Всё ли удобно?» by one click, then a comment
    with session_scope() as s:
        row = s.get(Booking, bid)
        row.status = "done"
    rated = visitor.get(f"{visit_url}?score=4")
    assert rated.status_code == 200 and "Спасибо" in rated.text
    commented = visitor.post(f"{visit_url}/feedback", {"score": "5", "comment": "Всё отлично"}, csrf=False,
                             htmx=False)
    assert commented.status_code == 303
    with session_scope(write=False) as s:
        row = s.get(Booking, bid)
        assert row.feedback_score == 5 and row.feedback_comment == "Всё отлично"
    # a done visit cannot be cancelled; a forged link is a 404
    assert visitor.post(f"{visit_url}/cancel", csrf=False, htmx=False).status_code == 409
    assert visitor.get(visit_url[:-2] + "xx").status_code == 404
    assert visitor.get(f"/book/{token[:-2]}xx").status_code == 404


def test_the_customer_cancels_by_the_link(app, client):
    ws = make_workspace("bookcancel")
    shop = make_shop(ws)
    got = inbound(client, ws, identity="cancel@example.com", text="Соберите шкаф")
    token = service.offer_token(service.OfferLink(ws.id, got["customer_id"], None, shop.assembly_id, ""))
    visitor = Browser(app)
    starts = re.findall(r'name="start" value="(\d+)"', visitor.get(f"/book/{token}").text)
    visit_url = visitor.post(f"/book/{token}", {"start": starts[1]}, csrf=False, htmx=False).headers["location"]
    cancelled = visitor.post(f"{visit_url}/cancel", csrf=False, htmx=False)
    assert cancelled.status_code == 303
    page = visitor.get(cancelled.headers["location"])
    assert 'data-status="cancelled"' in page.text and "отменён" in page.text
