"""Loyalty tiers and referrals through the API: tiers computed from orders (paid, neither cancelled nor returned;
over a period), recomputed on every order and tier change; referral codes, linking, the reward recorded once and
the shop's signed webhook delivered exactly once through retries; 422 / 404 / roles / isolation."""

from __future__ import annotations

import datetime as dt

from otklik.orders import loyalty
from otklik.platform.db import session_scope
from tests.stand_ins import WebhookReceiver

SEED_TIERS = [("Бронза", 5), ("Серебро", 10), ("Золото", 20)]  # the seed's «5 / 10 / 20 покупок»


def tiers(client, ws, items=SEED_TIERS, **extra):
    out = []
    for name, threshold in items:
        r = client.post("/api/v1/loyalty/tiers", json={"name": name, "threshold": threshold, **extra},
                        headers=ws.admin)
        assert r.status_code == 201, r.text
        out.append(r.json())
    return out


def order(client, ws, number, phone="+79165550001", status="paid", total=1000, paid=True, **extra):
    body = {"customer": {"kind": "phone", "value": phone}, "status": status, "total": total, "paid": paid,
            "placed_at": "2026-12-01T10:00:00+03:00", **extra}
    r = client.put(f"/api/v1/orders/{number}", json=body, headers=ws.agent)
    assert r.status_code in (200, 201), r.text
    return r.json()


def tier_of(client, ws, customer_id):
    r = client.get(f"/api/v1/loyalty/customers/{customer_id}", headers=ws.agent)
    assert r.status_code == 200, r.text
    return r.json()


def test_tier_follows_paid_orders_and_ignores_cancelled_returned_and_unpaid(client, ws):
    tiers(client, ws)
    ids = [order(client, ws, f"A{i}")["customer_id"] for i in range(4)]
    cid = ids[0]
    assert tier_of(client, ws, cid)["tier"] is None and tier_of(client, ws, cid)["purchases"] == 4
    order(client, ws, "A-unpaid", paid=False, status="created")
    order(client, ws, "A-cancel", status="cancelled")
    assert tier_of(client, ws, cid)["tier"] is None  # 4 purchases: the unpaid and the cancelled do not count
    order(client, ws, "A4")
    body = tier_of(client, ws, cid)
    assert body["tier"] == "Бронза" and body["purchases"] == 5 and body["spent"] == 5000
    assert body["next_tier"] == {"name": "Серебро", "metric": "purchases", "missing": 5}
    # stored on the customer: the customers API shows it without asking loyalty
    assert client.get(f"/api/v1/customers/{cid}", headers=ws.agent).json()["loyalty_tier"] == "Бронза"
    # a return takes the purchase away again
    order(client, ws, "A4", status="returned")
    assert tier_of(client, ws, cid)["tier"] is None
    for i in range(5, 21):
        order(client, ws, f"A{i}")
    assert tier_of(client, ws, cid)["tier"] == "Золото"


def test_sum_threshold_period_and_rank(client, ws):
    tiers(client, ws, [("VIP", 50000)], metric="spent", period_days=30)
    old = order(client, ws, "S1", total=60000, placed_at="2020-01-01T10:00:00+03:00")
    cid = old["customer_id"]
    assert tier_of(client, ws, cid)["tier"] is None  # outside the 30 days
    now = dt.datetime.now(dt.UTC).isoformat()
    order(client, ws, "S2", total=30000, placed_at=now)
    assert tier_of(client, ws, cid)["tier"] is None
    order(client, ws, "S3", total=20000.5, placed_at=now)
    assert tier_of(client, ws, cid)["tier"] == "VIP"
    # a purchases tier with a higher rank wins when both are reached
    tiers(client, ws, [("Постоянный", 3)])
    assert tier_of(client, ws, cid)["tier"] == "Постоянный"
    listed = client.get("/api/v1/loyalty/tiers", headers=ws.agent).json()
    assert [(t["name"], t["rank"]) for t in listed] == [("VIP", 1), ("Постоянный", 2)]


