"""`otklik eval intents|sentiment|abuse|kb`: measure the assistant on JSONL sets given on the command line.

Formats and metric definitions: ../shared/data/README.md (summarised in BENCHMARKS.md, section 10). Every
command trains what it needs on the `--train` file (or uses the KB file) at evaluation time, calibrates its
thresholds on `--val` (or on a held-out tenth of `--train` when no `--val` is given), and reports on `--test`.
Nothing is downloaded; nothing outside the given files is read except the product's own shipped data.
"""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

OOS = "oos"


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    rows = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{n}: not JSON ({exc.msg})") from None
    return rows


def _texts_labels(rows: list[dict[str, Any]], path: str | Path) -> tuple[list[str], list[str]]:
    try:
        return [str(r["text"]) for r in rows], [str(r["label"]) for r in rows]
    except KeyError as exc:
        raise SystemExit(f"{path}: every line needs 'text' and 'label' (missing {exc})") from None


def split_holdout(texts: list[str], labels: list[str], share: float = 0.1, seed: int = 13
                  ) -> tuple[list[int], list[int]]:
    """Stratified split of indices: (fit, held-out)."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    fit, held = [], []
    for idx in by_label.values():
        rng.shuffle(idx)
        k = max(1, round(len(idx) * share)) if len(idx) > 1 else 0
        held += idx[:k]
        fit += idx[k:]
    return sorted(fit), sorted(held)


def macro_f1(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str] | None = None) -> float:
    labels = sorted(set(gold)) if labels is None else list(labels)
    f1s = []
    for label in labels:
        tp = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p == label)
        fp = sum(1 for g, p in zip(gold, pred, strict=True) if g != label and p == label)
        fn = sum(1 for g, p in zip(gold, pred, strict=True) if g == label and p != label)
        f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return float(np.mean(f1s)) if f1s else 0.0


def percentiles(samples_ms: Sequence[float]) -> tuple[float, float]:
    arr = np.asarray(samples_ms)
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 99))


# -- intents ---------------------------------------------------------------------------------------------

def _answer_threshold(conf: np.ndarray, correct: np.ndarray, answerable: np.ndarray, precision: float) -> float:
    """The lowest confidence threshold whose answers (conf >= t among answerable predictions) are right at
    least `precision` of the time; +inf when none is."""
    order = np.argsort(-conf)
    c, ok, ans = conf[order], correct[order], answerable[order]
    answered = np.cumsum(ans)
    right = np.cumsum(ans & ok)
    prec = np.where(answered > 0, right / np.maximum(answered, 1), 1.0)
    best = float("inf")
    for i in range(len(c)):
        if not ans[i]:
            continue
        if i + 1 < len(c) and c[i + 1] == c[i]:
            continue  # a threshold must take every tie
        if prec[i] >= precision:
            best = float(c[i])
    return best


def _folds(labels: Sequence[str], k: int, seed: int = 13) -> list[np.ndarray]:
    """Stratified k-fold: k arrays of held-out indices that together cover every index once."""
    rng = random.Random(seed)
    by_label: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        by_label.setdefault(label, []).append(i)
    folds: list[list[int]] = [[] for _ in range(k)]
    offset = 0
    for idx in by_label.values():
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[(j + offset) % k].append(i)
        offset += len(idx)
    return [np.array(sorted(f), dtype=int) for f in folds]


HANDOFF_RECALL = 0.90  # the share of out-of-scope messages that must go to a person (the goal)


def _oos_threshold(conf: np.ndarray, pred: np.ndarray, gold: np.ndarray, min_recall: float = HANDOFF_RECALL
                   ) -> float:
    """Threshold under which a message is handed off as out of scope, on calibration data holding both kinds:
    the lowest one (so the most in-scope messages answered) that hands off at least `min_recall` of the
    out-of-scope ones; when none does, the one maximising in-scope accuracy + oos recall (Youden's J).
    -inf when the calibration data holds no `oos`."""
    ins = gold != OOS
    if ins.all() or not ins.any():
        return float("-inf")
    best_t, best_j = float("-inf"), -1.0
    for t in np.unique(np.quantile(conf, np.linspace(0, 0.6, 241))):
        final = np.where(conf < t, OOS, pred)
        recall = float((final[~ins] == OOS).mean())
        if recall >= min_recall:
            return float(t)
        j = float((final[ins] == gold[ins]).mean()) + recall
        if j > best_j + 1e-9:
            best_t, best_j = float(t), j
    return best_t


def _prepare_splits(train: str, test: str, val: str | None, progress: Callable[[str], None]) -> tuple[Any, ...]:
    """Reads the sets; without `val`, a stratified hold-out of `train` calibrates; embeds fit and calibration
    texts. Returns training labels, test texts/labels, the encoder, fit and calibration texts/labels/embeddings,
    and the start time."""
    from otklik.assistant.embeddings import get_embedder

    tr_texts, tr_labels = _texts_labels(read_jsonl(train), train)
    te_texts, te_labels = _texts_labels(read_jsonl(test), test)
    embedder = get_embedder()
    inner = getattr(embedder, "inner", embedder)
    if val:
        va_texts, va_labels = _texts_labels(read_jsonl(val), val)
        fit_texts, fit_labels = tr_texts, tr_labels
    else:
        fit_idx, held_idx = split_holdout(tr_texts, tr_labels)
        fit_texts, fit_labels = [tr_texts[i] for i in fit_idx], [tr_labels[i] for i in fit_idx]
        va_texts, va_labels = [tr_texts[i] for i in held_idx], [tr_labels[i] for i in held_idx]
    t0 = time.perf_counter()
    progress(f"embedding {len(fit_texts) + len(va_texts)} training/calibration messages ({inner.name})")
    fit_emb = _encode_batched(inner, fit_texts)
    va_emb = _encode_batched(inner, va_texts)
    return tr_labels, te_texts, te_labels, inner, fit_texts, fit_labels, va_texts, va_labels, fit_emb, va_emb, t0

def eval_intents(train: str, test: str, val: str | None = None, *, progress: Callable[[str], None] = print
                 ) -> dict[str, Any]:
    from otklik.assistant.textclf import HybridClassifier, HybridConfig

    (tr_labels, te_texts, te_labels, inner, fit_texts, fit_labels, va_texts, va_labels, fit_emb, va_emb,
     t0) = _prepare_splits(train, test, val, progress)
    progress("training")
    if val is None:
        # Calibrate on out-of-fold scores of the whole training set (5 folds): every `oos` training example
        # takes part in choosing the threshold, not only the tenth a single hold-out would keep.
        fit_texts, fit_labels = fit_texts + va_texts, fit_labels + va_labels
        fit_emb = np.concatenate([fit_emb, va_emb])
    clf = HybridClassifier(inner, HybridConfig()).fit(fit_texts, fit_labels, fit_emb)
    train_s = time.perf_counter() - t0

    def raw(texts: Sequence[str], emb: np.ndarray, model: Any = clf
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        scores = model.scores(texts, emb)
        idx = scores.argmax(axis=1)
        return np.array(model.labels, dtype=object)[idx], scores[np.arange(len(idx)), idx], model.closeness(emb)

    if val is None:
        va_texts, va_labels, parts = [], [], []
        for k, held in enumerate(_folds(fit_labels, 5)):
            progress(f"calibration fold {k + 1}/5")
            keep = np.setdiff1d(np.arange(len(fit_texts)), held)
            fold = HybridClassifier(inner, HybridConfig()).fit(
                [fit_texts[i] for i in keep], [fit_labels[i] for i in keep], fit_emb[keep])
            parts.append(raw([fit_texts[i] for i in held], fit_emb[held], fold))
            va_texts += [fit_texts[i] for i in held]
            va_labels += [fit_labels[i] for i in held]
        va_pred = np.concatenate([p[0] for p in parts])
        va_margin = np.concatenate([p[1] for p in parts])
        closes = [p[2] for p in parts if p[2] is not None]
        va_close: np.ndarray | None = np.concatenate(closes) if len(closes) == len(parts) else None
    else:
        va_pred, va_margin, va_close = raw(va_texts, va_emb)
    # Two questions, two scores. Whether the message belongs to any intent: the margin plus the embedding's
    # closeness to the nearest in-scope class, each standardised on the calibration set (the out-of-scope
    # gate). Which intent, and how sure: the margin alone (the answer-precision thresholds), among the
    # messages the gate lets through.
    scale = [(float(va_margin.mean()), float(va_margin.std()) or 1.0)]
    if va_close is not None:
        scale.append((float(va_close.mean()), float(va_close.std()) or 1.0))

    def in_scope(margin: np.ndarray, close: np.ndarray | None) -> np.ndarray:
        conf = (margin - scale[0][0]) / scale[0][1]
        if close is not None and len(scale) > 1:
            conf = conf + (close - scale[1][0]) / scale[1][1]
        return conf

    def decide(texts: Sequence[str], emb: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pred, margin, close = raw(texts, inner.encode(list(texts)) if emb is None else emb)
        return pred, margin, in_scope(margin, close)

    va_gate = in_scope(va_margin, va_close)
    va_gold = np.array(va_labels, dtype=object)
    oos_t = _oos_threshold(va_gate, va_pred, va_gold)
    va_answerable = (va_pred != OOS) & (va_gate >= oos_t)
    va_correct = va_pred == va_gold
    t95 = _answer_threshold(va_margin, va_correct, va_answerable, 0.95)
    t99 = _answer_threshold(va_margin, va_correct, va_answerable, 0.99)

    # latency: one message at a time, the whole step (embedding + features + model), no cache
    sample = te_texts[:300]
    lat = []
    for text in sample:
        s = time.perf_counter()
        decide([text])
        lat.append((time.perf_counter() - s) * 1000)
    s = time.perf_counter()
    te_emb = _encode_batched(inner, te_texts)
    te_pred, te_margin, te_gate = decide(te_texts, te_emb)
    batch_s = time.perf_counter() - s
    gold = np.array(te_labels, dtype=object)
    if oos_t == float("-inf") and OOS in te_labels and OOS not in tr_labels:
        # nothing out of scope to calibrate the gate on (BANKING77-OOS trains on in-scope only): hand off
        # whatever the model cannot answer at 95% precision on the calibration set
        final = np.where(te_margin < t95, OOS, te_pred)
        oos_t = t95
    else:
        final = np.where(te_gate < oos_t, OOS, te_pred)
    ins = gold != OOS
    has_oos = bool((~ins).any()) or oos_t != float("-inf")
    out: dict[str, Any] = {
        "command": "intents", "train": str(train), "test": str(test), "val": str(val) if val else "5-fold out-of-fold over train",
        "embedder": inner.name, "n_train": len(fit_texts), "n_test": len(te_texts), "n_labels": len(set(tr_labels)),
        "accuracy": float((final[ins] == gold[ins]).mean()) if ins.any() else None,
        "macro_f1": macro_f1(list(gold), list(final)),
    }
    if has_oos:
        n_oos = int((~ins).sum())
        pred_oos = final == OOS
        out["oos_recall"] = float((final[~ins] == OOS).mean()) if n_oos else None
        out["oos_precision"] = float((gold[pred_oos] == OOS).mean()) if pred_oos.any() else None
        out["oos_threshold"] = oos_t
    for name, t in (("95", t95), ("99", t99)):
        answered = (final != OOS) & (te_margin >= t)
        out[f"coverage_at_{name}"] = float(answered[ins].mean()) if ins.any() else None
        out[f"answer_precision_at_{name}"] = (float((te_pred[answered] == gold[answered]).mean())
                                              if answered.any() else None)
    p50, p99 = percentiles(lat)
    out.update(p50_ms=p50, p99_ms=p99, throughput_per_s=len(te_texts) / batch_s, train_seconds=train_s)
    return out


def eval_labels(kind: str, train: str, test: str, val: str | None = None, *,
                progress: Callable[[str], None] = print, C: float | None = None,
                embedding_weight: float = 1.0) -> dict[str, Any]:
    """Sentiment (negative/neutral/positive) or abuse (toxic/ok): train on `train`, report macro-F1 on `test`.
    For abuse the decision threshold on P(toxic) is chosen on the calibration set to maximise F1."""
    from otklik.assistant.lexicon import lexical_features
    from otklik.assistant.textclf import HybridClassifier, HybridConfig

    (_, te_texts, te_labels, inner, fit_texts, fit_labels, va_texts, va_labels, fit_emb, va_emb,
     t0) = _prepare_splits(train, test, val, progress)
    progress("training")
    cfg = HybridConfig(model="lr", C=C if C is not None else (4.0 if kind == "abuse" else 2.0),
                       embedding_weight=embedding_weight,
                       class_weight="balanced", char_ngrams=(2, 5), word_ngrams=(1, 2))
    clf = HybridClassifier(inner, cfg)
    clf.extra_fn = lambda texts: lexical_features(list(texts)) * 2.0
    clf.fit(fit_texts, fit_labels, fit_emb)
    train_s = time.perf_counter() - t0
    positive = "toxic" if kind == "abuse" else None
    threshold = None
    if positive is not None and positive in clf.labels:
        k = clf.labels.index(positive)
        p_va = clf.scores(va_texts, va_emb)[:, k]
        gold_va = [t == positive for t in va_labels]
        best = (-1.0, 0.5)
        for t in np.linspace(0.05, 0.95, 91):
            flags = [bool(x >= t) for x in p_va]
            f = _f1(gold_va, flags)
            if f > best[0]:
                best = (f, float(t))
        threshold = best[1]
    biases = None
    if positive is None and len(clf.labels) > 2:
        biases = _macro_f1_biases(np.log(clf.scores(va_texts, va_emb) + 1e-9), va_labels, clf.labels)
    lat = []
    for text in te_texts[:300]:
        s = time.perf_counter()
        clf.scores([text])
        lat.append((time.perf_counter() - s) * 1000)
    s = time.perf_counter()
    scores = clf.scores(te_texts, _encode_batched(inner, te_texts))
    batch_s = time.perf_counter() - s
    if threshold is not None and positive is not None:
        k = clf.labels.index(positive)
        other = next(label for label in clf.labels if label != positive)
        pred = [positive if x >= threshold else other for x in scores[:, k]]
    else:
        logp = np.log(scores + 1e-9) + (biases if biases is not None else 0.0)
        pred = [clf.labels[i] for i in logp.argmax(axis=1)]
    out: dict[str, Any] = {"command": kind, "train": str(train), "test": str(test),
                           "val": str(val) if val else "holdout 10% of train", "embedder": inner.name,
                           "n_train": len(fit_texts), "n_test": len(te_texts),
                           "accuracy": float(np.mean([g == p for g, p in zip(te_labels, pred, strict=True)])),
                           "macro_f1": macro_f1(te_labels, pred)}
    if biases is not None:
        out["class_biases"] = {label: round(float(b), 3) for label, b in zip(clf.labels, biases, strict=True)}
    if positive is not None:
        out["f1_toxic"] = _f1([t == positive for t in te_labels], [p == positive for p in pred])
        out["threshold"] = threshold
    else:
        for label in sorted(set(te_labels)):
            out[f"f1_{label}"] = macro_f1(te_labels, pred, [label])
    p50, p99 = percentiles(lat)
    out.update(p50_ms=p50, p99_ms=p99, throughput_per_s=len(te_texts) / batch_s, train_seconds=train_s)
    return out


def _macro_f1_biases(logp: np.ndarray, gold: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """Per-class offsets added to the log-probabilities before the argmax, chosen on calibration data to
    maximise macro-F1 (coordinate search, the first class fixed at 0). A balanced-weight model still
    under-predicts a class whose share differs between training and use; macro-F1 rewards getting it back."""
    names = list(labels)
    biases = np.zeros(len(names))
    grid = np.linspace(-1.5, 1.5, 61)

    def f1(b: np.ndarray) -> float:
        return macro_f1(list(gold), [names[i] for i in (logp + b).argmax(axis=1)], sorted(set(gold)))

    for _ in range(3):
        for k in range(1, len(names)):
            best_f, best_g = f1(biases), biases[k]
            for g in grid:
                trial = biases.copy()
                trial[k] = g
                f = f1(trial)
                if f > best_f + 1e-9:
                    best_f, best_g = f, g
            biases[k] = best_g
    return biases


def load_kb(path: str | Path) -> list[Any]:
    from otklik.assistant.retrieval import KbDoc, group_of

    rows = read_jsonl(path)
    ids = {str(r.get("id")) for r in rows}
    docs = []
    for n, r in enumerate(rows, 1):
        if not r.get("id") or not r.get("title") or "body" not in r:
            raise SystemExit(f"{path}:{n}: a KB line needs 'id', 'title' and 'body'")
        lang = str(r.get("language") or "ru")
        docs.append(KbDoc(id=str(r["id"]), title=str(r["title"]), body=str(r["body"]), language=lang,
                          questions=[str(q) for q in r.get("questions") or []], category=r.get("category"),
                          group=group_of(str(r["id"]), lang, ids)))
    return docs


def eval_kb(kb: str, questions: str, *, answer_threshold: float | None = None, reasons: str | None = None,
            details: str | None = None, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the whole pipeline (no LLM) on each question against a KB built from the JSONL file.

    `reasons`: a JSONL of `{"name", "description"}` standing in for the workspace's own contact reasons (the
    reason is then classified among those, zero/few-shot). `details`: write one JSON line per question."""
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.pipeline import Assistant, Settings
    from otklik.assistant.reasons import ReasonSet
    from otklik.assistant.retrieval import KbIndex
    from otklik.assistant.understanding import get_understander

    embedder = get_embedder()
    t0 = time.perf_counter()
    docs = load_kb(kb)
    index = KbIndex(docs, embedder)
    reason_set = ReasonSet.from_rows(read_jsonl(reasons), embedder) if reasons else None
    assistant = Assistant(embedder, get_understander(embedder))
    startup_s = time.perf_counter() - t0
    progress(f"{len(docs)} articles indexed in {startup_s:.1f}s ({embedder.name})")
    qs = read_jsonl(questions)
    known = {d.id for d in docs}
    group = {d.id: d.group or d.id for d in docs}
    settings = Settings() if answer_threshold is None else Settings(answer_threshold=answer_threshold)
    inner = getattr(embedder, "inner", embedder)
    decisions, lat = [], []
    for n, q in enumerate(qs, 1):
        if "text" not in q or "expected" not in q:
            raise SystemExit(f"{questions}:{n}: a question needs 'text' and 'expected'")
        if q["expected"] is not None and q["expected"] not in known:
            raise SystemExit(f"{questions}:{n}: expected article {q['expected']!r} is not in {kb}")
        s = time.perf_counter()
        d = assistant.decide(str(q["text"]), index, settings, reasons=reason_set)
        lat.append((time.perf_counter() - s) * 1000)
        decisions.append(d)

    def same(article_id: str | None, expected: str) -> bool:
        """The expected article, or its translation (a translation group counts as one article)."""
        return article_id is not None and group.get(article_id, article_id) == group.get(expected, expected)

    pairs = list(zip(qs, decisions, strict=True))
    answerable = [(q, d) for q, d in pairs if q["expected"] is not None]
    nulls = [(q, d) for q, d in pairs if q["expected"] is None]
    # retrieval alone, before any decision
    top1 = sum(1 for q, d in answerable if d.alternatives and same(d.alternatives[0]["id"], q["expected"]))
    top3 = sum(1 for q, d in answerable if any(same(a["id"], q["expected"]) for a in d.alternatives[:3]))
    resolved = sum(1 for q, d in answerable if d.action == "answer" and same(d.article_id, q["expected"]))
    clarified = sum(1 for q, d in answerable if d.action == "clarify"
                    and any(same(o, q["expected"]) for o in d.options))
    wrong = (sum(1 for q, d in answerable if d.action == "answer" and not same(d.article_id, q["expected"]))
             + sum(1 for q, d in nulls if d.action == "answer"))
    # a clarifying question asked of a `null` question counts as a hand-off (a person takes it after the
    # customer's reply), never as a wrong answer
    handed = [(q, d) for q, d in pairs
              if d.action == "handoff" or (d.action == "clarify" and d.options and q["expected"] is None)]
    null_handed = sum(1 for q, d in nulls if d.action == "handoff" or (d.action == "clarify" and d.options))
    out: dict[str, Any] = {
        "command": "kb", "kb": str(kb), "questions": str(questions), "embedder": inner.name,
        "n_articles": len(docs), "n_questions": len(qs), "n_answerable": len(answerable), "n_null": len(nulls),
        "top1_accuracy": top1 / len(answerable) if answerable else None,
        "top3_accuracy": top3 / len(answerable) if answerable else None,
        "automated_resolution_rate": resolved / len(answerable) if answerable else None,
        "resolution_with_clarify_rate": (resolved + clarified) / len(answerable) if answerable else None,
        "wrong_answer_rate": wrong / len(qs) if qs else None,
        "handoff_recall": null_handed / len(nulls) if nulls else None,
        "handoff_precision": (sum(1 for q, _ in handed if q["expected"] is None) / len(handed)) if handed else None,
        "clarify_rate": sum(1 for d in decisions if d.action == "clarify") / len(qs) if qs else None,
    }
    out["top1"], out["top3"] = out["top1_accuracy"], out["top3_accuracy"]
    with_reason = [(q, d) for q, d in pairs if q.get("reason")]
    if with_reason:
        out["reason_accuracy"] = sum(1 for q, d in with_reason if d.understanding.reason == q["reason"]) / len(with_reason)
    with_sent = [(q, d) for q, d in pairs if q.get("sentiment")]
    if with_sent:
        out["sentiment_macro_f1"] = macro_f1([q["sentiment"] for q, _ in with_sent],
                                             [d.understanding.sentiment for _, d in with_sent])
    with_urg = [(q, d) for q, d in pairs if q.get("urgent")]
    if with_urg:
        out["urgent_recall"] = sum(1 for _, d in with_urg if d.understanding.urgent) / len(with_urg)
    english = [(q, d) for q, d in answerable if d.understanding.language == "en"]
    if english:
        out["english_answerable"] = len(english)
        out["english_resolved"] = sum(1 for q, d in english if d.action == "answer" and same(d.article_id, q["expected"]))
    p50, p99 = percentiles(lat)
    s = time.perf_counter()
    texts = [str(q["text"]) for q in qs]
    vecs = _encode_batched(inner, texts)
    for text, vec in zip(texts, vecs, strict=True):
        index.search(text, query_vec=vec)
    batch_s = time.perf_counter() - s
    out.update(p50_ms=p50, p99_ms=p99, throughput_per_s=len(qs) / batch_s if batch_s else None,
               startup_seconds=startup_s)
    out["reasons"] = dict(Counter(d.reason for d in decisions))
    if details:
        with open(details, "w", encoding="utf-8") as fh:
            for q, d in pairs:
                u = d.understanding
                row = {"text": q["text"], "expected": q["expected"], "action": d.action,
                       "article": d.article_id, "options": d.options, "confidence": round(d.confidence, 4),
                       "handoff_reason": d.reason if d.action == "handoff" else None, "decision_reason": d.reason,
                       "reason": u.reason, "sentiment": u.sentiment, "urgent": u.urgent, "language": u.language,
                       "top": [a["id"] for a in d.alternatives]}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return out


def _f1(gold: Sequence[bool], pred: Sequence[bool]) -> float:
    tp = sum(1 for g, p in zip(gold, pred, strict=True) if g and p)
    fp = sum(1 for g, p in zip(gold, pred, strict=True) if not g and p)
    fn = sum(1 for g, p in zip(gold, pred, strict=True) if g and not p)
    return 0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn)


