"""Automatic QA scoring (issue 15, docs/qa.md): the time to score and store one solved conversation.

1. A fresh database (SQLite, or PostgreSQL with --db postgres) migrated by `otklik migrate`; one workspace.
2. --conversations solved conversations bulk-loaded (Core inserts): each with --messages public messages
   alternating customer / agent (an order number from the customer, a greeting, a re-ask on a third, a next step,
   a closing), an SLA first-response timer, the assistant's understanding on each customer message, a CSAT
   answer on half.
3. `qa.store_auto` for each conversation, one transaction each as the job runs it when a conversation is solved:
   wall and this thread's CPU time per conversation (p50 / p99), and the whole pass (what re-scoring 100,000 would
   take at that rate).
4. The re-scoring job (`feedback.jobs.rescore_qa`, what `POST /api/v1/qa/rescore` enqueues): every solved
   conversation again in batches of 200, one transaction and one read of each table a batch: its wall and CPU
   time, per conversation and scaled to 100,000; the cards it stores are checked equal to step 3's.

    .venv/bin/python bench/qa.py [--db sqlite|postgres] [--conversations 2000] [--messages 8] [--skip-single]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import BenchEnv, log, machine_note, summarize

CUSTOMER = ["Здравствуйте, где мой заказ 4815162342? Жду уже неделю.", "Номер заказа я уже писал: 4815162342",
            "Спасибо, жду.", "А когда точно?"]
AGENT = ["Здравствуйте! Сейчас проверю ваш заказ.", "Подскажите, пожалуйста, номер заказа?",
         "Мы отправили заказ повторно, трек-номер пришлём сегодня.", "Хорошего дня! Чем ещё могу помочь?"]


def load(n: int, per: int, seed: int = 15) -> list[int]:
    from sqlalchemy import insert, select

    from otklik.accounts.models import User, Workspace
    from otklik.assistant.models import AssistantDecision
    from otklik.conversations.models import Conversation, Message
    from otklik.conversations.sla import SlaTimer
    from otklik.customers.models import Customer
    from otklik.feedback.models import SurveyAnswer
    from otklik.platform.db import session_scope

    rng = random.Random(seed)
    now = dt.datetime.now(dt.UTC)
    with session_scope() as s:
        ws = s.scalar(select(Workspace.id).where(Workspace.slug == "bench"))
        agent = s.scalar(select(User.id).where(User.workspace_id == ws))
        customers = list(s.execute(insert(Customer).returning(Customer.id),
                                   [{"workspace_id": ws, "name": f"C{i}"} for i in range(n)]).scalars())
        convs = []
        for i in range(n):
            start = now - dt.timedelta(days=rng.randint(1, 300), minutes=rng.randint(0, 1440))
            convs.append({"workspace_id": ws, "number": i + 1, "customer_id": customers[i], "channel": "widget",
                          "subject": "Где заказ?", "status": "solved", "created_at": start, "updated_at": start,
                          "last_message_at": start, "last_customer_message_at": start,
                          "first_response_at": start + dt.timedelta(minutes=5),
                          "solved_at": start + dt.timedelta(hours=2), "assignee_id": agent,
                          "transfer_count": rng.choice((0, 0, 1, 2))})
        ids = list(s.execute(insert(Conversation).returning(Conversation.id), convs).scalars())
        messages, timers, surveys = [], [], []
        for cid, conv in zip(ids, convs, strict=True):
            for k in range(per):
                customer = k % 2 == 0
                pool = CUSTOMER if customer else AGENT
                text = pool[(k // 2) % len(pool)] if customer or k != 3 or cid % 3 == 0 else AGENT[2]
                messages.append({"workspace_id": ws, "conversation_id": cid, "channel": "widget",
                                 "direction": "inbound" if customer else "outbound",
                                 "author_kind": "customer" if customer else "agent",
                                 "author_user_id": None if customer else agent, "body_text": text,
                                 "delivery_status": "received" if customer else "sent", "meta": {},
                                 "created_at": conv["created_at"] + dt.timedelta(minutes=5 * k)})
            timers.append({"workspace_id": ws, "conversation_id": cid, "kind": "first_response",
                           "target_minutes": 60, "started_at": conv["created_at"], "state": "met"})
            if cid % 2:
                surveys.append({"workspace_id": ws, "conversation_id": cid, "customer_id": conv["customer_id"],
                                "kind": "csat", "channel": "widget", "score": rng.randint(1, 5), "comment": "",
                                "sent_at": conv["solved_at"], "answered_at": conv["solved_at"],
                                "created_at": conv["solved_at"]})
        mids = list(s.execute(insert(Message).returning(Message.id, Message.conversation_id,
                                                        Message.author_kind), messages))
        decisions = [{"workspace_id": ws, "conversation_id": cid, "message_id": mid, "action": "silent",
                      "reason": "agent_owns", "confidence": 0.5, "failed": False,
                      "details": {"understanding": {"sentiment": rng.choice(("negative", "neutral"))}}}
                     for mid, cid, kind in mids if kind == "customer"]
        for table, rows in ((SlaTimer, timers), (SurveyAnswer, surveys), (AssistantDecision, decisions)):
            for i in range(0, len(rows), 5000):
                s.execute(insert(table.__table__), rows[i:i + 5000])

    return ids


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default="sqlite", choices=("sqlite", "postgres"))
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=8)
    parser.add_argument("--skip-single", action="store_true", help="only the batched re-scoring (step 4)")
    args = parser.parse_args()
    bench = BenchEnv(args.db)
    try:
        bench.migrate()
        bench.create_admin_token()
        bench.apply_to_this_process()
        ids = load(args.conversations, args.messages)
        log(f"loaded {len(ids)} conversations × {args.messages} messages")
        from otklik.feedback import qa
        from otklik.platform.db import session_scope

        with session_scope(write=False) as s:
            ws = s.get(qa.Conversation, ids[0]).workspace_id
        wall, cpu, scores = [], [], []
        out: dict = {"db": args.db, "conversations": len(ids), "messages_each": args.messages}
        single: dict = {}
        if not args.skip_single:
            began = time.perf_counter()
            for cid in ids:
                t, c = time.perf_counter(), time.thread_time()
                with session_scope() as s:
                    row = qa.store_auto(s, ws, cid)
                    scores.append(row.score if row else None)
                wall.append(time.perf_counter() - t)
                cpu.append(time.thread_time() - c)
            whole = time.perf_counter() - began
            with session_scope(write=False) as s:
                single = dict(s.execute(qa.select(qa.QaScore.conversation_id, qa.QaScore.items)).all())
            out.update({"per_conversation_wall": summarize(wall), "per_conversation_cpu": summarize(cpu),
                        "pass_s": round(whole, 1), "per_100000_min": round(whole / len(ids) * 100_000 / 60, 1),
                        "score_mean": round(sum(x for x in scores if x is not None) / len(scores), 1)})
        from otklik.feedback.jobs import rescore_qa

        t, c = time.perf_counter(), time.thread_time()
        scored = rescore_qa.call_local(ws)
        rescore_wall, rescore_cpu = time.perf_counter() - t, time.thread_time() - c
        with session_scope(write=False) as s:
            batched = dict(s.execute(qa.select(qa.QaScore.conversation_id, qa.QaScore.items)).all())
        out["rescore"] = {"scored": scored, "batch": qa.RESCORE_BATCH, "wall_s": round(rescore_wall, 1),
                          "cpu_s": round(rescore_cpu, 1),
                          "per_conversation_wall_ms": round(1000 * rescore_wall / len(ids), 2),
                          "per_conversation_cpu_ms": round(1000 * rescore_cpu / len(ids), 2),
                          "per_100000_min": round(rescore_wall / len(ids) * 100_000 / 60, 1),
                          "per_100000_cpu_min": round(rescore_cpu / len(ids) * 100_000 / 60, 1),
                          "same_cards_as_one_by_one": (batched == single) if single else None}
        out["machine"] = machine_note()
        log(json.dumps(out, ensure_ascii=False))
        print(json.dumps(out, ensure_ascii=False, indent=1))
    finally:
        bench.close()


if __name__ == "__main__":
    main()
