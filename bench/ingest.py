"""Inbound message ingestion through the real HTTP API.

A fresh database (`otklik migrate`), a workspace + admin + API token (`otklik create-user ... --token`),
`otklik serve` (uvicorn, 1 process unless --workers) as a subprocess on a free port; the client is httpx
async with --concurrency workers, each waiting for its response before sending the next request.

Phases (customers are `customer<k>@example.com`, k < --customers):
  new        POST /api/v1/inbound, one message to each of --customers new customers: every request creates
             the customer, its identity and a conversation (the analogue of the peer's "create ticket")
  followup   POST /api/v1/inbound, --followups messages to random existing customers: appended to their
             open conversation (the analogue of the peer's "create follow-up")
  batch      POST /api/v1/inbound/batch, --batches batches of --batch-size messages to existing customers

    .venv/bin/python bench/ingest.py --db sqlite
    .venv/bin/python bench/ingest.py --db postgres
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

TEXTS = [
    "Здравствуйте! Где мой заказ {n}? Оплатил три дня назад, статус не меняется.",
    "Hello, I was charged twice for order {n}, please refund the second payment.",
    "Не приходит код подтверждения на телефон, попробовал уже пять раз.",
    "My parcel {n} shows delivered but nothing arrived. Can you check with the courier?",
    "Хочу вернуть товар из заказа {n}, размер не подошёл. Как оформить возврат?",
    "The app crashes when I open the cart after the last update.",
    "Подскажите, можно ли изменить адрес доставки для заказа {n}?",
    "Invoice for order {n} has the wrong company name, please reissue it.",
]


async def run_load(base_url: str, token: str, send: Callable[[httpx.AsyncClient, int], Awaitable[httpx.Response]],
                   n: int, concurrency: int, items_per_request: int = 1,
                   on_response: Callable[[int, httpx.Response], None] | None = None) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    indexes = iter(range(n))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers={"Authorization": f"Bearer {token}"},
                                 timeout=120, limits=limits) as client:
        start = time.perf_counter()

        async def worker() -> None:
            nonlocal errors, first_error
            for i in indexes:
                t0 = time.perf_counter()
                try:
                    r = await send(client, i)
                except httpx.HTTPError as exc:
                    errors += 1
                    first_error = first_error or f"{type(exc).__name__}: {exc}"
                    continue
                latencies.append(time.perf_counter() - t0)
                if r.status_code >= 400:
                    errors += 1
                    first_error = first_error or f"HTTP {r.status_code}: {r.text[:300]}"
                elif on_response:
                    on_response(i, r)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return summarize(latencies, wall, items_per_request=items_per_request, errors=errors, first_error=first_error)


def inbound_body(rng: random.Random, customer: int, run: str, seq: str) -> dict[str, Any]:
    return {"identity_kind": "email", "identity": f"customer{customer}@example.com",
            "customer_name": f"Customer {customer}", "text": rng.choice(TEXTS).format(n=rng.randint(10000, 99999)),
            "message_id": f"{run}-{seq}"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--customers", type=int, default=1000)
    ap.add_argument("--followups", type=int, default=2000)
    ap.add_argument("--batches", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--batch-concurrency", type=int, default=None, help="for the batch phase (default: --concurrency)")
    ap.add_argument("--sorted-batches", action="store_true",
                    help="send each batch sorted by identity (tests the deadlock fix: one lock order for all)")
    ap.add_argument("--skip-single", action="store_true", help="only create the customers, then the batch phase")
    ap.add_argument("--workers", type=int, default=1, help="uvicorn processes for otklik serve")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir (database, server log)")
    args = ap.parse_args()

    bench = BenchEnv(args.db, keep=args.keep)
    rng = random.Random(7)
    run = uuid.uuid4().hex[:8]
    results: dict[str, Any] = {"bench": "ingest", "db": args.db, "env": machine_note()}
    try:
        log(f"migrating a fresh {args.db} database in {bench.tmp}")
        bench.migrate()
        token = bench.create_admin_token()
        base = bench.start_server(workers=args.workers)
        log(f"server up at {base}")

        # Warm-up (not measured): imports, connection pools, prepared paths.
        async def warm(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post("/api/v1/inbound", json={
                "identity_kind": "email", "identity": f"warmup{i % 5}@example.com", "text": "warm-up",
                "message_id": f"{run}-warm-{i}"})

        asyncio.run(run_load(base, token, warm, 40, args.concurrency))

        new_conversations = 0

        def count_new(_: int, r: httpx.Response) -> None:
            nonlocal new_conversations
            new_conversations += bool(r.json().get("new_conversation"))

        log(f"new: {args.customers} messages from new customers, concurrency {args.concurrency}")

        async def send_new(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post("/api/v1/inbound", json=inbound_body(rng, i, run, f"n{i}"))

        results["new"] = asyncio.run(run_load(base, token, send_new, args.customers, args.concurrency,
                                              on_response=count_new))
        results["new"]["new_conversations"] = new_conversations
        log(f"  {results['new']}")

        if args.skip_single:
            args.followups = 0
        log(f"followup: {args.followups} messages to existing customers")

        async def send_followup(client: httpx.AsyncClient, i: int) -> httpx.Response:
            return await client.post("/api/v1/inbound",
                                     json=inbound_body(rng, rng.randrange(args.customers), run, f"f{i}"))

        new_conversations = 0
        results["followup"] = asyncio.run(run_load(base, token, send_followup, args.followups, args.concurrency,
                                                   on_response=count_new))
        results["followup"]["new_conversations"] = new_conversations
        log(f"  {results['followup']}")

        if args.followups:
            n_single = results["new"]["requests"] + results["followup"]["requests"]
            wall_single = results["new"]["wall_s"] + results["followup"]["wall_s"]
            results["single_all"] = {"requests": n_single, "messages_per_s": round(n_single / wall_single, 1)}

        log(f"batch: {args.batches} x {args.batch_size} messages via /inbound/batch")

        async def send_batch(client: httpx.AsyncClient, i: int) -> httpx.Response:
            messages = [inbound_body(rng, rng.randrange(args.customers), run, f"b{i}-{j}")
                        for j in range(args.batch_size)]
            if args.sorted_batches:
                messages.sort(key=lambda m: m["identity"])
            return await client.post("/api/v1/inbound/batch", json={"messages": messages})

        batch_conc = args.batch_concurrency or args.concurrency
        results["batch"] = asyncio.run(run_load(base, token, send_batch, args.batches, batch_conc,
                                                items_per_request=args.batch_size))
        results["batch"].update(batch_size=args.batch_size, concurrency=batch_conc, sorted=args.sorted_batches)
        log(f"  {results['batch']}")
    finally:
        bench.close()
    results["config"] = {"server": f"otklik serve (uvicorn, {args.workers} process)", "client":
                         f"httpx async, concurrency {args.concurrency}", "access_log": "off (warning level)"}
    print(json.dumps(results, ensure_ascii=False))


if __name__ == "__main__":
    main()