def _encode_batched(embedder: Any, texts: Sequence[str], batch: int = 256) -> np.ndarray:
    if not texts:
        return np.zeros((0, 512), dtype=np.float32)
    return np.concatenate([embedder.encode(list(texts[i:i + batch])) for i in range(0, len(texts), batch)])


# -- output ----------------------------------------------------------------------------------------------

def format_table(result: dict[str, Any]) -> str:
    lines = []
    width = max(len(k) for k in result)
    for key, value in result.items():
        if isinstance(value, float):
            shown = f"{value:.4f}" if abs(value) < 10 else f"{value:.1f}"
        elif value is None:
            shown = "—"
        else:
            shown = str(value)
        lines.append(f"{key.ljust(width)}  {shown}")
    return "\n".join(lines)


def label_counts(labels: Sequence[str]) -> dict[str, int]:
    return dict(Counter(labels))


def add_arguments(sub: Any) -> None:
    """The `otklik eval` sub-commands (registered by otklik.cli)."""
    for name, help_text in (("intents", "intent accuracy, out-of-scope recall/precision, coverage at 95/99%%"),
                            ("sentiment", "sentiment macro-F1 (negative/neutral/positive)"),
                            ("abuse", "abuse (toxic/ok) F1")):
        p = sub.add_parser(name, help=help_text)
        p.add_argument("--train", required=True, help="JSONL {text, label} to train on")
        p.add_argument("--test", required=True, help="JSONL {text, label} to report on")
        p.add_argument("--val", default=None, help="JSONL to calibrate thresholds on (default: 5-fold out-of-fold scores over --train)")
        p.add_argument("--json", action="store_true", help="print one JSON object")
        p.set_defaults(eval_kind=name)
    p = sub.add_parser("kb", help="the whole pipeline on questions against a knowledge base")
    p.add_argument("--kb", required=True, help="JSONL {id, title, body, language, questions?}")
    p.add_argument("--questions", required=True, help="JSONL {text, expected: id|null, reason?, sentiment?, urgent?}")
    p.add_argument("--answer-threshold", type=float, default=None, help="calibrated confidence to answer (0-1)")
    p.add_argument("--reasons", default=None,
                   help="JSONL {name, description[, examples]}: the workspace's contact reasons to classify among")
    p.add_argument("--details", default=None, help="write one JSON line per question to this file")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(eval_kind="kb")


def run(args: Any) -> int:
    import sys

    for path in [getattr(args, k, None) for k in ("train", "test", "val", "kb", "questions", "reasons")]:
        if path and not Path(path).is_file():
            print(f"otklik eval: no such file: {path}", file=sys.stderr)
            return 2

    def progress(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    if args.eval_kind == "kb":
        try:
            result = eval_kb(args.kb, args.questions, answer_threshold=args.answer_threshold, reasons=args.reasons,
                             details=args.details, progress=progress)
        except ValueError as exc:  # a malformed reasons file
            print(f"otklik eval: {args.reasons}: {exc}", file=sys.stderr)
            return 2
    elif args.eval_kind == "intents":
        result = eval_intents(args.train, args.test, args.val, progress=progress)
    else:
        result = eval_labels(args.eval_kind, args.train, args.test, args.val, progress=progress)
    if args.json:
        print(json.dumps(result, ensure_ascii=False))
    else:
        print(format_table(result))
    return 0
