"""Questions generated from the KB's own articles at index time (`assistant.questiongen`, BENCHMARKS.md section
11c): dump them for review, check none is a dev message, and measure their effect leave-one-KB-out at the model
level (the answer model fitted on the other KBs' signal tables, as `make_kb_calibration.leave_one_kb_out` does).

    # every generated question, its article, kind and source sentence, one JSON line each; and the leak check
    .venv/bin/python bench/kb_generated_questions.py --dump bench/results/kbs/generated_questions.jsonl
    # the signal tables without and with the generated questions (/tmp/t.off.pkl, /tmp/t.on.pkl), cached
    OMP_NUM_THREADS=1 .venv/bin/python bench/kb_generated_questions.py --tables /tmp/t.pkl --modes off,on \
        [--variants e5|base] [--only demo_rich,demo_plain]
    # model-level leave-one-KB-out of two table files (or "a.pkl+b.pkl" sets), per KB
    .venv/bin/python bench/kb_generated_questions.py --compare /tmp/t.off.pkl /tmp/t.on.pkl

The `--tables` pickles have the shape `bench/assistant_kbs.py --tables` reads, so the full run (`otklik eval kb`
per held-out KB) reuses them.
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src" / "otklik" / "assistant" / "data"))
sys.path.insert(0, str(ROOT / "bench"))


def dump(path: Path) -> None:
    from assistant_kbs import kb_sets

    from otklik.assistant.evaluation import read_jsonl
    from otklik.assistant.questiongen import generate_questions

    rows, per_kb = [], {}
    with tempfile.TemporaryDirectory() as t:
        for name, (kb, questions, _) in kb_sets(Path(t)).items():
            if name == "demo_rich":
                continue
            asked = {" ".join(str(q["text"]).lower().split()).strip("?!. ") for q in read_jsonl(str(questions))}
            n = leaks = articles = 0
            for a in read_jsonl(str(kb)):
                articles += 1
                for q in generate_questions(a["title"], a["body"], a.get("language") or "ru"):
                    leak = " ".join(q.text.lower().split()).strip("?!. ") in asked
                    leaks += leak
                    n += 1
                    rows.append({"kb": name, "article": a["id"], "language": a.get("language"), "kind": q.kind,
                                 "question": q.text, "source": q.source, "equals_a_dev_message": leak})
            per_kb[name] = {"articles": articles, "questions": n, "per_article": round(n / max(1, articles), 2),
                            "equal_to_a_dev_message": leaks}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(json.dumps(per_kb, indent=1))


def tables(path: Path, variants: list[str], modes: list[str], only: list[str]) -> None:
    """One table file per mode (`path` with `.<mode>` before its suffix when several): each KB is indexed in
    every mode in turn in one process, so the e5 passage vectors (the slow part) are embedded once."""
    import make_kb_calibration as calib
    from assistant_kbs import kb_sets

    from otklik.assistant.retrieval import KbIndex

    paths = {m: (path if len(modes) == 1 else path.with_suffix(f".{m}{path.suffix}")) for m in modes}
    out: dict[str, dict[str, list]] = {m: {v: [] for v in variants} for m in modes}
    with tempfile.TemporaryDirectory() as t:
        sets = kb_sets(Path(t))
        for v in variants:
            for name, (kb, q, _) in sets.items():
                if only and name not in only:
                    continue
                for m in modes:
                    KbIndex.generated_questions = m
                    started = time.perf_counter()
                    out[m][v].append(calib.signals_table(str(kb), [str(q)], name, e5=(v == "e5")))
                    print(f"{v} {m} {name}: {time.perf_counter() - started:.0f} s", flush=True)
                    paths[m].write_bytes(pickle.dumps(out[m]))  # after every KB: a partial run still counts


def compare(paths: list[Path], variant: str) -> None:
    import make_kb_calibration as calib
    import numpy as np

    d = calib.Defaults()
    results = []
    for p in paths:  # "a.pkl+b.pkl": the tables of several files (KBs computed in separate processes)
        ts = [tb for part in str(p).split("+") for tb in pickle.loads(Path(part).read_bytes())[variant]]
        results.append({r["kb"]: r for r in calib.leave_one_kb_out(ts, d.C, d.target, d.clarify_precision)})
    names = list(results[0])
    print("| KB | " + " | ".join(f"{p.stem}: top-1 / resolved / wrong" for p in paths) + " |")
    for n in names:
        print(f"| {n} | " + " | ".join(f"{r[n]['top1']:.3f} / {r[n]['resolution']:.3f} / {r[n]['wrong']:.3f}"
                                       for r in results) + " |")
    plain = [n for n in names if n != "demo_rich"]
    print("| mean of plain KBs | " + " | ".join(
        f"{np.mean([r[n]['top1'] for n in plain]):.3f} / {np.mean([r[n]['resolution'] for n in plain]):.3f} / "
        f"{np.mean([r[n]['wrong'] for n in plain]):.3f}" for r in results) + " |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", type=Path)
    ap.add_argument("--tables", type=Path)
    ap.add_argument("--variants", default="e5,base")
    ap.add_argument("--modes", default="", help="OTKLIK_GENERATED_QUESTIONS values, e.g. off,on (default: as set)")
    ap.add_argument("--only", default="", help="comma-separated KB names (default: all)")
    ap.add_argument("--compare", type=Path, nargs="+")
    ap.add_argument("--variant", default="e5")
    args = ap.parse_args()
    if args.dump:
        dump(args.dump)
    if args.tables:
        from otklik.assistant.retrieval import KbIndex

        tables(args.tables, [v for v in args.variants.split(",") if v],
               [m for m in args.modes.split(",") if m] or [KbIndex.generated_questions],
               [k for k in args.only.split(",") if k])
    if args.compare:
        compare(args.compare, args.variant)


if __name__ == "__main__":
    main()
