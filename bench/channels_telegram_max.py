"""Telegram and MAX: inbound webhook throughput and time to acknowledge, the time from a Telegram update to the
message in an agent's inbox (WebSocket), and outbound delivery throughput against a local Bot API stand-in.

A fresh database, `otklik serve` (1 uvicorn process, embedded worker: 2 delivery threads) as a subprocess on
127.0.0.1. The Telegram Bot API and MAX API are the stand-ins the tests use (tests/channels/conftest.py,
threaded, in this process), so `connect` registers the webhooks exactly as in production and the product's
python-telegram-bot client talks to a real HTTP peer. Loopback only, bounded; nothing is asserted.

1. inbound: --events new text updates per channel (--customers distinct senders), --concurrency at a time,
   each with the vendor's secret header; then --duplicates re-deliveries (a vendor's retry). Latency = the
   vendor's time to acknowledge.
2. inbox latency: an agent's WebSocket client (token auth) waits for the `message.created` event of each of
   --rounds Telegram updates (text: stored in the webhook's transaction; photo: stored by the job that
   downloads the file through getFile after the webhook answered).
3. outbound: --replies agent replies (POST /conversations/<id>/messages) to Telegram customers; throughput =
   replies delivered (outbox `sent`) per second, from the first POST to the last `sent`.

    .venv/bin/python bench/channels_telegram_max.py --db sqlite
    .venv/bin/python bench/channels_telegram_max.py --db postgres --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from _common import BenchEnv, log, machine_note, percentile, summarize
from tests.channels.conftest import BOT_TOKEN, JPEG, MAX_TOKEN, MaxBotAPI, TelegramBotAPI, fixture


def tg_update(i: int, sender: int, run_no: int, text: str | None = None) -> dict[str, Any]:
    update = copy.deepcopy(fixture("telegram", "update_text"))
    update["update_id"] = run_no * 1_000_000 + i
    message = update["message"]
    message["message_id"] = run_no * 1_000_000 + i
    message["from"]["id"] = message["chat"]["id"] = 300_000_000 + sender
    message["text"] = text or f"Где мой заказ №{i}?"
    return update


def max_update(i: int, sender: int, run: str) -> dict[str, Any]:
    update = copy.deepcopy(fixture("max", "message_created_text"))
    update["message"]["sender"]["user_id"] = 48_000_000 + sender
    update["message"]["body"]["mid"] = f"mid.{run}.{i:08d}"
    update["message"]["body"]["text"] = f"Не пришёл промокод №{i}"
    return update


async def post_all(base_url: str, path: str, headers: dict[str, str], bodies: list[dict[str, Any]],
                   concurrency: int) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    queue = [json.dumps(b, ensure_ascii=False).encode() for b in reversed(bodies)]

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal errors, first_error
        while queue:
            body = queue.pop()
            start = time.perf_counter()
            try:
                r = await http.post(path, content=body, headers={**headers, "content-type": "application/json"})
                ok, detail = r.status_code == 200, f"HTTP {r.status_code}: {r.text[:200]}"
            except httpx.HTTPError as exc:
                ok, detail = False, type(exc).__name__
            latencies.append(time.perf_counter() - start)
            if not ok:
                errors += 1
                first_error = first_error or detail

    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        t0 = time.perf_counter()
        await asyncio.gather(*(worker(http) for _ in range(concurrency)))
        wall = time.perf_counter() - t0
    out = summarize(latencies, wall, errors=errors, first_error=first_error)
    out["events_per_s"] = out.pop("requests_per_s", None)
    return out


async def inbox_latency(base_url: str, token: str, path: str, secret: str, api: TelegramBotAPI, rounds: int,
                        *, photo: bool) -> dict[str, Any]:
    ws_url = base_url.replace("http://", "ws://") + "/api/v1/ws"
    latencies: list[float] = []
    async with connect(ws_url, ping_interval=None) as ws, httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(await ws.recv()).get("type") == "ready"
        for r in range(rounds + 1):  # round 0: warm-up, not counted
            marker = f"inbox-{uuid.uuid4().hex[:10]}"
            update = tg_update(r, 900 + r % 5, 7 if photo else 6, text=marker)
            if photo:
                message = update["message"]
                del message["text"]
                file_id = f"photo-{marker}"
                api.files[file_id] = JPEG
                message["photo"] = [{"file_id": file_id, "file_unique_id": marker, "file_size": len(JPEG),
                                     "width": 800, "height": 600}]
                message["caption"] = marker
            start = time.perf_counter()
            await http.post(path, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": secret})
            while True:
                raw = await asyncio.wait_for(ws.recv(), 30)
                if marker in raw and '"message.created"' in raw:
                    break
            if r:
                latencies.append(time.perf_counter() - start)
    lat = sorted(latencies)
    return {"rounds": len(lat), "p50_ms": round(percentile(lat, 50) * 1000, 1),
            "p99_ms": round(percentile(lat, 99) * 1000, 1), "max_ms": round(lat[-1] * 1000, 1)}


def outbound(base_url: str, token: str, path: str, secret: str, api: TelegramBotAPI, replies: int) -> dict[str, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base_url, timeout=30) as http:
        conversations = []
        for c in range(20):
            http.post(path, json=tg_update(c, 5000 + c, 8), headers={"X-Telegram-Bot-Api-Secret-Token": secret})
        for item in http.get("/api/v1/conversations", params={"channel": "telegram", "limit": 100},
                             headers=auth).json()["items"]:
            conversations.append(item["id"])
        before = len(api.sent("sendMessage"))
        t0 = time.perf_counter()
        post_latencies = []
        for i in range(replies):
            s = time.perf_counter()
            r = http.post(f"/api/v1/conversations/{conversations[i % len(conversations)]}/messages",
                          json={"text": f"Ответ №{i}: заказ передан в доставку"}, headers=auth)
            r.raise_for_status()
            post_latencies.append(time.perf_counter() - s)
        posted = time.perf_counter() - t0
        deadline = time.time() + 120
        while len(api.sent("sendMessage")) - before < replies and time.time() < deadline:
            time.sleep(0.02)
        wall = time.perf_counter() - t0
        pending = http.get("/api/v1/outbox", params={"status": "pending", "limit": 200}, headers=auth).json()
    delivered = len(api.sent("sendMessage")) - before
    return {"replies": replies, "delivered": delivered, "still_pending": len(pending),
            "post_reply": summarize(post_latencies, posted), "wall_s": round(wall, 2),
            "delivered_per_s": round(delivered / wall, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--events", type=int, default=500, help="new updates per channel (max 5000)")
    parser.add_argument("--duplicates", type=int, default=200)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=50, help="inbox-latency rounds (text and photo each)")
    parser.add_argument("--replies", type=int, default=300)
    args = parser.parse_args()
    args.events = min(args.events, 5000)
    tg_api, max_api = TelegramBotAPI(), MaxBotAPI()
    bench = BenchEnv(args.db, redis_url=args.redis)
    try:
        bench.migrate()
        token = bench.create_admin_token()
        base_url = bench.start_server()
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base_url, timeout=30) as http:
            tg = http.post("/api/v1/channels/accounts", headers=auth, json={
                "kind": "telegram", "config": {"api_base_url": tg_api.url, "quick_replies": ["Позвать оператора"]},
                "secrets": {"bot_token": BOT_TOKEN}}).json()
            http.post(f"/api/v1/channels/accounts/{tg['id']}/connect", headers=auth).raise_for_status()
            mx = http.post("/api/v1/channels/accounts", headers=auth, json={
                "kind": "max", "config": {"api_base_url": max_api.url}, "secrets": {"bot_token": MAX_TOKEN}}).json()
            http.post(f"/api/v1/channels/accounts/{mx['id']}/connect", headers=auth).raise_for_status()
        tg_secret = tg_api.sent("setWebhook")[-1].fields["secret_token"]
        max_secret = json.loads(next(r for r in max_api.server.requests if r.path == "/subscriptions").body)["secret"]
        results: dict[str, Any] = {}
        run = uuid.uuid4().hex[:8]
        channels = {
            "telegram": (tg["webhook_path"], {"X-Telegram-Bot-Api-Secret-Token": tg_secret},
                         lambda i, run_no: tg_update(i, i % args.customers, run_no)),
            "max": (mx["webhook_path"], {"X-Max-Bot-Api-Secret": max_secret},
                    lambda i, run_no: max_update(i, i % args.customers, f"{run}{run_no}")),
        }
        for name, (path, headers, make) in channels.items():
            asyncio.run(post_all(base_url, path, headers, [make(i, 1) for i in range(20)], args.concurrency))
            events = [make(i, 2) for i in range(args.events)]
            log(f"{name}: {len(events)} updates, concurrency {args.concurrency}")
            new = asyncio.run(post_all(base_url, path, headers, events, args.concurrency))
            dups = asyncio.run(post_all(base_url, path, headers, events[:args.duplicates], args.concurrency))
            results[f"{name}_inbound"] = {"new": new, "duplicate": dups}
            log(f"{name}: {new.get('events_per_s')} events/s, ack p99 {new.get('p99_ms')} ms")
        for photo in (False, True):
            key = "telegram_to_inbox_" + ("photo" if photo else "text")
            results[key] = asyncio.run(inbox_latency(base_url, token, tg["webhook_path"], tg_secret, tg_api,
                                                     args.rounds, photo=photo))
            log(f"{key}: {results[key]}")
        results["telegram_outbound"] = outbound(base_url, token, tg["webhook_path"], tg_secret, tg_api, args.replies)
        log(f"outbound: {results['telegram_outbound']}")
        print(json.dumps({"bench": "channels_telegram_max", "db": args.db, "redis": bool(args.redis),
                          "events": args.events, "concurrency": args.concurrency, "results": results,
                          "machine": machine_note()}, ensure_ascii=False))
    finally:
        bench.close()
        tg_api.close()
        max_api.close()


if __name__ == "__main__":
    main()
