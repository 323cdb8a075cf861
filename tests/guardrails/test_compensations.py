"""Authority limits and approvals (issue 14 §2): within the limit a compensation applies at once, above it a
request waits for someone with the authority; splitting a case does not dodge the per-case sum; nobody decides
their own request; precise 422s, 404s across workspaces, roles; the assistant's own small limit."""

from __future__ import annotations

import itertools
from decimal import Decimal

import pytest
from sqlalchemy import select

from otklik.accounts import service as accounts
from otklik.accounts.models import AuditEntry, Role
from otklik.conversations.models import Message
from otklik.guardrails import compensations
from otklik.guardrails.compensation_models import Compensation
from otklik.platform.db import session_scope
from tests.conftest import PASSWORD, inbound

_n = itertools.count(1)


def user(ws, role: Role) -> tuple[int, dict[str, str]]:
    n = next(_n)
    with session_scope() as session:
        admin = accounts.Actor(workspace_id=ws.id, user_id=ws.admin_id, role=Role.admin)
        created = accounts.create_user(session, admin, email=f"{role.value}{n}-{ws.id}@example.com",
                                       name=f"{role.value.title()} {n}", role=role, password=PASSWORD)
        token, _ = accounts.create_api_token(session, accounts.actor_for(created), name="t")
        return created.id, {"Authorization": f"Bearer {token}"}


def conversation(client, ws) -> int:
    return inbound(client, ws, identity=f"buyer{next(_n)}@example.com", text="Заказ опоздал на неделю")[
        "conversation_id"]


def give(client, headers, cid, amount, kind="refund", reason="опоздание"):
    return client.post(f"/api/v1/conversations/{cid}/compensations",
                       json={"kind": kind, "amount": amount, "reason": reason}, headers=headers)


def test_within_the_limit_applies_at_once_and_is_recorded_everywhere(client, ws):
    cid = conversation(client, ws)
    r = give(client, ws.agent, cid, "999.99")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["status"] == "applied" and body["amount"] == "999.99" and body["webhook"] is None
    with session_scope(write=False) as session:
        row = session.get(Compensation, body["id"])
        assert row.amount == Decimal("999.99") and row.applied_at is not None
        entry = session.get(Message, row.message_id)
        assert entry.is_internal and entry.author_kind == "system" and "999,99 ₽" in entry.body_text
        actions = {(a.entity_type, a.action) for a in session.scalars(
            select(AuditEntry).where(AuditEntry.workspace_id == ws.id))}
    assert ("conversation", "compensation_applied") in actions and ("customer", "compensation_applied") in actions
    listed = client.get(f"/api/v1/conversations/{cid}/compensations", headers=ws.agent).json()
    assert [c["id"] for c in listed["items"]] == [body["id"]]
    refund = next(a for a in listed["authority"] if a["kind"] == "refund")
    assert refund["per_case"] == "1000.00" and refund["case_sum"] == "999.99" and refund["used_today"] == "999.99"
    customer = client.get(f"/api/v1/customers/{row.customer_id}/compensations", headers=ws.agent).json()
    assert [c["id"] for c in customer["items"]] == [body["id"]]


def test_above_the_limit_waits_for_a_supervisor_and_splitting_does_not_dodge_it(client, ws):
    sup_id, sup = user(ws, Role.supervisor)
    cid = conversation(client, ws)
    assert give(client, ws.agent, cid, 600).json()["status"] == "applied"
    # 600 + 500 > 1000 for the case: the second part of a split case waits, though 500 alone is within the limit
    second = give(client, ws.agent, cid, "500", kind="gift")
    assert second.status_code == 202 and second.json()["status"] == "pending"
    # and a pending request counts too: a third small one waits as well
    assert give(client, ws.agent, cid, "100", kind="discount").json()["status"] == "pending"
    queue = client.get("/api/v1/compensations/pending", headers=sup).json()["items"]
    assert second.json()["id"] in [c["id"] for c in queue]
    assert client.get("/api/v1/compensations/pending", headers=ws.agent).json()["items"] == []
    # an agent cannot approve
    assert client.post(f"/api/v1/compensations/{second.json()['id']}/approve", json={},
                       headers=ws.agent).status_code == 403
    ok = client.post(f"/api/v1/compensations/{second.json()['id']}/approve", json={"comment": "ок, клиент постоянный"},
                     headers=sup)
    assert ok.status_code == 200 and ok.json()["status"] == "applied" and ok.json()["decided_by"] == sup_id
    again = client.post(f"/api/v1/compensations/{second.json()['id']}/reject", json={}, headers=sup)
    assert again.status_code == 409
    with session_scope(write=False) as session:
        texts = [m.body_text for m in session.scalars(select(Message).where(Message.conversation_id == cid))]
    assert any("согласована" in t and "клиент постоянный" in t for t in texts)


