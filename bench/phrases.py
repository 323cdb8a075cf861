"""Phrase checker (issue 14 §3): precision/recall on a labelled set of replies, and the time to check a
2,000-character reply with the full shipped ru + en list — in Python and, with --page, in Chromium (the same
expression and the same code the reply box runs, static/js/phrases.js).

    .venv/bin/python bench/phrases.py                         # bench/data/phrases_dev.tsv
    .venv/bin/python bench/phrases.py --set bench/data/phrases_heldout.tsv --page

A reply counts as flagged when the checker finds at least one phrase (never or avoid); the label says whether
it should be (1) or not (0). Timing: 2,000-character replies glued from the set's own replies (so the rules'
first words occur as often as in real replies), each checked --repeat times; p50/p99 over all checks.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from otklik.guardrails import phrases  # noqa: E402

JS = ROOT / "src" / "otklik" / "web" / "static" / "js" / "phrases.js"


def load(path: Path) -> list[tuple[int, str, str]]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        label, lang, text = line.split("\t", 2)
        rows.append((int(label), lang, text))
    return rows


def scores(rows: list[tuple[int, str, str]], engine: phrases.Engine) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for scope in ("all", "ru", "en"):
        tp = fp = fn = tn = 0
        for label, lang, text in rows:
            if scope != "all" and lang != scope:
                continue
            flagged = bool(engine.check(text))
            tp += flagged and label == 1
            fp += flagged and label == 0
            fn += (not flagged) and label == 1
            tn += (not flagged) and label == 0
        out[scope] = {"n": tp + fp + fn + tn, "tp": tp, "fp": fp, "fn": fn, "tn": tn,
                      "precision": tp / (tp + fp) if tp + fp else 1.0, "recall": tp / (tp + fn) if tp + fn else 1.0}
    return out


def long_replies(rows: list[tuple[int, str, str]], count: int, size: int = 2000) -> list[str]:
    rng = random.Random(14)
    texts = []
    for _ in range(count):
        parts: list[str] = []
        while sum(len(p) + 1 for p in parts) < size:
            parts.append(rng.choice(rows)[2])
        texts.append(" ".join(parts)[:size])
    return texts


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * q))]


def python_timing(engine: phrases.Engine, texts: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall time and this thread's CPU time per check (the CPU time leaves out the moments another process had
    the core: the bench machine is shared)."""
    wall, cpu = [], []
    for _ in range(repeat):
        for text in texts:
            start, start_cpu = time.perf_counter(), time.thread_time()
            engine.check(text)
            cpu.append((time.thread_time() - start_cpu) * 1000)
            wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def page_timing(engine: phrases.Engine, texts: list[str], repeat: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    compiled = {"pattern": engine.js_pattern(), "rules": {r.id: r.as_dict() for r in engine.rules}}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        page = browser.new_page()
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(content=JS.read_text(encoding="utf-8"))
        times = page.evaluate("""([compiled, texts, repeat]) => {
            const checker = window.OtklikPhrases.compile(compiled);
            for (const t of texts) checker.check(t);  // warm up the JIT as a typing agent would
            const out = [];
            for (let r = 0; r < repeat; r++) for (const t of texts) {
                const start = performance.now(); checker.check(t); out.push(performance.now() - start);
            }
            return out;
        }""", [compiled, texts, repeat])
        browser.close()
    return list(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default=str(ROOT / "bench" / "data" / "phrases_dev.tsv"))
    parser.add_argument("--page", action="store_true", help="also time the check in Chromium")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--show", action="store_true", help="print the replies the checker got wrong")
    args = parser.parse_args()
    rows = load(Path(args.set))
    engine = phrases.shipped_engine()
    print(f"rules: {len(engine.rules)} ({sum(r.language == 'ru' for r in engine.rules)} ru, "
          f"{sum(r.language == 'en' for r in engine.rules)} en); set: {args.set} ({len(rows)} replies, "
          f"{sum(r[0] for r in rows)} labelled as violations)")
    for scope, s in scores(rows, engine).items():
        print(f"  {scope:3} n={s['n']:4}  precision {s['precision']:.3f}  recall {s['recall']:.3f}  "
              f"(tp {s['tp']}, fp {s['fp']}, fn {s['fn']}, tn {s['tn']})")
    if args.show:
        for label, lang, text in rows:
            found = engine.check(text)
            if bool(found) != bool(label):
                print(f"  {'FN' if label else 'FP'} {lang} {text!r} {[m.rule_id for m in found]}")
    texts = long_replies(rows, 200)
    py, cpu = python_timing(engine, texts, args.repeat)
    print(f"python: 2,000-char reply, {len(py)} checks: wall p50 {statistics.median(py):.3f} ms, "
          f"p99 {pct(py, 0.99):.3f} ms, max {max(py):.3f} ms; CPU p50 {statistics.median(cpu):.3f} ms, "
          f"p99 {pct(cpu, 0.99):.3f} ms")
    if args.page:
        js = page_timing(engine, texts, args.repeat)
        print(f"page (Chromium): 2,000-char reply, {len(js)} checks: p50 {statistics.median(js):.3f} ms, "
              f"p99 {pct(js, 0.99):.3f} ms, max {max(js):.3f} ms")
    print(json.dumps({"rules": len(engine.rules), "python_p99_ms": round(pct(py, 0.99), 3),
                      "python_cpu_p99_ms": round(pct(cpu, 0.99), 3)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
