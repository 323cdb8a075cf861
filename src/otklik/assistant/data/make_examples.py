"""Build `examples.jsonl`, the training examples the product's understanding models are fitted on at first run.

Sources, all written for this project (no third-party or "evaluation use only" data):
- `written.jsonl` here: support messages written for the assistant (sentiment, urgency, abuse, reasons);
- `bench/data/store_questions_val.jsonl` and `store_questions_val2.jsonl`: the demo store's *validation*
  questions (reason, sentiment, urgent), written by two engineers apart. The *test* questions are never used.
- `bench/data/kbs/*/questions.jsonl`: seven other businesses' chat messages (sentiment and urgency only: their
  contact reasons are their own, not the demo store's). `chat_rows(exclude=...)` leaves a business out for the
  leave-one-KB-out benchmark (bench/understanding_loko.py, bench/assistant_kbs.py).

    python src/otklik/assistant/data/make_examples.py

and then fits the reason / sentiment / urgency models on them and writes `*.usem3.npz` (float16 weights).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[3]


def chat_rows(exclude: set[str] | frozenset[str] = frozenset()) -> list[dict]:
    """Sentiment and urgency labels of the dev KBs' chat messages (no reason: each business has its own)."""
    rows = []
    for path in sorted((ROOT / "bench" / "data" / "kbs").glob("*/questions.jsonl")):
        if path.parent.name in exclude:
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                rows.append({"text": r["text"], "sentiment": r["sentiment"], "urgent": bool(r["urgent"])})
    return rows


def main() -> None:
    rows = []
    seen = set()
    for path in (HERE / "written.jsonl", ROOT / "bench" / "data" / "store_questions_val.jsonl",
                 ROOT / "bench" / "data" / "store_questions_val2.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            if r["text"] in seen:
                continue
            seen.add(r["text"])
            rows.append({k: r[k] for k in ("text", "reason", "sentiment", "urgent", "abusive") if k in r})
    for r in chat_rows():
        if r["text"] not in seen:
            seen.add(r["text"])
            rows.append(r)
    with open(HERE / "examples.jsonl", "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(rows)} examples -> {HERE / 'examples.jsonl'}")
    from otklik.assistant.embeddings import UseEmbedder
    from otklik.assistant.understanding import write_shipped

    for path in write_shipped(UseEmbedder()):
        print(f"weights -> {path} ({path.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
