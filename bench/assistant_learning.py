"""Learning from agents, replayed (issue 12 §6): how first-reply resolution on a KB the assistant has never seen
grows when a month of its hand-offs, answered by agents with an article, is accepted as question variants.

For each dev KB (bench/data/kbs; plain help pages, no variants), its chat messages are shuffled (fixed seed) and
cut in two halves. One half is "the month": each message is decided by the assistant on the plain KB; every
answerable one it did not answer (a hand-off or a clarifying question for a learnable reason, `learning.LEARNABLE`)
is answered by an agent with the expected article, so — as `learning.propose_from_reply` does for a reply that
links the article — its masked wording (`learning.mask`) is proposed for that article, and the editor accepts it.
The other half ("later") is decided before and after, on the plain KB and on the KB with the accepted variants;
then the halves swap, and both are counted. Messages the expected answer is `null` for are never proposed
(an agent answers them without an article). The answer model and the understanding models are the ones fitted
*without* the KB at hand (as bench/assistant_kbs.py does), so the KB is unseen in both runs.

    .venv/bin/python bench/assistant_learning.py --tables /tmp/tables.pkl [--only clinic] \\
        [--out bench/results/kbs/learning.json]

`--tables` is bench/assistant_kbs.py's cache of signal tables (built there with `--tables PATH`): the answer
model is then fitted without the KB at hand. `--shipped-answer-model` skips that (the shipped model, fitted on all
dev KBs — this one included — so "before" reads higher than a held-out figure; the difference before → after is
what this measures); the understanding models are refitted without the KB either way.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src" / "otklik" / "assistant" / "data"))
sys.path.insert(0, str(ROOT / "bench"))


def decide_all(assistant: Any, index: Any, rows: list[dict[str, Any]], group: dict[str, str]) -> dict[str, Any]:
    answered = right = wrong = 0
    outcomes = []
    for q in rows:
        d = assistant.decide(q["text"], index)
        expected = group.get(q["expected"], q["expected"]) if q["expected"] else None
        got = group.get(d.article_id, d.article_id) if d.article_id else None
        ok = d.action == "answer" and expected is not None and got == expected
        answered += d.action == "answer"
        right += ok
        wrong += d.action == "answer" and not ok
        outcomes.append((d.action, d.reason))
    n = len(rows)
    answerable = sum(1 for q in rows if q["expected"])
    return {"messages": n, "answerable": answerable, "resolved": right, "wrong": wrong,
            "resolution": round(right / answerable, 3) if answerable else None,
            "wrong_rate": round(wrong / n, 3) if n else None, "outcomes": outcomes}


def one(kb: str, questions: str, seed: int) -> dict[str, Any]:
    """Runs in a child process whose environment names the fold's models."""
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.evaluation import load_kb, read_jsonl
    from otklik.assistant.learning import LEARNABLE, fold, mask
    from otklik.assistant.pipeline import Assistant
    from otklik.assistant.retrieval import KbDoc, KbIndex
    from otklik.assistant.understanding import get_understander

    embedder = get_embedder()
    docs = load_kb(kb)
    group = {d.id: d.group or d.id for d in docs}
    by_id = {d.id: d for d in docs}
    assistant = Assistant(embedder, get_understander(embedder))
    rows = list(read_jsonl(questions))
    random.Random(seed).shuffle(rows)
    half = len(rows) // 2
    plain = KbIndex(docs, embedder)
    out: dict[str, Any] = {"kb": Path(kb).parent.name, "halves": []}
    for month, later in ((rows[:half], rows[half:]), (rows[half:], rows[:half])):
        learned: dict[str, list[str]] = {}
        replay = decide_all(assistant, plain, month, group)
        for q, (action, reason) in zip(month, replay["outcomes"], strict=True):
            if action == "answer" or reason not in LEARNABLE or not q["expected"]:
                continue
            target = by_id.get(q["expected"])
            if target is None:
                continue
            text = mask(q["text"])
            variants = learned.setdefault(target.id, [])
            if fold(text) not in {fold(v) for v in variants}:
                variants.append(text)
        taught = [KbDoc(d.id, d.title, d.body, d.language, [*d.questions, *learned.get(d.id, [])], d.category,
                        d.group, d.slug) for d in docs]
        before = decide_all(assistant, plain, later, group)
        after = decide_all(assistant, KbIndex(taught, embedder), later, group)
        for r in (before, after, replay):
            r.pop("outcomes")
        out["halves"].append({"month": len(month), "variants_accepted": sum(len(v) for v in learned.values()),
                              "articles_taught": len(learned), "month_replay": replay, "before": before,
                              "after": after})
    for key in ("before", "after"):
        resolved = sum(h[key]["resolved"] for h in out["halves"])
        answerable = sum(h[key]["answerable"] for h in out["halves"])
        wrong = sum(h[key]["wrong"] for h in out["halves"])
        messages = sum(h[key]["messages"] for h in out["halves"])
        out[key] = {"resolution": round(resolved / answerable, 3), "wrong_rate": round(wrong / messages, 3)}
    out["variants_accepted"] = sum(h["variants_accepted"] for h in out["halves"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tables", default=None, help="bench/assistant_kbs.py's signal tables (pickle)")
    ap.add_argument("--shipped-answer-model", action="store_true")
    ap.add_argument("--only", default="")
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "kbs" / "learning.json"))
    ap.add_argument("--one", nargs=2, metavar=("KB", "QUESTIONS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args.one[0], args.one[1], args.seed), ensure_ascii=False))
        return
    import make_kb_calibration as calib
    from assistant_kbs import kb_sets, understanding_without

    results = []
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        sets = kb_sets(tmp)
        cache = Path(args.tables) if args.tables else None
        tables: dict[str, Any] = {}
        if args.shipped_answer_model:
            pass
        elif cache is not None and cache.is_file():
            tables = pickle.loads(cache.read_bytes())
        else:
            tables = {v: [calib.signals_table(str(kb), [str(q)], name, e5=(v == "e5"))
                          for name, (kb, q, _) in sets.items()] for v in calib.available_variants()}
            if cache is not None:
                cache.write_bytes(pickle.dumps(tables))
        names = [x for x in args.only.split(",") if x] or [n for n in sets if not n.startswith("demo_")]
        for name in names:
            kb, questions, _ = sets[name]
            env = {**os.environ, "OTKLIK_UNDERSTANDING_MODELS": str(understanding_without(name, tmp))}
            if tables:
                model = calib.fit_models({v: [tb for tb in ts if tb.name != name] for v, ts in tables.items()},
                                         calib.Defaults())
                path = tmp / f"model_{name}.json"
                path.write_text(json.dumps(model), encoding="utf-8")
                env["OTKLIK_ANSWER_MODEL"] = str(path)
            proc = subprocess.run([sys.executable, __file__, "--seed", str(args.seed), "--one", str(kb),
                                   str(questions)], env=env, capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            results.append(r)
            print(f"{name}: resolution {r['before']['resolution']:.3f} -> {r['after']['resolution']:.3f}, wrong "
                  f"{r['before']['wrong_rate']:.3f} -> {r['after']['wrong_rate']:.3f}, "
                  f"{r['variants_accepted']} variants accepted", flush=True)
    mean = {k: {m: round(sum(r[k][m] for r in results) / len(results), 3) for m in ("resolution", "wrong_rate")}
            for k in ("before", "after")}
    print("mean", json.dumps(mean))
    answer_model = ("shipped (fitted on all dev KBs, these included)" if args.shipped_answer_model
                    else "fitted without the KB at hand")
    Path(args.out).write_text(json.dumps({"seed": args.seed, "answer_model": answer_model,
                                          "e5": os.environ.get("OTKLIK_E5", "on"), "per_kb": results, "mean": mean},
                                         ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
