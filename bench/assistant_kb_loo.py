"""Retrieval top-1 on a second set of paraphrases: each of a KB's own `questions` variants, held out of the
index (leave-one-out), is asked as a query. Used next to the val questions to choose retrieval options
(lexical weight, synonym expansion) without touching any test split.

    .venv/bin/python bench/assistant_kb_loo.py --kb src/otklik/knowledge/data/store_kb_ru.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from otklik.assistant.embeddings import get_embedder
from otklik.assistant.evaluation import load_kb
from otklik.assistant.language import detect_language
from otklik.assistant.retrieval import KbIndex


class Cached:
    def __init__(self, inner):
        self.inner, self.cache, self.name = inner, {}, getattr(inner, "name", "?")

    def encode(self, texts):
        missing = [t for t in texts if t not in self.cache]
        if missing:
            for t, v in zip(missing, self.inner.encode(missing), strict=True):
                self.cache[t] = v
        return np.stack([self.cache[t] for t in texts])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    args = ap.parse_args()
    docs = load_kb(args.kb)
    emb = Cached(get_embedder())
    variants = {"dense only": dict(lexical_weight=0.0), "lexical 0.35": dict(lexical_weight=0.35, expansion_weight=0.0),
                "lexical 1.0": dict(expansion_weight=0.0), "lexical 1.0 + synonyms ×0.5 (shipped)": {},
                "lexical 1.0 + synonyms ×1.0": dict(expansion_weight=1.0)}
    right = {k: 0 for k in variants}
    n = 0
    for i, doc in enumerate(docs):
        for j, q in enumerate(doc.questions):
            held = dataclasses.replace(doc, questions=doc.questions[:j] + doc.questions[j + 1:])
            kb = [*docs[:i], held, *docs[i + 1:]]
            n += 1
            for name, kw in variants.items():
                hits = KbIndex(kb, emb, **kw).search(q, language=detect_language(q), limit=1)
                right[name] += bool(hits) and (hits[0].doc.group or hits[0].doc.id) == (doc.group or doc.id)
    for name, r in right.items():
        print(f"{name:40s} top-1 {r / n:.3f}  ({r}/{n})")


if __name__ == "__main__":
    main()
