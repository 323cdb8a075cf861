"""What the service-level guards added in issue 14 do to the AI operator's leave-one-KB-out figures
(bench/results/kbs/*.details.jsonl, written by bench/assistant_kbs.py on KBs that took no part in fitting).

`otklik eval kb` runs the pipeline's decision (`Assistant.decide`), which issue 14 did not change. Two checks
added after it, in `assistant.service`, can still turn an answer into a hand-off in the product:
1. the legal-deadline check: the message states an elapsed time (guardrails.extract) and the predicted contact
   reason maps to a situation whose term it already exceeds (the shipped store mapping; a workspace's own
   reasons map to nothing until it maps them);
2. the phrase check: the assistant never sends a «never» phrase, so an answer whose article contains one is
   handed off. The article's whole body is checked: an upper bound (the product sends one passage of it).
Counts, for each held-out KB, the answers (first reply, `action == "answer"`) each check would hand off.

    .venv/bin/python bench/assistant_guard_effect.py [--results bench/results/kbs] [--out FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def articles_of(name: str) -> dict[str, str]:
    kb = ROOT / "bench" / "data" / "kbs" / name / "kb.jsonl"
    if name.startswith("demo"):
        kb = ROOT / "src" / "otklik" / "knowledge" / "data" / "store_kb_ru.jsonl"
    out: dict[str, str] = {}
    for line in kb.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            text = f"{row.get('title', '')}\n{row.get('body', '')}"
            out[str(row.get("id") or row.get("slug") or row.get("title"))] = text
    return out


def main() -> None:
    from otklik.guardrails import deadlines, phrases
    from otklik.guardrails.extract import elapsed_days
    from otklik.guardrails.law import RULES
    from otklik.guardrails.service import DEMAND_SITUATIONS, REASON_SITUATIONS, _production

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results" / "kbs")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    today = dt.date(2026, 12, 7)
    production = _production("RU", (), ())  # the Russian production calendar, as a workspace without one

    def non_working(day: dt.date) -> bool:
        return not production.day(day)[1]

    table: dict[str, dict[str, int]] = {}
    for details in sorted(args.results.glob("*.details.jsonl")):
        name = details.name.split(".")[0]
        rows = [json.loads(x) for x in details.read_text(encoding="utf-8").splitlines() if x.strip()]
        answered = [r for r in rows if r["action"] == "answer"]
        texts = articles_of(name)
        legal = phrase = missing = 0
        for r in answered:
            situation = REASON_SITUATIONS.get(r.get("reason") or "")
            days = elapsed_days(r["text"], today)
            if situation in DEMAND_SITUATIONS and days is not None:
                rule = next(x for x in RULES if x.situation == situation and x.start == "demanded_on")
                _, due_on = deadlines.due_date(rule, today - dt.timedelta(days=days), non_working)
                legal += due_on < today
            key = str(r.get("article") or "")
            article = texts.get(key) or texts.get(key.removeprefix("en-"))
            missing += article is None
            phrase += any(m.severity == "never" for m in phrases.check(article or ""))
        table[name] = {"messages": len(rows), "answered": len(answered), "legal_handoff": legal,
                       "phrase_handoff_at_most": phrase, "article_not_found": missing}
    print(json.dumps(table, ensure_ascii=False, indent=1))
    if args.out:
        args.out.write_text(json.dumps(table, ensure_ascii=False, indent=1) + "\n")


if __name__ == "__main__":
    main()
