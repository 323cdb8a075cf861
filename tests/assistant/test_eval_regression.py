"""The evaluation commands on a small fixed sample written for these tests (never ../shared): the figures
must not fall below what was measured when the thresholds were set (BENCHMARKS.md, section 10)."""

from __future__ import annotations

import json
from pathlib import Path

from otklik.assistant import evaluation
from otklik.cli import main

DATA = Path(__file__).parent / "data"


def test_eval_kb_on_the_fixed_sample():
    r = evaluation.eval_kb(DATA / "mini_kb.jsonl", DATA / "mini_questions.jsonl", progress=lambda _: None)
    # measured: top1 1.00, resolution 0.92, wrong 0.00, hand-off recall 1.00, urgent recall 0.67
    assert r["n_questions"] == 20 and r["n_answerable"] == 12
    assert r["top1_accuracy"] >= 0.9
    assert r["automated_resolution_rate"] >= 0.75
    assert r["wrong_answer_rate"] <= 0.1
    assert r["handoff_recall"] >= 0.85
    assert r["urgent_recall"] >= 0.6
    for key in ("top3_accuracy", "handoff_precision", "reason_accuracy", "sentiment_macro_f1", "p50_ms", "p99_ms",
                "throughput_per_s"):
        assert key in r


def test_eval_intents_cli_json(capsys):
    rc = main(["eval", "intents", "--train", str(DATA / "mini_intents_train.jsonl"),
               "--test", str(DATA / "mini_intents_test.jsonl"), "--val", str(DATA / "mini_intents_test.jsonl"),
               "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("accuracy", "macro_f1", "oos_recall", "oos_precision", "coverage_at_95", "coverage_at_99", "p50_ms",
                "p99_ms", "throughput_per_s"):
        assert key in r
    assert r["accuracy"] >= 0.75
    assert r["oos_recall"] >= 0.5


def test_eval_rejects_missing_files(capsys):
    assert main(["eval", "kb", "--kb", "/nonexistent.jsonl", "--questions", str(DATA / "mini_questions.jsonl")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_metric_definitions():
    assert evaluation.macro_f1(["a", "a", "b", "b"], ["a", "b", "b", "b"]) == (2 / 3 + 0.8) / 2
    import numpy as np

    conf = np.array([0.9, 0.8, 0.7, 0.6])
    correct = np.array([True, True, False, True])
    answerable = np.array([True, True, True, True])
    assert evaluation._answer_threshold(conf, correct, answerable, 0.99) == 0.8
    assert evaluation._answer_threshold(conf, correct, answerable, 0.70) == 0.6
