"""Consumer-law deadline figures (issue 14 §1): the calculation's time, and what the side bar's «Сроки по
закону» block adds to the conversation page.

1. A fresh database of its own (bench/_common.BenchEnv: SQLite in a temp dir, or the reset PostgreSQL bench
   database), one workspace with its default Moscow calendar (RU holidays) and a shop
   term, --conversations open conversations of which every other has a consumer-law case (the rest none).
2. Calculation: `guardrails.service.compute()` (the workspace's calendar and terms, ГК ст. 191–193, penalties)
   on --calls random cases across every situation, in process; and the bare calculator
   `deadlines.obligations()`; p50/p99/max.
3. The page: GET /conversations/{id}, which renders the «Сроки по закону» block inline, through the ASGI app
   in process, one at a time, interleaved over conversations with and without a case, after 3 warm-ups: what
   the block adds to the page is the difference. Also GET /ui/conversations/{id}/legal, the block alone (what
   the side bar re-fetches when the conversation changes), and its CPU time in this process (which other
   processes on a loaded machine do not inflate).

    .venv/bin/python bench/legal.py [--db postgres] [--requests 300] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, machine_note, percentile, summarize


def micro(latencies: list[float]) -> dict[str, float]:
    lat = sorted(latencies)
    return {"calls": len(lat), "p50_us": round(percentile(lat, 50) * 1e6, 1),
            "p99_us": round(percentile(lat, 99) * 1e6, 1), "max_us": round(lat[-1] * 1e6, 1)}

SITUATION_INPUTS = {
    "return_distance_sale": ("delivered_on", "demanded_on", "return_terms_in_writing"),
    "return_in_store": ("purchased_on", "demanded_on"),
    "defect": ("demanded_on", "price", "in_stock", "quality_check"),
    "warranty_repair": ("demanded_on", "price"),
    "late_delivery_prepaid": ("agreed_delivery_on", "demanded_on", "prepaid"),
    "late_service": ("agreed_delivery_on", "price"),
}


def random_case(rng: random.Random, today: dt.date) -> tuple[str, dict]:
    situation = rng.choice(list(SITUATION_INPUTS))
    base = today - dt.timedelta(days=rng.randint(0, 120))
    data: dict = {"purchased_on": base - dt.timedelta(days=5), "today": today}
    for name in SITUATION_INPUTS[situation]:
        if name == "purchased_on":
            continue
        elif name == "delivered_on":
            data[name] = base
        elif name.endswith("_on"):
            data[name] = base + dt.timedelta(days=rng.randint(0, 10))
        elif name in ("price", "prepaid"):
            data[name] = Decimal(rng.randint(500, 90000))
        else:
            data[name] = rng.random() < 0.5
    return situation, data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--conversations", type=int, default=40)
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    bench = BenchEnv(args.db)  # a fresh database of its own (the PostgreSQL bench database is reset)
    bench.env.update(OTKLIK_EMBEDDED_WORKER="false", OTKLIK_E5="off")
    bench.apply_to_this_process()
    os.environ.update(OTKLIK_EMBEDDED_WORKER="false", OTKLIK_E5="off")
    try:
        bench.migrate()
        run(args, bench.database_url)
    finally:
        bench.close()


def run(args: argparse.Namespace, url: str) -> None:
    from fastapi.testclient import TestClient

    from otklik.accounts import service as accounts
    from otklik.accounts.models import Role
    from otklik.app import create_app
    from otklik.calendars import service as calendars
    from otklik.conversations import service as conversations
    from otklik.guardrails import deadlines
    from otklik.guardrails import service as legal
    from otklik.platform.db import session_scope

    today = dt.date.today()
    with session_scope() as s:
        ws, admin_user = accounts.bootstrap_workspace(s, slug="bench", name="Техника", admin_email="admin@example.com",
                                                      admin_password="bench-password-1")
        actor = accounts.actor_for(admin_user)
        accounts.create_user(s, actor, email="agent@example.com", name="Мария", role=Role.agent,
                             password="bench-password-1")
        ws_id = ws.id
        week = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
        cal = calendars.create_calendar(s, actor, {"name": "Москва", "time_zone": "Europe/Moscow", "hours": week,
                                                   "holidays": "RU"})
        assert cal.is_default  # a workspace's first calendar is its default: the deadlines count on it
        legal.update_settings(s, actor, {"terms": [{"situation": "return_distance_sale", "key": "refuse_goods",
                                                    "days": 30, "title": "Возврат 30 дней"}]})
    rng = random.Random(14)
    with_case: list[int] = []
    without: list[int] = []
    with session_scope() as s:
        for i in range(args.conversations):
            got = conversations.receive(s, ws_id, conversations.InboundMessage(
                channel="email", identity_kind="email", identity_value=f"c{i}@example.com",
                text=f"Сломался чайник, заказ {i}", customer_name=f"Клиент {i}"))
            (with_case if i % 2 else without).append(got.conversation.id)
    with session_scope() as s:
        for cid in with_case:
            legal.save_case(s, actor, cid, "defect", {
                "demanded_on": (today - dt.timedelta(days=rng.randint(1, 30))).isoformat(),
                "price": str(rng.randint(1000, 50000)), "in_stock": True, "quality_check": False})

    # 2. the calculation
    cases = [random_case(rng, today) for _ in range(args.calls)]
    service_times, bare_times = [], []
    with session_scope() as s:
        non_working, _ = legal.non_working_for(s, ws_id)
        terms = legal.shop_terms(s, ws_id)
        for situation, data in cases[:200]:  # warm-up (the calendar's years expand once per process)
            legal.compute(s, ws_id, situation, data)
        for situation, data in cases:
            t = time.perf_counter()
            legal.compute(s, ws_id, situation, data)
            service_times.append(time.perf_counter() - t)
            inputs = deadlines.inputs_from(data)
            t = time.perf_counter()
            deadlines.obligations(situation, inputs, non_working, today, terms)
            bare_times.append(time.perf_counter() - t)

    # 3. the page and the block
    app = create_app()
    pages: dict[str, list[float]] = {"page_with_case": [], "page_without_case": [], "block_with_case": [],
                                     "block_without_case": []}
    cpu: dict[str, list[float]] = {"block_with_case": [], "block_without_case": []}  # this process's CPU time
    with TestClient(app) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        client.post("/login", data={"email": "agent@example.com", "password": "bench-password-1",
                                    "csrf_token": token.group(1)})
        for cid in (with_case[0], without[0]):
            for _ in range(3):
                assert client.get(f"/conversations/{cid}").status_code == 200
                assert client.get(f"/ui/conversations/{cid}/legal").status_code == 200
        for n in range(args.requests):
            for kind, ids in (("with_case", with_case), ("without_case", without)):
                cid = ids[n % len(ids)]
                t = time.perf_counter()
                assert client.get(f"/conversations/{cid}").status_code == 200
                pages[f"page_{kind}"].append(time.perf_counter() - t)
                t, c = time.perf_counter(), time.process_time()
                r = client.get(f"/ui/conversations/{cid}/legal")
                pages[f"block_{kind}"].append(time.perf_counter() - t)
                cpu[f"block_{kind}"].append(time.process_time() - c)
                assert r.status_code == 200 and (kind == "without_case" or "legal-obligation" in r.text)
    result = {"bench": "legal", "db": url.split(":")[0], "calls": args.calls,
              "compute": micro(service_times), "calculator_only": micro(bare_times),
              "pages": {k: summarize(v) for k, v in pages.items()},
              "block_cpu": {k: summarize(v) for k, v in cpu.items()}, "conversations": args.conversations,
              "load_average": os.getloadavg(), "machine": machine_note()}
    text_out = json.dumps(result, ensure_ascii=False, indent=2)
    print(text_out)
    if args.json:
        Path(args.json).write_text(text_out + "\n")


if __name__ == "__main__":
    main()
