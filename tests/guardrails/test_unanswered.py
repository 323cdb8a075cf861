"""The reply box's «does the reply answer the question?» hint (issue 14 §3): the customer asked, and the reply
shares no content word with the question, names no number and is more than a word or two. A hint only."""

from __future__ import annotations

import pytest

from otklik.guardrails.phrases import tone_hints, unanswered

CASES = [
    ("Когда привезут диван?", "Спасибо за обращение, мы всегда рады помочь", True),
    ("Когда привезут диван?", "Диван привезут завтра до обеда", False),  # «диван»
    ("Когда привезут диван?", "Привезём 12 мая с 10 до 14", False),  # a date is an answer
    ("Когда привезут диван?", "Доставку диванов планируем на среду", False),  # «диванов» ~ «диван»
    ("Сколько стоит доставка в Казань?", "Благодарим, что выбрали наш магазин!", True),
    ("Сколько стоит доставка в Казань?", "Доставка в Казань бесплатная", False),
    ("Спасибо, всё получил", "Рады были помочь, обращайтесь", False),  # no question
    ("Где мой заказ", "Пожалуйста, подождите немного, разберёмся", True),  # a question word, no «?»
    ("How much is delivery to Kazan?", "We are happy to help you with anything", True),
    ("How much is delivery to Kazan?", "Delivery to Kazan is free", False),
    ("Когда привезут диван?", "Уточню", False),  # too short to judge
    ("?", "Спасибо за обращение, мы всегда рады помочь", False),  # nothing asked in words
]


@pytest.mark.parametrize(("question", "reply", "expected"), CASES)
def test_unanswered(question, reply, expected):
    assert unanswered(question, reply) is expected


def test_it_is_a_hint_beside_the_others():
    hints = tone_hints("Спасибо за обращение, мы всегда рады помочь", upset=False, question="Когда привезут диван?")
    assert [h["code"] for h in hints] == ["tone_unanswered"] and "диван" in hints[0]["message"]
    assert tone_hints("Диван привезут завтра", upset=False, question="Когда привезут диван?") == []
