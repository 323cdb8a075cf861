"""Inbound webhook throughput (events/s) and time to acknowledge (p50/p99) per channel: VK, WhatsApp, phone,
web forms, Viber, Instagram (`--channels viber,instagram` measures only those).

A fresh database, `otklik serve` (1 uvicorn process, embedded worker) as a subprocess on 127.0.0.1, one
account per channel configured through the admin API. Each channel gets --events new events (every one a new
vendor id; --customers distinct senders, so most events find an existing customer and conversation), sent
--concurrency at a time, each request signed the way the vendor signs it; then --duplicates re-deliveries of
events already stored (a vendor's retry: answered without a second message). Latency = from just before the
request is sent to the end of the response = the vendor's time to acknowledge. Loopback only, bounded;
nothing is asserted.

    .venv/bin/python bench/channels_webhooks.py --db sqlite
    .venv/bin/python bench/channels_webhooks.py --db sqlite --no-worker
    .venv/bin/python bench/channels_webhooks.py --db postgres --redis redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

GROUP_ID = 218000001
VK_SECRET = "bench-vk-secret"
WA_SECRET = "bench-app-secret"
WA_NUMBER_ID = "106540352242922"
PBX_SECRET = "bench-pbx-secret"
VIBER_TOKEN = "4453b6ac12345678-e02c5f12174805f9-bench0000000"
IG_SECRET = "bench-ig-app-secret"
IG_ACCOUNT = "17841405822304914"


def _accounts(http: httpx.Client, token: str) -> dict[str, str]:
    auth = {"Authorization": f"Bearer {token}"}
    specs = {
        "vk": ({"group_id": GROUP_ID, "confirmation_code": "abc123"},
               {"access_token": "vk1.a.bench", "secret_key": VK_SECRET}),
        "whatsapp": ({"phone_number_id": WA_NUMBER_ID},
                     {"access_token": "EAAG-bench", "app_secret": WA_SECRET, "verify_token": "v"}),
        "phone": ({}, {"signing_secret": PBX_SECRET}),
        "form": ({"per_ip_per_hour": 10_000, "per_form_per_hour": 1_000_000}, {}),
        # the vendors' default API addresses (nothing is sent to them: no replies in this bench); a loopback
        # address would be refused by the SSRF guard (OTKLIK_ALLOW_PRIVATE_VENDOR_URLS)
        "viber": ({}, {"auth_token": VIBER_TOKEN}),
        "instagram": ({"account_id": IG_ACCOUNT},
                      {"access_token": "IGAAT-bench", "app_secret": IG_SECRET, "verify_token": "v"}),
    }
    paths = {}
    for kind, (config, secrets) in specs.items():
        r = http.post("/api/v1/channels/accounts", headers=auth,
                      json={"kind": kind, "config": config, "secrets": secrets})
        r.raise_for_status()
        paths[kind] = r.json()["webhook_path"]
    paths["form"] = "/forms/" + paths["form"].rsplit("/", 1)[-1]
    return paths


def vk_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    body = {"group_id": GROUP_ID, "type": "message_new", "event_id": f"{run}-{i}", "v": "5.199", "secret": VK_SECRET,
            "object": {"message": {"date": int(time.time()), "from_id": 500000000 + sender, "id": 100000 + i, "out": 0,
                                   "peer_id": 500000000 + sender, "text": f"Где мой заказ №{i}?", "attachments": [],
                                   "conversation_message_id": i}, "client_info": {"keyboard": True}}}
    return json.dumps(body, ensure_ascii=False).encode(), {"content-type": "application/json"}


def wa_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    wa_id = f"7916{sender:07d}"
    body = {"object": "whatsapp_business_account", "entry": [{"id": "102290129340398", "changes": [{"field": "messages",
            "value": {"messaging_product": "whatsapp",
                      "metadata": {"display_phone_number": "79991234567", "phone_number_id": WA_NUMBER_ID},
                      "contacts": [{"profile": {"name": f"Клиент {sender}"}, "wa_id": wa_id}],
                      "messages": [{"from": wa_id, "id": f"wamid.{run}.{i}", "timestamp": str(int(time.time())),
                                    "type": "text", "text": {"body": f"Заказ №{i} не пришёл"}}]}}]}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"content-type": "application/json",
                 "x-hub-signature-256": "sha256=" + hmac.new(WA_SECRET.encode(), raw, hashlib.sha256).hexdigest()}


def phone_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    kind = ("call.started", "call.answered", "call.ended")[i % 3]
    body = {"event": kind, "call_id": f"{run}-{i // 3}", "from": f"+7916{sender:07d}", "to": "+74951230000",
            "direction": "inbound", **({"duration": 95} if kind == "call.ended" else {})}
    raw = json.dumps(body).encode()
    return raw, {"content-type": "application/json",
                 "x-otklik-signature": "sha256=" + hmac.new(PBX_SECRET.encode(), raw, hashlib.sha256).hexdigest()}


def form_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    body = {"name": f"Посетитель {sender}", "email": f"visitor{sender}@example.ru", "message": f"Вопрос №{i}",
            "submission_id": f"{run}-{i}", "page": "/contacts"}
    return json.dumps(body, ensure_ascii=False).encode(), {"content-type": "application/json"}


def viber_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    token = int(hashlib.sha256(run.encode()).hexdigest()[:12], 16) % 10**9 * 10**9 + i  # new per event and run
    body = {"event": "message", "timestamp": int(time.time() * 1000), "chat_hostname": "SN-CHAT-05_",
            "message_token": token, "silent": False,
            "sender": {"id": f"{sender:010d}BenchA=", "name": f"Клиент {sender}", "language": "ru", "country": "RU",
                       "api_version": 10},
            "message": {"type": "text", "text": f"Где мой заказ №{i}?"}}
    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"content-type": "application/json",
                 "x-viber-content-signature": hmac.new(VIBER_TOKEN.encode(), raw, hashlib.sha256).hexdigest()}


def instagram_event(i: int, sender: int, run: str) -> tuple[bytes, dict[str, str]]:
    now = int(time.time() * 1000)
    body = {"object": "instagram", "entry": [{"id": IG_ACCOUNT, "time": now, "messaging": [{
        "sender": {"id": f"55{sender:014d}"}, "recipient": {"id": IG_ACCOUNT}, "timestamp": now,
        "message": {"mid": f"aWdfZAG1faXRlbTox{run}{i:08d}", "text": f"Здравствуйте, заказ №{i} не пришёл"}}]}]}
    raw = json.dumps(body, ensure_ascii=False).encode()
    return raw, {"content-type": "application/json",
                 "x-hub-signature-256": "sha256=" + hmac.new(IG_SECRET.encode(), raw, hashlib.sha256).hexdigest()}


MAKERS: dict[str, Callable[[int, int, str], tuple[bytes, dict[str, str]]]] = {
    "vk": vk_event, "whatsapp": wa_event, "phone": phone_event, "form": form_event, "viber": viber_event,
    "instagram": instagram_event}


def server_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) the server process has used: with the machine shared, the cost per event
    that does not depend on how busy the other processes keep the CPUs."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(base_url: str, path: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int
                  ) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    first_error: str | None = None
    queue = list(reversed(requests))

    async def worker(http: httpx.AsyncClient) -> None:
        nonlocal errors, first_error
        while queue:
            body, headers = queue.pop()
            start = time.perf_counter()
            try:
                r = await http.post(path, content=body, headers=headers)
                ok = r.status_code < 300
                detail = f"HTTP {r.status_code}: {r.text[:200]}"
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--redis", default=None)
    parser.add_argument("--events", type=int, default=300, help="new events per channel (max 5000)")
    parser.add_argument("--duplicates", type=int, default=100, help="re-deliveries per channel")
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--channels", default=",".join(MAKERS), help="comma-separated subset of " + ", ".join(MAKERS))
    parser.add_argument("--no-worker", action="store_true",
                        help="web process only (OTKLIK_EMBEDDED_WORKER=false): after-commit jobs wait in the queue, "
                             "as with separate `otklik worker` processes")
    args = parser.parse_args()
    args.events = min(args.events, 5000)
    bench = BenchEnv(args.db, redis_url=args.redis)
    if args.no_worker:
        bench.env["OTKLIK_EMBEDDED_WORKER"] = "false"
    try:
        bench.migrate()
        token = bench.create_admin_token()
        base_url = bench.start_server()
        with httpx.Client(base_url=base_url, timeout=30) as http:
            paths = _accounts(http, token)
        results: dict[str, Any] = {}
        chosen = [c.strip() for c in args.channels.split(",") if c.strip()]
        for channel, maker in ((c, MAKERS[c]) for c in chosen):
            run = uuid.uuid4().hex[:8]
            warm = [maker(i, i % args.customers, run + "w") for i in range(args.warmup)]
            asyncio.run(measure(base_url, paths[channel], warm, args.concurrency))
            events = [maker(i, i % args.customers, run) for i in range(args.events)]
            log(f"{channel}: {len(events)} events, concurrency {args.concurrency}")
            assert bench.server is not None
            cpu0 = server_cpu_s(bench.server.pid)
            new = asyncio.run(measure(base_url, paths[channel], events, args.concurrency))
            cpu1 = server_cpu_s(bench.server.pid)
            dups = asyncio.run(measure(base_url, paths[channel], events[:args.duplicates], args.concurrency))
            cpu2 = server_cpu_s(bench.server.pid)
            new["server_cpu_ms_per_event"] = round((cpu1 - cpu0) * 1000 / max(1, len(events)), 1)
            dups["server_cpu_ms_per_event"] = round((cpu2 - cpu1) * 1000 / max(1, args.duplicates), 1)
            results[channel] = {"new": new, "duplicate": {k: dups.get(k) for k in (
                "requests", "errors", "p50_ms", "p99_ms", "events_per_s", "server_cpu_ms_per_event")}}
            log(f"{channel}: {new.get('events_per_s')} events/s, ack p99 {new.get('p99_ms')} ms, "
                f"{new['server_cpu_ms_per_event']} CPU ms/event; duplicates p99 {dups.get('p99_ms')} ms")
        print(json.dumps({"bench": "channels_webhooks", "db": args.db, "redis": bool(args.redis),
                          "embedded_worker": not args.no_worker,
                          "events": args.events, "concurrency": args.concurrency, "results": results,
                          "machine": machine_note()}, ensure_ascii=False))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
