"""Memory and start-up of a web process with the assistant loaded (the app, the encoder, the understanding
weights, the demo store KB indexed). No server is started and nothing is sent anywhere.

    OTKLIK_DATABASE_URL=sqlite:////tmp/otklik-mem.db .venv/bin/python bench/assistant_memory.py \
        --kb src/otklik/knowledge/data/store_kb_ru.jsonl
"""

from __future__ import annotations

import argparse
import json
import resource
import time


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    args = ap.parse_args()
    t0 = time.perf_counter()
    from otklik.app import create_app

    create_app()
    app_s = time.perf_counter() - t0
    app_mb = rss_mb()
    t1 = time.perf_counter()
    from otklik.assistant.evaluation import load_kb
    from otklik.assistant.retrieval import KbIndex
    from otklik.assistant.service import get_assistant

    assistant = get_assistant()
    index = KbIndex(load_kb(args.kb), assistant.embedder)
    assistant.decide("Где мой заказ???!!!", index)
    assistant_s = time.perf_counter() - t1
    print(json.dumps({"app_import_seconds": round(app_s, 2), "app_rss_mb": round(app_mb, 1),
                      "assistant_startup_seconds": round(assistant_s, 2),
                      "rss_with_assistant_mb": round(rss_mb(), 1),
                      "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))


if __name__ == "__main__":
    main()
