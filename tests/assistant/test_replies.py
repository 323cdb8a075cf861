"""The answer a customer reads: the passage that answers, tidied into chat text, in the customer's language."""

from __future__ import annotations

from otklik.assistant import pipeline
from otklik.assistant.embeddings import get_embedder
from otklik.assistant.retrieval import KbDoc, article_units

BODY = """Доставляем по Москве, Московской области и в 1 200 городов России.

**Москва в пределах МКАД**
- Курьер, товары до 30 кг: **390 ₽**, бесплатно при заказе от **5 000 ₽**.
- Крупная техника: **990 ₽**, бесплатно от **30 000 ₽**.

**Другие города**
| Город | Стоимость | Срок |
|---|---|---|
| Казань | 490 ₽ | 2–3 дня |
| Новосибирск | 690 ₽ | 4–6 дней |

Точную стоимость и дату корзина покажет после ввода адреса, до оплаты. Если заказ опоздал больше чем на
сутки от обещанной даты, доставку вернём."""


def test_tidy_turns_markdown_into_chat_text():
    text = pipeline.tidy("Точную стоимость и дату корзина покажет после ввода адреса,\nдо оплаты.\n"
                         "- **Курьер**: 390 ₽\n- Самовывоз: бесплатно")
    assert text == "Точную стоимость и дату корзина покажет после ввода адреса, до оплаты.\n• Курьер: 390 ₽\n" \
                   "• Самовывоз: бесплатно"
    assert pipeline.tidy("| Казань | 490 ₽ |\n|---|---|") == "Казань — 490 ₽"


def test_the_reply_is_the_passage_that_answers_not_the_whole_article():
    from otklik.assistant.retrieval import KbIndex

    emb = get_embedder()
    kb = KbIndex([KbDoc(id="d", title="Доставка", body=BODY),
                  KbDoc(id="t", title="Доставка крупной техники", body="Доставка до подъезда, подъём на этаж."),
                  KbDoc(id="s", title="Сроки доставки", body="Доставка занимает от 1 до 7 дней.")], emb, e5=None)
    question = "сколько доставка в казань стоит"
    passage = pipeline.best_passage(question, emb.encode([question])[0], BODY, emb, max_chars=300, idf=kb._idf)
    assert "Казань — 490 ₽ — 2–3 дня" in passage
    assert "МКАД" not in passage and "**" not in passage and "…" not in passage
    question = "курьер по москве сколько стоит"
    passage = pipeline.best_passage(question, emb.encode([question])[0], BODY, emb, max_chars=300, idf=kb._idf)
    assert "390 ₽" in passage and "Казань" not in passage


def test_a_short_article_is_answered_whole_and_a_long_cut_at_a_sentence():
    emb = get_embedder()
    short = "Поддержка работает ежедневно с 9:00 до 21:00.\n\nВ праздники — с 10:00 до 18:00."
    q = "когда работаете"
    assert pipeline.best_passage(q, emb.encode([q])[0], short, emb) == \
        "Поддержка работает ежедневно с 9:00 до 21:00.\n\nВ праздники — с 10:00 до 18:00."
    long = " ".join(f"Предложение номер {i} о сроках возврата." for i in range(60))
    cut = pipeline.best_passage(q, emb.encode([q])[0], long, emb, max_chars=200)
    assert len(cut) <= 200 and cut.endswith(".") and "…" not in cut


def test_units_give_list_items_and_table_rows_their_context():
    units = [t for t, _ in article_units(KbDoc(id="d", title="Доставка", body=BODY))]
    assert "Москва в пределах МКАД: Курьер, товары до 30 кг: 390 ₽, бесплатно при заказе от 5 000 ₽." in units
    assert any(u.startswith("Доставка: Город Казань") and "490 ₽" in u for u in units)
    assert "Доставка. Другие города" in units


def test_fixed_texts_fall_back_to_english_never_russian():
    assert pipeline.fixed_text(pipeline.OPENERS, "de") == "Guten Tag!"
    assert pipeline.fixed_text(pipeline.MORE, "fr") == "More"
    assert pipeline.fixed_text(pipeline.CLARIFY, "pt")[0].startswith("Which of these")


def test_a_reply_to_a_clarifying_question_picks_the_article():
    from otklik.assistant.embeddings import HashingEmbedder
    from otklik.assistant.retrieval import KbIndex

    docs = [KbDoc(id="a", title="Доставка по Москве", body="Курьер 390 ₽."),
            KbDoc(id="b", title="Доставка в регионы", body="Пункты выдачи от 199 ₽."),
            KbDoc(id="c", title="Возврат товара", body="14 дней.")]
    index = KbIndex(docs, HashingEmbedder(), e5=None)
    assert pipeline.chosen_option("2", ["a", "b"], index).id == "b"
    assert pipeline.chosen_option(" 1. ", ["a", "b"], index).id == "a"
    assert pipeline.chosen_option("доставка в регионы!", ["a", "b"], index).id == "b"
    assert pipeline.chosen_option("3", ["a", "b"], index) is None  # only the offered ones
    assert pipeline.chosen_option("2", [], index) is None
    assert pipeline.chosen_option("а сколько стоит?", ["a", "b"], index) is None
