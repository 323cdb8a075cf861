"""How much the answer model's confidence must be shifted on a KB with few question variants per article
(`pipeline.thin_kb_shift`), and what the shipped shift gives.

The demo KB cut to k variants per article (the first k of each article's `questions`), asked the dev
questions (val + val2 + val4, the answer model's own; never a test split). For each k: the largest logit
shift keeping wrong answers at or under 2% of all questions, and resolution / wrong answers with no shift
and with the shipped curve. The decision is the answer model's alone (hard rules and the hand-off-example rule applied as in
`make_kb_calibration.py`; no clarifying questions), so the figures are the calibration's view, not
`otklik eval kb`'s.

    .venv/bin/python bench/assistant_thin_kb.py --json bench/results/round4/thin_kb.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from otklik.assistant.embeddings import get_embedder  # noqa: E402
from otklik.assistant.evaluation import load_kb, read_jsonl  # noqa: E402
from otklik.assistant.language import detect_language  # noqa: E402
from otklik.assistant.pipeline import (  # noqa: E402
    DEFAULT_ANSWER_THRESHOLD,
    HANDOFF_GAP,
    RULE_REASONS,
    Assistant,
    _answer_model,
    answer_features,
    thin_kb_shift,
)
from otklik.assistant.retrieval import KbIndex  # noqa: E402
from otklik.assistant.understanding import get_understander  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", default=str(ROOT / "src/otklik/knowledge/data/store_kb_ru.jsonl"))
    ap.add_argument("--questions", nargs="+", default=[str(ROOT / "bench/data/store_questions_val.jsonl"),
                                                       str(ROOT / "bench/data/store_questions_val2.jsonl"),
                                                       str(ROOT / "bench/data/store_questions_val4.jsonl")])
    ap.add_argument("--ks", default="0,1,2,3,6,10,15,100")
    ap.add_argument("--target", type=float, default=0.02)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    embedder = get_embedder()
    assistant = Assistant(embedder, get_understander(embedder))
    qs = [q for path in args.questions for q in read_jsonl(path)]
    texts = [str(q["text"]) for q in qs]
    vecs = embedder.encode(texts)
    langs = [detect_language(t) for t in texts]
    rule = np.array([assistant.decide(t, None).reason in RULE_REASONS for t in texts])
    answerable = np.array([q["expected"] is not None for q in qs])
    coef, intercept = _answer_model()
    logit_t = math.log(DEFAULT_ANSWER_THRESHOLD / (1 - DEFAULT_ANSWER_THRESHOLD))
    docs = load_kb(args.kb)
    rows = []
    for k in [int(x) for x in args.ks.split(",")]:
        cut = [dataclasses.replace(d, questions=d.questions[:k]) for d in docs]
        index = KbIndex(cut, embedder)
        z, ok, gap = [], [], []
        for q, text, vec, lang in zip(qs, texts, vecs, langs, strict=True):
            hits, signals = index.search_signals(text, language=lang, limit=3, query_vec=vec)
            z.append(intercept + sum(w * x for w, x in zip(coef, answer_features(hits, signals, lang), strict=True)))
            ok.append(bool(hits) and q["expected"] is not None and hits[0].doc.id == q["expected"])
            gap.append(signals.handoff_gap > HANDOFF_GAP)
        z_a, ok_a = np.array(z), np.array(ok)
        open_ = ~rule & ~np.array(gap)

        def rates(shift: float, z_a: np.ndarray = z_a, ok_a: np.ndarray = ok_a, open_: np.ndarray = open_
                  ) -> tuple[float, float]:
            answered = open_ & (z_a + shift >= logit_t)
            return float((answered & ok_a).sum() / answerable.sum()), float((answered & ~ok_a).sum() / len(qs))

        best = 0.0
        for s in np.arange(0.0, 3.01, 0.05):
            if rates(float(s))[1] > args.target:
                break
            best = float(s)
        shipped = thin_kb_shift(index.richness)
        row = {"k": k, "variants_per_article": round(index.richness, 1), "largest_shift_at_target": round(best, 2),
               "shipped_shift": round(shipped, 2), "no_shift": [round(x, 3) for x in rates(0.0)],
               "with_shipped_shift": [round(x, 3) for x in rates(shipped)]}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
