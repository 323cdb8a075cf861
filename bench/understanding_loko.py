"""Sentiment and urgency on a business's own chat messages, leave-one-KB-out.

For each of the seven dev KBs (bench/data/kbs), the sentiment and urgency models are fitted exactly as
`data/make_examples.py` fits the shipped ones (the shipped examples + the chat messages of the *other* six
businesses) and asked the held-out business's messages. Reports sentiment macro-F1 (negative / neutral /
positive; a message with profanity counts as negative, as in the product) and, at the product's threshold
`understanding.URGENT_AT`, urgent recall, precision and the share of messages flagged; `--sweep` adds the
out-of-fold recall / precision at other thresholds (how URGENT_AT was chosen). The labels were written with the
KBs before any model ran on them, but the threshold was chosen on these folds: dev figures.

    .venv/bin/python bench/understanding_loko.py [--sweep] [--out bench/results/understanding_loko.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src" / "otklik" / "assistant" / "data"))

LABELS = ("negative", "neutral", "positive")


def macro_f1(truth: list[str], pred: list[str]) -> float:
    scores = []
    for label in LABELS:
        tp = sum(1 for t, p in zip(truth, pred, strict=True) if t == label and p == label)
        fp = sum(1 for t, p in zip(truth, pred, strict=True) if t != label and p == label)
        fn = sum(1 for t, p in zip(truth, pred, strict=True) if t == label and p != label)
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def main() -> None:
    from make_examples import chat_rows

    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.understanding import URGENT_AT, Understander, load_examples

    ap = argparse.ArgumentParser()
    ap.add_argument("--sweep", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "understanding_loko.json"))
    args = ap.parse_args()
    embedder = get_embedder()
    kbs = {p.parent.name: [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line.strip()]
           for p in sorted((ROOT / "bench" / "data" / "kbs").glob("*/questions.jsonl"))}
    held_texts = {text for rows in kbs.values() for text in (r["text"] for r in rows)}
    # the shipped examples without any KB's chat messages (examples.jsonl holds them all)
    base = [r for r in load_examples() if r["text"] not in held_texts]
    results, pooled_p, pooled_y = [], [], []
    for name, questions in kbs.items():
        u = Understander(embedder, base + chat_rows(exclude={name}), use_shipped=False)
        texts = [q["text"] for q in questions]
        decided = [u.understand(t, "ru") for t in texts]
        sentiment = macro_f1([q["sentiment"] for q in questions], [d.sentiment for d in decided])
        y = np.array([bool(q["urgent"]) for q in questions])
        p = np.array([d.urgency for d in decided])
        flagged = p >= URGENT_AT
        results.append({"kb": name, "messages": len(questions), "sentiment_macro_f1": round(sentiment, 3),
                        "urgent": int(y.sum()), "urgent_recall": round(float((flagged & y).sum() / y.sum()), 3),
                        "urgent_precision": round(float((flagged & y).sum() / max(1, flagged.sum())), 3),
                        "flagged_share": round(float(flagged.mean()), 3)})
        pooled_p += list(p)
        pooled_y += list(y)
        print(results[-1], flush=True)
    keys = ("sentiment_macro_f1", "urgent_recall", "urgent_precision", "flagged_share")
    mean = {k: round(float(np.mean([r[k] for r in results])), 3) for k in keys}
    spread = {k: [min(r[k] for r in results), max(r[k] for r in results)] for k in keys}
    print("mean", mean, "spread", spread)
    out: dict = {"urgent_at": URGENT_AT, "per_kb": results, "mean": mean, "spread": spread}
    if args.sweep:
        pooled, truth = np.array(pooled_p), np.array(pooled_y)
        out["sweep"] = []
        for t in (0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
            f = pooled >= t
            out["sweep"].append({"threshold": t, "recall": round(float((f & truth).sum() / truth.sum()), 3),
                                 "precision": round(float((f & truth).sum() / f.sum()), 3),
                                 "flagged_share": round(float(f.mean()), 3)})
            print(out["sweep"][-1])
    Path(args.out).write_text(json.dumps(out, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
