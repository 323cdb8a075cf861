"""WebSocket fan-out: per-client delivery latency of one event to many connected agents.

A fresh database, an admin + API token, `otklik serve` (1 uvicorn process) as a subprocess. --clients
WebSocket clients (the `websockets` library, one asyncio process, uvloop when installed) connect to
/api/v1/ws and authenticate with {"type": "auth", "token": ...} as their first frame. Then, --rounds times:
one customer message is posted to POST /api/v1/inbound and every client records when its `message.created`
event (recognised by a marker in the text) arrives. Latency = receive time - the time just before the POST
was sent (one process, one monotonic clock). The client shares the 2 cores with the server, so the figure
includes the client's own time to read 1,000 frames.

    .venv/bin/python bench/ws_fanout.py --db sqlite                                    # in-process bus
    .venv/bin/python bench/ws_fanout.py --db sqlite --redis redis://127.0.0.1:6379/0   # Redis pub/sub bus
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, percentile, raise_nofile, summarize


async def run(base_url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    ws_url = base_url.replace("http://", "ws://") + "/api/v1/ws"
    run_id = uuid.uuid4().hex[:8]
    received: dict[str, list[float]] = {}
    markers = {f"fanout-{run_id}-{r}" for r in range(-1, args.rounds)}  # round -1: warm-up, not counted
    all_in: dict[str, asyncio.Event] = {m: asyncio.Event() for m in markers}
    connect_errors: list[str] = []
    sockets = []
    gate = asyncio.Semaphore(args.connect_concurrency)

    async def client(k: int) -> None:
        try:
            async with gate:
                ws = await connect(ws_url, ping_interval=None, max_queue=None, open_timeout=60)
                await ws.send(json.dumps({"type": "auth", "token": token}))
                first = json.loads(await asyncio.wait_for(ws.recv(), 60))
                if first.get("type") != "ready":
                    raise RuntimeError(f"not ready: {first}")
            sockets.append(ws)
        except Exception as exc:
            connect_errors.append(f"{type(exc).__name__}: {exc}")
            return
        try:
            async for raw in ws:
                now = time.perf_counter()
                if "fanout-" not in raw:
                    continue
                event = json.loads(raw)
                if event.get("type") != "message.created":
                    continue
                marker = event["data"].get("body_text", "")
                if marker in received:
                    received[marker].append(now)
                    if len(received[marker]) >= len(sockets):
                        all_in[marker].set()
        except Exception:
            pass

    t0 = time.perf_counter()
    tasks = [asyncio.create_task(client(k)) for k in range(args.clients)]
    while len(sockets) + len(connect_errors) < args.clients:
        await asyncio.sleep(0.05)
    connect_s = time.perf_counter() - t0
    log(f"{len(sockets)} clients connected and authenticated in {connect_s:.1f} s "
        f"({len(connect_errors)} failed{': ' + connect_errors[0] if connect_errors else ''})")

    rounds: list[dict[str, Any]] = []
    all_latencies: list[float] = []
    post_latencies: list[float] = []
    missing = 0
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=60) as http:
        # The conversation exists before the rounds, so each post raises exactly one message.created.
        await http.post("/api/v1/inbound", json={"identity_kind": "email", "identity": "fanout@example.com",
                                                 "text": "hello", "message_id": f"{run_id}-first"})
        await asyncio.sleep(1)
        for r in range(-1, args.rounds):
            marker = f"fanout-{run_id}-{r}"
            received[marker] = []
            t_post = time.perf_counter()
            resp = await http.post("/api/v1/inbound", json={
                "identity_kind": "email", "identity": "fanout@example.com", "text": marker,
                "message_id": f"{run_id}-{r}"})
            post_s = time.perf_counter() - t_post
            if r >= 0:
                post_latencies.append(post_s)
            if resp.status_code >= 400:
                raise SystemExit(f"post failed: HTTP {resp.status_code} {resp.text[:300]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(all_in[marker].wait(), args.round_timeout)
            lat = sorted(t - t_post for t in received[marker])
            if r < 0:
                log(f"  warm-up round: {len(lat)} delivered, last {lat[-1] * 1000 if lat else None:.1f} ms")
                await asyncio.sleep(args.pause)
                continue
            missing += len(sockets) - len(lat)
            all_latencies += lat
            rounds.append({"delivered": len(lat), "p50_ms": round(percentile(lat, 50) * 1000, 1) if lat else None,
                           "p99_ms": round(percentile(lat, 99) * 1000, 1) if lat else None,
                           "last_ms": round(lat[-1] * 1000, 1) if lat else None,
                           "post_response_ms": round(post_s * 1000, 1)})
            log(f"  round {r + 1}: {rounds[-1]}")
            await asyncio.sleep(args.pause)

    for ws in sockets:
        await ws.close()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    overall = summarize(all_latencies)
    overall.pop("errors", None)
    overall["deliveries"] = overall.pop("requests")
    return {
        "clients_connected": len(sockets), "connect_failures": len(connect_errors),
        "connect_first_error": connect_errors[0] if connect_errors else None, "connect_all_s": round(connect_s, 2),
        "rounds": len(rounds), "missing_deliveries": missing, "delivery": overall,
        "delivery_last_client_ms_p50_over_rounds": round(percentile(sorted(r["last_ms"] or 0 for r in rounds), 50), 1),
        "post_request": summarize(post_latencies), "per_round": rounds,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--redis", default=None, help="OTKLIK_REDIS_URL for the server (Redis pub/sub bus)")
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--pause", type=float, default=0.5, help="seconds between rounds")
    ap.add_argument("--round-timeout", type=float, default=30)
    ap.add_argument("--connect-concurrency", type=int, default=100)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()

    nofile = raise_nofile(max(4096, args.clients * 2 + 512))  # inherited by the server subprocess
    try:
        import uvloop

        uvloop.install()
        loop_kind = "uvloop"
    except ImportError:
        loop_kind = "asyncio"
    bench = BenchEnv(args.db, redis_url=args.redis, keep=args.keep)
    results: dict[str, Any] = {"bench": "ws_fanout", "db": args.db, "bus": "redis" if args.redis else "in-process",
                               "env": machine_note()}
    try:
        bench.migrate()
        token = bench.create_admin_token()
        base = bench.start_server()
        log(f"server up at {base}; connecting {args.clients} clients (nofile {nofile}, {loop_kind})")
        results.update(asyncio.run(run(base, token, args)))
    finally:
        bench.close()
    results["config"] = {"server": "otklik serve (uvicorn, 1 process, ws=websockets-sansio)",
                         "client": f"websockets, {args.clients} connections in one {loop_kind} process",
                         "nofile": nofile}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
