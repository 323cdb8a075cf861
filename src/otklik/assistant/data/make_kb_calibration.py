"""Fit the answer model (`pipeline.calibrated`): logistic regression over KB-relative retrieval signals ->
P(the best article is the right answer), and choose the answer threshold, across several businesses' KBs.

    .venv/bin/python src/otklik/assistant/data/make_kb_calibration.py \\
        --set bench/data/kbs/clinic/kb.jsonl bench/data/kbs/clinic/questions.jsonl \\
        --set bench/data/kbs/telecom/kb.jsonl bench/data/kbs/telecom/questions.jsonl  ...

A real user's KB is one the model has never seen, so the figures that matter are leave-one-KB-out: for each
KB, the model and its threshold are fitted on the other KBs only, then that KB's questions are decided. The
threshold is the lowest keeping wrong answers at most `--target` of all questions (2%, a margin under the 3%
goal) in the training KBs' own leave-one-KB-out probabilities. Every KB weighs the same in a fit, whatever its
number of questions. Questions the hard rules hand off (abuse, a person requested, urgency…) are left out: the
model never sees them in the product. Writes data/kb_answer_model.json and prints per-KB figures.
Needs scikit-learn (a dev/eval dependency, not a runtime one).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class Table:
    name: str
    X: np.ndarray  # answer features per question
    ok: np.ndarray  # the best hit is the expected article (or its translation)
    hard: np.ndarray  # decided by a rule before the answer model
    answerable: np.ndarray
    in_top3: np.ndarray  # the expected article is among the first three hits


def signals_table(kb: str, questions: list[str], name: str | None = None, *, e5: bool = True) -> Table:
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.evaluation import load_kb, read_jsonl
    from otklik.assistant.language import detect_language
    from otklik.assistant.pipeline import RULE_REASONS, Assistant, answer_features
    from otklik.assistant.retrieval import KbIndex
    from otklik.assistant.understanding import get_understander

    embedder = get_embedder()
    docs = load_kb(kb)
    group = {d.id: d.group or d.id for d in docs}
    index = KbIndex(docs, embedder, e5="auto" if e5 else None)
    assistant = Assistant(embedder, get_understander(embedder))
    rows, ok, hard, answerable, top3 = [], [], [], [], []
    for path in questions:
        for q in read_jsonl(path):
            text = str(q["text"])
            language = detect_language(text)
            hits, signals = index.search_signals(text, language=language, limit=3)
            expected = group.get(q["expected"], q["expected"]) if q["expected"] else None
            rows.append(answer_features(hits, signals, language))
            ok.append(bool(hits) and expected is not None and (hits[0].doc.group or hits[0].doc.id) == expected)
            top3.append(expected is not None and any((h.doc.group or h.doc.id) == expected for h in hits[:3]))
            hard.append(assistant.decide(text, None).reason in RULE_REASONS)
            answerable.append(expected is not None)
    return Table(name or Path(kb).parent.name, np.array(rows), np.array(ok), np.array(hard), np.array(answerable),
                 np.array(top3))


def _family(name: str) -> str:
    """KBs asked the same questions (the demo KB with and without its variants: demo_rich, demo_plain) leave a
    fit together, or the held-out one's questions would be in the fit."""
    return name.split("_", 1)[0] if name.startswith("demo_") else name


def _others(tables: list[Table], i: int) -> list[Table]:
    return [t for t in tables if _family(t.name) != _family(tables[i].name)]


def lowest_threshold(p: np.ndarray, ok: np.ndarray, weight: np.ndarray, total: float, target: float) -> float:
    """The lowest threshold whose (weighted) wrong answers stay at most `target` of `total`."""
    order = np.argsort(-p)
    wrong = np.cumsum(np.where(ok[order], 0.0, weight[order]))
    best = 1.0
    for i, idx in enumerate(order):
        if wrong[i] / total > target:
            break
        if i + 1 == len(order) or p[order[i + 1]] < p[idx]:
            best = float(p[idx])
    return best


