"""What the retrained sentiment model does to the assistant's answers: the held-out answers of the last
leave-one-KB-out run (bench/results/kbs/<kb>.details.jsonl) whose message the new sentiment model — fitted
without that KB's chat messages — reads as negative above the hand-off threshold (`Settings.negativity_threshold`,
0.95 by default), so the assistant now hands them to a person instead of answering; and the former «negative»
hand-offs it no longer reads so. Run after bench/understanding_loko.py's models change.

    .venv/bin/python bench/assistant_negativity_effect.py [--out bench/results/kbs/negativity_effect.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src" / "otklik" / "assistant" / "data"))


def main() -> None:
    from make_examples import chat_rows

    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.pipeline import Settings
    from otklik.assistant.understanding import Understander, load_examples

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "kbs" / "negativity_effect.json"))
    args = ap.parse_args()
    threshold = Settings().negativity_threshold
    embedder = get_embedder()
    chat = {r["text"] for r in chat_rows()}
    base = [r for r in load_examples() if r["text"] not in chat]
    rows = []
    for questions in sorted((ROOT / "bench" / "data" / "kbs").glob("*/questions.jsonl")):
        name = questions.parent.name
        details = ROOT / "bench" / "results" / "kbs" / f"{name}.details.jsonl"
        if not details.is_file():
            continue
        asked = [json.loads(line) for line in questions.read_text(encoding="utf-8").splitlines() if line.strip()]
        decided = [json.loads(line) for line in details.read_text(encoding="utf-8").splitlines() if line.strip()]
        u = Understander(embedder, base + chat_rows(exclude={name}), use_shipped=False)
        lost_right = lost_wrong = answered = freed = 0
        for q, d in zip(asked, decided, strict=True):
            negativity = u.understand(q["text"], "ru").negativity
            if d["action"] == "answer":
                answered += 1
                if negativity >= threshold:
                    right = q["expected"] is not None and d["article"] is not None and (
                        d["article"] == q["expected"] or d["article"].removeprefix("en-") == q["expected"])
                    lost_right += right
                    lost_wrong += not right
            elif d["action"] == "handoff" and d["handoff_reason"] == "negative" and negativity < threshold:
                freed += 1
        rows.append({"kb": name, "messages": len(asked), "answered_before": answered,
                     "answers_now_handed_off_right": lost_right, "answers_now_handed_off_wrong": lost_wrong,
                     "negative_handoffs_no_longer_negative": freed})
        print(rows[-1], flush=True)
    total = {k: sum(r[k] for r in rows) for k in rows[0] if k != "kb"}
    print("total", total)
    Path(args.out).write_text(json.dumps({"threshold": threshold, "per_kb": rows, "total": total},
                                         ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
