"""The agent inbox page (full server-rendered HTML) over a 100,000-conversation workspace.

1. A fresh database, bulk-loaded by bench/inbox.py's loader (same data set: ~80% closed, 30 agents, 6 teams).
2. Agent 2 gets a password, read markers on some of their conversations and a few @mentions (so the unread
   counts do real work), and signs in through the real /login form (a browser's cookie + CSRF).
3. `otklik serve` as a subprocess; one request at a time; per scenario 3 warm-up requests, then up to
   --requests requests or --seconds seconds. The figure is the client-side time of a full GET over loopback
   (the page: views with unread counts, the filtered list of 30 rows, saved filters, users for the filter).

    .venv/bin/python bench/inbox_page.py --db sqlite
    .venv/bin/python bench/inbox_page.py --db postgres
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

AGENT_ID, AGENT_EMAIL, AGENT_PASSWORD = 2, "agent2@example.com", "bench-agent-password"


def prepare_agent(bench: BenchEnv) -> dict[str, Any]:
    """Password, read markers and mentions for agent 2, written straight into the tables."""
    from inbox import Loader

    from otklik.accounts.security import hash_password

    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    with Loader(bench) as db:
        pw = hash_password(AGENT_PASSWORD).replace("'", "''")
        db.execute(f"UPDATE users SET password_hash = '{pw}' WHERE id = {AGENT_ID}")
        mine = db.conn.execute(
            f"SELECT id FROM conversations WHERE workspace_id = 1 AND assignee_id = {AGENT_ID} "
            "AND status IN ('new', 'open', 'pending') ORDER BY id").fetchall()
        recent = db.conn.execute("SELECT id FROM conversations WHERE workspace_id = 1 ORDER BY id DESC LIMIT 2000"
                                 ).fetchall()
        read_ids = sorted({r[0] for r in mine[::2]} | {r[0] for r in recent[::3]})
        db.write("conversation_reads", ("user_id", "conversation_id", "workspace_id", "read_at"),
                 [(AGENT_ID, cid, 1, now) for cid in read_ids])
        notes = db.conn.execute("SELECT id, conversation_id FROM messages WHERE workspace_id = 1 AND is_internal "
                                "ORDER BY id DESC LIMIT 40").fetchall()
        db.write("conversation_mentions", ("workspace_id", "user_id", "conversation_id", "message_id", "created_at",
                                           "seen_at"),
                 [(1, AGENT_ID, cid, mid, now, None if i % 2 else now) for i, (mid, cid) in enumerate(notes)])
        teams = db.conn.execute(f"SELECT team_id FROM team_members WHERE user_id = {AGENT_ID}").fetchall()
        active_mine = len(mine)
    return {"agent_active_conversations": active_mine, "read_markers": len(read_ids), "mentions": len(notes),
            "agent_teams": len(teams)}


def sign_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30, follow_redirects=True)
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, page.text[:500]
    r = client.post("/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "csrf_token": token[1]})
    if "conversation-list" not in r.text:
        raise SystemExit(f"sign-in failed: {r.status_code} {r.text[:300]}")
    return client


def scenarios(sample_conversation: int) -> dict[str, str]:
    return {
        "mine (default view)": "/inbox",
        "unassigned": "/inbox?view=unassigned",
        "my team": "/inbox?view=team",
        "all": "/inbox?view=all",
        "all by priority": "/inbox?view=all&sort=priority",
        "mentions": "/inbox?view=mentions",
        "all, tag=delivery": "/inbox?view=all&tag=delivery",
        "all, channel=telegram": "/inbox?view=all&channel=telegram",
        "all, priority=urgent": "/inbox?view=all&priority=urgent",
        "all, urgent/negative": "/inbox?view=all&flagged=1",
        "all, solved": "/inbox?view=all&status=solved",
        "list fragment (live refresh)": "/ui/inbox/list?view=all",
        "conversation page": f"/conversations/{sample_conversation}?view=all",
    }


def measure(client: httpx.Client, paths: dict[str, str], n: int, seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, path in paths.items():
        for _ in range(3):
            client.get(path)
        latencies: list[float] = []
        errors, first_error, rows = 0, None, 0
        deadline = time.monotonic() + seconds
        while len(latencies) < n and time.monotonic() < deadline:
            t0 = time.perf_counter()
            r = client.get(path)
            latencies.append(time.perf_counter() - t0)
            if r.status_code != 200:
                errors += 1
                first_error = first_error or f"{r.status_code} {r.text[:200]}"
            rows = r.text.count('class="conv-row')
        out[name] = {**summarize(latencies, errors=errors, first_error=first_error), "path": path, "rows": rows}
        log(f"  {name:32s} p50 {out[name]['p50_ms']:6.1f} ms  p99 {out[name]['p99_ms']:6.1f} ms  rows {rows}")
    return out


def measure_cpu(paths: dict[str, str], n: int) -> dict[str, Any]:
    """CPU time per request, in-process (FastAPI TestClient: server and client in this process).

    On a shared, overloaded machine wall-clock percentiles mostly measure the queue for a CPU; the CPU
    time a request consumes does not, so it is the fairer figure for the code itself.
    """
    from fastapi.testclient import TestClient

    from otklik.app import create_app

    out: dict[str, Any] = {}
    with TestClient(create_app(), base_url="http://127.0.0.1") as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        client.post("/login", data={"email": AGENT_EMAIL, "password": AGENT_PASSWORD, "csrf_token": token[1]})
        for name, path in paths.items():
            for _ in range(3):
                client.get(path)
            cpu: list[float] = []
            for _ in range(n):
                t0 = time.process_time()
                r = client.get(path)
                cpu.append(time.process_time() - t0)
                assert r.status_code == 200, (path, r.status_code)
            s = summarize(cpu)
            out[name] = {"cpu_p50_ms": s["p50_ms"], "cpu_p99_ms": s["p99_ms"], "path": path}
            log(f"  {name:32s} CPU p50 {s['p50_ms']:6.1f} ms  p99 {s['p99_ms']:6.1f} ms")
    return out


def main() -> None:
    from _dataset import Shape

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--conversations", type=int, default=100_000)
    ap.add_argument("--messages", type=int, default=300_000)
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--requests", type=int, default=200, help="requests per scenario")
    ap.add_argument("--seconds", type=float, default=30, help="time limit per scenario")
    ap.add_argument("--cpu-requests", type=int, default=50, help="in-process requests per scenario (CPU time)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    shape = Shape(conversations=args.conversations, messages=args.messages, customers=args.customers)

    bench = BenchEnv(args.db, keep=args.keep)
    bench.apply_to_this_process()
    results: dict[str, Any] = {"bench": "inbox_page", "db": args.db, "env": machine_note()}
    try:
        from inbox import bulk_load

        log(f"migrating a fresh {args.db} database in {bench.tmp}")
        bench.migrate()
        bench.create_admin_token()
        log(f"bulk-loading {shape.conversations} conversations / {shape.messages} messages")
        results["load"] = bulk_load(bench, shape, False)
        results["agent"] = prepare_agent(bench)
        log(f"  {results['load']} {results['agent']}")
        base = bench.start_server()
        client = sign_in(base)
        sample = int(re.search(r'data-conversation-id="(\d+)"', client.get("/inbox?view=all").text)[1])
        results["latency"] = measure(client, scenarios(sample), args.requests, args.seconds)
        client.close()
        bench.stop_server()
        with open("/proc/loadavg") as fh:
            results["load_avg_after_http"] = fh.read().split()[:3]
        results["cpu"] = measure_cpu(scenarios(sample), args.cpu_requests)
    finally:
        bench.close()
    results["config"] = {"server": "otklik serve (uvicorn, 1 process)", "client": "httpx, one request at a time, "
                         "signed in as an agent with a session cookie", "warmup": "3 requests per scenario"}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