def _fit(tables: list[Table], C: float) -> Any:
    from sklearn.linear_model import LogisticRegression

    X = np.vstack([t.X[~t.hard] for t in tables])
    y = np.concatenate([t.ok[~t.hard] for t in tables])
    w = np.concatenate([np.full(int((~t.hard).sum()), 1.0 / len(t.X)) for t in tables])
    return LogisticRegression(C=C, max_iter=5000).fit(X, y, sample_weight=w * len(X) / w.sum())


def _fit_clarify(tables: list[Table], C: float) -> Any:
    """P(the right article is among the first three hits), on the questions the rules leave."""
    from sklearn.linear_model import LogisticRegression

    X = np.vstack([t.X[~t.hard] for t in tables])
    y = np.concatenate([(t.in_top3 & t.answerable)[~t.hard] for t in tables])
    w = np.concatenate([np.full(int((~t.hard).sum()), 1.0 / len(t.X)) for t in tables])
    return LogisticRegression(C=C, max_iter=5000).fit(X, y, sample_weight=w * len(X) / w.sum())


def clarify_threshold(tables: list[Table], C: float, answer_thr: float, precision: float) -> float:
    """The lowest clarify-model probability at which, among the questions not answered, the offered options
    hold the right article at least `precision` of the time (leave-one-KB-out probabilities)."""
    ps, good = [], []
    for i, t in enumerate(tables):
        others = _others(tables, i)
        if not others:
            continue
        keep = ~t.hard
        pa = _fit(others, C).predict_proba(t.X[keep])[:, 1]
        pc = _fit_clarify(others, C).predict_proba(t.X[keep])[:, 1]
        left = pa < answer_thr
        ps.append(pc[left])
        good.append((t.in_top3 & t.answerable)[keep][left])
    p, g = np.concatenate(ps), np.concatenate(good)
    order = np.argsort(-p)
    hits = np.cumsum(g[order])
    best = 1.0
    for i in range(len(order)):
        if hits[i] / (i + 1) >= precision:
            best = float(p[order[i]])
    return best


def _threshold(tables: list[Table], C: float, target: float) -> float:
    """From the tables' own leave-one-KB-out probabilities, every KB weighing the same."""
    ps, oks, ws = [], [], []
    for i, t in enumerate(tables):
        others = _others(tables, i)
        if not others:
            continue
        m = _fit(others, C)
        ps.append(m.predict_proba(t.X[~t.hard])[:, 1])
        oks.append(t.ok[~t.hard])
        ws.append(np.full(int((~t.hard).sum()), 1.0 / len(t.X)))
    return lowest_threshold(np.concatenate(ps), np.concatenate(oks), np.concatenate(ws), float(len(ps)), target)


def leave_one_kb_out(tables: list[Table], C: float, target: float, clarify_precision: float = 0.8
                     ) -> list[dict[str, Any]]:
    out = []
    for i, t in enumerate(tables):
        train = _others(tables, i)
        m = _fit(train, C)
        thr = _threshold(train, C, target)
        p = np.zeros(len(t.X))
        p[~t.hard] = m.predict_proba(t.X[~t.hard])[:, 1]
        answered = (~t.hard) & (p >= thr)
        cthr = clarify_threshold(train, C, thr, clarify_precision)
        pc = np.zeros(len(t.X))
        pc[~t.hard] = _fit_clarify(train, C).predict_proba(t.X[~t.hard])[:, 1]
        clarified = (~t.hard) & ~answered & (pc >= cthr)
        out.append({"kb": t.name, "n": len(t.X), "threshold": round(thr, 3),
                    "resolution": float((answered & t.ok).sum() / max(1, t.answerable.sum())),
                    "with_clarify": float(((answered & t.ok) | (clarified & t.in_top3 & t.answerable)).sum()
                                          / max(1, t.answerable.sum())),
                    "clarify_rate": float(clarified.sum() / len(t.X)),
                    "wrong": float((answered & ~t.ok).sum() / len(t.X)),
                    "top1": float((t.ok & t.answerable).sum() / max(1, t.answerable.sum())),
                    "top3": float(t.in_top3.sum() / max(1, t.answerable.sum()))})
    return out


