"""A proactive campaign to N customers (issue 16): how fast it is claimed and queued into the outbox, how its
outbox rows are spread at the channel's rate, and a kill-resume check (nobody messaged twice).

    .venv/bin/python bench/proactive_campaign.py --customers 100000 [--resume-customers 20000] [--db sqlite]

What it does: a fresh database with one workspace and N customers, each with an e-mail address and a recorded
marketing consent (quiet hours off, a cap that lets two campaigns through). Campaign 1 (marketing, everyone)
runs in this process through the job's own loop (`proactive.jobs.run_campaign_now`: batches of 500, each one
transaction — claim the send rows, decide, create the conversation, message and outbox row, move the cursor);
the figure is customers queued per second. The outbox rows are due at the e-mail channel's rate (10/s), so the
script also prints the span of their due times (N / rate expected). Delivery itself is the outbox's business
and is not timed here.

Kill-resume: campaign 2 to the first `--resume-customers` customers runs in worker 1 (a subprocess), which is
killed with SIGKILL when about half are claimed — mid-batch; worker 2 resumes from the persisted cursor and
finishes. Checks: campaign 2 has exactly one send per customer, every one queued, and every customer has
exactly one outbound message per campaign (2 in all). Prints one JSON line (progress on stderr).
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
from otklik.proactive import jobs
jobs.run_campaign_now(int(sys.argv[1]), batch=int(sys.argv[2]))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--resume-customers", type=int, default=20_000)
    parser.add_argument("--db", default="sqlite")
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()

    env = BenchEnv(args.db)
    env.migrate()
    env.apply_to_this_process()
    from sqlalchemy import func, insert, select

    from otklik.accounts import service as accounts
    from otklik.conversations.models import Conversation, Message, OutboxItem
    from otklik.customers.models import Customer, Identity
    from otklik.platform.db import session_scope, utcnow
    from otklik.proactive import jobs, service
    from otklik.proactive.models import CustomerContact, ProactiveSend

    n = args.customers
    note = machine_note()
    log(f"seeding {n} customers ({args.db})")
    started = time.perf_counter()
    with session_scope() as session:
        workspace, admin = accounts.bootstrap_workspace(session, slug="proactive-bench", name="Shop",
                                                        admin_email="admin@example.com",
                                                        admin_password="bench-password-123")
        actor = accounts.actor_for(admin)
        ws_id = workspace.id
        now = utcnow()
        for start in range(0, n, 10_000):
            session.execute(insert(Customer), [{"workspace_id": ws_id, "name": f"Клиент {i}", "attributes": {},
                                                "search_terms": "", "created_at": now, "updated_at": now}
                                               for i in range(start, min(n, start + 10_000))])
        ids = list(session.scalars(select(Customer.id).where(Customer.workspace_id == ws_id).order_by(Customer.id)))
        for start in range(0, n, 10_000):
            chunk = ids[start:start + 10_000]
            session.execute(insert(Identity), [{"workspace_id": ws_id, "customer_id": cid, "kind": "email",
                                                "external_id": f"c{cid}@example.com", "verified": True,
                                                "created_at": now} for cid in chunk])
            session.execute(insert(CustomerContact), [{"workspace_id": ws_id, "customer_id": cid, "opted_out": False,
                                                       "marketing_consent": True, "updated_at": now} for cid in chunk])
        service.update_settings(session, actor, {"quiet_start": 0, "quiet_end": 0, "cap_count": 5, "cap_days": 7})
        first = service.create_campaign(session, actor, {"name": "Bench 1", "text_ru": "{{name}}, скидка 10 %"})
        service.schedule_campaign(session, actor, first.id)
        second = service.create_campaign(session, actor, {
            "name": "Bench 2", "text_ru": "{{name}}, вторая рассылка",
            "segment": {"attributes": {"wave": "2"}}})
        service.schedule_campaign(session, actor, second.id)
        first_id, second_id = first.id, second.id
    with session_scope() as session:  # campaign 2's segment: the first --resume-customers customers
        for cid in ids[:args.resume_customers]:
            session.get(Customer, cid).attributes = {"wave": "2"}  # type: ignore[union-attr]
    log(f"seeded in {time.perf_counter() - started:.1f} s")

    with session_scope() as session:
        service.start_due_campaigns(session)
    t0 = time.perf_counter()
    totals = jobs.run_campaign_now(first_id, batch=args.batch)
    wall = time.perf_counter() - t0
    log(f"campaign 1: {totals} in {wall:.1f} s")
    with session_scope(write=False) as session:
        lo, hi = session.execute(select(func.min(OutboxItem.next_attempt_at), func.max(OutboxItem.next_attempt_at))
                                 .where(OutboxItem.workspace_id == ws_id)).one()
    span = (hi - lo).total_seconds() if lo and hi else 0.0

    m = args.resume_customers
    worker_env = dict(env.env)
    cmd = [sys.executable, "-c", WORKER, str(second_id), str(args.batch)]

    def claimed() -> int:
        with session_scope(write=False) as session:
            return int(session.scalar(select(func.count()).select_from(ProactiveSend).where(
                ProactiveSend.campaign_id == second_id)) or 0)

    t1 = time.perf_counter()
    worker = subprocess.Popen([*cmd], env=worker_env)
    while claimed() < m // 2 and worker.poll() is None:
        time.sleep(0.05)
    time.sleep(0.1)  # inside a batch
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait()
    at_kill = claimed()
    log(f"worker 1 killed after {time.perf_counter() - t1:.1f} s with {at_kill}/{m} claimed")
    t2 = time.perf_counter()
    subprocess.run(cmd, env=worker_env, check=True)
    resumed = time.perf_counter() - t2
    with session_scope(write=False) as session:
        sends = session.execute(select(func.count(), func.count(func.distinct(ProactiveSend.customer_id)))
                                .where(ProactiveSend.campaign_id == second_id)).one()
        queued = session.scalar(select(func.count()).select_from(ProactiveSend).where(
            ProactiveSend.campaign_id == second_id, ProactiveSend.status == "queued"))
        per_customer = dict(session.execute(select(Conversation.customer_id, func.count(Message.id)).join(
            Message, Message.conversation_id == Conversation.id).where(
            Conversation.workspace_id == ws_id, Message.direction == "outbound")
            .group_by(Conversation.customer_id)).all())
        status = session.get(service.ProactiveCampaign, second_id).status  # type: ignore[union-attr]
    wave = set(ids[:m])
    twice = sum(1 for cid in ids if per_customer.get(cid, 0) != (2 if cid in wave else 1))
    result = {
        "bench": "proactive_campaign", "db": args.db, "customers": n, "batch": args.batch,
        "campaign_queued": totals["queued"], "campaign_wall_s": round(wall, 1),
        "queued_per_s": round(totals["queued"] / wall, 1) if wall else None,
        "outbox_span_s": round(span, 1), "expected_span_s": round((n - 1) / service.CHANNEL_RATES["email"], 1),
        "resume": {"customers": m, "claimed_at_kill": at_kill, "resume_wall_s": round(resumed, 1),
                   "sends": sends[0], "distinct_customers": sends[1], "queued": queued, "status": status,
                   "customers_with_wrong_message_count": twice},
        "machine": note,
    }
    print(json.dumps(result, ensure_ascii=False))
    ok = sends[0] == sends[1] == queued == m and twice == 0 and status == "done"
    env.close() if hasattr(env, "close") else None
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
