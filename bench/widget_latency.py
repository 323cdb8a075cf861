"""Widget -> inbox latency: from a visitor's WebSocket frame to the agent's `message.created` event.

A fresh database, an admin + API token, `otklik serve` (1 uvicorn process) as a subprocess. One agent client
connects to /api/v1/ws exactly as the inbox page does (auth frame, then events). --visitors visitors start a
widget session (POST /api/v1/widget/session) and open /api/v1/widget/ws. Then --messages messages are sent
one after another, round-robin over the visitors (a visitor's own rate limit is 30 a minute); latency =
the time the agent's socket receives the event carrying the message's marker - the time just before the
visitor's frame was sent (one process, one monotonic clock). Loopback only; nothing is asserted.

    .venv/bin/python bench/widget_latency.py --db sqlite
    .venv/bin/python bench/widget_latency.py --db postgres --redis redis://127.0.0.1:6379/0
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
from _common import BenchEnv, log, machine_note, summarize


async def run(base_url: str, token: str, args: argparse.Namespace) -> dict[str, Any]:
    ws_base = base_url.replace("http://", "ws://")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        key = (await http.get("/api/v1/widget/settings", headers={"Authorization": f"Bearer {token}"})).json()[
            "public_key"]
        tokens = [(await http.post("/api/v1/widget/session", json={"key": key, "language": "ru"})).json()["token"]
                  for _ in range(args.visitors)]
    agent = await connect(ws_base + "/api/v1/ws", ping_interval=None, max_queue=None)
    await agent.send(json.dumps({"type": "auth", "token": token}))
    assert json.loads(await agent.recv())["type"] == "ready"
    visitors = []
    for visitor_token in tokens:
        sock = await connect(ws_base + "/api/v1/widget/ws", ping_interval=None, max_queue=None)
        await sock.send(json.dumps({"type": "auth", "token": visitor_token}))
        assert json.loads(await sock.recv())["type"] == "ready"
        visitors.append(sock)

    arrived: dict[str, float] = {}
    waiting: dict[str, asyncio.Event] = {}

    async def agent_reader() -> None:
        async for raw in agent:
            now = time.perf_counter()
            if "wl-" not in raw:
                continue
            event = json.loads(raw)
            if event.get("type") != "message.created":
                continue
            marker = event["data"]["body_text"].split()[0]
            if marker in waiting and marker not in arrived:
                arrived[marker] = now
                waiting[marker].set()

    async def drain(sock: Any) -> None:  # acks and echoes to the visitor: read so buffers never fill
        with contextlib.suppress(Exception):
            async for _ in sock:
                pass

    readers = [asyncio.create_task(agent_reader()), *(asyncio.create_task(drain(s)) for s in visitors)]
    run_id = uuid.uuid4().hex[:6]
    latencies: list[float] = []
    errors = 0
    first_error = None
    t_start = time.perf_counter()
    for i in range(-args.warmup, args.messages):
        marker = f"wl-{run_id}-{i}"
        waiting[marker] = asyncio.Event()
        sock = visitors[i % len(visitors)]
        sent = time.perf_counter()
        await sock.send(json.dumps({"type": "message", "client_id": uuid.uuid4().hex, "text": f"{marker} где заказ?"}))
        try:
            await asyncio.wait_for(waiting[marker].wait(), args.timeout)
            if i >= 0:
                latencies.append(arrived[marker] - sent)
        except TimeoutError:
            errors += 1
            first_error = first_error or f"message {i} not seen by the agent in {args.timeout}s"
        await asyncio.sleep(args.pause)
    wall = time.perf_counter() - t_start
    for task in readers:
        task.cancel()
    for sock in (agent, *visitors):
        await sock.close()
    return summarize(latencies, wall, errors=errors, first_error=first_error)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--redis", default=None)
    ap.add_argument("--messages", type=int, default=200)
    ap.add_argument("--visitors", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--pause", type=float, default=0.05, help="seconds between messages")
    ap.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    bench = BenchEnv(args.db, redis_url=args.redis)
    results: dict[str, Any] = {"bench": "widget_latency", "db": args.db, "bus": "redis" if args.redis else "in-process",
                               "env": machine_note()}
    try:
        bench.migrate()
        token = bench.create_admin_token()
        base = bench.start_server()
        log(f"server up at {base}; {args.visitors} visitors, {args.messages} messages")
        results.update(asyncio.run(run(base, token, args)))
    finally:
        bench.close()
    results["config"] = {"server": "otklik serve (uvicorn, 1 process, embedded worker)",
                         "path": "visitor /api/v1/widget/ws frame -> receive() commit -> bus -> agent /api/v1/ws",
                         "visitors": args.visitors, "pause_s": args.pause}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
