"""Orders (issue 16): does the assistant answer order questions right, and never tell one person another's
order; what the order lookup adds to the decision; how fast the batch API stores orders.

1. A fresh database (bench/_common.BenchEnv: SQLite in a temp dir, or the reset PostgreSQL bench database), one
   workspace with the assistant on (no knowledge base: a question the order data do not answer is handed off),
   the shop's orders of bench/data/make_orders_questions.py pushed, each writer a customer with a verified phone
   or e-mail (a messenger / a signed-in visitor).
2. Questions: bench/data/orders_questions.jsonl (158, ru + en: own orders, other people's, orders that do not
   exist, with and without a number, one or several turns), each in a new conversation through the real
   product path (`conversations.receive` + `assistant.service.process_message`, the same as the worker).
   Correct: the decision is the expected one (answer / ask for the phone / not found / which / the number /
   hand-off) and the reply says what it must. Leak: any reply to someone who has not proved an order is theirs
   that holds anything of that order (tracking link, item, address, «№ N <status>»); must be 0.
   The order check's own time inside the decision (`service._order_check`): p50/p99, local store.
3. Pull: the same check against a local stand-in order-lookup URL (20 ms per answer, cache off), and against
   one that never answers in time (timeout_s 1.5): what the conversation waits.
4. Batch: POST /api/v1/orders/batch, 10,000 orders of 3,000 customers in one request through the ASGI app in
   process (new orders, then the same body again — unchanged, then a status change for all): orders/s.

    .venv/bin/python bench/orders_assistant.py [--db postgres] [--batch 10000] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, percentile
from data.make_orders_questions import ORDERS, STATUS_EN, STATUS_RU, WRITERS

DATA = Path(__file__).parent / "data" / "orders_questions.jsonl"


def micro_ms(values: list[float]) -> dict[str, float]:
    lat = sorted(values)
    return {"calls": len(lat), "p50_ms": round(percentile(lat, 50) * 1000, 2),
            "p99_ms": round(percentile(lat, 99) * 1000, 2), "max_ms": round(lat[-1] * 1000, 2)}


def secrets_of(number: str) -> list[str]:
    o = ORDERS[number]
    out = [i["name"] for i in o["items"]] + [o["delivery"].get("address", "")]
    if o["delivery"].get("tracking_url"):
        out.append(o["delivery"]["tracking_url"])
    if o.get("payment_url"):
        out.append(o["payment_url"])
    out += [f"№ {number} {STATUS_RU[o['status']]}", f"Order {number} {STATUS_EN[o['status']]}"]
    return [s for s in out if s]


KIND = {"answer": ("answer", {"order"}), "ask_phone": ("clarify", {"order_verify"}),
        "not_found": ("clarify", {"order_not_found"}), "ask_which": ("clarify", {"order_which"}),
        "ask_number": ("clarify", {"order_number"}), "handoff": ("handoff", None)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    env = BenchEnv(args.db)
    env.apply_to_this_process()
    env.migrate()
    from sqlalchemy import delete, select

    from otklik.accounts import service as accounts
    from otklik.assistant import service as assistant
    from otklik.conversations import service as conversations
    from otklik.conversations.models import AuthorKind, Conversation, Message
    from otklik.customers import service as customers
    from otklik.orders import lookup
    from otklik.orders import service as orders
    from otklik.platform.db import session_scope

    with session_scope() as s:
        workspace, admin = accounts.bootstrap_workspace(s, slug="orders-bench", name="Bench shop",
                                                        admin_email="orders-bench@example.com",
                                                        admin_password="bench-password-123")
        ws_id, actor = workspace.id, accounts.actor_for(admin)
        assistant.update_settings(s, actor, {"enabled": True})
        for w in WRITERS.values():
            customers.create_customer(s, actor, name=w["name"], identities=[
                customers.IdentityInput(w["kind"], w["value"], verified=True)])
        items = []
        for number, o in ORDERS.items():
            w = WRITERS[o["owner"]]
            raw = {k: v for k, v in o.items() if k != "owner"}
            raw["customer"] = {"kind": w["kind"], "value": w["value"]}
            items.append(orders.parse_order(raw, number=number))
        orders.upsert_many(s, actor, items)
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
    log(f"{len(rows)} questions; warming the assistant up")
    assistant.get_assistant()

    timings: list[float] = []
    original = assistant._order_check

    cpu: list[float] = []

    def timed(*a: Any, **kw: Any) -> Any:
        started, started_cpu = time.perf_counter(), time.thread_time()
        try:
            return original(*a, **kw)
        finally:
            timings.append(time.perf_counter() - started)
            cpu.append(time.thread_time() - started_cpu)

    assistant._order_check = timed  # type: ignore[assignment]
    results: list[dict[str, Any]] = []
    for row in rows:
        w = WRITERS[row["writer"]]
        conversation_id = None
        replies: list[list[str]] = []
        decision: dict[str, Any] = {}
        for turn in row["turns"]:
            with session_scope() as s:
                got = conversations.receive(s, ws_id, conversations.InboundMessage(
                    channel="api", identity_kind=w["kind"], identity_value=w["value"], identity_verified=True,
                    text=turn, conversation_id=conversation_id))
                conversation_id, message_id = got.conversation.id, got.message.id
            with session_scope() as s:
                outcome = assistant.process_message(s, message_id)
                d = outcome.decision
                decision = {"action": d.action, "reason": d.reason} if d is not None else {}
                said = s.scalars(select(Message.body_text).where(
                    Message.conversation_id == conversation_id, Message.id > message_id,
                    Message.author_kind == AuthorKind.assistant.value, Message.is_internal.is_(False))).all()
                replies.append([t or "" for t in said])
        with session_scope() as s:
            s.execute(delete(Conversation).where(Conversation.id == conversation_id))
        action, reasons = KIND[row["expect"]]
        final = " ".join(replies[-1])
        right = decision.get("action") == action and (reasons is None or decision.get("reason") in reasons) \
            and all(c.lower() in final.lower() for c in row["contains"])
        # what the writer may not hear: every order they have not proved is theirs
        proved_owner = row["expect"] == "answer"
        owned = {n for n, o in ORDERS.items() if o["owner"] == row["writer"]}
        if proved_owner and row["order"]:
            owned.add(row["order"])
        heard = " ".join(" ".join(r) for r in replies)
        leaked = [sec for n in ORDERS if n not in owned for sec in secrets_of(n) if sec in heard]
        results.append({"id": row["id"], "kind": row["kind"], "lang": row["lang"], "expect": row["expect"],
                        "got": decision, "right": right, "leaked": leaked, "reply": final[:300]})
    assistant._order_check = original  # type: ignore[assignment]
    correct = sum(r["right"] for r in results)
    by_kind: dict[str, list[int]] = {}
    for r in results:
        by_kind.setdefault(r["kind"], [0, 0])
        by_kind[r["kind"]][0 if r["right"] else 1] += 1
    questions = {"questions": len(results), "correct": correct, "wrong": len(results) - correct,
                 "leaks": sum(1 for r in results if r["leaked"]),
                 "by_kind": {k: {"correct": v[0], "wrong": v[1]} for k, v in sorted(by_kind.items())},
                 "by_language": {lang: sum(r["right"] for r in results if r["lang"] == lang) for lang in ("ru", "en")},
                 "wrong_examples": [r for r in results if not r["right"]][:10],
                 "order_check_local": micro_ms(timings), "order_check_local_cpu": micro_ms(cpu)}
    log(f"questions: {correct}/{len(results)} correct, {questions['leaks']} leaks; "
        f"order check p99 {questions['order_check_local']['p99_ms']} ms")

    # -- pull: a local stand-in order-lookup URL -------------------------------------------------------
    delay = {"s": 0.02}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay["s"])
            number = self.path.rsplit("/", 1)[-1]
            body = json.dumps({"status": "shipped", "customer": {"kind": "phone", "value": "+79161110001"},
                               "delivery": {"tracking_url": f"https://track.example/{number}"}}).encode()
            try:
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                pass

        def log_message(self, *a: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/orders/{{number}}"
    with session_scope() as s:
        lookup.update_settings(s, actor, {"lookup_url": url, "cache_s": 0})
    pulled: list[float] = []
    for i in range(200):
        with session_scope() as s:
            started = time.perf_counter()
            lookup.pull(s, ws_id, f"P{i % 50}", use_cache=False)
            pulled.append(time.perf_counter() - started)
    delay["s"] = 5.0
    stalled: list[float] = []
    for i in range(3):
        with session_scope() as s:
            started = time.perf_counter()
            with contextlib.suppress(lookup.Unavailable):
                lookup.pull(s, ws_id, f"S{i}", use_cache=False)
            stalled.append(time.perf_counter() - started)
    server.shutdown()
    pull = {"stand_in_latency_ms": 20, "lookup_and_store": micro_ms(pulled),
            "never_answering_timeout_1_5_s": {"waited_s": [round(t, 2) for t in stalled]}}
    log(f"pull: p99 {pull['lookup_and_store']['p99_ms']} ms; a silent shop waits {pull['never_answering_timeout_1_5_s']}")

    # -- batch API -------------------------------------------------------------------------------------
    from fastapi.testclient import TestClient

    from otklik.app import create_app

    with session_scope() as s:
        token, _ = accounts.create_api_token(s, actor, name="bench")
    client = TestClient(create_app())
    headers = {"Authorization": f"Bearer {token}"}
    n = args.batch

    def body(status: str) -> bytes:
        return json.dumps({"orders": [
            {"number": f"B{i}", "customer": {"kind": "phone", "value": f"+7916{2000000 + i % 3000:07d}"},
             "status": status, "items": [{"name": "Чайник", "sku": "K-1", "quantity": 1, "price": 2490},
                                         {"name": "Фильтр", "sku": "F-2", "quantity": 2, "price": 150}],
             "total": 2790, "paid": True, "placed_at": "2026-12-01T10:00:00+03:00",
             "delivery": {"method": "courier", "address": f"Москва, ул. Садовая, {i % 90}",
                          "tracking_url": f"https://track.example/B{i}", "promised_on": "2026-12-10"}}
            for i in range(n)]}, ensure_ascii=False).encode()

    batch: dict[str, Any] = {"orders": n, "customers": min(n, 3000)}
    for label, status in (("new", "paid"), ("same_again", "paid"), ("status_change", "shipped")):
        raw = body(status)
        started = time.perf_counter()
        r = client.post("/api/v1/orders/batch", content=raw, headers={**headers, "Content-Type": "application/json"})
        took = time.perf_counter() - started
        out = r.json()
        assert r.status_code == 200 and out["error"] == 0, r.text[:500]
        batch[label] = {"seconds": round(took, 2), "orders_per_s": round(n / took), "body_mb": round(len(raw) / 1e6, 1),
                        "created": out["created"], "updated": out["updated"], "unchanged": out["unchanged"]}
        log(f"batch {label}: {n} in {took:.2f} s = {n / took:.0f}/s")
    client.close()
    report = {"bench": "orders_assistant", "db": args.db, "machine": machine_note(), "questions": questions,
              "pull": pull, "batch": batch}
    text = json.dumps(report, ensure_ascii=False)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    env.close() if hasattr(env, "close") else None


if __name__ == "__main__":
    main()
