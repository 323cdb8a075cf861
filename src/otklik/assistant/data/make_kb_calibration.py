"""Fit the answer model (`pipeline.calibrated`): logistic regression over retrieval signals -> P(the best
article is the right answer), and choose the answer threshold, on a KB and its questions.

    .venv/bin/python src/otklik/assistant/data/make_kb_calibration.py \\
        --kb src/otklik/knowledge/data/store_kb_ru.jsonl --questions bench/data/store_questions_val.jsonl \\
        bench/data/store_questions_val2.jsonl bench/data/store_questions_val4.jsonl

Only the validation questions are used (never a test split, never an "evaluation use only" set). Questions the
hard rules hand off (abuse, a person requested, urgency…) are left out: the model never sees them in the
product. The threshold is chosen out of sample: 5-fold cross-validated probabilities, the lowest threshold
keeping wrong answers at most `--target` of all questions (2%, a margin under the 3% goal), averaged over
10 shuffles. It writes data/kb_answer_model.json (a few hundred bytes) and prints the cross-validated figures.
Needs scikit-learn (a dev/eval dependency, not a runtime one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from typing import Any

import numpy as np


def signals_table(kb: str, questions: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.evaluation import load_kb, read_jsonl
    from otklik.assistant.language import detect_language
    from otklik.assistant.pipeline import HANDOFF_GAP, RULE_REASONS, Assistant, answer_features
    from otklik.assistant.retrieval import KbIndex
    from otklik.assistant.understanding import get_understander

    embedder = get_embedder()
    index = KbIndex(load_kb(kb), embedder)
    assistant = Assistant(embedder, get_understander(embedder))
    rows, ok, hard, answerable = [], [], [], []
    for q in read_jsonl(questions):
        text = str(q["text"])
        language = detect_language(text)
        hits, signals = index.search_signals(text, language=language, limit=3)
        rows.append(answer_features(hits, signals, language))
        ok.append(bool(hits) and q["expected"] is not None and hits[0].doc.id == q["expected"])
        # the hard rules, and the hand-off-example rule, decide these before the answer model is asked
        hard.append(assistant.decide(text, None).reason in RULE_REASONS or signals.handoff_gap > HANDOFF_GAP)
        answerable.append(q["expected"] is not None)
    return np.array(rows), np.array(ok), np.array(hard), np.array(answerable)


class _Cached:
    def __init__(self, inner: Any):
        self.inner, self.name = inner, getattr(inner, "name", "?")
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: Any) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


def kb_question_table(kb: str) -> tuple[np.ndarray, np.ndarray]:
    """Hand-written examples from the KB itself: each article's `questions` variant asked with that variant
    left out of the index (all answerable; right when the article comes first)."""
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.evaluation import load_kb
    from otklik.assistant.language import detect_language
    from otklik.assistant.pipeline import answer_features
    from otklik.assistant.retrieval import KbIndex

    docs = load_kb(kb)
    embedder = _Cached(get_embedder())
    rows, ok = [], []
    for i, doc in enumerate(docs):
        for j, q in enumerate(doc.questions):
            held = dataclasses.replace(doc, questions=doc.questions[:j] + doc.questions[j + 1:])
            index = KbIndex([*docs[:i], held, *docs[i + 1:]], embedder)
            language = detect_language(q)
            hits, signals = index.search_signals(q, language=language, limit=3)
            rows.append(answer_features(hits, signals, language))
            ok.append(bool(hits) and (hits[0].doc.group or hits[0].doc.id) == (doc.group or doc.id))
    return np.array(rows), np.array(ok)


def lowest_threshold(p: np.ndarray, ok: np.ndarray, n_all: int, target: float) -> float:
    best = 1.0
    for t in np.unique(p)[::-1]:
        if ((p >= t) & ~ok).sum() / n_all > target:
            break
        best = float(t)
    return best


def main() -> None:
    from sklearn.linear_model import LogisticRegression

    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    ap.add_argument("--questions", required=True, nargs="+", help="one or more question files (never a test split)")
    ap.add_argument("--target", type=float, default=0.02)
    ap.add_argument("--C", type=float, default=0.3)
    ap.add_argument("--out", default=None)
    ap.add_argument("--kb-questions", action="store_true",
                    help="also fit on the KB's own questions variants (leave-one-out), never on the scored fold; slow: "
                         "one index build, with its article classifier, per variant (about an hour for the demo KB)")
    args = ap.parse_args()
    from otklik.assistant.pipeline import ANSWER_MODEL, FEATURES

    tables = [signals_table(args.kb, path) for path in args.questions]
    X, ok, hard, answerable = (np.concatenate([t[i] for t in tables]) for i in range(4))
    n = len(X)
    fit = ~hard

    X_kb, ok_kb = kb_question_table(args.kb) if args.kb_questions else (np.zeros((0, X.shape[1])), np.zeros(0, bool))

    def model(idx: np.ndarray) -> LogisticRegression:
        return LogisticRegression(C=args.C, max_iter=5000).fit(np.vstack([X[idx], X_kb]),
                                                               np.concatenate([ok[idx], ok_kb]))

    thresholds, res, wrong = [], [], []
    for seed in range(10):
        fold = np.random.RandomState(seed).permutation(n) % 5
        oof = np.zeros(n)
        answered = np.zeros(n, dtype=bool)
        for k in range(5):
            tr, te = np.where((fold != k) & fit)[0], np.where((fold == k) & fit)[0]
            oof[te] = model(tr).predict_proba(X[te])[:, 1]
            # the held-out fold's threshold comes from the training folds' own cross-validated probabilities
            inner = np.zeros(n)
            sub = np.arange(len(tr)) % 4
            for j in range(4):
                inner[tr[sub == j]] = model(tr[sub != j]).predict_proba(X[tr[sub == j]])[:, 1]
            t = lowest_threshold(inner[tr], ok[tr], int((fold != k).sum()), args.target)
            answered[te] = oof[te] >= t
        thresholds.append(lowest_threshold(oof[fit], ok[fit], n, args.target))
        res.append((answered & ok).sum() / answerable.sum())
        wrong.append((answered & ~ok).sum() / n)
    final = model(np.where(fit)[0])
    threshold = float(np.median(thresholds))
    out = {"features": list(FEATURES), "coef": [round(float(w), 5) for w in final.coef_[0]],
           "intercept": round(float(final.intercept_[0]), 5), "threshold": round(threshold, 3),
           "C": args.C, "target_wrong": args.target, "n_questions": n,
           "n_kb_questions": len(X_kb),
           "cv_resolution": round(float(np.mean(res)), 4), "cv_wrong": round(float(np.mean(wrong)), 4)}
    path = args.out or ANSWER_MODEL
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")
    print(json.dumps(out))
    print(f"nested 5-fold CV x10: resolution {np.mean(res):.3f} ± {np.std(res):.3f}, wrong {np.mean(wrong):.3f} "
          f"(max {np.max(wrong):.3f}); threshold {threshold:.3f} (logit {math.log(threshold / (1 - threshold)):.2f})")


if __name__ == "__main__":
    main()
