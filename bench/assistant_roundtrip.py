"""From a customer's message arriving over the HTTP API to the assistant's answer stored and queued for the
channel (what the widget then shows): in-process, on a fresh SQLite database, the jobs run inline.

    .venv/bin/python bench/assistant_roundtrip.py --questions bench/data/store_questions_val.jsonl --n 100

Reports wall and CPU-time percentiles (the machine is shared; CPU time is what one idle core would take).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

TMP = tempfile.mkdtemp(prefix="otklik-bench-")
os.environ["OTKLIK_DATABASE_URL"] = f"sqlite:///{TMP}/bench.db"
os.environ["OTKLIK_QUEUE"] = "memory"
os.environ["OTKLIK_DATA_DIR"] = TMP
os.environ["OTKLIK_EMBEDDED_WORKER"] = "false"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--questions", required=True)
    ap.add_argument("--n", type=int, default=100)
    args = ap.parse_args()
    from fastapi.testclient import TestClient
    from sqlalchemy import select

    from otklik.accounts import service as accounts
    from otklik.app import create_app
    from otklik.assistant.models import AssistantDecision
    from otklik.assistant.service import update_settings
    from otklik.knowledge import transfer
    from otklik.migrations import upgrade
    from otklik.platform.db import session_scope

    upgrade()
    with session_scope() as session:
        _ws, admin = accounts.bootstrap_workspace(session, slug="bench", name="Bench", admin_email="a@example.com",
                                                 admin_password="correct-horse-battery")
        actor = accounts.actor_for(admin)
        transfer.import_rows(session, actor, transfer.store_kb_rows())
        update_settings(session, actor, {"enabled": True})
        token, _ = accounts.create_api_token(session, actor, name="bench")
    with open(args.questions, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]
    headers = {"Authorization": f"Bearer {token}"}
    wall, cpu = [], []
    with TestClient(create_app()) as client:
        client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": "warm@example.com",
                                             "text": "прогрев"}, headers=headers)
        for i in range(args.n):
            w, c = time.perf_counter(), time.process_time()
            r = client.post("/api/v1/inbound", json={"identity_kind": "email", "identity": f"c{i}@example.com",
                                                     "text": texts[i % len(texts)]}, headers=headers)
            message_id = r.json()["message_id"]
            with session_scope(write=False) as session:
                assert session.scalar(select(AssistantDecision.id).where(
                    AssistantDecision.message_id == message_id)) is not None
            wall.append((time.perf_counter() - w) * 1000)
            cpu.append((time.process_time() - c) * 1000)
    wall.sort()
    cpu.sort()

    def pct(xs: list[float], q: float) -> float:
        return round(xs[min(len(xs) - 1, int(len(xs) * q))], 1)

    print(json.dumps({"n": args.n, "wall_p50_ms": pct(wall, 0.5), "wall_p99_ms": pct(wall, 0.99),
                      "cpu_p50_ms": pct(cpu, 0.5), "cpu_p99_ms": pct(cpu, 0.99),
                      "load_average": os.getloadavg()[0]}))


if __name__ == "__main__":
    main()
