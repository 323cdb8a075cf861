"""Authority limits (issue 14 §2): the approval round trip over HTTP against a real server.

1. A fresh database (SQLite, or PostgreSQL with --db postgres) migrated by `otklik migrate`; `otklik serve` with
   its embedded worker; one workspace with an admin, an agent and a supervisor (API tokens), --n conversations.
2. For each conversation: the agent POSTs a 2,500 ₽ refund (above the shipped 1,000 ₽ limit: a pending request,
   202), then the supervisor POSTs its approval (200): `request`, `approve` and their sum `round_trip` are the
   client-side latencies; `applied` is a 500 ₽ compensation within the limit (201, applied at once).
   p50/p99/max after 10 warm-up rounds.

    .venv/bin/python bench/compensations.py [--n 300] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    args = parser.parse_args()
    bench = BenchEnv(args.db)
    try:
        import httpx

        bench.migrate()
        admin = {"Authorization": f"Bearer {bench.create_admin_token()}"}
        base = bench.start_server()
        http = httpx.Client(base_url=base + "/api/v1", timeout=30)
        tokens = {}
        for role in ("agent", "supervisor"):
            user = http.post("/users", json={"email": f"{role}@bench.example", "name": role, "role": role,
                                             "password": "bench-password-123"}, headers=admin).json()
            token = http.post("/api-tokens", json={"name": role, "user_id": user["id"]}, headers=admin).json()
            tokens[role] = {"Authorization": f"Bearer {token['token']}"}
        warm = 10
        cids = [http.post("/inbound", json={"identity_kind": "email", "identity": f"c{i}@bench.example",
                                            "text": "Заказ опоздал"}, headers=admin).json()["conversation_id"]
                for i in range(args.n + warm)]
        log(f"{len(cids)} conversations; measuring")
        requested, approved, round_trip, applied = [], [], [], []
        for i, cid in enumerate(cids):
            t0 = time.perf_counter()
            r = http.post(f"/conversations/{cid}/compensations", json={"kind": "refund", "amount": "2500",
                                                                      "reason": "брак"}, headers=tokens["agent"])
            t1 = time.perf_counter()
            assert r.status_code == 202, r.text
            a = http.post(f"/compensations/{r.json()['id']}/approve", json={"comment": "ок"},
                          headers=tokens["supervisor"])
            t2 = time.perf_counter()
            assert a.status_code == 200 and a.json()["status"] == "applied", a.text
            t3 = time.perf_counter()
            g = http.post(f"/conversations/{cid}/compensations", json={"kind": "gift", "amount": "1",
                                                                      "reason": "x"}, headers=tokens["supervisor"])
            t4 = time.perf_counter()
            assert g.status_code == 201, g.text
            if i >= warm:
                requested.append(t1 - t0)
                approved.append(t2 - t1)
                round_trip.append(t2 - t0)
                applied.append(t4 - t3)
        print(json.dumps({"db": args.db, "n": args.n, "request_pending": summarize(requested),
                          "approve": summarize(approved), "round_trip": summarize(round_trip),
                          "applied_within_limit": summarize(applied), "machine": machine_note()},
                         ensure_ascii=False, indent=1))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
