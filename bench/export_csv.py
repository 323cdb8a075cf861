"""The CSV export of 100,000 conversations (issue 15: ≤ 5 s, constant memory), in-process: what the export's own
code costs, apart from HTTP and from the other processes on the machine.

1. A fresh SQLite database in a temporary directory, migrated; one workspace; --conversations conversations
   (Core inserts: solved, a first response and a solution time each, a category on two thirds, a formula-looking
   subject on one in seven) spread over the last 30 days.
2. `reports.export.conversation_rows` for those 30 days, --runs times: wall and this process's CPU time per pass,
   the bytes and a SHA-1 of the output (fixed data: two versions of the export must give the same SHA-1).

    .venv/bin/python bench/export_csv.py [--conversations 100000] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import log, machine_note

DAYS = 30


def load(n: int, now: dt.datetime) -> int:
    from sqlalchemy import insert

    from otklik.accounts.models import Workspace
    from otklik.conversations.models import Conversation
    from otklik.customers.models import Customer
    from otklik.platform.db import session_scope

    rng = random.Random(15)
    with session_scope() as s:
        ws = s.execute(insert(Workspace).returning(Workspace.id), [{"slug": "bench", "name": "bench"}]).scalar_one()
        customers = list(s.execute(insert(Customer).returning(Customer.id),
                                   [{"workspace_id": ws, "name": f"C{i}"} for i in range(1000)]).scalars())
        rows = []
        for i in range(n):
            start = now - dt.timedelta(seconds=rng.randint(0, (DAYS - 1) * 86400))
            rows.append({"workspace_id": ws, "number": i + 1, "customer_id": customers[i % len(customers)],
                         "channel": rng.choice(("widget", "email", "telegram")),
                         "subject": "=HYPERLINK(1)" if i % 7 == 0 else "Где мой заказ?", "status": "solved",
                         "created_at": start, "updated_at": start, "last_message_at": start,
                         "last_customer_message_at": start, "first_response_at": start + dt.timedelta(minutes=5),
                         "solved_at": start + dt.timedelta(hours=2), "category": "delivery" if i % 3 else None,
                         "transfer_count": i % 3})
        for k in range(0, n, 5000):
            s.execute(insert(Conversation.__table__), rows[k:k + 5000])
        return int(ws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    tmp = tempfile.mkdtemp(prefix="otklik-bench-csv-")
    os.environ["OTKLIK_DATABASE_URL"] = f"sqlite:///{tmp}/bench.db"
    os.environ["OTKLIK_DATA_DIR"] = f"{tmp}/data"
    from otklik.migrations import upgrade

    upgrade()
    now = dt.datetime(2026, 11, 30, 12, tzinfo=dt.UTC)  # fixed: the same rows and bytes on every run and version
    ws = load(args.conversations, now)
    log(f"loaded {args.conversations} conversations")
    from otklik.reports import export
    from otklik.reports.service import make_filters

    today = now.date()
    filters = make_filters((today - dt.timedelta(days=DAYS)).isoformat(), (today + dt.timedelta(days=1)).isoformat())
    passes = []
    for _ in range(args.runs):
        digest, size = hashlib.sha1(), 0
        t, c = time.perf_counter(), time.process_time()
        for chunk in export.conversation_rows(ws, filters):
            digest.update(chunk)
            size += len(chunk)
        passes.append({"wall_s": round(time.perf_counter() - t, 2), "cpu_s": round(time.process_time() - c, 2),
                       "bytes": size, "sha1": digest.hexdigest()[:12]})
        log(json.dumps(passes[-1]))
    out = {"conversations": args.conversations, "batch": export.BATCH, "passes": passes,
           "best_wall_s": min(p["wall_s"] for p in passes), "best_cpu_s": min(p["cpu_s"] for p in passes),
           "machine": machine_note()}
    print(json.dumps(out, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
