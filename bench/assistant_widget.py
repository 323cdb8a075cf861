"""Widget message -> the assistant's answer visible to the customer, end to end over real sockets.

A fresh database, the demo store's knowledge base imported (`otklik kb import`), `otklik serve` (1 uvicorn
process, embedded worker) as a subprocess. For each question (answerable ones from the given set, in order) a
new visitor starts a widget session, opens /api/v1/widget/ws and sends the question; latency = the time the
visitor's own socket receives the assistant's first reply frame (the answer, a clarifying question, or the
hand-off notice) - the time just before the question was sent (one process, one monotonic clock). The
assistant's decision runs in the server's job worker, the reply goes through the outbox and the widget
channel's sender, exactly as in production. A question that gets no reply within --wait seconds is counted
apart (`no_reply`); `decisions_recorded` splits the decisions by action. Loopback only; nothing asserted.

    .venv/bin/python bench/assistant_widget.py --questions bench/data/store_questions_val.jsonl --n 100
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

ROOT = Path(__file__).resolve().parent.parent
KB = ROOT / "src" / "otklik" / "knowledge" / "data" / "store_kb_ru.jsonl"


async def new_visitor(base_url: str, key: str, n: int) -> str:
    """A widget session; sessions come from 127.0.0.x addresses (all loopback) so the per-address limit of 30
    sessions a minute does not throttle the bench."""
    transport = httpx.AsyncHTTPTransport(local_address=f"127.0.0.{2 + n // 25}")
    async with httpx.AsyncClient(base_url=base_url, transport=transport, timeout=30) as http:
        r = await http.post("/api/v1/widget/session", json={"key": key, "language": "ru"})
        r.raise_for_status()
        return str(r.json()["token"])


async def ask(ws_base: str, token: str, text: str, wait: float) -> float | None:
    async with connect(ws_base + "/api/v1/widget/ws", ping_interval=None, max_queue=None) as sock:
        await sock.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await sock.recv())["type"] == "ready"
        sent = time.perf_counter()
        await sock.send(json.dumps({"type": "message", "client_id": uuid.uuid4().hex, "text": text}))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                async for raw in sock:
                    frame = json.loads(raw)
                    if frame.get("type") == "message" and frame["message"].get("from") == "agent":
                        return time.perf_counter() - sent
    return None


async def run(base_url: str, token: str, questions: list[str], args: argparse.Namespace) -> dict[str, Any]:
    ws_base = base_url.replace("http://", "ws://")
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        settings = (await http.patch("/api/v1/assistant/settings", json={"enabled": True, "working_hours": None},
                                     headers=headers)).json()
        log(f"assistant: enabled={settings.get('enabled')} threshold={settings.get('answer_threshold')}")
        key = (await http.get("/api/v1/widget/settings", headers=headers)).json()["public_key"]
        tokens = [await new_visitor(base_url, key, i) for i in range(args.warmup + args.n)]
        for i, text in enumerate(questions[: args.warmup]):
            await ask(ws_base, tokens[i], text, args.wait)
        latencies: list[float] = []
        handed_off = 0
        t_start = time.perf_counter()
        for i, text in enumerate(questions[args.warmup: args.warmup + args.n], start=args.warmup):
            took = await ask(ws_base, tokens[i], text, args.wait)
            if took is None:
                handed_off += 1
            else:
                latencies.append(took)
            await asyncio.sleep(args.pause)
        wall = time.perf_counter() - t_start
        decisions = {}
        convs = (await http.get("/api/v1/conversations", params={"channel": "widget", "limit": 200},
                                headers=headers)).json()
        for conv in convs.get("items", convs if isinstance(convs, list) else []):
            for d in (await http.get(f"/api/v1/conversations/{conv['id']}/assistant/decisions",
                                     headers=headers)).json():
                decisions[d["action"]] = decisions.get(d["action"], 0) + 1
    out = summarize(latencies, wall)
    out.update(replies_seen_by_visitor=len(latencies), no_reply=handed_off,
               decisions_recorded=decisions)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", default="sqlite")
    ap.add_argument("--redis", default=None)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--pause", type=float, default=0.05)
    ap.add_argument("--wait", type=float, default=3.0, help="seconds to wait for a reply before counting a hand-off")
    args = ap.parse_args()
    with open(args.questions, encoding="utf-8") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    questions = [r["text"] for r in rows if r.get("expected")]
    bench = BenchEnv(args.db, redis_url=args.redis)
    results: dict[str, Any] = {"bench": "assistant_widget", "db": args.db,
                               "bus": "redis" if args.redis else "in-process", "env": machine_note()}
    try:
        bench.migrate()
        token = bench.create_admin_token()
        log(bench.cli("kb", "import", str(KB), "--workspace", "bench").strip())
        base = bench.start_server()
        log(f"server up at {base}; {args.n} questions, a new visitor each")
        results.update(asyncio.run(run(base, token, questions, args)))
    finally:
        bench.close()
    results["config"] = {"server": "otklik serve (uvicorn, 1 process, embedded worker)",
                         "path": "visitor /api/v1/widget/ws frame -> receive() commit -> assistant job -> reply "
                                 "-> outbox -> widget sender -> visitor's socket",
                         "questions": args.questions, "pause_s": args.pause}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