def _shift(model: Any, threshold: float, common: float) -> tuple[list[float], float]:
    """Coefficients and an intercept moved so that `threshold` reads as `common`: every variant then answers at
    the one threshold a workspace sets, each at its own calibrated operating point."""
    logit = math.log(common / (1 - common)) - math.log(max(1e-6, threshold) / max(1e-6, 1 - threshold))
    return [round(float(w), 5) for w in model.coef_[0]], round(float(model.intercept_[0]) + logit, 5)


@dataclass
class Defaults:
    C: float = 0.3
    target: float = 0.02
    clarify_precision: float = 0.8


def fit_variant(tables: list[Table], args: Any, *, report: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if report:
        loko = leave_one_kb_out(tables, args.C, args.target, args.clarify_precision)
        for r in loko:
            print(f"  {r['kb']:14s} n={r['n']:4d} top1 {r['top1']:.3f} top3 {r['top3']:.3f} resolved "
                  f"{r['resolution']:.3f} wrong {r['wrong']:.3f} (threshold {r['threshold']:.3f}) with clarify "
                  f"{r['with_clarify']:.3f} (clarify rate {r['clarify_rate']:.3f})")
        res, wrong = [r["resolution"] for r in loko], [r["wrong"] for r in loko]
        print(f"  leave-one-KB-out over {len(tables)} KBs: resolution {np.mean(res):.3f} (min {np.min(res):.3f}), "
              f"wrong {np.mean(wrong):.3f} (max {np.max(wrong):.3f})")
        out.update(loko=[{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in loko],
                   loko_resolution=round(float(np.mean(res)), 4), loko_wrong=round(float(np.mean(wrong)), 4),
                   loko_wrong_max=round(float(np.max(wrong)), 4))
    final = _fit(tables, args.C)
    threshold = _threshold(tables, args.C, args.target)
    clarify = _fit_clarify(tables, args.C)
    cthr = clarify_threshold(tables, args.C, threshold, args.clarify_precision)
    coef, intercept = _shift(final, threshold, COMMON_THRESHOLD)
    ccoef, cintercept = _shift(clarify, cthr, COMMON_CLARIFY)
    out.update(coef=coef, intercept=intercept, fitted_threshold=round(threshold, 4),
               clarify={"coef": ccoef, "intercept": cintercept, "threshold": COMMON_CLARIFY,
                        "fitted_threshold": round(cthr, 4), "precision": args.clarify_precision})
    return out


# Every variant's own threshold is moved to these (see `_shift`), so a workspace sets one number.
COMMON_THRESHOLD = 0.75
COMMON_CLARIFY = 0.5


def available_variants() -> list[str]:
    from otklik.assistant.embeddings import get_e5

    return ["e5", "base"] if get_e5() is not None else ["base"]


def fit_models(tables: dict[str, list[Table]], args: Any, *, report: bool = False) -> dict[str, Any]:
    """The answer-model file (data/kb_answer_model.json's shape) for tables per variant."""
    from otklik.assistant.pipeline import FEATURES

    variants = {}
    for name, ts in tables.items():
        if report:
            print(f"variant {name}:")
        variants[name] = fit_variant(ts, args, report=report)
    return {"features": list(FEATURES), "threshold": COMMON_THRESHOLD, "C": args.C, "target_wrong": args.target,
            "kbs": [t.name for t in next(iter(tables.values()))], "variants": variants}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--set", action="append", nargs="+", required=True, metavar=("KB", "QUESTIONS"),
                    help="a KB and one or more question files against it (never a test split); repeat per KB")
    ap.add_argument("--target", type=float, default=0.02)
    ap.add_argument("--C", type=float, default=0.3)
    ap.add_argument("--clarify-precision", type=float, default=0.8,
                    help="share of clarifying questions whose options must hold the right article")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    from otklik.assistant.pipeline import ANSWER_MODEL

    def name(kb: str) -> str:
        return Path(kb).parent.name if Path(kb).name == "kb.jsonl" else Path(kb).stem

    tables = {v: [signals_table(s[0], s[1:], name(s[0]), e5=(v == "e5")) for s in args.set]
              for v in available_variants()}
    if "e5" not in tables:
        print("e5 encoder not installed: fitting the base variant only")
    out = fit_models(tables, args, report=True)
    with open(args.out or ANSWER_MODEL, "w", encoding="utf-8") as fh:
        json.dump(out, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
