"""Questions generated from a plain article's own text at index time (issue 12 §3)."""

from __future__ import annotations

from otklik.assistant.embeddings import HashingEmbedder
from otklik.assistant.questiongen import generate_questions
from otklik.assistant.retrieval import KbDoc, KbIndex

BODY = """Доставляем по Москве, Московской области и в 1 200 городов России.

**Москва в пределах МКАД**
- Курьер, товары до 30 кг: **390 ₽**, бесплатно при заказе от **5 000 ₽**.
- Крупная техника: **990 ₽**, бесплатно от **30 000 ₽**.

**Другие города**
| Город | Стоимость | Срок |
|---|---|---|
| Казань | 490 ₽ | 2–3 дня |

Если заказ опоздал больше чем на
сутки от обещанной даты, доставку вернём. Оплатить заказ можно картой или наличными курьеру."""


def texts(title: str, body: str, language: str = "ru") -> list[str]:
    return [q.text for q in generate_questions(title, body, language)]


def test_questions_come_from_headings_prices_terms_and_conditions_in_russian():
    qs = generate_questions("Доставка", BODY, "ru")
    got = {q.text: q for q in qs}
    assert "Москва в пределах МКАД?" in got
    assert "Сколько стоит курьер, товары до кг?" in got  # the item's own words, not its number
    assert "Сколько стоит крупная техника?" in got
    assert "Сколько дней другие города Казань?" in got  # a table row under its section
    # a condition cut by a hard line break is one sentence
    assert "Что делать, если заказ опоздал больше чем на сутки от обещанной даты?" in got
    assert "Можно ли оплатить заказ картой или наличными курьеру?" in got
    assert got["Сколько стоит крупная техника?"].kind == "price"
    assert got["Сколько стоит крупная техника?"].source == "Крупная техника: 990 ₽, бесплатно от 30 000 ₽."
    assert len(qs) == len({q.text.lower() for q in qs})  # no repeats


def test_english_articles_get_english_questions_and_other_languages_none():
    body = "If the parcel is late by more than a day, we refund the delivery. You can pay by card or in cash."
    assert texts("Delivery", body, "en") == ["What if the parcel is late by more than a day?",
                                              "Can I pay by card or in cash?"]
    assert texts("Lieferung", "Wenn das Paket 2 Tage zu spät ist, erstatten wir 390 RUB.", "de") == []


def test_the_generator_reads_only_the_article_and_is_deterministic():
    assert texts("Доставка", BODY) == texts("Доставка", BODY)
    assert texts("Пусто", "") == []
    assert len(generate_questions("Доставка", BODY * 20, "ru")) <= 24


def test_generated_questions_are_units_of_their_article_not_variants(monkeypatch):
    docs = [KbDoc(id="d", title="Доставка", body=BODY),
            KbDoc(id="r", title="Возврат", body="Вернуть товар можно в течение 14 дней.")]
    off = KbIndex(docs, HashingEmbedder(), e5=None)  # the default
    monkeypatch.setattr(KbIndex, "generated_questions", "on")
    on = KbIndex(docs, HashingEmbedder(), e5=None)
    n = len(generate_questions("Доставка", BODY)) + len(generate_questions("Возврат", docs[1].body))
    assert n > 5
    assert len(on._owners) == len(off._owners) + n
    assert on.richness == off.richness == 0.0  # the KB still reads as plain to the answer model
    # the unit «Можно ли вернуть товар в течение дней?» belongs to the return article
    hits = on.search("можно ли вернуть товар", limit=2)
    assert hits[0].doc.id == "r"
