"""The retrieval signals, the synonym/translit query expansion and the shipped answer model."""

from __future__ import annotations

import json
from pathlib import Path

from otklik.assistant import pipeline, synonyms
from otklik.assistant.embeddings import HashingEmbedder, get_embedder
from otklik.assistant.evaluation import load_kb
from otklik.assistant.retrieval import KbIndex, Signals

DATA = Path(__file__).parent / "data"


def test_translit_and_expansion():
    assert synonyms.translit("zakaz") == "заказ"
    assert synonyms.translit("vozvrat") == "возврат"
    extra = synonyms.expand(["стиралк"])
    assert "стиральн" in extra and "стиралк" not in extra
    assert synonyms.expand(["абракадабр"]) == set()


def test_expansion_and_translit_reach_the_article_lexically():
    # the hashing embedder has no idea of meaning across words: only the lexical side can find these
    docs = load_kb(DATA / "mini_kb.jsonl")
    plain_index = KbIndex(docs, HashingEmbedder(), expansion_weight=0.0)
    index = KbIndex(docs, HashingEmbedder())
    assert "заказ" in index.query_terms("gde zakaz")
    query = "хочу сдать утюг обратно"  # «сдать» is in the returns group, the article says «вернуть/возврат»
    assert plain_index.search(query, language="ru")[0].lexical < index.search(query, language="ru")[0].lexical
    assert index.search(query, language="ru")[0].doc.id == "returns"


def test_signals_and_calibrated_confidence():
    index = KbIndex(load_kb(DATA / "mini_kb.jsonl"), get_embedder())
    hits, sig = index.search_signals("как вернуть товар который не подошел", language="ru", limit=3)
    assert hits[0].doc.id == "returns" and sig.dense_agrees and sig.lexical_agrees
    assert sig.unknown_share < 0.5 and sig.n_terms >= 3
    sure = pipeline.calibrated(hits, sig, "ru")
    vague, vsig = index.search_signals("а у вас есть синхрофазотрон с гравицаппой", language="ru", limit=3)
    assert vsig.unknown_share > 0.5
    assert pipeline.calibrated(vague, vsig, "ru") < pipeline.Settings().answer_threshold <= sure
    # the same hits with the retrievers disagreeing are less certain
    assert pipeline.calibrated(hits, Signals(n_terms=sig.n_terms), "ru") < sure
    assert pipeline.calibrated([], Signals(), "ru") == 0.0


def test_shipped_answer_model_matches_the_code():
    data = json.loads(pipeline.ANSWER_MODEL.read_text(encoding="utf-8"))
    assert tuple(data["features"]) == pipeline.FEATURES and len(data["coef"]) == len(pipeline.FEATURES)
    # the default threshold is the one the calibration script chose (rounded to 0.01)
    assert abs(data["threshold"] - pipeline.Settings().answer_threshold) < 0.01
    assert data["cv_wrong"] <= 0.03
