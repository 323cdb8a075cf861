"""Inbox listing and full-text search latency over a large workspace, through the real HTTP API.

1. A fresh database (`otklik migrate`), an admin + API token (`otklik create-user ... --token`).
2. Bulk load straight into the tables (SQLite: executemany; PostgreSQL: COPY): --customers customers with an
   e-mail identity each, --agents agents, --teams teams, --conversations conversations spread over a year (an
   established helpdesk: ~80% closed), their tags, and --messages messages (Russian + English texts from a
   small vocabulary, `search_terms` from the product's own stemmer). Full-text indexes: SQLite's FTS5 insert
   trigger is dropped during the load, then `INSERT INTO messages_fts(messages_fts) VALUES('rebuild')` and the
   trigger re-created; PostgreSQL's generated tsvector column fills itself, its GIN index is dropped during
   the COPY and re-created after. PostgreSQL then gets VACUUM ANALYZE (what autovacuum does after a load);
   SQLite gets no ANALYZE (the product never runs it) unless --sqlite-analyze.
3. `otklik serve` as a subprocess; one request at a time (pure latency), per scenario 3 warm-up requests
   then up to --requests requests or --seconds seconds, whichever comes first. Parameters rotate (agents,
   teams, tags, words) so the percentiles are not one cached row set.

    .venv/bin/python bench/inbox.py --db sqlite
    .venv/bin/python bench/inbox.py --db postgres

With --explain FILE, every scenario is also run once in-process (FastAPI TestClient) with each SQL statement
timed and its plan written to FILE (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN (ANALYZE, BUFFERS)).
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import re
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

LISTING_GOAL_MS, SEARCH_GOAL_MS = 50, 100


# -- bulk load ------------------------------------------------------------------------------------------------

CONV_COLS = ("id", "workspace_id", "number", "customer_id", "channel", "subject", "status", "priority", "category",
             "language", "assignee_id", "team_id", "previous_conversation_id", "merged_into_id", "version",
             "message_count", "last_message_preview", "created_at", "updated_at", "last_message_at",
             "last_customer_message_at", "first_response_at", "solved_at", "closed_at")
MSG_COLS = ("id", "workspace_id", "conversation_id", "channel", "direction", "author_kind", "author_user_id",
            "body_text", "body_html", "is_internal", "channel_message_id", "delivery_status", "delivery_error",
            "meta", "search_terms", "created_at")
CUST_COLS = ("id", "workspace_id", "name", "language", "timezone", "attributes", "merged_into_id", "search_terms",
             "created_at", "updated_at")
IDENT_COLS = ("id", "workspace_id", "customer_id", "kind", "external_id", "display", "verified", "created_at")
USER_COLS = ("id", "workspace_id", "email", "name", "role", "password_hash", "language", "is_active", "created_at")
TEAM_COLS = ("id", "workspace_id", "name", "created_at")
MEMBER_COLS = ("team_id", "user_id", "workspace_id")
TAG_COLS = ("conversation_id", "tag", "workspace_id")


class Loader:
    """Writes rows (dicts or tuples in column order) in chunks; datetimes stay aware until the driver."""

    def __init__(self, bench: BenchEnv):
        self.db = bench.db
        self.url = bench.database_url

    def __enter__(self) -> Loader:
        if self.db == "sqlite":
            import sqlite3

            self.conn = sqlite3.connect(self.url.split("///", 1)[1], isolation_level=None)
            for pragma in ("journal_mode=WAL", "synchronous=OFF", "foreign_keys=ON", "cache_size=-524288",
                           "temp_store=MEMORY"):
                self.conn.execute(f"PRAGMA {pragma}")
        else:
            import psycopg

            self.conn = psycopg.connect(self.url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()

    @staticmethod
    def _sqlite_value(v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite format
        if isinstance(v, bool):
            return int(v)
        return v

    def write(self, table: str, cols: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        if self.db == "sqlite":
            sql = f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            fix = self._sqlite_value
            self.conn.execute("BEGIN")
            self.conn.executemany(sql, ([fix(v) for v in r] for r in rows))
            self.conn.execute("COMMIT")
        else:
            with self.conn.cursor() as cur, cur.copy(f"COPY {table} ({', '.join(cols)}) FROM STDIN") as copy:
                for r in rows:
                    copy.write_row(r)
            self.conn.commit()

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)
        if self.db != "sqlite":
            self.conn.commit()

    def scalar(self, sql: str) -> Any:
        return self.conn.execute(sql).fetchone()[0]


def bulk_load(bench: BenchEnv, shape: Any, analyze_sqlite: bool) -> dict[str, Any]:
    from _dataset import build_pools, check_terms, customers, generate

    pools = build_pools()
    check_terms(pools)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    old = now - dt.timedelta(days=shape.days + 30)
    timings: dict[str, Any] = {}
    t_all = time.perf_counter()
    with Loader(bench) as db:
        ws = db.scalar("SELECT id FROM workspaces WHERE slug = 'bench'")
        admin = db.scalar("SELECT id FROM users WHERE workspace_id = 1")
        if (ws, admin) != (1, 1):
            raise SystemExit(f"expected workspace 1 / admin 1 in a fresh database, got {ws} / {admin}")

        # Full-text maintenance off during the load (re-built below).
        if bench.db == "sqlite":
            trigger_sql = db.scalar("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'messages_fts_ai'")
            db.execute("DROP TRIGGER messages_fts_ai")
        else:
            gin_sql = db.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_messages_search'")
            db.execute("DROP INDEX ix_messages_search")

        t0 = time.perf_counter()
        db.write("users", USER_COLS, [(k, 1, f"agent{k}@example.com", f"Agent {k}", "agent", None, "ru", True, old)
                                      for k in range(2, shape.agents + 2)])
        db.write("teams", TEAM_COLS, [(k, 1, f"Team {k}", old) for k in range(1, shape.teams + 1)])
        db.write("team_members", MEMBER_COLS, [((k % shape.teams) + 1, k, 1) for k in range(2, shape.agents + 2)])
        custs = list(customers(shape))
        db.write("customers", CUST_COLS, [(c["id"], 1, c["name"], c["language"], None, "{}", None, c["terms"], old, old)
                                          for c in custs])
        db.write("identities", IDENT_COLS, [(c["id"], 1, c["id"], "email", c["email"], None, False, old)
                                            for c in custs])
        timings["people_s"] = round(time.perf_counter() - t0, 1)

        t0 = time.perf_counter()
        t_write = 0.0
        conv_rows: list[tuple[Any, ...]] = []
        tag_rows: list[tuple[Any, ...]] = []
        msg_rows: list[tuple[Any, ...]] = []
        n_conv = n_msg = n_tag = 0

        def flush() -> None:
            nonlocal conv_rows, tag_rows, msg_rows, t_write
            tw = time.perf_counter()
            db.write("conversations", CONV_COLS, conv_rows)
            db.write("conversation_tags", TAG_COLS, tag_rows)
            db.write("messages", MSG_COLS, msg_rows)
            t_write += time.perf_counter() - tw
            conv_rows, tag_rows, msg_rows = [], [], []

        for conv, tags, msgs in generate(shape, pools, [c["language"] for c in custs], now):
            conv_rows.append(tuple(1 if c == "workspace_id" else conv.get(c) for c in CONV_COLS))
            tag_rows.extend((conv["id"], t, 1) for t in tags)
            for m in msgs:
                msg_rows.append((m["id"], 1, m["conversation_id"], m["channel"], m["direction"], m["author_kind"],
                                 m["author_user_id"], m["body_text"], m["body_html"], m["is_internal"],
                                 m["channel_message_id"], m["delivery_status"], None, "{}", m["search_terms"],
                                 m["created_at"]))
            n_conv += 1
            n_msg += len(msgs)
            n_tag += len(tags)
            if len(msg_rows) >= 50_000:
                flush()
                if n_conv % 20_000 < 6000:
                    log(f"  {n_conv} conversations, {n_msg} messages ({time.perf_counter() - t0:.0f} s)")
        flush()
        timings["rows_s"] = round(time.perf_counter() - t0, 1)
        timings["rows_db_write_s"] = round(t_write, 1)
        db.execute(f"UPDATE workspaces SET conversation_seq = {n_conv} WHERE id = 1")

        t0 = time.perf_counter()
        if bench.db == "sqlite":
            db.execute("INSERT INTO messages_fts(messages_fts) VALUES('rebuild')")
            db.execute(trigger_sql)
            timings["fts_rebuild_s"] = round(time.perf_counter() - t0, 1)
            if analyze_sqlite:
                t0 = time.perf_counter()
                db.execute("ANALYZE")
                timings["analyze_s"] = round(time.perf_counter() - t0, 1)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        else:
            db.execute("SET maintenance_work_mem = '512MB'")
            db.execute(gin_sql)
            timings["gin_index_s"] = round(time.perf_counter() - t0, 1)
            for table in ("users", "teams", "customers", "identities", "conversations", "messages"):
                db.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
            t0 = time.perf_counter()
            db.conn.autocommit = True
            db.execute("VACUUM ANALYZE")
            timings["vacuum_analyze_s"] = round(time.perf_counter() - t0, 1)
    timings["total_s"] = round(time.perf_counter() - t_all, 1)
    timings.update(conversations=n_conv, messages=n_msg, tags=n_tag, customers=len(custs))
    return timings


def data_facts(bench: BenchEnv, words: list[str]) -> dict[str, Any]:
    """How many rows each filter and word matches (context for the latencies)."""
    from otklik.platform.text import query_terms

    facts: dict[str, Any] = {}
    with Loader(bench) as db:
        for status in ("new", "open", "pending"):
            facts[f"status_{status}"] = db.scalar(f"SELECT count(*) FROM conversations WHERE status = '{status}'")
        facts["urgent"] = db.scalar("SELECT count(*) FROM conversations WHERE priority = 3")
        facts["tag_delivery"] = db.scalar("SELECT count(*) FROM conversation_tags WHERE tag = 'delivery'")
        facts["tag_callback"] = db.scalar("SELECT count(*) FROM conversation_tags WHERE tag = 'callback'")
        for w in words:
            terms = query_terms(w)
            if bench.db == "sqlite":
                q = " ".join(f'"{t}"' for t in terms) + "*"
                n = db.conn.execute("SELECT count(*) FROM messages_fts WHERE messages_fts MATCH ?", (q,)).fetchone()[0]
            else:
                q = " & ".join(f"'{t}'" for t in terms) + ":*"
                n = db.conn.execute("SELECT count(*) FROM messages WHERE search_vector @@ to_tsquery('simple', %s)",
                                    (q,)).fetchone()[0]
            facts[f"messages_matching[{w}]"] = n
        # Real order numbers (an agent's most typical search: one or two messages match).
        top = db.scalar("SELECT max(id) FROM messages")
        ids = ",".join(str(max(1, k * top // 100 - 7)) for k in range(1, 101))
        numbers: list[str] = []
        for (terms,) in db.conn.execute(f"SELECT search_terms FROM messages WHERE id IN ({ids}) ORDER BY id"):
            numbers += re.findall(r"\b\d{6}\b", terms)
        facts["order_numbers"] = numbers[:: max(1, len(numbers) // 8)][:8]
        if bench.db == "sqlite":
            facts["db_file_mb"] = round(Path(bench.database_url.split("///", 1)[1]).stat().st_size / 2**20)
        else:
            facts["db_size_mb"] = round(db.scalar("SELECT pg_database_size(current_database())") / 2**20)
    return facts


# -- scenarios ------------------------------------------------------------------------------------------------

def scenarios(shape: Any, order_numbers: list[str]) -> dict[str, tuple[str, list[dict[str, Any]]]]:
    """name: (kind, parameter sets rotated per request)."""
    numbers = order_numbers or ["123456"]
    threads = [max(1, k * shape.conversations // 50 - 3) for k in range(1, 51)]
    agents = list(range(2, shape.agents + 2))
    teams = list(range(1, shape.teams + 1))
    tags = ["delivery", "refund", "billing", "vip", "wholesale", "callback"]
    return {
        # listing: GET /api/v1/conversations
        "inbox_all": ("list", [{}]),
        "open_waiting": ("list", [{"status": "open", "sort": "waiting", "order": "asc"}]),
        "assignee_new": ("list", [{"assignee_id": a, "status": "new"} for a in agents]),
        "assignee_open_pending": ("list", [{"assignee_id": a, "status": ["open", "pending"]} for a in agents]),
        "unassigned_new": ("list", [{"unassigned": "true", "status": "new", "sort": "waiting", "order": "asc"}]),
        "tag": ("list", [{"tag": t} for t in tags]),
        "team": ("list", [{"team_id": t} for t in teams]),
        "team_open": ("list", [{"team_id": t, "status": "open"} for t in teams]),
        "urgent_by_priority": ("list", [{"priority": "urgent", "sort": "priority"}]),
        "open_pending_by_priority": ("list", [{"status": ["open", "pending"], "sort": "priority"}]),
        # opening a conversation: GET /api/v1/conversations/{id}, then its thread (default limit 100)
        "get_conversation": ("path", [{"path": f"/api/v1/conversations/{c}"} for c in threads]),
        "thread_messages": ("path", [{"path": f"/api/v1/conversations/{c}/messages"} for c in threads]),
        # search
        "msg_search_common": ("search", [{"q": w} for w in ("заказ", "order", "доставки", "деньги")]),
        "msg_search_rare": ("search", [{"q": w} for w in ("гарантия", "warranty", "юрлицо", "invoice")]),
        "msg_search_two_words": ("search", [{"q": w} for w in ("возврат денег", "order refund",
                                                                 "курьер завтра")]),
        "msg_search_prefix": ("search", [{"q": w} for w in ("достав", "refu", "подтвер")]),
        "msg_search_order_no": ("search", [{"q": n} for n in numbers]),
        "conv_search_common": ("list", [{"q": w} for w in ("заказ", "order", "доставки", "деньги")]),
        "conv_search_rare": ("list", [{"q": w} for w in ("гарантия", "warranty", "юрлицо", "invoice")]),
        "conv_search_open": ("list", [{"q": w, "status": "open"} for w in ("заказ", "курьер", "refund")]),
        "conv_search_order_no": ("list", [{"q": n} for n in numbers]),
    }


FACT_WORDS = ["заказ", "order", "доставки", "деньги", "гарантия", "warranty", "юрлицо", "invoice", "курьер",
              "refund"]


def path_for(kind: str, params: dict[str, Any]) -> str:
    if kind == "path":
        return str(params["path"])
    base = "/api/v1/conversations" if kind == "list" else "/api/v1/messages/search"
    return f"{base}?{urlencode(params, doseq=True)}" if params else base


def measure(base_url: str, token: str, shape: Any, numbers: list[str], n: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        for name, (kind, param_sets) in scenarios(shape, numbers).items():
            paths = [path_for(kind, p) for p in param_sets]
            for p in paths[:3]:  # warm-up
                client.get(p)
            latencies: list[float] = []
            errors, first_error, items = 0, None, 0
            start = time.perf_counter()
            for i, path in zip(range(n), itertools.cycle(paths)):
                if time.perf_counter() - start > seconds:
                    break
                t0 = time.perf_counter()
                r = client.get(path)
                latencies.append(time.perf_counter() - t0)
                if r.status_code != 200:
                    errors += 1
                    first_error = first_error or f"{path}: HTTP {r.status_code} {r.text[:200]}"
                elif i < len(paths):
                    body = r.json()
                    items += len(body["items"]) if "items" in body else 1
            res = summarize(latencies, errors=errors, first_error=first_error)
            res["kind"] = kind
            res["example"] = paths[0]
            res["avg_items_first_round"] = round(items / min(len(paths), max(1, len(latencies))), 1)
            goal = SEARCH_GOAL_MS if "search" in name else LISTING_GOAL_MS
            res["goal_p99_ms"] = goal
            res["goal_met"] = res.get("p99_ms", 1e9) <= goal
            out[name] = res
            log(f"  {name}: p50 {res.get('p50_ms')} ms, p99 {res.get('p99_ms')} ms (n={res['requests']}, "
                f"goal {goal} ms {'met' if res['goal_met'] else 'MISSED'})")
    return out


# -- plans ----------------------------------------------------------------------------------------------------

def explain(bench: BenchEnv, token: str, shape: Any, numbers: list[str], path: Path) -> None:
    """Each scenario once in-process: every SQL statement with its time and plan."""
    bench.apply_to_this_process()
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from otklik.app import create_app
    from otklik.platform.db import get_engine

    engine = get_engine()
    captured: list[list[Any]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured.append([statement, parameters, time.perf_counter()])

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        captured[-1][2] = time.perf_counter() - captured[-1][2]

    client = TestClient(create_app())
    lines = [f"# plans, {bench.db}, {time.strftime('%Y-%m-%d %H:%M')}\n"]
    for name, (kind, param_sets) in scenarios(shape, numbers).items():
        url = path_for(kind, param_sets[0])
        client.get(url, headers={"Authorization": f"Bearer {token}"})  # warm
        captured.clear()
        r = client.get(url, headers={"Authorization": f"Bearer {token}"})
        stmts = list(captured)
        lines.append(f"\n## {name}  GET {url}  -> HTTP {r.status_code}, {len(stmts)} statements\n")
        for statement, params, took in stmts:
            if not statement.lstrip().upper().startswith("SELECT") or "api_tokens" in statement \
                    or "FROM users" in statement:
                continue
            lines.append(f"\n-- {took * 1000:.1f} ms\n{statement}\n-- params: {params}\n")
            with engine.connect() as conn:
                prefix = "EXPLAIN QUERY PLAN " if bench.db == "sqlite" else "EXPLAIN (ANALYZE, BUFFERS) "
                plan = conn.exec_driver_sql(prefix + statement, params).all()
                if bench.db == "sqlite":
                    lines.extend(f"   {row[3]}\n" for row in plan)
                else:
                    lines.extend(f"   {row[0]}\n" for row in plan)
    path.write_text("".join(lines))
    log(f"plans written to {path}")


def main() -> None:
    from _dataset import Shape

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=200, help="requests per scenario")
    ap.add_argument("--seconds", type=float, default=60, help="time limit per scenario")
    ap.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE after the SQLite load")
    ap.add_argument("--explain", type=Path, default=None, help="write per-statement timings and plans here")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (database, server log)")
    args = ap.parse_args()
    shape = Shape(conversations=args.conversations, messages=args.messages, customers=args.customers)

    bench = BenchEnv(args.db, keep=args.keep)
    bench.apply_to_this_process()  # the loader imports otklik (stemming, html)
    results: dict[str, Any] = {"bench": "inbox", "db": args.db, "env": machine_note()}
    try:
        log(f"migrating a fresh {args.db} database in {bench.tmp}")
        bench.migrate()
        token = bench.create_admin_token()
        log(f"bulk-loading {shape.conversations} conversations / {shape.messages} messages")
        results["load"] = bulk_load(bench, shape, args.sqlite_analyze)
        log(f"  {results['load']}")
        results["data"] = data_facts(bench, FACT_WORDS)
        log(f"  {results['data']}")
        base = bench.start_server()
        log(f"server up at {base}; measuring")
        results["latency"] = measure(base, token, shape, results["data"]["order_numbers"], args.requests, args.seconds)
        bench.stop_server()
        if args.explain:
            explain(bench, token, shape, results["data"]["order_numbers"], args.explain)
    finally:
        bench.close()
    results["config"] = {"server": "otklik serve (uvicorn, 1 process)", "client": "httpx, one request at a time",
                         "warmup": "3 requests per scenario, not counted", "sqlite_analyze": args.sqlite_analyze}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
