"""Retrieval alone on the demo store KB: top-1/top-3 of `search_articles` over a question set.

    .venv/bin/python bench/kb_retrieval.py [bench/data/store_questions_val.jsonl]

Loads src/otklik/knowledge/data/store_kb_ru.jsonl into a fresh workspace of a throw-away SQLite database
(or OTKLIK_DATABASE_URL), asks every answerable question and counts where the expected article ranks. An
English translation counts as its original and vice versa (a question may be answered in either language).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if "OTKLIK_DATABASE_URL" not in os.environ:
    os.environ["OTKLIK_DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/kb.db"


def main() -> int:
    from otklik.accounts import service as accounts
    from otklik.knowledge import service, transfer
    from otklik.migrations import upgrade
    from otklik.platform.db import session_scope

    questions_path = Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT / "bench/data/store_questions_val.jsonl"
    kb_path = ROOT / "src/otklik/knowledge/data/store_kb_ru.jsonl"
    upgrade(os.environ["OTKLIK_DATABASE_URL"])
    slug = f"kb-bench-{os.getpid()}-{int(time.time())}"
    with session_scope() as session:
        ws, admin = accounts.bootstrap_workspace(session, slug=slug, name="bench", admin_email="a@example.com",
                                                 admin_password="bench-password-123")
        transfer.import_file(session, accounts.actor_for(admin), kb_path.name, kb_path.read_bytes())
        ws_id = ws.id
    originals = {}
    for line in kb_path.read_text().splitlines():
        row = json.loads(line)
        originals[row["id"]] = row.get("translation_of") or row["id"]
    rows = [json.loads(line) for line in questions_path.read_text().splitlines() if line.strip()]
    answerable = [r for r in rows if r["expected"]]
    top1 = top3 = 0
    started = time.perf_counter()
    with session_scope() as session:
        for r in answerable:
            hits = service.search_articles(session, ws_id, r["text"], limit=3, include_faq=False)
            ranked = [originals.get(h.slug or "", h.slug) for h in hits]
            want = originals[r["expected"]]
            top1 += bool(ranked[:1] == [want])
            top3 += want in ranked
    elapsed = time.perf_counter() - started
    print(json.dumps({"questions": str(questions_path.relative_to(ROOT)), "answerable": len(answerable),
                      "top1_accuracy": round(top1 / len(answerable), 3),
                      "top3_accuracy": round(top3 / len(answerable), 3),
                      "ms_per_query": round(1000 * elapsed / len(answerable), 2)}, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
