"""Proactive messages through the service and the real outbox: order triggers, opt-out, consent, the frequency
cap, quiet hours in the customer's zone, the channels' first-contact rules, campaigns claimed once and resumed,
replenishment from the customer's own interval, carts, and the hand-computed figures."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation, Message, OutboxItem
from otklik.customers.models import Customer
from otklik.platform.db import session_scope, utcnow
from otklik.proactive import jobs, service
from otklik.proactive.models import ProactiveSend

NO_QUIET = {"quiet_start": 0, "quiet_end": 0}


def settings(client, ws, **body):
    r = client.put("/api/v1/proactive/settings", json={**NO_QUIET, **body}, headers=ws.admin)
    assert r.status_code == 200, r.text


def enable(client, ws, kind, **body):
    r = client.put(f"/api/v1/proactive/triggers/{kind}", json={"enabled": True, **body}, headers=ws.admin)
    assert r.status_code == 200, r.text


def receive(ws, *, channel="api", kind="email", value="ivan@example.com", text="Здравствуйте", name="Иван Петров"):
    with session_scope() as db:
        got = conversations.receive(db, ws.id, conversations.InboundMessage(
            channel=channel, identity_kind=kind, identity_value=value, text=text, customer_name=name))
        return got.conversation.customer_id, got.conversation.id


def consent(ws, customer_id):
    with session_scope() as db:
        service.record_consent(db, ws.id, customer_id, "consent_given", source="api", evidence="checkbox at checkout")


def sends(ws, **where):
    with session_scope(write=False) as db:
        return [service.send_out(s) for s in service.list_sends(db, ws.id, **where)]


def put_order(client, ws, number, email="ivan@example.com", **extra):
    body = {"customer": {"kind": "email", "value": email}, "status": "paid",
            "items": [{"name": "Корм", "sku": "FOOD-1", "quantity": 1, "price": 990}], "total": 990,
            "delivery": {"tracking_url": "https://track.example/1", "promised_on": "2026-12-20"}, **extra}
    r = client.put(f"/api/v1/orders/{number}", json=body, headers=ws.agent)
    assert r.status_code in (200, 201), r.text
    return r.json()


def test_order_delivered_writes_once_in_the_customers_conversation_without_marketing_consent(client, ws):
    settings(client, ws)
    enable(client, ws, "order_delivered")
    customer_id, conversation_id = receive(ws)
    put_order(client, ws, "4512")
    assert sends(ws) == []
    put_order(client, ws, "4512", status="delivered")
    put_order(client, ws, "4512", status="delivered")  # a repeat changes nothing, and writes nobody twice
    rows = sends(ws)
    assert len(rows) == 1 and rows[0]["status"] == "queued" and rows[0]["trigger"] == "order_delivered"
    assert rows[0]["customer_id"] == customer_id and rows[0]["conversation_id"] == conversation_id
    assert rows[0]["marketing"] is False  # a service message: no consent needed, and it went
    with session_scope(write=False) as db:
        message = db.get(Message, rows[0]["message_id"])
        assert "4512" in message.body_text and message.body_text.startswith("Иван,")
        assert "стоп" not in message.body_text  # no opt-out footer on a service message
        assert db.scalar(select(func.count()).select_from(OutboxItem).where(
            OutboxItem.message_id == message.id)) == 1


def test_a_switched_off_trigger_claims_nothing(client, ws):
    settings(client, ws)
    receive(ws)
    put_order(client, ws, "1", status="delivered")
    assert sends(ws) == []


def test_stop_reply_opts_out_of_everything_service_messages_included(client, ws):
    settings(client, ws)
    enable(client, ws, "order_returned")
    customer_id, _ = receive(ws)
    receive(ws, text="Стоп")
    with session_scope(write=False) as db:
        assert service.contact_of(db, ws.id, customer_id).opted_out
        history = service.consent_history(db, ws.id, customer_id)
        assert history[0].action == "opted_out" and history[0].source == "reply" and "Стоп" in history[0].evidence
    put_order(client, ws, "77", status="returned")
    assert [(s["status"], s["reason"]) for s in sends(ws)] == [("skipped", "opted_out")]


def test_stop_inside_a_sentence_is_not_an_opt_out():
    assert service.is_stop_reply("СТОП!") and service.is_stop_reply("отписаться") and service.is_stop_reply("stop please")
    assert not service.is_stop_reply("стоп, а где мой заказ?") and not service.is_stop_reply("")


def _campaign(client, ws, **body):
    r = client.post("/api/v1/proactive/campaigns", json={"name": "Акция", "text_ru": "{{name}}, скидка 10 %",
                                                         **body}, headers=ws.admin)
    assert r.status_code == 201, r.text
    campaign = r.json()
    assert client.post(f"/api/v1/proactive/campaigns/{campaign['id']}/schedule", headers=ws.admin).status_code == 200
    with session_scope() as db:
        assert campaign["id"] in service.start_due_campaigns(db)
    return campaign["id"]


def test_marketing_needs_consent_and_the_frequency_cap_holds(client, ws):
    settings(client, ws, cap_count=1, cap_days=7)
    agreed, _ = receive(ws, value="a@example.com")
    receive(ws, value="b@example.com")
    consent(ws, agreed)
    first = _campaign(client, ws)
    assert jobs.run_campaign_now(first)["done"]
    got = {s["customer_id"]: (s["status"], s["reason"]) for s in sends(ws, campaign_id=first)}
    assert got[agreed] == ("queued", None)
    assert sorted(got.values()) == [("queued", None), ("skipped", "no_consent")]
    with session_scope(write=False) as db:
        text = db.get(Message, sends(ws, campaign_id=first, status="queued")[0]["message_id"]).body_text
    assert "стоп" in text  # marketing carries the way out
    second = _campaign(client, ws)
    jobs.run_campaign_now(second)
    assert {(s["customer_id"], s["reason"]) for s in sends(ws, campaign_id=second)} >= {(agreed, "frequency_cap")}
    # cap raised: the same customer may get it
    settings(client, ws, cap_count=2, cap_days=7)
    third = _campaign(client, ws)
    jobs.run_campaign_now(third)
    assert any(s["customer_id"] == agreed and s["status"] == "queued" for s in sends(ws, campaign_id=third))


def test_quiet_hours_use_the_customers_zone_then_the_workspaces():
    now = dt.datetime(2026, 12, 7, 20, 30, tzinfo=dt.UTC)  # 23:30 in Moscow, 06:30 next day in Vladivostok
    vladivostok = service.quiet_until(now, ZoneInfo("Asia/Vladivostok"), 21, 9)
    assert vladivostok == dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)  # 09:00 on the 8th there
    moscow = service.quiet_until(now, ZoneInfo("Europe/Moscow"), 21, 9)
    assert moscow == dt.datetime(2026, 12, 8, 6, 0, tzinfo=dt.UTC)
    assert service.quiet_until(dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.UTC), ZoneInfo("Europe/Moscow"), 21, 9) is None
    assert service.quiet_until(now, ZoneInfo("Europe/Moscow"), 0, 0) is None
    customer = Customer(timezone=None, attributes={"tz": "Asia/Vladivostok"})
    assert service.zone_of(customer, "Europe/Moscow") == ZoneInfo("Asia/Vladivostok")
    assert service.zone_of(Customer(timezone="Nowhere/Land", attributes={}), "Europe/Moscow") == ZoneInfo("Europe/Moscow")


def test_a_send_in_quiet_hours_waits_and_is_decided_again(client, ws):
    settings(client, ws, quiet_start=21, quiet_end=9)
    enable(client, ws, "order_delivered")
    customer_id, _ = receive(ws)
    with session_scope() as db:
        db.get(Customer, customer_id).attributes = {"tz": "Asia/Vladivostok"}
    order = put_order(client, ws, "9")  # not delivered yet
    with session_scope() as db:
        from otklik.orders.models import Order

        order_id = db.scalar(select(Order.id).where(Order.workspace_id == ws.id, Order.number == "9"))
        ids = service.claim(db, [{"workspace_id": ws.id, "customer_id": customer_id, "trigger": "order_delivered",
                                  "dedup_key": f"order_delivered:{order_id}", "context": {"order_number": "9"}}])
        night = dt.datetime(2026, 12, 7, 20, 30, tzinfo=dt.UTC)  # 06:30 in Vladivostok
        send = db.get(ProactiveSend, ids[0])
        assert service.decide(db, ws.id, [send], now=night) == {"queued": 0, "pending": 1, "skipped": 0}
        assert send.reason == "quiet_hours" and send.send_at == dt.datetime(2026, 12, 7, 23, 0, tzinfo=dt.UTC)
        morning = dt.datetime(2026, 12, 7, 23, 5, tzinfo=dt.UTC)
        assert service.decide(db, ws.id, [send], now=morning)["queued"] == 1
    assert order["number"] == "9"


def test_channels_first_contact_rules(client, ws):
    settings(client, ws)
    enable(client, ws, "order_delivered")
    admin = ws.actor()
    with session_scope() as db:
        # Telegram: a conversation an agent opened, the customer never wrote to the bot
        tg = Customer(workspace_id=ws.id, name="Т", attributes={})
        widget = Customer(workspace_id=ws.id, name="W", attributes={})
        db.add_all([tg, widget])
        db.flush()
        conversations.create_conversation(db, admin, customer_id=tg.id, channel="telegram")
        conversations.create_conversation(db, admin, customer_id=widget.id, channel="widget")
        ids = service.claim(db, [{"workspace_id": ws.id, "customer_id": c.id, "trigger": "order_delivered",
                                  "dedup_key": "order_delivered:x"} for c in (tg, widget)])
        rows = list(db.scalars(select(ProactiveSend).where(ProactiveSend.id.in_(ids)).order_by(ProactiveSend.id)))
        service.decide(db, ws.id, rows)
        assert [(r.status, r.reason) for r in rows] == [("skipped", "customer_not_written"),
                                                        ("skipped", "channel_cannot_start")]
    # once the customer wrote to the bot, the bot may write first
    tg_customer, tg_conversation = receive(ws, channel="telegram", kind="telegram", value="5550001", text="привет")
    put_order(client, ws, "T1", email="t@example.com")
    with session_scope() as db:
        ids = service.claim(db, [{"workspace_id": ws.id, "customer_id": tg_customer, "trigger": "order_delivered",
                                  "dedup_key": "order_delivered:y"}])
        send = db.get(ProactiveSend, ids[0])
        service.decide(db, ws.id, [send])
        assert (send.status, send.channel, send.conversation_id) == ("queued", "telegram", tg_conversation)


def test_whatsapp_outside_the_window_needs_the_template(client, ws):
    settings(client, ws)
    enable(client, ws, "order_delayed")
    customer_id, conversation_id = receive(ws, channel="whatsapp", kind="whatsapp", value="+79165550000", text="Добрый день")
    with session_scope() as db:
        for message in db.scalars(select(Message).where(Message.conversation_id == conversation_id)):
            message.created_at = utcnow() - dt.timedelta(hours=30)  # the 24-hour window has closed
        ids = service.claim(db, [{"workspace_id": ws.id, "customer_id": customer_id, "trigger": "order_delayed",
                                  "dedup_key": "order_delayed:w1"}])
        send = db.get(ProactiveSend, ids[0])
        service.decide(db, ws.id, [send])
        assert (send.status, send.reason) == ("skipped", "whatsapp_window_closed")
    enable(client, ws, "order_delayed", whatsapp_template="order_delay_v1")
    with session_scope() as db:
        ids = service.claim(db, [{"workspace_id": ws.id, "customer_id": customer_id, "trigger": "order_delayed",
                                  "dedup_key": "order_delayed:w2"}])
        send = db.get(ProactiveSend, ids[0])
        service.decide(db, ws.id, [send])
        assert send.status == "queued"
        assert db.get(Message, send.message_id).meta["whatsapp_template"]["name"] == "order_delay_v1"


def test_late_orders_are_found_by_the_sweep_once(client, ws):
    settings(client, ws)
    enable(client, ws, "order_delayed")
    receive(ws)
    put_order(client, ws, "L1", status="shipped", delivery={"promised_on": "2026-12-01"})
    put_order(client, ws, "L2", status="delivered", delivery={"promised_on": "2026-12-01"})  # closed: not late
    with session_scope() as db:
        assert service.fire_delayed(db, today=dt.date(2026, 12, 7)) == 1
    with session_scope() as db:
        assert service.fire_delayed(db, today=dt.date(2026, 12, 7)) == 0
    rows = sends(ws, trigger="order_delayed")
    assert len(rows) == 1 and rows[0]["status"] == "queued"


def test_a_campaign_claims_each_customer_once_at_the_channel_rate_and_resumes(client, ws):
    settings(client, ws, cap_count=5)
    customers = [receive(ws, value=f"c{i}@example.com")[0] for i in range(12)]
    for c in customers:
        consent(ws, c)
    campaign_id = _campaign(client, ws, rate_per_second=2)
    with session_scope() as db:  # a worker does one batch, then dies
        step = service.run_campaign_batch(db, campaign_id, batch=5)
        assert step["claimed"] == 5 and not step["done"]
    with session_scope() as db:  # a second runner re-walks from the start: claims nothing twice
        from otklik.proactive.models import ProactiveCampaign

        db.get(ProactiveCampaign, campaign_id).cursor = 0
    assert jobs.run_campaign_now(campaign_id, batch=5)["done"]
    rows = sends(ws, campaign_id=campaign_id, limit=500)
    assert sorted(r["customer_id"] for r in rows) == sorted(customers)
    assert all(r["status"] == "queued" for r in rows)
    with session_scope(write=False) as db:
        per_customer = db.execute(select(Conversation.customer_id, func.count(Message.id)).join(
            Message, Message.conversation_id == Conversation.id).where(
            Conversation.workspace_id == ws.id, Message.direction == "outbound").group_by(Conversation.customer_id)).all()
        assert all(n == 1 for _, n in per_customer) and len(per_customer) == 12
        due = sorted(db.scalars(select(OutboxItem.next_attempt_at).where(OutboxItem.workspace_id == ws.id)))
    assert (due[-1] - due[0]).total_seconds() >= 11 / 2 - 0.01  # 12 messages at 2 a second


def test_campaign_segment_filters_attributes_and_channels(client, ws):
    settings(client, ws, cap_count=5)
    gold, _ = receive(ws, value="gold@example.com")
    plain, _ = receive(ws, value="plain@example.com")
    with session_scope() as db:
        db.get(Customer, gold).attributes = {"loyalty_tier": "Gold", "tags": ["vip"]}
    for c in (gold, plain):
        consent(ws, c)
    campaign_id = _campaign(client, ws, segment={"attributes": {"loyalty_tier": "gold"}, "channels": ["api"]})
    jobs.run_campaign_now(campaign_id)
    assert [s["customer_id"] for s in sends(ws, campaign_id=campaign_id)] == [gold]


def test_replenishment_interval_is_the_median_gap_of_the_customers_own_purchases():
    t0 = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    orders = [(1, 7, t0, [{"sku": "FOOD", "name": "Корм"}]),
              (2, 7, t0 + dt.timedelta(days=30), [{"sku": "FOOD", "name": "Корм"}]),
              (3, 7, t0 + dt.timedelta(days=62), [{"sku": "FOOD", "name": "Корм"}, {"sku": "TOY", "name": "Мяч"}]),
              (4, 8, t0, [{"sku": "FOOD", "name": "Корм"}])]
    found = service.purchase_intervals(orders)
    assert len(found) == 1  # one purchase of TOY, customer 8 bought once: no interval
    r = found[0]
    assert (r.customer_id, r.sku, r.interval_days, r.last_order_id) == (7, "FOOD", 31.0, 3)
    assert r.due_on == dt.date(2026, 11, 2) + dt.timedelta(days=31)


def test_replenishment_writes_a_few_days_before_the_next_purchase_once(client, ws):
    settings(client, ws)
    enable(client, ws, "replenishment", params={"days_before": 3})
    customer_id, _ = receive(ws)
    consent(ws, customer_id)
    for n, day in (("R1", "2026-09-01"), ("R2", "2026-10-01"), ("R3", "2026-10-31")):
        put_order(client, ws, n, status="delivered", placed_at=f"{day}T10:00:00+03:00")
    with session_scope() as db:
        assert service.fire_replenishment(db, today=dt.date(2026, 11, 25)) == 0  # due 30 Nov: too early
        assert service.fire_replenishment(db, today=dt.date(2026, 11, 28)) == 1
    with session_scope() as db:
        assert service.fire_replenishment(db, today=dt.date(2026, 11, 29)) == 0
    rows = sends(ws, trigger="replenishment")
    assert rows[0]["status"] == "queued"
    with session_scope(write=False) as db:
        assert "Корм" in db.get(Message, rows[0]["message_id"]).body_text


def test_abandoned_cart_waits_its_delay_and_is_dropped_when_the_customer_ordered(client, ws):
    settings(client, ws, cap_count=5)
    enable(client, ws, "cart_abandoned", params={"delay_minutes": 30})
    customer_id, _ = receive(ws)
    consent(ws, customer_id)
    cart = {"cart_id": "C-1", "customer": {"kind": "email", "value": "ivan@example.com"},
            "items": [{"name": "Чайник", "sku": "K-1", "quantity": 1, "price": 2490}],
            "cart_url": "https://shop.example/cart/C-1"}
    r = client.post("/api/v1/proactive/carts", json=cart, headers=ws.agent)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["customer_id"] == customer_id
    again = client.post("/api/v1/proactive/carts", json=cart, headers=ws.agent)
    assert again.json()["id"] == r.json()["id"]  # the same cart: the same send
    old = {**cart, "cart_id": "C-2", "abandoned_at": (utcnow() - dt.timedelta(hours=2)).isoformat()}
    assert client.post("/api/v1/proactive/carts", json=old, headers=ws.agent).json()["status"] == "queued"
    with session_scope() as db:
        db.get(ProactiveSend, r.json()["id"]).send_at = utcnow() - dt.timedelta(minutes=1)
    put_order(client, ws, "after-cart", placed_at=utcnow().isoformat())
    with session_scope() as db:
        assert service.decide_due(db) >= 1
    assert {(s["status"], s["reason"]) for s in sends(ws, trigger="cart_abandoned")} == {
        ("queued", None), ("skipped", "ordered_meanwhile")}


def test_figures_sent_delivered_replied_converted_by_hand(client, ws):
    settings(client, ws, reply_days=3, conversion_days=7)
    enable(client, ws, "order_delivered")
    a, a_conv = receive(ws, value="a@example.com")
    b, _ = receive(ws, value="b@example.com")
    put_order(client, ws, "A1", email="a@example.com", status="delivered")
    put_order(client, ws, "B1", email="b@example.com", status="delivered")
    rows = {s["customer_id"]: s for s in sends(ws, trigger="order_delivered")}
    with session_scope() as db:
        # a's message: the channel reported it delivered; b's: accepted (sent) only
        db.get(Message, rows[a]["message_id"]).delivery_status = "delivered"
        db.get(Message, rows[b]["message_id"]).delivery_status = "sent"
    receive(ws, value="a@example.com", text="Спасибо, всё пришло")  # a replies (same conversation)
    put_order(client, ws, "B2", email="b@example.com", placed_at=utcnow().isoformat())  # b buys again
    with session_scope(write=False) as db:
        by_trigger, _, _ = service.measure(db, ws.id)
    c = by_trigger["order_delivered"]
    # claimed 2, queued 2; sent = delivery status sent/delivered/read = 2; delivered = 1 (a);
    # replied = 1 (a wrote within 3 days); converted = 1 (b ordered within 7 days; A1/B1 were placed before)
    assert (c.claimed, c.queued, c.sent, c.delivered, c.replied, c.converted) == (2, 2, 2, 1, 1, 1)
    assert a_conv == rows[a]["conversation_id"]


def test_an_opt_out_also_stops_what_still_waits_in_the_outbox(client, ws):
    settings(client, ws, cap_count=5)
    customers = [receive(ws, value=f"w{i}@example.com")[0] for i in range(3)]
    for c in customers:
        consent(ws, c)
    campaign_id = _campaign(client, ws, rate_per_second=0.01)  # one message every 100 s: the later ones wait
    jobs.run_campaign_now(campaign_id)
    last = max(customers)
    receive(ws, value="w2@example.com", text="отписаться")  # the third customer's row is due in ~200 s
    rows = {s["customer_id"]: s for s in sends(ws, campaign_id=campaign_id)}
    assert (rows[last]["status"], rows[last]["reason"]) == ("skipped", "opted_out")
    with session_scope(write=False) as db:
        item = db.scalar(select(OutboxItem).where(OutboxItem.message_id == rows[last]["message_id"]))
        assert item.status == "dead" and "opted out" in item.last_error
        assert db.get(Message, rows[last]["message_id"]).delivery_status == "failed"
    assert rows[customers[1]]["status"] == "queued"  # the others are untouched
    with session_scope(write=False) as db:
        _, _, reasons = service.measure(db, ws.id)
    assert reasons[f"campaign:{campaign_id}"] == {"opted_out": 1}
