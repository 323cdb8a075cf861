"""Reports (issue 15): the summary endpoint and the CSV export at 100,000 conversations, over HTTP.

1. A fresh database (SQLite, or PostgreSQL with --db postgres) migrated by `otklik migrate`; one workspace.
2. A bulk load (Core inserts, no service calls): --conversations conversations spread over the last --days days
   (30: the whole load inside the dashboard's default range, the worst case for a 30-day figure), 1 customer per
   2.5 conversations, a customer message per conversation plus --messages more per conversation, an SLA timer on
   60 % (8 % breached), the assistant's decision on 30 % (a quarter of them hand-offs), a re-open on 3 %, and
   --surveys survey answers (CSAT, a third with a CES).
3. `otklik serve`; after 3 warm-up calls, --n timed calls each of GET /api/v1/reports/summary and /daily for the
   last 30 days (the dashboard page makes exactly these two reads) and for the whole year; the same two reads
   in this process (wall and CPU time); then the CSV export of the 30-day range downloaded in full (seconds,
   rows, and the server's resident memory before and after).

    .venv/bin/python bench/reports.py [--db sqlite|postgres] [--conversations 100000] [--days 30] [--n 50]
                                      [--no-rollup]

After the load the daily rollup is built as `otklik reports-rollup` does (a Core bulk load writes no marks), unless
--no-rollup; the summary of the whole year is checked equal with and without it, and one day's refresh is timed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

CHANNELS = (("widget", 35), ("email", 25), ("telegram", 20), ("whatsapp", 8), ("vk", 6), ("phone", 6))
REASONS = ("negative", "asked_for_human", "low_confidence", "no_answer", "urgent")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def load(n: int, days: int, surveys: int, extra_messages: int, seed: int = 15) -> dict[str, int]:
    from sqlalchemy import insert, select

    from otklik.accounts.models import AuditEntry, Workspace
    from otklik.assistant.models import AssistantDecision
    from otklik.conversations.models import Conversation, Message
    from otklik.conversations.sla import SlaTimer
    from otklik.customers.models import Customer
    from otklik.feedback.models import SurveyAnswer
    from otklik.migrations import all_models
    from otklik.platform.db import session_scope

    all_models()
    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    channels = [c for c, _ in CHANNELS]
    weights = [w for _, w in CHANNELS]
    with session_scope() as s:
        ws = s.scalar(select(Workspace.id).where(Workspace.slug == "bench"))
        assert ws is not None
        n_customers = max(1, int(n / 2.5))
        for start in range(0, n_customers, 10_000):
            s.execute(insert(Customer.__table__), [{"workspace_id": ws, "name": f"Клиент {i}", "attributes": {},
                                          "search_terms": "", "created_at": now, "updated_at": now}
                                         for i in range(start, min(n_customers, start + 10_000))])
        first_customer = s.scalar(select(Customer.id).where(Customer.workspace_id == ws).order_by(Customer.id))
        assert first_customer is not None
    counts = {"conversations": 0, "messages": 0, "sla_timers": 0, "decisions": 0, "audit": 0, "surveys": 0}
    conv_rows, decided = [], []
    for i in range(n):
        created = now - dt.timedelta(seconds=rng.uniform(0, days * 86400 - 3600))
        channel = rng.choices(channels, weights)[0]
        answered = rng.random() < 0.9
        first = created + dt.timedelta(seconds=rng.lognormvariate(6.5, 1.2)) if answered else None
        solved = created + dt.timedelta(seconds=rng.lognormvariate(10, 1.0)) if rng.random() < 0.75 else None
        if solved is not None and solved > now:
            solved = None
        status = "solved" if solved else rng.choice(("open", "pending", "new"))
        conv_rows.append({"workspace_id": ws, "number": i + 1, "customer_id": first_customer + rng.randrange(
            n_customers), "channel": channel, "subject": "Где мой заказ?", "status": status,
            "priority": "normal", "version": 1, "message_count": 1 + extra_messages,
            "last_message_preview": "", "created_at": created, "updated_at": created, "last_message_at": created,
            "last_customer_message_at": created, "first_response_at": first, "solved_at": solved,
            "urgent": False, "sla_breached": False, "transfer_count": rng.choices((0, 1, 2), (85, 12, 3))[0]})
    conv_rows.sort(key=lambda row: row["created_at"])  # ids grow with time, as in a live workspace
    for number, row in enumerate(conv_rows, 1):
        row["number"] = number
    with session_scope() as s:
        for start in range(0, n, 5000):
            s.execute(insert(Conversation.__table__), conv_rows[start:start + 5000])
        ids = list(s.scalars(select(Conversation.id).where(Conversation.workspace_id == ws)
                             .order_by(Conversation.number)))
    counts["conversations"] = len(ids)
    log(f"{len(ids)} conversations")
    with session_scope() as s:
        batch: list[dict] = []
        for cid, row in zip(ids, conv_rows, strict=True):
            for k in range(1 + extra_messages):
                batch.append({"workspace_id": ws, "conversation_id": cid, "channel": row["channel"],
                              "direction": "inbound" if k % 2 == 0 else "outbound",
                              "author_kind": "customer" if k % 2 == 0 else "agent", "body_text": "Где мой заказ?",
                              "body_html": "", "is_internal": False, "delivery_status": "received", "meta": {},
                              "search_terms": "", "created_at": row["created_at"]})
            if len(batch) >= 10_000:
                s.execute(insert(Message.__table__), batch)
                counts["messages"] += len(batch)
                batch = []
        if batch:
            s.execute(insert(Message.__table__), batch)
            counts["messages"] += len(batch)
        first_message = dict(s.execute(select(Message.conversation_id, Message.id).where(
            Message.workspace_id == ws, Message.author_kind == "customer")).all())
    log(f"{counts['messages']} messages")
    with session_scope() as s:
        timers, decisions, audit = [], [], []
        for cid, row in zip(ids, conv_rows, strict=True):
            if rng.random() < 0.6:
                breached = row["created_at"] + dt.timedelta(hours=1) if rng.random() < 0.08 else None
                timers.append({"workspace_id": ws, "conversation_id": cid, "kind": "first_response",
                               "target_minutes": 60, "business_hours": False, "started_at": row["created_at"],
                               "elapsed_minutes": 0, "state": "breached" if breached else "met",
                               "breached_at": breached})
            if rng.random() < 0.3:
                action = "handoff" if rng.random() < 0.25 else "answer"
                decisions.append({"workspace_id": ws, "conversation_id": cid, "message_id": first_message[cid],
                                  "action": action, "reason": rng.choice(REASONS) if action == "handoff" else "kb",
                                  "confidence": 0.8, "failed": False, "details": {},
                                  "created_at": row["created_at"]})
                decided.append(cid)
            if row["solved_at"] is not None and rng.random() < 0.03:
                audit.append({"workspace_id": ws, "actor_kind": "system", "entity_type": "conversation",
                              "entity_id": cid, "action": "status_changed", "before": {"status": "solved"},
                              "after": {"status": "open"}, "note": "customer wrote again",
                              "created_at": row["solved_at"]})
        for table, rows in ((SlaTimer, timers), (AssistantDecision, decisions), (AuditEntry, audit)):
            for start in range(0, len(rows), 10_000):
                s.execute(insert(table.__table__), rows[start:start + 10_000])
        counts.update(sla_timers=len(timers), decisions=len(decisions), audit=len(audit))
        solved = [(cid, row) for cid, row in zip(ids, conv_rows, strict=True) if row["solved_at"] is not None]
        picked = rng.sample(solved, min(surveys, len(solved)))
        answers = []
        for cid, row in picked:
            answers.append({"workspace_id": ws, "conversation_id": cid, "customer_id": row["customer_id"],
                            "kind": "csat", "channel": row["channel"], "comment": "",
                            "score": rng.choices((5, 4, 3, 2, 1), (60, 22, 8, 5, 5))[0],
                            "sent_at": row["solved_at"], "answered_at": row["solved_at"],
                            "created_at": row["solved_at"]})
            if rng.random() < 0.33:
                answers.append({**answers[-1], "kind": "ces", "score": rng.randint(3, 7)})
        for start in range(0, len(answers), 10_000):
            s.execute(insert(SurveyAnswer.__table__), answers[start:start + 10_000])
        counts["surveys"] = len(answers)
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30, help="spread the conversations over this many days")
    parser.add_argument("--messages", type=int, default=1, help="messages per conversation beyond the first")
    parser.add_argument("--surveys", type=int, default=50_000)
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--no-rollup", action="store_true", help="leave the rollup empty: every day live")
    args = parser.parse_args()
    bench = BenchEnv(args.db)
    try:
        import httpx

        bench.migrate()
        admin = {"Authorization": f"Bearer {bench.create_admin_token()}"}
        bench.apply_to_this_process()
        t0 = time.perf_counter()
        counts = load(args.conversations, args.days, args.surveys, args.messages)
        load_s = time.perf_counter() - t0
        log(f"loaded in {load_s:.0f} s: {counts}")
        if args.db == "postgres":
            from _common import PG_URL, _pg_connect

            with _pg_connect(PG_URL) as conn:
                conn.execute("ANALYZE")
        rollup_out: dict = {}
        if not args.no_rollup:  # a bulk load writes no marks: build the history as `otklik reports-rollup` does
            from otklik.reports import rollup

            t0 = time.perf_counter()
            rollup_out["rebuild_lines"] = list(rollup.rebuild_history("bench", None, None))
            rollup_out["rebuild_s"] = round(time.perf_counter() - t0, 1)
            log(f"rollup rebuilt in {rollup_out['rebuild_s']} s")
        base = bench.start_server()
        assert bench.server is not None
        http = httpx.Client(base_url=base + "/api/v1", timeout=120, headers=admin)
        today = dt.datetime.now(dt.UTC).date()
        ranges = {"30_days": ((today - dt.timedelta(days=29)).isoformat(), today.isoformat()),
                  "365_days": ((today - dt.timedelta(days=364)).isoformat(), today.isoformat())}
        out: dict = {"db": args.db, "load": counts, "load_s": round(load_s, 1), "spread_days": args.days,
                     "rollup": rollup_out or "off (--no-rollup): every day computed live"}
        for name, (start, end) in ranges.items():
            for path in ("/reports/summary", "/reports/daily"):
                latencies = []
                for i in range(args.n + 3):
                    t = time.perf_counter()
                    r = http.get(path, params={"from": start, "to": end})
                    took = time.perf_counter() - t
                    assert r.status_code == 200, r.text
                    if i >= 3:
                        latencies.append(took)
                out[f"{path.rsplit('/', 1)[1]}_{name}"] = summarize(latencies)
            out[f"conversations_{name}"] = http.get("/reports/summary", params={"from": start, "to": end}
                                                    ).json()["conversations"]
            log(f"{name}: {out[f'summary_{name}']}")
        # the same reads in this process, wall and this thread's CPU time: on a shared box the wall time also
        # measures the other processes on the cores; the CPU time is what the figure itself costs
        from sqlalchemy import select

        from otklik.accounts.models import Workspace
        from otklik.platform.db import session_scope
        from otklik.reports import service

        for name, (start, end) in ranges.items():
            wall, cpu = [], []
            filters = service.make_filters(start, end)
            for i in range(args.n + 3):
                with session_scope(write=False) as session:
                    ws = session.scalar(select(Workspace.id).where(Workspace.slug == "bench"))
                    t, c = time.perf_counter(), time.thread_time()
                    service.summary(session, ws, filters)
                    service.daily(session, ws, filters)
                    if i >= 3:
                        wall.append(time.perf_counter() - t)
                        cpu.append(time.thread_time() - c)
            out[f"in_process_summary_and_daily_{name}"] = {"wall": summarize(wall), "cpu": summarize(cpu)}
            log(f"in process {name}: {out[f'in_process_summary_and_daily_{name}']}")
        if not args.no_rollup:  # the rollup's figures are the live ones; what one day's refresh costs
            from otklik.reports import rollup

            with session_scope(write=False) as session:
                ws = session.scalar(select(Workspace.id).where(Workspace.slug == "bench"))
                year = service.make_filters(*ranges["365_days"])
                rollup_out["year_equals_live"] = (service.summary(session, ws, year)
                                                  == service.summary(session, ws, year, rollup=False))
                zone = service.workspace_zone(session, ws)
            refresh = []
            for i in range(10):
                with session_scope() as session:
                    t = time.perf_counter()
                    rollup.store(session, ws, zone, today - dt.timedelta(days=i + 1), today - dt.timedelta(days=i + 1))
                    refresh.append(time.perf_counter() - t)
            rollup_out["refresh_one_day"] = summarize(refresh)
            log(f"rollup: {rollup_out}")
        filtered = []
        for _ in range(args.n):
            t = time.perf_counter()
            http.get("/reports/summary", params={"from": ranges["30_days"][0], "to": ranges["30_days"][1],
                                                 "channel": "email"})
            filtered.append(time.perf_counter() - t)
        out["summary_30_days_channel_email"] = summarize(filtered)
        rss_before = _rss_kb(bench.server.pid)
        t = time.perf_counter()
        rows = size = 0
        with http.stream("GET", "/reports/conversations.csv", params={"from": ranges["30_days"][0],
                                                                      "to": ranges["30_days"][1]}) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                size += len(chunk)
                rows += chunk.count(b"\n")
        out["csv_export_30_days"] = {"seconds": round(time.perf_counter() - t, 2), "rows": rows - 1,
                                     "bytes": size, "server_rss_mb_before": round(rss_before / 1024, 1),
                                     "server_rss_mb_after": round(_rss_kb(bench.server.pid) / 1024, 1)}
        log(f"csv: {out['csv_export_30_days']}")
        rss_before = _rss_kb(bench.server.pid)
        t = time.perf_counter()
        size = 0
        with http.stream("GET", "/reports/conversations.xlsx", params={"from": ranges["30_days"][0],
                                                                       "to": ranges["30_days"][1]}) as r:
            assert r.status_code == 200
            for chunk in r.iter_bytes():
                size += len(chunk)
        out["xlsx_export_30_days"] = {"seconds": round(time.perf_counter() - t, 2), "bytes": size,
                                      "server_rss_mb_before": round(rss_before / 1024, 1),
                                      "server_rss_mb_after": round(_rss_kb(bench.server.pid) / 1024, 1)}
        log(f"xlsx: {out['xlsx_export_30_days']}")
        out["machine"] = machine_note()
        print(json.dumps(out, ensure_ascii=False, indent=1))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
