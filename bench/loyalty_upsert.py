"""What loyalty costs the orders upsert (issue 16 «Loyalty and referrals»).

Through `orders.service.upsert_many` (the batch API's storing step, no HTTP), 10,000 new orders of 1,000
customers in one transaction, in three workspaces: no tiers (the hook only looks whether there are any); the
seed's three tiers by purchases (5 / 10 / 20, all time) plus one «spent over 365 days» tier; the same tiers
with 500 of the customers referred (their first paid order records the reward). Then every order's status
changes once (all customers recomputed again), and a full recompute of the workspace (a tier edit).
Queries counted per phase.

    .venv/bin/python bench/loyalty_upsert.py [--db sqlite|postgres] [--orders 10000] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--json")
    args = parser.parse_args()
    env = BenchEnv(args.db)
    env.apply_to_this_process()
    env.migrate()
    from sqlalchemy import event, func, select

    from otklik.accounts import service as accounts
    from otklik.customers.models import Customer
    from otklik.orders import loyalty
    from otklik.orders import service as orders
    from otklik.platform.db import get_engine, session_scope

    queries = [0]
    event.listen(get_engine(), "before_cursor_execute", lambda *a, **k: queries.__setitem__(0, queries[0] + 1))
    n, people = args.orders, max(args.orders // 10, 1)  # ten orders a customer on average, skewed: a few buy a lot

    def items(prefix: str, status: str, referred: int = 0) -> list[orders.OrderInput]:
        out = []
        for i in range(n):
            raw: dict[str, Any] = {"customer": {"kind": "email", "value": f"{prefix}{int((i / n) ** 2 * people)}@example.com"},
                                   "status": status, "total": 1000 + i % 7 * 350, "paid": True,
                                   "placed_at": "2026-11-01T10:00:00+03:00"}
            if i < referred:  # a new customer's first order, carrying a friend's code
                raw["customer"] = {"kind": "email", "value": f"{prefix}-ref{i}@example.com"}
                raw["attributes"] = {"referral_code": "FRIEND01"}
            out.append(orders.parse_order(raw, number=f"{prefix}-{i}"))
        return out

    results: dict[str, Any] = {"orders": n, "customers": people, "machine": machine_note(), "db": args.db}
    for label, with_tiers, referred in (("no_tiers", False, 0), ("four_tiers", True, 0),
                                        ("four_tiers_500_referred", True, 500)):
        with session_scope() as s:
            workspace, admin = accounts.bootstrap_workspace(s, slug=f"loyalty-{label.replace('_', '-')}", name=label,
                                                            admin_email=f"{label}@example.com",
                                                            admin_password="bench-password-123")
            ws_id, actor = workspace.id, accounts.actor_for(admin)
            if with_tiers:
                for name, threshold in (("Бронза", 5), ("Серебро", 10), ("Золото", 20)):
                    loyalty.create_tier(s, actor, {"name": name, "threshold": threshold})
                loyalty.create_tier(s, actor, {"name": "VIP", "metric": "spent", "threshold": 20000,
                                               "period_days": 365, "rank": 10})
            if referred:
                from otklik.customers import service as customers
                from otklik.orders.loyalty_models import ReferralCode

                owner = customers.create_customer(s, actor, name="Друг", identities=[
                    customers.IdentityInput("email", "friend@example.com")])
                s.add(ReferralCode(workspace_id=ws_id, customer_id=owner.id, code="FRIEND01"))
        phase: dict[str, Any] = {}
        for step, status in (("new", "paid"), ("status_change", "delivered")):
            batch = items(label[:2], status, referred)
            queries[0] = 0
            started = time.perf_counter()
            with session_scope() as s:
                orders.upsert_many(s, actor, batch, audit=False)
            took = time.perf_counter() - started
            phase[step] = {"seconds": round(took, 2), "orders_per_s": round(n / took), "queries": queries[0]}
            log(f"{label} {step}: {phase[step]}")
        queries[0] = 0
        started = time.perf_counter()
        with session_scope() as s:
            changed = loyalty.recompute(s, ws_id)
        phase["full_recompute"] = {"seconds": round(time.perf_counter() - started, 3), "changed": changed,
                                   "queries": queries[0]}
        with session_scope(write=False) as s:
            phase["tiers"] = dict(s.execute(select(Customer.loyalty_tier, func.count()).where(
                Customer.workspace_id == ws_id).group_by(Customer.loyalty_tier)).all())
            phase["rewarded"] = len(loyalty.list_referrals(s, ws_id, rewarded=True, limit=10_000))
        log(f"{label}: full recompute {phase['full_recompute']}, tiers {phase['tiers']}, rewarded {phase['rewarded']}")
        results[label] = phase
    print(json.dumps(results, ensure_ascii=False, indent=1, default=str))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, ensure_ascii=False, indent=1, default=str), encoding="utf-8")
    env.close()


if __name__ == "__main__":
    main()
