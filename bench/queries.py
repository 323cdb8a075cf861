"""SQL statements per API request for the main endpoints, at page size 10 and 100 (an N+1 shows as growth).

In-process: FastAPI's TestClient against a fresh migrated database, a SQLAlchemy `before_cursor_execute`
listener counting every statement the request sends (BEGIN and SAVEPOINTs included; they are listed apart).
The app's lifespan is not started, so no background worker adds statements of its own (jobs the request
enqueues stay in the queue file). Seed data goes in through the same API: 150 customers writing in (one
conversation each, tags on every other one), one conversation with 150 messages, 20 of them with an
attachment.

    .venv/bin/python bench/queries.py --db sqlite
    .venv/bin/python bench/queries.py --db postgres
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note

warnings.filterwarnings("ignore", category=DeprecationWarning)


def kind_of(statement: str) -> str:
    s = statement.lstrip().upper()
    for k in ("BEGIN", "SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT"):
        if s.startswith(k):
            return "tx"
    m = re.match(r"(SELECT|INSERT|UPDATE|DELETE)\b", s)
    return m[1].lower() if m else s.split()[0].lower()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--verbose", action="store_true", help="print every statement to stderr")
    args = ap.parse_args()

    bench = BenchEnv(args.db)
    bench.apply_to_this_process()
    try:
        results = measure(bench, args.verbose)
    finally:
        bench.close()
    print(json.dumps({"bench": "queries", "db": args.db, "env": machine_note(), **results}, ensure_ascii=False))


def measure(bench: BenchEnv, verbose: bool) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from otklik.accounts import service as accounts
    from otklik.app import create_app
    from otklik.migrations import upgrade
    from otklik.platform.db import get_engine, session_scope

    upgrade(bench.database_url)
    with session_scope() as s:
        _, admin = accounts.bootstrap_workspace(s, slug="bench", name="bench", admin_email="admin@example.com",
                                                admin_password="bench-password-123")
        token, _ = accounts.create_api_token(s, accounts.actor_for(admin), name="bench")
        admin_id = admin.id
    client = TestClient(create_app())  # no `with`: no lifespan, no embedded worker
    client.headers["Authorization"] = f"Bearer {token}"

    def ok(r: Any) -> Any:
        if r.status_code >= 400:
            raise SystemExit(f"{r.request.method} {r.request.url}: HTTP {r.status_code} {r.text[:300]}")
        return r.json() if r.content else None

    log("seeding through the API")
    conv_ids = []
    for k in range(150):
        body = ok(client.post("/api/v1/inbound", json={
            "identity_kind": "email", "identity": f"c{k}@example.com", "customer_name": f"Клиент {k}",
            "text": f"Где мой заказ {k}? Доставка задерживается.", "message_id": f"seed-{k}"}))
        conv_ids.append(body["conversation_id"])
        if k % 2:
            ok(client.patch(f"/api/v1/conversations/{body['conversation_id']}",
                            json={"tags": ["delivery", f"t{k % 5}"]}))
    big = conv_ids[0]
    for j in range(150):
        att = []
        if j < 20:
            att = [ok(client.post("/api/v1/attachments", files={"file": (f"f{j}.txt", b"hello", "text/plain")}))["id"]]
        ok(client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": "c0@example.com",
                                                 "text": f"Сообщение {j} про заказ", "message_id": f"big-{j}",
                                                 "attachment_ids": att}))

    statements: list[str] = []

    @event.listens_for(get_engine(), "before_cursor_execute")
    def count(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    def probe(method: str, url: str, **kw: Any) -> dict[str, Any]:
        statements.clear()
        r = client.request(method, url, **kw)
        ok(r)
        kinds = Counter(kind_of(s) for s in statements)
        if verbose:
            log(f"{method} {url}: {len(statements)}")
            for s in statements:
                log("    " + " ".join(s.split())[:160])
        data = r.json()
        items = len(data["items"]) if isinstance(data, dict) and "items" in data else (
            len(data) if isinstance(data, list) else 1)
        return {"statements": len(statements), "without_tx": len(statements) - kinds.get("tx", 0),
                "by_kind": dict(kinds), "items": items, "status": r.status_code}

    results: dict[str, Any] = {}
    for limit in (10, 100):
        results[f"list_conversations[limit={limit}]"] = probe("GET", f"/api/v1/conversations?limit={limit}")
        results[f"list_conversations_tag[limit={limit}]"] = probe(
            "GET", f"/api/v1/conversations?tag=delivery&limit={limit}")
        results[f"list_conversations_search[limit={limit}]"] = probe(
            "GET", f"/api/v1/conversations?q=заказ&limit={limit}")
        results[f"list_messages[limit={limit}]"] = probe("GET", f"/api/v1/conversations/{big}/messages?limit={limit}")
        results[f"list_customers[limit={limit}]"] = probe("GET", f"/api/v1/customers?limit={limit}")
        results[f"search_messages[limit={limit}]"] = probe("GET", f"/api/v1/messages/search?q=заказ&limit={limit}")
    results["get_conversation"] = probe("GET", f"/api/v1/conversations/{big}")
    results["reply[first: assigns]"] = probe("POST", f"/api/v1/conversations/{conv_ids[1]}/messages",
                                             json={"text": "Проверяем ваш заказ."})
    results["reply[next]"] = probe("POST", f"/api/v1/conversations/{conv_ids[1]}/messages",
                                   json={"text": "Заказ передан курьеру."})
    results["inbound[new customer]"] = probe("POST", "/api/v1/inbound", json={
        "identity_kind": "email", "identity": "new@example.com", "text": "Здравствуйте", "message_id": "q-new"})
    results["inbound[existing customer]"] = probe("POST", "/api/v1/inbound", json={
        "identity_kind": "email", "identity": "c5@example.com", "text": "Ещё вопрос", "message_id": "q-old"})
    results["inbound[retry, duplicate]"] = probe("POST", "/api/v1/inbound", json={
        "identity_kind": "email", "identity": "c5@example.com", "text": "Ещё вопрос", "message_id": "q-old"})
    for n in (10, 100):
        results[f"inbound_batch[{n} existing customers]"] = probe("POST", "/api/v1/inbound/batch", json={
            "messages": [{"identity_kind": "email", "identity": f"c{k}@example.com", "text": "batch",
                          "message_id": f"batch{n}-{k}"} for k in range(n)]})
    log(f"admin {admin_id}; done")
    summary = {}
    for name, r in results.items():
        summary[name] = r["statements"]
    return {"statements_per_request": summary, "detail": results,
            "note": "statements include BEGIN/SAVEPOINT/RELEASE ('tx'); COMMIT is not a cursor execute"}


if __name__ == "__main__":
    main()
