"""Size of the chat widget's one JS file: raw bytes and gzip -9 bytes (what a shop's visitor downloads).

    .venv/bin/python bench/widget_size.py
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

WIDGET = Path(__file__).resolve().parent.parent / "src/otklik/web/static/widget/otklik-widget.js"


def main() -> None:
    raw = WIDGET.read_bytes()
    print(json.dumps({"bench": "widget_size", "file": str(WIDGET.relative_to(WIDGET.parents[5])),
                      "raw_bytes": len(raw), "gzip_bytes": len(gzip.compress(raw, compresslevel=9)),
                      "goal_raw_bytes": 50 * 1024}))


if __name__ == "__main__":
    main()
