"""Bulk sync of N customers to a CRM (issue 18), resumable: a worker is killed mid-way, another resumes from
the persisted cursor, and no contact is created twice.

    .venv/bin/python bench/crm_sync.py --customers 10000 [--db sqlite|postgres] [--kill-at 0.5]

What it does: a fresh database with one workspace and N customers — 90 % with a verified phone (10 % of those
already in the CRM: matched, not created), 10 % with only a typed, unverified phone (never matched: skipped).
The RetailCRM stand-in (tests/crm/stand_ins.py: API key, paging, 429 with Retry-After) runs in this process;
every `--limit-every`-th request is answered 429 with Retry-After: 1, which the client waits out.
Worker 1 (a subprocess running `crm.service.run_sync`, the job's own loop) is killed with SIGKILL when the
sync's cursor passes `--kill-at` of the customers, usually in the middle of a batch whose contacts the CRM
already created. Its lease would run out after 60 s (the sweep then hands the sync to another worker); the
script expires it at once instead, so the figures leave that wait out. Worker 2 resumes and finishes.
Checks: the sync is done, every verified customer is linked once, the CRM holds each phone once, the
unverified are skipped. Prints one JSON line (progress on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench._common import BenchEnv, log, machine_note

WORKER = """
import sys
from otklik.crm import service
service.run_sync(int(sys.argv[1]), owner=sys.argv[2], batch=int(sys.argv[3]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--kill-at", type=float, default=0.5, help="kill worker 1 past this share of customers")
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--limit-every", type=int, default=2500, help="answer every Nth request 429 (0: never)")
    args = parser.parse_args()

    env = BenchEnv(args.db)
    env.migrate()
    env.apply_to_this_process()
    from sqlalchemy import func, insert, select, update
    from tests.crm.stand_ins import RetailCrmStandIn

    from otklik.accounts import service as accounts
    from otklik.crm import service as crm
    from otklik.crm.models import CrmLink, CrmSync
    from otklik.customers.models import Customer, Identity
    from otklik.platform.db import session_scope, utcnow

    stand_in = RetailCrmStandIn()
    seen = {"n": 0}
    original = stand_in.handle

    def handle(*a, **kw):  # type: ignore[no-untyped-def]
        seen["n"] += 1
        if args.limit_every and seen["n"] % args.limit_every == 0:
            return 429, {"success": False, "errorMsg": "Too many requests"}, {"Retry-After": "1"}
        return original(*a, **kw)

    stand_in.handle = handle  # type: ignore[method-assign]
    n = args.customers
    log(f"seeding {n} customers ({args.db})")
    started = time.perf_counter()
    with session_scope() as session:
        workspace, admin = accounts.bootstrap_workspace(session, slug="crm-bench", name="Shop",
                                                        admin_email="admin@example.com",
                                                        admin_password="bench-password-123")
        actor = accounts.actor_for(admin)
        ws_id = workspace.id
        now = utcnow()
        rows = [{"workspace_id": ws_id, "name": f"Клиент {i}", "attributes": {}, "search_terms": "",
                 "created_at": now, "updated_at": now} for i in range(n)]
        session.execute(insert(Customer), rows)
        ids = list(session.scalars(select(Customer.id).where(Customer.workspace_id == ws_id).order_by(Customer.id)))
        identities = []
        verified = unverified = existing = 0
        for i, customer_id in enumerate(ids):
            phone = f"+7916{i:07d}"
            is_verified = i % 10 != 9
            verified += is_verified
            unverified += not is_verified
            identities.append({"workspace_id": ws_id, "customer_id": customer_id, "kind": "phone",
                               "external_id": phone, "verified": is_verified, "created_at": now})
            if is_verified and i % 10 == 0:
                stand_in.add_customer(first=f"Клиент {i}", phone=phone)  # already in the CRM
                existing += 1
        session.execute(insert(Identity), identities)
        connection = crm.create_connection(session, actor, kind="retailcrm",
                                           config={"base_url": stand_in.base, "site": "shop"},
                                           secrets={"api_key": stand_in.api_key})
        session.flush()
        sync = crm.start_sync(session, actor, connection.id, create_missing=True)
        session.flush()
        sync_id, connection_id = sync.id, connection.id
    log(f"seeded in {time.perf_counter() - started:.1f} s; {existing} already in the CRM")

    def progress() -> tuple[int, str]:
        with session_scope(write=False) as session:
            row = session.get(CrmSync, sync_id)
            assert row is not None
            return row.processed, row.status

    worker_env = dict(env.env, PYTHONPATH=str(Path(__file__).resolve().parent.parent / "src"))
    cmd = [sys.executable, "-c", WORKER, str(sync_id)]
    t0 = time.perf_counter()
    first = subprocess.Popen([*cmd, "worker-1", str(args.batch)], env=worker_env)
    kill_at = int(n * args.kill_at)
    while True:
        done, _ = progress()
        if done >= kill_at or first.poll() is not None:
            break
        time.sleep(0.05)
    time.sleep(0.13)  # land inside the next batch, after some of its contacts were created in the CRM
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    killed_after = time.perf_counter() - t0
    at_kill, _ = progress()
    crm_at_kill = len(stand_in.customers)
    log(f"worker 1 killed after {killed_after:.1f} s at cursor {at_kill}/{n}; CRM holds {crm_at_kill}")
    with session_scope() as session:
        session.execute(update(CrmSync).where(CrmSync.id == sync_id).values(lease_until=None))  # skip the 60-s wait
        assert crm.syncs_to_resume(session) == [sync_id]
    t1 = time.perf_counter()
    second = subprocess.run([*cmd, "worker-2", str(args.batch)], env=worker_env, check=False)
    resumed = time.perf_counter() - t1
    with session_scope(write=False) as session:
        final = session.get(CrmSync, sync_id)
        links = session.scalar(select(func.count()).select_from(CrmLink).where(CrmLink.connection_id == connection_id))
        distinct_contacts = session.scalar(select(func.count(func.distinct(CrmLink.external_id))).where(
            CrmLink.connection_id == connection_id))
    phones = [p["number"] for c in stand_in.customers.values() for p in c.get("phones", [])]
    duplicates = len(phones) - len(set(phones))
    result = {
        "bench": "crm_sync", "db": args.db, "customers": n, "verified": verified, "unverified": unverified,
        "already_in_crm": existing, "batch": args.batch, "worker2_rc": second.returncode,
        "killed_after_s": round(killed_after, 2), "cursor_at_kill": at_kill, "crm_contacts_at_kill": crm_at_kill,
        "resumed_run_s": round(resumed, 2), "total_work_s": round(killed_after + resumed, 2),
        "customers_per_s": round(n / (killed_after + resumed), 1),
        "status": final.status if final else None, "processed": final.processed if final else None,
        "matched": final.matched if final else None, "created": final.created if final else None,
        "skipped": final.skipped if final else None, "links": links, "distinct_contacts_linked": distinct_contacts,
        "crm_contacts": len(stand_in.customers), "duplicate_phones_in_crm": duplicates,
        "vendor_requests": seen["n"], "rate_limited_429": args.limit_every and seen["n"] // args.limit_every,
        "ok": bool(final and final.status == "done" and links == verified == distinct_contacts and duplicates == 0
                   and len(stand_in.customers) == verified and final.skipped == unverified),
        "machine": machine_note(),
    }
    print(json.dumps(result, ensure_ascii=False))
    stand_in.close()
    env.close()


if __name__ == "__main__":
    main()
