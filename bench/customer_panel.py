"""Server time and SQL statements of the customer panel, the customer page, /search and /settings/templates.

A fresh SQLite database (or --db-url), one customer with --conversations conversations on three channels,
--notes notes and --tasks open tasks, plus 2,000 other customers with a message each for search to wade
through. Requests go through the ASGI app in-process (no network), one at a time; after 3 warm-ups each page
is fetched --requests times. Prints one JSON line; asserts nothing.

    .venv/bin/python bench/customer_panel.py
    .venv/bin/python bench/customer_panel.py --db-url postgresql://postgres@127.0.0.1:5432/otklik_bench_a2
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db-url", default=None)
    parser.add_argument("--conversations", type=int, default=300)
    parser.add_argument("--notes", type=int, default=100)
    parser.add_argument("--tasks", type=int, default=30)
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="otklik-bench-a2-")
    url = args.db_url or f"sqlite:///{tmp}/bench.db"
    os.environ.update(OTKLIK_DATABASE_URL=url, OTKLIK_QUEUE="memory", OTKLIK_DATA_DIR=tmp,
                      OTKLIK_EMBEDDED_WORKER="false")
    os.environ.pop("OTKLIK_REDIS_URL", None)

    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from otklik.accounts import service as accounts
    from otklik.accounts.models import Role
    from otklik.app import create_app
    from otklik.conversations import service as conversations
    from otklik.customers import service as customers
    from otklik.customers.tasks import create_task
    from otklik.migrations import upgrade
    from otklik.platform.db import get_engine, session_scope

    if url.startswith("postgresql"):
        from sqlalchemy import create_engine, text

        admin = create_engine(url.replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        admin.dispose()
    upgrade(url)
    t0 = time.perf_counter()
    with session_scope() as s:
        ws, admin_user = accounts.bootstrap_workspace(s, slug="bench", name="Торты", admin_email="admin@example.com",
                                                      admin_password="bench-password-1")
        actor = accounts.actor_for(admin_user)
        agent = accounts.create_user(s, actor, email="agent@example.com", name="Мария", role=Role.agent,
                                     password="bench-password-1")
        ws_id = ws.id
    channels = [("email", "email", "olga@example.com"), ("telegram", "telegram", "777001"),
                ("phone", "phone", "+79161112233")]
    with session_scope() as s:
        got = conversations.receive(s, ws_id, conversations.InboundMessage(
            channel="email", identity_kind="email", identity_value="olga@example.com", text="Торт на субботу",
            customer_name="Ольга"))
        customer_id = got.conversation.customer_id
        customers.add_identity(s, actor, customer_id, customers.IdentityInput("telegram", "777001"))
        customers.add_identity(s, actor, customer_id, customers.IdentityInput("phone", "+79161112233"))
        for i in range(args.conversations - 1):
            conversations.create_conversation(s, actor, customer_id=customer_id, channel=channels[i % 3][0],
                                              subject=f"Заказ торта №{1000 + i}")
        for i in range(args.notes):
            customers.add_note(s, actor, customer_id, f"Заметка {i}: любит шоколад")
        for i in range(args.tasks):
            create_task(s, ws_id, customer_id=customer_id, title=f"Перезвонить {i}", assignee_id=agent.id, actor=actor)
    with session_scope() as s:
        conversations.receive_many(s, ws_id, [conversations.InboundMessage(
            channel="email", identity_kind="email", identity_value=f"c{i}@example.com",
            text=f"Здравствуйте, где мой заказ {i}? Торт к празднику", customer_name=f"Клиент {i}")
            for i in range(args.others)])
    seeded = time.perf_counter() - t0

    statements = {"n": 0}
    event.listen(get_engine(), "before_cursor_execute", lambda *a: statements.__setitem__("n", statements["n"] + 1))
    app = create_app()
    results = {}
    with TestClient(app) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        client.post("/login", data={"email": "agent@example.com", "password": "bench-password-1", "csrf_token": token})
        pages = {"panel": f"/ui/customers/{customer_id}/panel", "customer_page": f"/customers/{customer_id}",
                 "search_tort": "/search?q=торт", "customers_list": "/customers?q=Клиент"}
        for name, path in pages.items():
            for _ in range(3):
                assert client.get(path).status_code == 200
            times = []
            statements["n"] = 0
            for _ in range(args.requests):
                start = time.perf_counter()
                r = client.get(path)
                times.append((time.perf_counter() - start) * 1000)
                assert r.status_code == 200
            times.sort()
            results[name] = {"p50_ms": round(statistics.median(times), 2),
                             "p95_ms": round(times[int(len(times) * 0.95) - 1], 2),
                             "statements_per_request": statements["n"] / args.requests}
    print(json.dumps({"db": url.split(":")[0], "conversations": args.conversations, "notes": args.notes,
                      "tasks": args.tasks, "other_customers": args.others, "seed_seconds": round(seeded, 1),
                      "requests_per_page": args.requests, "pages": results}, ensure_ascii=False))


if __name__ == "__main__":
    main()
