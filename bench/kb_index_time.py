"""How long indexing a plain KB of N articles takes (the issue's goal: 100 articles in <= 20 s here), with the
e5 encoder (cold: nothing cached) and without it. The articles are the dev KBs' (bench/data/kbs), in folder
order, until N. One process, OMP_NUM_THREADS as given (1 = one core).

    OMP_NUM_THREADS=1 .venv/bin/python bench/kb_index_time.py --articles 100
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def main() -> None:
    from otklik.assistant.embeddings import E5Embedder, get_embedder
    from otklik.assistant.retrieval import KbDoc, KbIndex, article_units, handoff_vectors

    ap = argparse.ArgumentParser()
    ap.add_argument("--articles", type=int, default=100)
    ap.add_argument("--without-e5-only", action="store_true", help="skip the two e5 builds")
    args = ap.parse_args()
    docs: list[KbDoc] = []
    for d in sorted((ROOT / "bench" / "data" / "kbs").iterdir()):
        if not (d / "kb.jsonl").is_file():
            continue
        for line in (d / "kb.jsonl").read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            docs.append(KbDoc(id=f"{d.name}/{r['id']}", title=r["title"], body=r["body"], language=r["language"]))
    docs = docs[: args.articles]
    embedder = get_embedder()
    handoff_vectors(embedder)  # loaded with the process, not per index
    units = sum(len(article_units(d)) for d in docs)
    out = {"articles": len(docs), "units": units}
    s = time.perf_counter()
    index = KbIndex(docs, embedder, e5=None)
    out["index_seconds_without_e5"] = round(time.perf_counter() - s, 2)
    out["units_with_generated_questions"] = len(index._owners)  # + the questions `questiongen` generates
    out["generated_questions"] = KbIndex.generated_questions
    if args.without_e5_only:
        print(json.dumps(out))
        return
    e5 = E5Embedder()
    s = time.perf_counter()
    KbIndex(docs, embedder, e5=e5)
    out["index_seconds_with_e5_cold"] = round(time.perf_counter() - s, 2)
    s = time.perf_counter()
    KbIndex(docs, embedder, e5=e5)
    out["index_seconds_with_e5_after_an_edit"] = round(time.perf_counter() - s, 2)  # passages cached
    print(json.dumps(out))


if __name__ == "__main__":
    main()
