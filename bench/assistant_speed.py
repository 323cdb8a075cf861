"""Speed of the assistant's decision (all steps, no LLM), start-up and memory. Bounded; no network.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/assistant_speed.py \
        --kb src/otklik/knowledge/data/store_kb_ru.jsonl --questions bench/data/store_questions_val.jsonl

- start-up: import + loading the sentence encoder + the shipped understanding weights (models_loaded_seconds:
  what a web process pays when it starts) + indexing the KB with its article classifier (kb_index_seconds:
  paid per workspace on its first message after a start or a KB edit);
- decision latency on one core: each question decided alone (p50 / p99), encoder cache off;
- batch throughput on N processes (default 2): each process embeds its share in batches, then decides;
- peak RSS of a process with the assistant loaded (what it adds to a web process).

The machine is shared, so next to wall-clock figures it reports CPU time (one BLAS thread): what a decision
costs a core, i.e. its latency on an idle core, and the batch throughput two idle cores would give.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import time
from multiprocessing import get_context


def _load(kb: str, marks: list[float] | None = None):  # type: ignore[no-untyped-def]
    from otklik.assistant.embeddings import get_embedder
    from otklik.assistant.evaluation import load_kb
    from otklik.assistant.pipeline import Assistant
    from otklik.assistant.retrieval import KbIndex
    from otklik.assistant.understanding import get_understander

    embedder = get_embedder()
    inner = getattr(embedder, "inner", embedder)
    assistant = Assistant(inner, get_understander(inner))
    assistant.decide("прогрев", None)  # the models are loaded and have run once
    if marks is not None:
        marks.append(time.perf_counter())
    index = KbIndex(load_kb(kb), inner)
    return assistant, index


def _batch_worker(args: tuple[str, list[str]]) -> tuple[int, float, float]:
    kb, texts = args
    assistant, index = _load(kb)
    start = time.perf_counter()
    cpu0 = time.process_time()
    vecs = assistant.embedder.encode(texts)
    from otklik.assistant.language import detect_language

    for text, vec in zip(texts, vecs, strict=True):
        lang = detect_language(text)
        assistant.understander.understand(text, lang, vec=vec)
        index.search(text, language=lang, limit=3, query_vec=vec)
    return len(texts), time.perf_counter() - start, time.process_time() - cpu0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kb", required=True)
    ap.add_argument("--questions", required=True)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=8, help="copies of the question set in the batch run")
    args = ap.parse_args()
    with open(args.questions, encoding="utf-8") as fh:
        texts = [json.loads(line)["text"] for line in fh if line.strip()]

    t0 = time.perf_counter()
    c0 = time.process_time()
    marks: list[float] = []
    assistant, index = _load(args.kb, marks)
    startup = time.perf_counter() - t0
    models = marks[0] - t0
    startup_cpu = time.process_time() - c0
    for text in texts[:20]:  # warm-up
        assistant.decide(text, index)
    lat, cpu = [], []
    for text in texts:
        s = time.perf_counter()
        c = time.process_time()
        assistant.decide(text, index)
        cpu.append((time.process_time() - c) * 1000)
        lat.append((time.perf_counter() - s) * 1000)
    lat.sort()
    cpu.sort()
    p50 = lat[len(lat) // 2]
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    big = texts * args.repeat
    shares = [big[i::args.processes] for i in range(args.processes)]
    with get_context("spawn").Pool(args.processes) as pool:
        results = pool.map(_batch_worker, [(args.kb, share) for share in shares])
    total = sum(n for n, _, _ in results)
    wall = max(t for _, t, _ in results)
    cpu_per_msg = sum(c for _, _, c in results) / total
    out = {"startup_seconds": round(startup, 2), "models_loaded_seconds": round(models, 2),
           "kb_index_seconds": round(startup - models, 2), "p50_ms": round(p50, 2), "p99_ms": round(p99, 2),
           "decisions": len(lat), "batch_messages": total, "batch_processes": args.processes,
           "throughput_per_s": round(total / wall, 1), "peak_rss_mb": round(rss_mb, 1),
           "cpu_p50_ms": round(cpu[len(cpu) // 2], 2), "cpu_p99_ms": round(cpu[min(len(cpu) - 1, int(len(cpu) * 0.99))], 2),
           "batch_cpu_ms_per_msg": round(cpu_per_msg * 1000, 3),
           "throughput_2_idle_cores_per_s": round(2 / cpu_per_msg, 1),
           "startup_cpu_seconds": round(startup_cpu, 2), "load_average": os.getloadavg()[0],
           "cpu_count": os.cpu_count()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