def test_nobody_decides_their_own_request(client, ws):
    _, sup = user(ws, Role.supervisor)
    cid = conversation(client, ws)
    r = give(client, sup, cid, "20000")  # above the supervisor's own 10,000
    assert r.json()["status"] == "pending"
    cid_ = r.json()["id"]
    own = client.post(f"/api/v1/compensations/{cid_}/approve", json={}, headers=sup)
    assert own.status_code == 403 and own.json()["error"]["code"] == "own_request"
    assert cid_ not in [c["id"] for c in client.get("/api/v1/compensations/pending", headers=sup).json()["items"]]
    # another supervisor's per-case limit does not cover it either: only the admin may
    _, sup2 = user(ws, Role.supervisor)
    assert client.post(f"/api/v1/compensations/{cid_}/approve", json={}, headers=sup2).status_code == 403
    rejected = client.post(f"/api/v1/compensations/{cid_}/reject", json={"comment": "дорого"}, headers=ws.admin)
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    assert rejected.json()["decision_comment"] == "дорого"


def test_daily_limit_counts_what_the_agent_gave_today(client, ws):
    cids = [conversation(client, ws) for _ in range(3)]
    client.put("/api/v1/compensation-limits", json={"subject": f"user:{ws.agent_id}", "kind": "*",
                                                    "per_case": "1000", "per_day": "1500"}, headers=ws.admin)
    assert give(client, ws.agent, cids[0], "1000").json()["status"] == "applied"
    assert give(client, ws.agent, cids[1], "500").json()["status"] == "applied"
    assert give(client, ws.agent, cids[2], "0.01").json()["status"] == "pending"


