"""Split a JSONL intent set that ships only `train` (Banking77) into a fit part and a held-out part.

    python bench/assistant_split.py ../shared/data/banking77/train.jsonl /tmp/b77 --share 0.1
writes /tmp/b77_train.jsonl and /tmp/b77_test.jsonl (stratified by label, fixed seed).
"""

from __future__ import annotations

import argparse
import json

from otklik.assistant.evaluation import read_jsonl, split_holdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("src")
    ap.add_argument("prefix")
    ap.add_argument("--share", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rows = read_jsonl(args.src)
    fit, held = split_holdout([r["text"] for r in rows], [r["label"] for r in rows], args.share, args.seed)
    for name, idx in (("train", fit), ("test", held)):
        with open(f"{args.prefix}_{name}.jsonl", "w", encoding="utf-8") as fh:
            for i in idx:
                fh.write(json.dumps(rows[i], ensure_ascii=False) + "\n")
        print(f"{args.prefix}_{name}.jsonl: {len(idx)} rows")


if __name__ == "__main__":
    main()