def test_tier_edits_recompute_and_rename_follows(client, ws):
    bronze, silver, _ = tiers(client, ws)
    cid = None
    for i in range(6):
        cid = order(client, ws, f"E{i}")["customer_id"]
    assert tier_of(client, ws, cid)["tier"] == "Бронза"
    r = client.patch(f"/api/v1/loyalty/tiers/{bronze['id']}", json={"name": "Bronze"}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["name"] == "Bronze"
    assert tier_of(client, ws, cid)["tier"] == "Bronze"
    assert client.patch(f"/api/v1/loyalty/tiers/{silver['id']}", json={"threshold": 6},
                        headers=ws.admin).status_code == 200
    assert tier_of(client, ws, cid)["tier"] == "Серебро"
    assert client.delete(f"/api/v1/loyalty/tiers/{silver['id']}", headers=ws.admin).status_code == 204
    assert tier_of(client, ws, cid)["tier"] == "Bronze"
    # the tier is on the customer row: the reply-template variable reads it
    from otklik.customers.models import Customer

    with session_scope(write=False) as s:
        assert s.get(Customer, cid).loyalty_tier == "Bronze"


def test_bad_input_is_422_naming_the_field_and_roles(client, ws):
    cases = [({"threshold": 5}, "name"), ({"name": "", "threshold": 5}, "name"),
             ({"name": "X", "threshold": 0}, "threshold"), ({"name": "X", "threshold": "abc"}, "threshold"),
             ({"name": "X", "threshold": 2.5}, "threshold"), ({"name": "X", "threshold": 5, "metric": "visits"}, "metric"),
             ({"name": "X", "threshold": 5, "period_days": 0}, "period_days"),
             ({"name": "X", "threshold": 5, "period_days": "30"}, "period_days"),
             ({"name": "X", "threshold": 5, "rank": True}, "rank"), ({"name": "X", "threshold": 5, "color": 1}, "color"),
             ({"name": "a\u0000b", "threshold": 5}, "name"), ({"name": "X", "threshold": "1e400"}, "threshold")]
    for body, field in cases:
        r = client.post("/api/v1/loyalty/tiers", json=body, headers=ws.admin)
        assert r.status_code == 422, (body, r.text)
        assert field in r.text, (body, r.text)
    tiers(client, ws, [("Gold", 20)])
    dup = client.post("/api/v1/loyalty/tiers", json={"name": "gold", "threshold": 30}, headers=ws.admin)
    assert dup.status_code == 422 and "name" in dup.text
    # agents read tiers, only admins write them
    assert client.post("/api/v1/loyalty/tiers", json={"name": "Y", "threshold": 1}, headers=ws.agent).status_code == 403
    assert client.get("/api/v1/loyalty/tiers", headers=ws.agent).status_code == 200
    assert client.get("/api/v1/loyalty/settings", headers=ws.agent).status_code == 403
    assert client.post("/api/v1/loyalty/tiers", content=b"[1,2]", headers={**ws.admin, "content-type": "application/json"}
                       ).status_code == 422
    assert client.get("/api/v1/loyalty/tiers/999999", headers=ws.agent).status_code == 404
    assert client.get("/api/v1/loyalty/customers/999999", headers=ws.agent).status_code == 404
    bad = client.put("/api/v1/loyalty/settings", json={"webhook_url": "ftp://x"}, headers=ws.admin)
    assert bad.status_code == 422 and "webhook_url" in bad.text
    bad = client.put("/api/v1/loyalty/settings", json={"webhook_url": "https://shop.example/hook"}, headers=ws.admin)
    assert bad.status_code == 422 and "secret" in bad.text
    bad = client.put("/api/v1/loyalty/settings", json={"reward": "10 %\u0000"}, headers=ws.admin)
    assert bad.status_code == 422 and "reward" in bad.text


def test_other_workspace_objects_are_404(client, ws, other_ws):
    [gold] = tiers(client, ws, [("Gold", 1)])
    cid = order(client, ws, "I1")["customer_id"]
    code = client.post(f"/api/v1/loyalty/customers/{cid}/referral-code", headers=ws.agent).json()["code"]
    for method, url, body in [("get", f"/api/v1/loyalty/tiers/{gold['id']}", None),
                              ("patch", f"/api/v1/loyalty/tiers/{gold['id']}", {"name": "Mine"}),
                              ("delete", f"/api/v1/loyalty/tiers/{gold['id']}", None),
                              ("get", f"/api/v1/loyalty/customers/{cid}", None),
                              ("post", f"/api/v1/loyalty/customers/{cid}/referral-code", None),
                              ("post", f"/api/v1/loyalty/customers/{cid}/referrer", {"code": "ABCDEFGH"})]:
        r = client.request(method, url, json=body, headers=other_ws.admin)
        assert r.status_code == 404, (method, url, r.text)
    assert client.get("/api/v1/loyalty/tiers", headers=other_ws.agent).json() == []
    # the code of workspace A is unknown in workspace B
    other = order(client, other_ws, "I1", phone="+79165550099")["customer_id"]
    r = client.post(f"/api/v1/loyalty/customers/{other}/referrer", json={"code": code}, headers=other_ws.agent)
    assert r.status_code == 422 and "code" in r.text
    assert client.get("/api/v1/loyalty/referrals", headers=other_ws.agent).json() == []


def test_referral_linked_rewarded_once_and_webhook_sent_exactly_once(client, ws):
    receiver = WebhookReceiver(secret="s" * 24)
    try:
        r = client.put("/api/v1/loyalty/settings", json={"webhook_url": receiver.url, "secret": "s" * 24,
                                                         "reward": "10 %"}, headers=ws.admin)
        assert r.status_code == 200 and r.json() == {"webhook_url": receiver.url, "secret_set": True, "reward": "10 %"}
        referrer = order(client, ws, "R1", phone="+79165550010")["customer_id"]
        first = client.post(f"/api/v1/loyalty/customers/{referrer}/referral-code", headers=ws.agent)
        again = client.post(f"/api/v1/loyalty/customers/{referrer}/referral-code", headers=ws.agent)
        assert first.status_code == 201 and again.status_code == 200 and first.json() == again.json()
        code = first.json()["code"]
        assert len(code) == 8
        # the new customer's first order, unpaid, carries the code: linked, not yet rewarded
        new = order(client, ws, "N1", phone="+79165550020", status="created", paid=False,
                    attributes={"referral_code": code.lower()})
        friend = new["customer_id"]
        [ref] = client.get("/api/v1/loyalty/referrals", headers=ws.agent).json()
        assert ref["referrer_id"] == referrer and ref["referred_id"] == friend and ref["source"] == "order"
        assert ref["rewarded_at"] is None and receiver.requests == []
        # paid: the reward is recorded and the shop told, signed, once
        receiver.fail_next = [503]  # the shop is down on the first try: retried with the same key
        order(client, ws, "N1", phone="+79165550020", status="paid", paid=True, attributes={"referral_code": code})
        [ref] = client.get("/api/v1/loyalty/referrals", headers=ws.agent).json()
        assert ref["rewarded_at"] is not None and ref["order_number"] == "N1"
        assert ref["webhook_status"] == "pending" and "503" in ref["last_error"]
        with session_scope() as s:  # the back-off passes
            from otklik.orders.loyalty_models import Referral

            s.get(Referral, ref["id"]).next_attempt_at = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
        from otklik.orders import loyalty_jobs

        assert loyalty_jobs.sweep() >= 1
        [ref] = client.get("/api/v1/loyalty/referrals", headers=ws.agent).json()
        assert ref["webhook_status"] == "sent" and ref["attempts"] == 2
        assert [q["key"] for q in receiver.requests] == [ref["idempotency_key"]] * 2
        assert all(q["signature_ok"] for q in receiver.requests)
        [applied] = receiver.applied.values()
        body = applied["body"]
        assert body["event"] == "referral.rewarded" and body["reward"] == "10 %" and body["code"] == code
        assert body["referrer"]["id"] == referrer and body["referred"]["id"] == friend
        assert body["order"] == {"number": "N1", "total": "1000.00"}
        # more paid orders, a sweep, a repeated delivery: nothing more is sent
        order(client, ws, "N2", phone="+79165550020")
        loyalty_jobs.sweep()
        assert loyalty.deliver(ref["id"]) == "skipped"
        assert len(receiver.requests) == 2
        assert tier_of(client, ws, friend)["referred_by"]["referrer_id"] == referrer
        assert tier_of(client, ws, referrer)["referred_count"] == 1
    finally:
        receiver.close()


def test_attach_by_api_rules_and_reward_waits_for_a_webhook(client, ws):
    referrer = order(client, ws, "P1", phone="+79165550030")["customer_id"]
    code = client.post(f"/api/v1/loyalty/customers/{referrer}/referral-code", headers=ws.agent).json()["code"]
    buyer = order(client, ws, "P2", phone="+79165550031")["customer_id"]  # bought already
    r = client.post(f"/api/v1/loyalty/customers/{buyer}/referrer", json={"code": code}, headers=ws.agent)
    assert r.status_code == 422 and "customer_id" in r.text
    own = client.post(f"/api/v1/loyalty/customers/{referrer}/referrer", json={"code": code}, headers=ws.agent)
    assert own.status_code == 422 and "own" in own.text
    for bad in ({"code": "??"}, {"code": 5}, {}):
        r = client.post(f"/api/v1/loyalty/customers/{referrer}/referrer", json=bad, headers=ws.agent)
        assert r.status_code == 422 and "code" in r.text
    # a customer known from a chat only (no order yet)
    fresh = client.post("/api/v1/inbound", json={"identity_kind": "phone", "identity": "+79165550032",
                                                 "text": "Здравствуйте"}, headers=ws.agent)
    assert fresh.status_code in (200, 201), fresh.text
    friend = fresh.json()["customer_id"]
    linked = client.post(f"/api/v1/loyalty/customers/{friend}/referrer", json={"code": code}, headers=ws.agent)
    assert linked.status_code == 201 and linked.json()["referrer_id"] == referrer
    twice = client.post(f"/api/v1/loyalty/customers/{friend}/referrer", json={"code": code}, headers=ws.agent)
    assert twice.status_code == 409
    order(client, ws, "P3", phone="+79165550032")
    [ref] = client.get("/api/v1/loyalty/referrals?rewarded=true", headers=ws.agent).json()
    assert ref["webhook_status"] == "unconfigured" and ref["order_number"] == "P3"
    # the webhook set later sends the waiting reward
    receiver = WebhookReceiver(secret="k" * 20)
    try:
        assert client.put("/api/v1/loyalty/settings", json={"webhook_url": receiver.url, "secret": "k" * 20},
                          headers=ws.admin).status_code == 200
        [ref] = client.get("/api/v1/loyalty/referrals", headers=ws.agent).json()
        assert ref["webhook_status"] == "sent" and len(receiver.applied) == 1
    finally:
        receiver.close()


def test_recompute_many_customers_in_one_batch(client, ws):
    tiers(client, ws, [("Бронза", 2)])
    orders = [{"number": f"B{i}", "customer": {"kind": "email", "value": f"c{i % 50}@example.com"},
               "status": "delivered", "total": 100, "paid": True} for i in range(120)]
    r = client.post("/api/v1/orders/batch", json={"orders": orders}, headers=ws.agent)
    assert r.status_code == 200 and r.json()["created"] == 120
    from sqlalchemy import func, select

    from otklik.customers.models import Customer

    with session_scope(write=False) as s:
        counts = dict(s.execute(select(Customer.loyalty_tier, func.count()).where(Customer.workspace_id == ws.id)
                                .group_by(Customer.loyalty_tier)).tuples().all())
    assert counts == {"Бронза": 50}  # each of 50 customers has 2 or 3 purchases
    assert client.post("/api/v1/loyalty/recompute", headers=ws.admin).json() == {"changed": 0}


def test_two_concurrent_links_of_one_customer_one_wins(client, ws):
    """Two agents link the same new customer at once (on PostgreSQL both pass the «already referred?» read):
    one link is stored, the other is a 409, never a 500 or two referrals."""
    import threading

    from otklik.platform.db import run_transaction
    from otklik.platform.errors import Conflict

    owners = [order(client, ws, f"C{i}", phone=f"+7916555008{i}")["customer_id"] for i in range(2)]
    codes = [client.post(f"/api/v1/loyalty/customers/{o}/referral-code", headers=ws.agent).json()["code"]
             for o in owners]
    friend = client.post("/api/v1/customers", json={"name": "Новый", "identities": [
        {"kind": "email", "external_id": "new-friend@example.com"}]}, headers=ws.admin).json()["id"]
    from otklik.platform.db import get_engine

    # PostgreSQL: both transactions are open before either links; SQLite runs one write transaction at a time
    inside = get_engine().dialect.name == "postgresql"
    barrier, outcomes = threading.Barrier(2), []

    def link(code):
        def work(s):
            if inside:
                from otklik.customers.models import Customer

                s.get(Customer, friend)  # the transaction has started
                barrier.wait(timeout=10)
            return loyalty.attach(s, ws.actor("agent"), friend, code)
        if not inside:
            barrier.wait(timeout=10)
        try:
            run_transaction(work, attempts=1)
            outcomes.append("linked")
        except Conflict:
            outcomes.append("conflict")
        except Exception as exc:  # the test reports anything else
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=link, args=(c,)) for c in codes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["conflict", "linked"], outcomes
    assert len(client.get("/api/v1/loyalty/referrals", headers=ws.agent).json()) == 1
