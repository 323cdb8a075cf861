"""Search with Russian and English morphology (Snowball stems + FTS5 / tsvector), ranked by BM25F.

What the stems do: inflections of one word meet («заказа», «заказов» -> «заказ»; «доставки», «доставку» ->
«доставк»; «orders» -> «order»). What they do not: different words of one root stay apart («возврат» and
«вернуть» have the stems «возврат» and «вернут»), as do some verb forms («вернуть» «вернут» vs «верните»
«верн»), and slang («стиралка» is not «стиральная»). An article's question variants and tags are how such
words reach it.
"""

from __future__ import annotations

import pytest

from otklik.knowledge import service
from otklik.platform.db import session_scope
from otklik.platform.text import stem


@pytest.fixture
def kb(client, ws):
    def add(title, body, **extra):
        r = client.post("/api/v1/articles", json={"title": title, "body": body, **extra}, headers=ws.admin)
        assert r.status_code == 201, r.text
        return r.json()

    return {
        "track": add("Как отследить заказ", "Статус заказа виден в личном кабинете. Трек-номер приходит в СМС.",
                     slug="track"),
        "returns": add("Возврат товара", "Товар надлежащего качества можно сдать обратно за 7 дней.", slug="returns",
                       questions=["Как вернуть товар?", "хочу вернуть пылесос"], tags=["возврат"]),
        "delivery": add("Сроки и стоимость доставки", "Доставка курьером по Москве стоит 390 ₽.", slug="delivery",
                        questions=["Сколько стоит доставка?"]),
        "washer": add("Стиральная машина не сливает воду", "Промойте фильтр насоса.", slug="washer",
                      tags=["стиралка"]),
        "en": add("Delivery times and prices", "Couriers deliver orders across Moscow for 390 RUB.", language="en",
                  slug="en-delivery"),
        "draft": add("Секретный черновик о доставке", "Доставка дронами. Не публиковать.", published=False,
                     slug="draft"),
    }


def search(ws, query, **kw):
    with session_scope(write=False) as session:
        return [h.slug for h in service.search_articles(session, ws.id, query, **kw)]


def test_what_the_stems_join_and_what_they_do_not():
    assert stem("заказа") == stem("заказов") == stem("заказ") == "заказ"
    assert stem("доставки") == stem("доставку") == stem("доставка")
    assert stem("orders") == stem("order")
    assert stem("возврат") != stem("вернуть")  # different words of one root: joined by question variants
    assert stem("вернуть") != stem("верните")
    assert stem("стиралка") != stem("стиральная")  # slang: joined by tags


def test_inflected_words_find_the_article(ws, kb):
    assert search(ws, "где статус моего заказа")[0] == "track"
    assert search(ws, "заказов")[0] == "track"
    assert search(ws, "доставку сколько стоит")[0] == "delivery"
    assert search(ws, "how much do orders delivery cost", language="en") == ["en-delivery"]


def test_question_variants_and_tags_carry_other_words(ws, kb):
    assert search(ws, "хочу вернуть утюг")[0] == "returns"  # «вернуть» only in the variants
    assert search(ws, "возврат")[0] == "returns"
    assert search(ws, "стиралка не сливает")[0] == "washer"  # slang only in the tags


def test_drafts_languages_and_ranking(ws, kb):
    found = search(ws, "доставка")
    assert "draft" not in found and found[0] == "delivery"
    assert search(ws, "дронами") == []  # only in a draft
    assert search(ws, "доставка", language="ru") == ["delivery"]
    with session_scope(write=False) as session:
        hits = service.search_articles(session, ws.id, "стоимость доставки заказа по Москве")
    assert [h.slug for h in hits] == ["delivery", "track"] and hits[0].score > hits[1].score
    assert hits[0].coverage > hits[1].coverage
    assert 0 < hits[0].coverage <= 1 and hits[0].kind == "article" and hits[0].article_id == kb["delivery"]["id"]
    assert search(ws, "и в на как что") == []  # nothing but stop words


def test_search_follows_edits_and_deletes(client, ws, kb):
    assert search(ws, "пылесос")[0] == "returns"
    client.patch(f"/api/v1/articles/{kb['washer']['id']}", json={"body": "Робот-пылесос не видит базу."},
                 headers=ws.admin)
    assert search(ws, "пылесос робот")[0] == "washer"
    client.patch(f"/api/v1/articles/{kb['draft']['id']}", json={"published": True}, headers=ws.admin)
    assert search(ws, "дронами") == ["draft"]
    client.delete(f"/api/v1/articles/{kb['draft']['id']}", headers=ws.admin)
    assert search(ws, "дронами") == []


def test_search_is_scoped_to_the_workspace(client, ws, other_ws, kb):
    client.post("/api/v1/articles", json={"title": "Чужая доставка", "body": "Доставка чужого магазина"},
                headers=other_ws.admin)
    assert search(other_ws, "доставка") == ["chuzhaya-dostavka"]
    assert "chuzhaya-dostavka" not in search(ws, "доставка чужого магазина")
    r = client.get("/api/v1/knowledge/search", params={"q": "чужого магазина"}, headers=ws.agent)
    assert r.status_code == 200 and r.json() == []


def test_admin_list_search_includes_drafts_and_prefixes(client, ws, kb):
    found = client.get("/api/v1/articles", params={"q": "дрон"}, headers=ws.agent).json()
    assert [a["slug"] for a in found] == ["draft"]  # the last word is a prefix while typing
    found = client.get("/api/v1/articles", params={"q": "доставка", "published": "false"}, headers=ws.agent).json()
    assert [a["slug"] for a in found] == ["draft"]
