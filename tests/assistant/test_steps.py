"""Each step of the assistant pipeline on realistic Russian and English messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from otklik.assistant import lexicon
from otklik.assistant.classifier import SoftmaxModel, fit_temperature, train_softmax
from otklik.assistant.embeddings import HashingEmbedder, get_embedder
from otklik.assistant.evaluation import load_kb
from otklik.assistant.language import detect_language
from otklik.assistant.retrieval import KbIndex
from otklik.assistant.understanding import entities, get_understander

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(("text", "lang"), [
    ("Где мой заказ???!!!", "ru"),
    ("Where is my order? It was due yesterday", "en"),
    ("Де моє замовлення? Чекаю вже тиждень", "uk"),
    ("Менің тапсырысым қайда?", "kk"),
    ("Wo ist meine Bestellung? Ich warte schon lange", "de"),
    ("¿Dónde está mi pedido? Hola", "es"),
    ("我的订单在哪里", "zh"),
    ("Siparişim nerede? Lütfen yardım edin", "tr"),
    ("still no refund after 2 weeks", "en"),  # «no» alone once made this Spanish
    ("no funciona la lavadora", "es"),
    ("skolko stoit dostavka v balashihu", "ru"),  # Russian in Latin letters: the Russian articles answer it
    ("zakaz 48213 kakoi status?", "ru"),
])
def test_language(text, lang):
    assert detect_language(text) == lang


@pytest.mark.parametrize("text", ["заебали уже, где заказ", "да пошли вы нахуй", "вы идиоты", "блядь опять",
                                  "сучары, верните деньги", "you are fucking useless", "распиздяи"])
def test_abuse_lexicon_catches_inflected_forms(text):
    assert lexicon.profanity_hits(text)


@pytest.mark.parametrize("text", ["купил себе чайник", "застрахуйте посылку", "психолог сказал", "судя по всему",
                                  "употребление", "оскорблять не буду", "ребёнок", "хлебопечка"])
def test_abuse_lexicon_leaves_clean_words_alone(text):
    assert not lexicon.profanity_hits(text)


def test_legal_and_human_and_urgency_cues():
    assert lexicon.legal_threat("если не вернёте деньги, подам в суд и напишу в Роспотребнадзор")
    assert lexicon.legal_threat("I will take legal action")
    assert not lexicon.legal_threat("судя по трекеру заказ в пути")
    assert lexicon.wants_human("позовите живого оператора пожалуйста")
    assert lexicon.wants_human("можно поговорить с человеком?")
    assert lexicon.wants_human("I want to talk to a human")
    assert not lexicon.wants_human("как оформить возврат")
    # words that merely contain «суд» / «иск», and praise for a person, are neither
    assert not lexicon.legal_threat("посудомойка плохо отмывает посуду")
    assert not lexicon.legal_threat("поиск по сайту не находит чайник")
    assert lexicon.legal_threat("готовлю исковое заявление, увидимся в суде")
    assert not lexicon.wants_human("где оставить отзыв? хочу похвалить консультанта")
    assert lexicon.wants_human("дайте мне старшего менеджера")
    assert lexicon.wants_human("хочу живого оператора")
    assert lexicon.wants_human("оператор") and lexicon.wants_human("Человека!!")  # the whole message
    assert not lexicon.wants_human("оператор сбербанка сказал, что платёж прошёл")
    assert lexicon.urgency_cues("Где мой заказ???!!!") >= 2
    assert lexicon.urgency_cues("подскажите режим работы") == 0


def test_entities():
    found = entities("Заказ № 458213, телефон +7 916 123-45-67, почта anna@example.ru, списали 4 990 ₽ 12.11")
    assert found["order"] == ["458213"]
    assert found["phone"] and "916" in found["phone"][0]
    assert found["email"] == ["anna@example.ru"]
    assert found["sum"] and found["sum"][0].replace(" ", "") == "4990"
    assert found["date"] == ["12.11"]
    assert entities("order #88123 is late")["order"] == ["88123"]


def test_understanding_on_realistic_messages():
    u = get_understander(get_embedder())
    urgent = u.understand("Где мой заказ???!!! Уже неделю жду", "ru")
    assert urgent.urgent and urgent.sentiment == "negative"
    calm = u.understand("Подскажите, пожалуйста, сколько стоит доставка в Казань", "ru")
    assert not calm.urgent and calm.sentiment == "neutral" and calm.reason == "delivery_info"
    happy = u.understand("Спасибо большое, всё пришло вовремя, очень довольна!", "ru")
    assert happy.sentiment == "positive"
    assert u.understand("хочу вернуть наушники, не подошли", "ru").reason == "return_good_quality"
    assert u.understand("вы там совсем тупые?", "ru").abusive


def test_retrieval_is_hybrid_and_cross_lingual():
    index = KbIndex(load_kb(DATA / "mini_kb.jsonl"), get_embedder())
    assert index.search("как вернуть товар который не подошел", language="ru")[0].doc.id == "returns"
    # an English question finds the Russian article when there is no English one
    assert index.search("how do I return an item that did not fit", language="en")[0].doc.id == "returns"
    # and the English version of an article when there is one, listed once (translations are one group)
    hits = index.search("how much is delivery", language="en", limit=3)
    assert hits[0].doc.id == "en-delivery"
    assert "delivery" not in [h.doc.id for h in hits]
    # morphology: an inflected form finds the lemma's article lexically even without embeddings
    lexical = KbIndex(load_kb(DATA / "mini_kb.jsonl"), HashingEmbedder())
    assert lexical.search("бонусами оплатить можно?", language="ru")[0].doc.id == "bonuses"


def test_softmax_model_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    X = np.vstack([rng.normal(0, 1, (50, 4)) + 3, rng.normal(0, 1, (50, 4)) - 3]).astype(np.float32)
    y = ["a"] * 50 + ["b"] * 50
    model = train_softmax(X, y, epochs=50, lr=0.05, batch=32)
    fit_temperature(model, X, y)
    assert model.predict(X)[0] == y
    model.save(tmp_path / "m.npz")
    again = SoftmaxModel.load(tmp_path / "m.npz")
    assert again.labels == ["a", "b"]
    assert np.allclose(again.proba(X), model.proba(X), atol=1e-2)
