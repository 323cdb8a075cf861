"""Routing decision time (issue 13): one auto-assignment at 200 agents and 100,000 open conversations.

1. A fresh SQLite database (migrated by `otklik migrate`): one workspace, one team of --agents agents (all
   online, with no skills) with auto-assignment on (round-robin, or --method least_busy) and a capacity high
   enough that nobody is full; --conversations open (new/open/pending) conversations already assigned across
   the agents, bulk-inserted, then the agents' counts set by `routing.recount`.
2. --decisions unassigned conversations of the team, each routed in its own transaction: the figure is the time
   of `routing.assign()` (team row lock, candidates, choice, agent row lock and re-read, the assignment, its audit
   row and the flush that moves the counts), not the commit. p50/p99/max over the decisions, after 20 warm-up;
   `decision_cpu` is the same for this thread's CPU time (SQLite runs in process), which a loaded machine does
   not inflate; the load average is recorded with the figures.

    .venv/bin/python bench/routing.py [--agents 200] [--conversations 100000] [--decisions 2000] [--method round_robin] [--db sqlite|postgres]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=2000)
    parser.add_argument("--method", default="round_robin", choices=("round_robin", "least_busy"))
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    bench = BenchEnv(args.db)
    try:
        bench.migrate()
        bench.apply_to_this_process()
        from sqlalchemy import insert, select

        from otklik.accounts import service as accounts
        from otklik.accounts.models import TeamMember, User
        from otklik.conversations import routing
        from otklik.conversations.models import Conversation
        from otklik.customers.models import Customer
        from otklik.migrations import all_models
        from otklik.platform.db import session_scope

        all_models()
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        log(f"loading {args.agents} agents, {args.conversations} open conversations")
        with session_scope() as session:
            workspace, admin = accounts.bootstrap_workspace(session, slug="bench", name="Bench",
                                                            admin_email="admin@bench.example",
                                                            admin_password="bench-password-123")
            ws = workspace.id
            session.execute(insert(User), [{"workspace_id": ws, "email": f"a{i}@bench.example", "name": f"A{i}",
                                            "role": "agent", "language": "ru", "is_active": True,
                                            "created_at": now} for i in range(args.agents)])
            agent_ids = list(session.scalars(select(User.id).where(User.workspace_id == ws, User.role == "agent")))
            team = accounts.create_team(session, accounts.actor_for(admin), name="Доставка")
            session.execute(insert(TeamMember), [{"team_id": team.id, "user_id": u, "workspace_id": ws}
                                                 for u in agent_ids])
            session.execute(insert(Customer), [{"workspace_id": ws, "name": f"C{i}", "created_at": now,
                                                "updated_at": now} for i in range(1000)])
            customer_ids = list(session.scalars(select(Customer.id).where(Customer.workspace_id == ws)))
            team_id = team.id
        statuses = ("new", "open", "pending")
        channels = ("telegram", "widget", "email", "whatsapp")
        batch = 20_000
        for start in range(0, args.conversations + args.decisions, batch):
            stop = min(start + batch, args.conversations + args.decisions)
            with session_scope() as session:
                session.execute(insert(Conversation), [{
                    "workspace_id": ws, "number": i + 1, "customer_id": customer_ids[i % len(customer_ids)],
                    "channel": channels[i % len(channels)], "subject": "", "status": statuses[i % 3],
                    "priority": "normal",
                    "assignee_id": agent_ids[i % len(agent_ids)] if i < args.conversations else None,
                    "team_id": team_id, "version": 1, "message_count": 1, "last_message_preview": "",
                    "created_at": now - dt.timedelta(seconds=args.conversations - i), "updated_at": now,
                    "last_message_at": now, "last_customer_message_at": now, "urgent": False,
                    "sla_breached": False, "transfer_count": 0,
                } for i in range(start, stop)])
        with session_scope() as session:
            routing.recount(session, ws)
            session.add(routing.TeamRouting(team_id=team_id, workspace_id=ws, auto_assign=True, method=args.method,
                                            capacity_chat=10_000, capacity_email=10_000))
            session.add(routing.RoutingSettings(workspace_id=ws, out_of_hours_to_open_team=False,
                                                away_after_minutes=15))
            from sqlalchemy import update

            session.execute(update(routing.AgentRouting).values(availability="online", last_seen_at=now))
        from sqlalchemy import text

        with session_scope() as session:
            session.execute(text("ANALYZE"))  # both dialects
            waiting = list(session.scalars(select(Conversation.id).where(Conversation.assignee_id.is_(None),
                                                                        Conversation.team_id == team_id)
                                           .order_by(Conversation.id)))
        log(f"routing {len(waiting)} conversations one by one")
        latencies: list[float] = []
        cpu_times: list[float] = []  # this thread's CPU time: what the decision costs without waiting for a core
        assigned = 0
        for n, cid in enumerate(waiting):
            with session_scope() as session:
                conversation = session.get(Conversation, cid)
                assert conversation is not None
                t, c = time.perf_counter(), time.thread_time()
                got = routing.assign(session, conversation)
                elapsed, cpu = time.perf_counter() - t, time.thread_time() - c
            assigned += got is not None
            if n >= 20:
                latencies.append(elapsed)
                cpu_times.append(cpu)
        result = {"bench": "routing", "db": args.db, "agents": args.agents, "open_conversations":
                  args.conversations, "method": args.method, "assigned": assigned,
                  "decision": summarize(latencies), "decision_cpu": summarize(cpu_times),
                  "load_average": os.getloadavg(), "machine": machine_note()}
        text_out = json.dumps(result, ensure_ascii=False, indent=2)
        print(text_out)
        if args.out:
            args.out.write_text(text_out + "\n")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