@pytest.mark.parametrize(("payload", "field"), [
    ({"kind": "refund", "amount": "-5", "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": "0", "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": "10.001", "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": "abc", "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": "NaN", "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": True, "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": [1], "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": 10**30, "reason": "x"}, "amount"),
    ({"kind": "refund", "amount": "200000000", "reason": "x"}, "amount"),
    ({"kind": "cash", "amount": "10", "reason": "x"}, "kind"),
    ({"kind": "refund", "amount": "10", "reason": "я" * 501}, "reason"),
    ({"kind": "refund", "amount": "10", "reason": "   "}, "reason"),
    ({"kind": "refund", "amount": "10", "reason": "x", "customer_id": 999999999}, "customer_id"),
])
def test_bad_input_is_a_422_naming_the_field(client, ws, payload, field):
    cid = conversation(client, ws)
    r = client.post(f"/api/v1/conversations/{cid}/compensations", json=payload, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_other_workspaces_see_404_and_agents_cannot_change_limits(client, ws, other_ws):
    cid = conversation(client, ws)
    pending = give(client, ws.agent, cid, "5000").json()
    assert give(client, other_ws.admin, cid, "10").status_code == 404
    assert client.get(f"/api/v1/conversations/{cid}/compensations", headers=other_ws.admin).status_code == 404
    assert client.get(f"/api/v1/compensations/{pending['id']}", headers=other_ws.admin).status_code == 404
    assert client.post(f"/api/v1/compensations/{pending['id']}/approve", json={},
                       headers=other_ws.admin).status_code == 404
    assert client.put("/api/v1/compensation-limits", json={"subject": "role:agent", "kind": "*", "per_case": "99999"},
                      headers=ws.agent).status_code == 403
    bad = client.put("/api/v1/compensation-limits", json={"subject": "role:boss", "kind": "*"}, headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "subject"
    bad = client.put("/api/v1/compensation-limits", json={"subject": "role:agent", "kind": "*", "per_day": "-1"},
                     headers=ws.admin)
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "per_day"
    foreign = client.put("/api/v1/compensation-limits", json={"subject": f"user:{other_ws.agent_id}", "kind": "*"},
                         headers=ws.admin)
    assert foreign.status_code == 422
    set_ = client.put("/api/v1/compensation-limits", json={"subject": "role:agent", "kind": "refund",
                                                           "per_case": "5000", "per_day": None}, headers=ws.admin)
    assert set_.status_code == 200
    assert give(client, ws.agent, conversation(client, ws), "4000").json()["status"] == "applied"
    assert client.delete(f"/api/v1/compensation-limits/{set_.json()['id']}", headers=other_ws.admin).status_code == 404
    assert client.delete(f"/api/v1/compensation-limits/{set_.json()['id']}", headers=ws.admin).status_code == 204
    assert give(client, ws.agent, conversation(client, ws), "4000").json()["status"] == "pending"


def test_the_assistant_offers_within_its_own_limit_and_hands_off_above(client, ws):
    cid = conversation(client, ws)
    with session_scope() as session:
        assert compensations.assistant_allowance(session, ws.id, cid, "free_delivery") == Decimal("300")
        assert compensations.assistant_allowance(session, ws.id, cid, "refund") == Decimal("0")
        given = compensations.offer_by_assistant(session, ws.id, cid, kind="free_delivery", amount="250",
                                                 reason="заказ опоздал")
        assert given is not None and given.status == "applied" and given.requested_by_kind == "assistant"
    with session_scope() as session:
        assert compensations.offer_by_assistant(session, ws.id, cid, kind="free_delivery", amount="100",
                                                reason="ещё") is None
        assert compensations.offer_by_assistant(session, ws.id, cid, kind="refund", amount="1",
                                                reason="x") is None


def test_the_shop_hears_through_a_signed_webhook_and_a_retry_keeps_the_idempotency_key(client, ws):
    import datetime as dt
    import hashlib
    import hmac
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from otklik.conversations import outbox
    from otklik.conversations.models import OutboxItem

    seen: list[tuple[dict[str, str], bytes]] = []
    answers = [500, 200]

    class Shop(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(answers.pop(0) if answers else 200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret = "shop-secret-0123456789"
    try:
        url = f"http://127.0.0.1:{server.server_port}/compensations"
        assert client.put("/api/v1/compensation-webhook", json={"url": url, "secret": secret},
                          headers=ws.agent).status_code == 403
        assert client.put("/api/v1/compensation-webhook", json={"url": "ftp://x", "secret": secret},
                          headers=ws.admin).json()["error"]["fields"][0]["field"] == "url"
        assert client.put("/api/v1/compensation-webhook", json={"url": url, "secret": secret},
                          headers=ws.admin).status_code == 200
        cid = conversation(client, ws)
        given = give(client, ws.agent, cid, "1.5", kind="bonus_points", reason="извинение").json()
        assert len(seen) == 1  # the job ran after commit and the shop answered 500: retried later
        with session_scope() as session:
            item = session.scalar(select(OutboxItem).where(OutboxItem.channel == "shop",
                                                           OutboxItem.workspace_id == ws.id))
            assert item.status == "pending" and item.attempts == 1
            item.next_attempt_at = item.next_attempt_at - dt.timedelta(hours=1)
            item_id = item.id
        assert outbox.deliver(item_id) == "sent"
        assert client.get(f"/api/v1/compensations/{given['id']}", headers=ws.agent).json()["webhook"] == "sent"
    finally:
        server.shutdown()
    assert len(seen) == 2
    keys = {h["idempotency-key"] for h, _ in seen}
    assert len(keys) == 1 and keys.pop() == json.loads(seen[0][1])["idempotency_key"]
    for headers, body in seen:
        expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-otklik-signature"], expected)
    payload = json.loads(seen[1][1])
    assert payload["event"] == "compensation.applied" and payload["amount"] == "1.50"
    assert payload["kind"] == "bonus_points" and payload["conversation"]["id"] == cid
    assert payload["customer"]["identities"][0]["kind"] == "email"
    assert [h["x-otklik-attempt"] for h, _ in seen] == ["1", "2"]


def test_race_requests_at_once_cannot_both_slip_under_the_daily_limit(client, ws):
    """Ten requests of 300 ₽ on ten conversations from ten threads at once (each its own session and
    transaction), daily limit 1,000 ₽: exactly three apply, the rest wait for approval, and the day's usage is
    900 ₽. On PostgreSQL the usage row's SELECT … FOR UPDATE is what holds; SQLite serialises writers."""
    import threading

    from otklik.platform.db import run_transaction

    client.put("/api/v1/compensation-limits", json={"subject": f"user:{ws.agent_id}", "kind": "*",
                                                    "per_case": None, "per_day": "1000"}, headers=ws.admin)
    cids = [conversation(client, ws) for _ in range(10)]
    actor = accounts.Actor(workspace_id=ws.id, user_id=ws.agent_id, role=Role.agent)
    barrier = threading.Barrier(10)
    errors: list[BaseException] = []
    statuses: list[str] = []

    def request(cid: int) -> None:
        try:
            barrier.wait(timeout=30)
            got = run_transaction(lambda s: compensations.request_compensation(
                s, actor, cid, kind="refund", amount="300", reason="гонка").status, attempts=20)
            statuses.append(got)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=request, args=(cid,)) for cid in cids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert sorted(statuses) == ["applied"] * 3 + ["pending"] * 7
    with session_scope(write=False) as session:
        assert compensations.used_today(session, ws.id, f"user:{ws.agent_id}|*") == Decimal("900.00")
