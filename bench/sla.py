"""SLA figures (issue 13): the breach sweep over 100,000 running timers, the inbox's «SLA due soonest» sort at
100,000 conversations, and what SLA evaluation adds to an inbound message.

1. A fresh database, bulk-loaded by bench/inbox.py's loader (100,000 conversations, ~20% active).
2. Every conversation gets a running first-response timer (as if all 100,000 were open and timed); --due of
   them are past due, the rest due over the next week; active conversations carry `sla_due_at`.
3. Sweep: one `sla.sweep()` that fires the due ones (each claimed by a conditional UPDATE, with its audit row
   and event), then a steady-state sweep with nothing due; the plan of its two SELECTs is printed (index use).
4. «Due soonest»: GET /api/v1/conversations?sort=due&status=new&status=open&status=pending (25 rows) through
   the ASGI app in process, one request at a time, 3 warm-up requests, then --requests.
5. Per-message overhead: `receive()` of --messages new customer messages into a small workspace, interleaved
   with and without three SLA policies (business hours on a Moscow calendar with RU holidays); p50/p99 of each.

    .venv/bin/python bench/sla.py [--db sqlite|postgres] [--conversations 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize


def load_timers(bench: BenchEnv, due_now: int) -> dict[str, Any]:
    from inbox import Loader

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rng = random.Random(13)
    with Loader(bench) as db:
        rows = db.conn.execute("SELECT id, workspace_id, status, created_at FROM conversations ORDER BY id").fetchall()
        timers, due_of, past = [], {}, 0
        step = max(len(rows) // max(due_now, 1), 1)
        for i, (cid, ws, _status, _created) in enumerate(rows):
            if i % step == 0 and past < due_now:
                due, past = now - dt.timedelta(minutes=rng.randint(1, 60)), past + 1
            else:
                due = now + dt.timedelta(minutes=rng.randint(5, 7 * 24 * 60))
            due_of[cid] = due
            start = due - dt.timedelta(minutes=60)
            timers.append((ws, cid, "first_response", 60, False, start, start, 0, due, "running"))
        db.write("sla_timers", ("workspace_id", "conversation_id", "kind", "target_minutes", "business_hours",
                                "started_at", "running_since", "elapsed_minutes", "due_at", "state"), timers)
        active = [cid for cid, _ws, status, _c in rows if status in ("new", "open", "pending")]
        updates = [(Loader._sqlite_value(due_of[c]) if bench.db == "sqlite" else due_of[c], c) for c in active]
        if bench.db == "sqlite":
            db.conn.execute("BEGIN")
            db.conn.executemany("UPDATE conversations SET sla_due_at = ? WHERE id = ?", updates)
            db.conn.execute("COMMIT")
            db.conn.execute("ANALYZE")
        else:
            with db.conn.cursor() as cur:
                cur.executemany("UPDATE conversations SET sla_due_at = %s WHERE id = %s", updates)
            db.conn.commit()
    return {"timers": len(timers), "due_now": past, "active_conversations": len(active)}


def sweep_figures(bench: BenchEnv) -> dict[str, Any]:
    from sqlalchemy import text

    from otklik.conversations import sla
    from otklik.platform.db import get_engine, session_scope

    out: dict[str, Any] = {}
    t = time.perf_counter()
    with session_scope() as session:
        fired = sla.sweep(session)
    out["first_sweep"] = {"fired": fired, "seconds": round(time.perf_counter() - t, 3)}
    t = time.perf_counter()
    with session_scope() as session:
        fired = sla.sweep(session)
    out["steady_sweep"] = {"fired": fired, "ms": round((time.perf_counter() - t) * 1000, 2)}
    if bench.db == "sqlite":
        with get_engine().connect() as conn:
            now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            plans = {}
            for name, col in (("warn", "warn_at"), ("due", "due_at")):
                plan = conn.execute(text(f"EXPLAIN QUERY PLAN SELECT id FROM sla_timers WHERE state = 'running' "
                                         f"AND {col} <= '{now}' ORDER BY {col} LIMIT 500")).fetchall()
                plans[name] = " / ".join(str(r[-1]) for r in plan)
            out["plans"] = plans
    return out


def due_sort(token: str, n: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from otklik.app import create_app

    params = [("sort", "due"), ("status", "new"), ("status", "open"), ("status", "pending"), ("limit", "25")]
    with TestClient(create_app()) as client:
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(3):
            assert client.get("/api/v1/conversations", params=params, headers=headers).status_code == 200
        lat = []
        first_page = None
        for _ in range(n):
            t = time.perf_counter()
            r = client.get("/api/v1/conversations", params=params, headers=headers)
            lat.append(time.perf_counter() - t)
            first_page = first_page or r.json()
        dues = [c["sla_due_at"] for c in (first_page or {}).get("items", [])]
    return {"api_list_sort_due_ms": summarize(lat), "rows": len(dues), "ordered": dues == sorted(dues)}


def per_message(n: int) -> dict[str, Any]:
    from otklik.accounts import service as accounts
    from otklik.calendars import service as calendars
    from otklik.conversations import service as conversations
    from otklik.conversations import sla
    from otklik.platform.db import session_scope

    lat: dict[str, list[float]] = {"without_sla": [], "with_sla": []}
    cpu: dict[str, list[float]] = {"without_sla": [], "with_sla": []}
    own: list[float] = []  # time inside the SLA hooks per inbound message of the timed workspace
    hook = sla.on_customer_message
    spent = [0.0]

    def timed_hook(*a: Any, **k: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return hook(*a, **k)
        finally:
            spent[0] += time.perf_counter() - t0

    sla.on_customer_message = timed_hook  # type: ignore[assignment]
    with session_scope() as session:
        plain, _ = accounts.bootstrap_workspace(session, slug="bench-plain", name="plain",
                                                admin_email="a@plain.example", admin_password="x" * 12)
        timed, admin = accounts.bootstrap_workspace(session, slug="bench-sla", name="sla",
                                                    admin_email="a@sla.example", admin_password="x" * 12)
        actor = accounts.actor_for(admin)
        week = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        calendars.create_calendar(session, actor, {"name": "Москва", "time_zone": "Europe/Moscow", "hours": week,
                                                   "holidays": "RU"})
        for body in ({"name": "urgent", "conditions": {"priorities": ["urgent"]}, "first_response_minutes": 30,
                      "business_hours": False},
                     {"name": "chat", "conditions": {"channels": ["telegram", "widget"]}, "first_response_minutes": 15,
                      "next_response_minutes": 30, "resolution_minutes": 1440},
                     {"name": "rest", "first_response_minutes": 120, "next_response_minutes": 480,
                      "resolution_minutes": 1620}):
            sla.create_policy(session, actor, body)
        ids = {"without_sla": plain.id, "with_sla": timed.id}
    for i in range(n):
        for kind in (("without_sla", "with_sla") if i % 2 else ("with_sla", "without_sla")):
            inbound = conversations.InboundMessage(channel="email", identity_kind="email",
                                                   identity_value=f"c{i % 200}@example.com", text=f"Где заказ {i}?")
            spent[0] = 0.0
            t, c = time.perf_counter(), time.thread_time()
            with session_scope() as session:
                conversations.receive(session, ids[kind], inbound)
            lat[kind].append(time.perf_counter() - t)
            cpu[kind].append(time.thread_time() - c)
            if kind == "with_sla":
                own.append(spent[0])
    sla.on_customer_message = hook  # type: ignore[assignment]
    out: dict[str, Any] = {k: summarize(v) for k, v in lat.items()}
    out["cpu"] = {k: summarize(v) for k, v in cpu.items()}
    out["sla_hook"] = summarize(own)
    out["cpu_p99_added_ms"] = round(out["cpu"]["with_sla"]["p99_ms"] - out["cpu"]["without_sla"]["p99_ms"], 3)
    out["p99_added_ms"] = round(out["with_sla"]["p99_ms"] - out["without_sla"]["p99_ms"], 3)
    out["p50_added_ms"] = round(out["with_sla"]["p50_ms"] - out["without_sla"]["p50_ms"], 3)
    return out


def main() -> None:
    from _dataset import Shape

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--due", type=int, default=500, help="timers past due when the sweep runs")
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--inbound", type=int, default=400, help="inbound messages per arm for the overhead figure")
    ap.add_argument("--json", default="")
    ap.add_argument("--per-message-only", action="store_true", help="skip the 100,000-conversation part")
    args = ap.parse_args()
    from inbox import bulk_load

    shape = Shape(conversations=args.conversations, messages=args.messages, customers=args.customers)
    bench = BenchEnv(args.db)
    bench.env["OTKLIK_EMBEDDED_WORKER"] = "false"
    bench.apply_to_this_process()
    import os

    os.environ["OTKLIK_EMBEDDED_WORKER"] = "false"
    os.environ["OTKLIK_E5"] = "off"
    results: dict[str, Any] = {"bench": "sla", "db": args.db, "env": machine_note()}
    try:
        bench.migrate()
        if not args.per_message_only:
            token = bench.create_admin_token()
            log(f"bulk-loading {shape.conversations} conversations")
            results["load"] = bulk_load(bench, shape, True)
            results["timers"] = load_timers(bench, args.due)
            log(f"  {results['timers']}")
            results["sweep"] = sweep_figures(bench)
            log(f"  sweep {results['sweep']}")
            results["due_sort"] = due_sort(token, args.requests)
            log(f"  due sort {results['due_sort']}")
        results["per_message"] = per_message(args.inbound)
        log(f"  per message {results['per_message']}")
    finally:
        bench.close()
    text = json.dumps(results, ensure_ascii=False, default=str)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
