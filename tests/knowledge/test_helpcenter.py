"""The public help center: published articles only, one workspace at a time, escaped, cacheable, ru/en."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from tests.knowledge.helpers import assert_inert, elements


@pytest.fixture
def public(app):
    return TestClient(app)  # no token, no cookie: a customer's browser


@pytest.fixture
def site(client, ws):
    def add(**body):
        r = client.post("/api/v1/articles", json=body, headers=ws.admin)
        assert r.status_code == 201, r.text
        return r.json()

    ru = add(title="Сроки и стоимость доставки", body="Курьер по Москве — **390 ₽**.\n\n| Зона | Цена |\n|---|---|\n"
             "| МКАД | 390 ₽ |", category="Доставка", slug="delivery")
    add(title="Пункты выдачи", body="Хранение 7 дней.", category="Доставка", slug="pickup")
    add(title="Возврат товара", body="7 дней на возврат.", category="Возврат и обмен", slug="returns")
    add(title="Delivery", body="Courier in Moscow: 390 RUB.", category="Delivery", language="en",
        slug="en-delivery", translation_of_id=ru["id"])
    add(title="Черновик акции", body="Скидка 90% — секрет.", category="Акции", slug="secret-draft", published=False)
    return ws


def test_home_lists_published_articles_by_category(public, site):
    r = public.get(f"/help/{site.slug}/", headers={"accept-language": "ru"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Справочный центр" in r.text and "Сроки и стоимость доставки" in r.text and "Возврат и обмен" in r.text
    assert "Черновик" not in r.text and "секрет" not in r.text and "Акции" not in r.text
    assert r.headers["cache-control"].startswith("public, max-age=60")
    assert "script-src 'none'" in r.headers["content-security-policy"]
    etag = r.headers["etag"]
    again = public.get(f"/help/{site.slug}/", headers={"accept-language": "ru", "if-none-match": etag})
    assert again.status_code == 304 and again.content == b""
    assert public.get(f"/help/{site.slug}", follow_redirects=False).status_code == 308


def test_article_page_renders_markdown_and_links_translations(public, site):
    r = public.get(f"/help/{site.slug}/a/delivery")
    assert r.status_code == 200
    assert "<strong>390 ₽</strong>" in r.text and "<td>МКАД</td>" in r.text
    assert f'href="/help/{site.slug}/a/en-delivery"' in r.text and f'href="/help/{site.slug}/a/pickup"' in r.text
    en = public.get(f"/help/{site.slug}/a/en-delivery")
    assert '<html lang="en">' in en.text and "Help center" in en.text
    assert public.get(f"/help/{site.slug}/a/secret-draft").status_code == 404
    assert public.get(f"/help/{site.slug}/a/no-such").status_code == 404


def test_language_switch_and_search(public, site):
    en = public.get(f"/help/{site.slug}/", params={"lang": "en"})
    assert "Help center" in en.text and ">Delivery<" in en.text and "Возврат" not in en.text
    assert 'hreflang="ru"' in en.text and 'hreflang="en"' in en.text
    browser_en = public.get(f"/help/{site.slug}/", headers={"accept-language": "en-US,en;q=0.9"})
    assert "Help center" in browser_en.text
    assert "Справочный центр" in public.get(f"/help/{site.slug}/", params={"lang": "xx"}).text
    found = public.get(f"/help/{site.slug}/search", params={"q": "сколько стоит доставка", "lang": "ru"})
    assert found.status_code == 200
    links = re.findall(r'<li><a href="/help/[^/]+/a/([^"]+)"', found.text)
    assert links[0] == "delivery" and "secret-draft" not in links
    assert "Скидка 90%" not in public.get(f"/help/{site.slug}/search", params={"q": "скидка секрет"}).text
    nothing = public.get(f"/help/{site.slug}/search", params={"q": "абракадабра"})
    assert 'id="hc-nothing"' in nothing.text
    assert public.get(f"/help/{site.slug}/search", params={"q": "x" * 301}).status_code == 422
    assert public.get(f"/help/{site.slug}/", params={"category": "Доставка"}).text.count("/a/") == 2


def test_workspace_isolation_and_unknown_workspaces(public, client, site, other_ws):
    client.post("/api/v1/articles", json={"title": "Чужая статья", "body": "Только для B.", "slug": "foreign"},
                headers=other_ws.admin)
    assert public.get(f"/help/{site.slug}/a/foreign").status_code == 404
    assert "Чужая статья" not in public.get(f"/help/{site.slug}/").text
    assert "Чужая статья" in public.get(f"/help/{other_ws.slug}/").text
    assert "Чужая" not in public.get(f"/help/{site.slug}/search", params={"q": "чужая статья"}).text
    assert public.get("/help/no-such-workspace/").status_code == 404
    assert public.get("/help/" + "x" * 300 + "/").status_code == 404
    assert "/help/" not in str(public.get("/api/v1/openapi.json").json()["paths"])


def test_hostile_text_is_escaped_everywhere(public, client, ws):
    evil = '<script>alert("t")</script><img src=x onerror=alert(1)>'
    body = f"{evil}\n\n[x](javascript:alert(1)) <a href='javascript:alert(2)'>y</a>"
    client.post("/api/v1/articles", json={"title": evil, "body": body, "category": evil, "slug": "evil",
                                          "tags": [evil]}, headers=ws.admin)
    pages = [public.get(f"/help/{ws.slug}/").text, public.get(f"/help/{ws.slug}/a/evil").text,
             public.get(f"/help/{ws.slug}/search", params={"q": "alert script"}).text,
             public.get(f"/help/{ws.slug}/search", params={"q": evil}).text]
    for page in pages:
        assert_inert(page)
        assert "img" not in {tag for tag, _ in elements(page)}
    assert "&lt;script&gt;alert" in pages[1]


def test_missing_pages_are_html_for_customers(public, site):
    for url in ("/help/no-such-shop/", f"/help/{site.slug}/a/secret-draft", f"/help/{site.slug}/a/<script>"):
        r = public.get(url)
        assert r.status_code == 404 and r.headers["content-type"].startswith("text/html"), url
        assert_inert(r.text)
    assert "Такой страницы нет" in public.get("/help/no-such-shop/").text
