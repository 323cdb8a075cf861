"""The AI operator on knowledge bases it has never seen: leave-one-KB-out over the dev KBs in bench/data/kbs
(seven businesses, plain help pages: title + body, no question variants) and the demo store's KB with its
variants removed (`demo_plain`) and kept (`demo_rich`, its dev questions val + val2 + val3 + val4).

For each KB, the answer and clarify models are fitted on the *other* KBs only (the demo KB's two forms share
their questions, so both leave together)
(`make_kb_calibration.fit_models`), written to a temporary file, and the whole pipeline is run on the held-out
KB by `otklik eval kb --kb --questions --reasons --details --json` (the contract outside checks call), in a
fresh process with OTKLIK_ANSWER_MODEL pointing at that file. The sentiment / urgency / reason models are
refitted the same way without the held-out business's chat messages (OTKLIK_UNDERSTANDING_MODELS). Retrieval weights were chosen on all of these KBs
(BENCHMARKS.md, section 11), so these are dev figures; the test figures are the ones checked on KBs we never see.

    .venv/bin/python bench/assistant_kbs.py [--only clinic,telecom] [--out bench/results/kbs]
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "src" / "otklik" / "assistant" / "data"))

DEMO_KB = ROOT / "src" / "otklik" / "knowledge" / "data" / "store_kb_ru.jsonl"
DEMO_QUESTIONS = [ROOT / "bench" / "data" / f"store_questions_{s}.jsonl" for s in ("val", "val2", "val3", "val4")]


def kb_sets(tmp: Path) -> dict[str, tuple[Path, Path, Path | None]]:
    """name -> (kb, questions, reasons)."""
    sets: dict[str, tuple[Path, Path, Path | None]] = {}
    questions = tmp / "demo_questions.jsonl"
    questions.write_text("".join(p.read_text(encoding="utf-8") for p in DEMO_QUESTIONS), encoding="utf-8")
    plain = tmp / "demo_plain.jsonl"
    with DEMO_KB.open(encoding="utf-8") as src, plain.open("w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            dst.write(json.dumps({k: row[k] for k in ("id", "title", "body", "language")}, ensure_ascii=False) + "\n")
    sets["demo_rich"] = (DEMO_KB, questions, None)
    sets["demo_plain"] = (plain, questions, None)
    for d in sorted((ROOT / "bench" / "data" / "kbs").iterdir()):
        if (d / "kb.jsonl").is_file() and (d / "questions.jsonl").is_file():
            sets[d.name] = (d / "kb.jsonl", d / "questions.jsonl", d / "reasons.jsonl")
    return sets


def main() -> None:
    import make_kb_calibration as calib

    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="", help="comma-separated KB names to report (all are used for fitting)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "kbs"))
    ap.add_argument("--tables", default=None, help="cache of the signal tables (pickle)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        sets = kb_sets(tmp)
        cache = Path(args.tables) if args.tables else None
        if cache is not None and cache.is_file():
            tables = pickle.loads(cache.read_bytes())
        else:
            tables = {v: [calib.signals_table(str(kb), [str(q)], name, e5=(v == "e5"))
                          for name, (kb, q, _) in sets.items()] for v in calib.available_variants()}
            if cache is not None:
                cache.write_bytes(pickle.dumps(tables))
        only = [x for x in args.only.split(",") if x] or list(sets)
        results = []
        for name in only:
            kb, questions, reasons = sets[name]
            # the demo KB with and without its variants is asked the same questions: both are left out together
            out_of_fit = {name} | ({"demo_rich", "demo_plain"} if name.startswith("demo_") else set())
            model = calib.fit_models({v: [tb for tb in ts if tb.name not in out_of_fit] for v, ts in tables.items()},
                                     calib.Defaults())
            path = tmp / f"model_{name}.json"
            path.write_text(json.dumps(model), encoding="utf-8")
            details = out / f"{name}.details.jsonl"
            cmd = [sys.executable, "-m", "otklik.cli", "eval", "kb", "--kb", str(kb), "--questions", str(questions),
                   "--details", str(details), "--json"]
            if reasons is not None and reasons.is_file():
                cmd += ["--reasons", str(reasons)]
            env = {**os.environ, "OTKLIK_ANSWER_MODEL": str(path)}
            if not name.startswith("demo_"):
                env["OTKLIK_UNDERSTANDING_MODELS"] = str(understanding_without(name, tmp))
            started = time.perf_counter()
            proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r["wall_seconds"] = round(time.perf_counter() - started, 1)
            r["name"] = name
            (out / f"{name}.json").write_text(json.dumps(r, ensure_ascii=False, indent=1), encoding="utf-8")
            results.append(r)
            print(row(r), flush=True)
        held = [r for r in results if r["name"] != "demo_rich"]
        if held:
            keys = ("top1_accuracy", "top3_accuracy", "automated_resolution_rate", "resolution_with_clarify_rate",
                    "wrong_answer_rate", "handoff_recall", "handoff_precision", "reason_accuracy",
                    "sentiment_macro_f1", "urgent_recall")
            mean = {k: sum(r.get(k) or 0 for r in held) / len(held) for k in keys}
            mean["name"] = f"mean of {len(held)} plain KBs"
            print(row(mean))
            lo = {k: min(r.get(k) or 0 for r in held) for k in keys}
            hi = {k: max(r.get(k) or 0 for r in held) for k in keys}
            print("spread (min-max): " + ", ".join(f"{k} {lo[k]:.3f}-{hi[k]:.3f}" for k in keys))


def understanding_without(name: str, tmp: Path) -> Path:
    """The understanding models fitted as the shipped ones are, less the held-out business's chat messages."""
    from make_examples import chat_rows

    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.understanding import load_examples, write_shipped

    chat = {r["text"] for r in chat_rows()}
    rows = [r for r in load_examples() if r["text"] not in chat] + chat_rows(exclude={name})
    folder = tmp / f"understanding_{name}"
    folder.mkdir(exist_ok=True)
    write_shipped(get_embedder(), rows, folder)
    return folder


def row(r: dict) -> str:
    def f(k: str) -> str:
        v = r.get(k)
        return "—" if v is None else f"{v:.3f}"
    return (f"| {r['name']} | {f('top1_accuracy')} / {f('top3_accuracy')} | {f('automated_resolution_rate')} | "
            f"{f('resolution_with_clarify_rate')} | {f('wrong_answer_rate')} | {f('handoff_recall')} / "
            f"{f('handoff_precision')} | {f('reason_accuracy')} | {f('sentiment_macro_f1')} | {f('urgent_recall')} | "
            f"{r.get('english_resolved', '—')}/{r.get('english_answerable', '—')} | {f('p50_ms')} / {f('p99_ms')} | "
            f"{f('startup_seconds')} |")


if __name__ == "__main__":
    main()
