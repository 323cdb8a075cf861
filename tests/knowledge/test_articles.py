"""Articles: supervisors write them, agents read them; every edit is a version; translations; FAQ entries."""

from __future__ import annotations

from tests.knowledge.helpers import elements


def test_article_lifecycle_and_roles(client, ws):
    body = {"title": "Сроки доставки", "body": "Доставка по Москве — 1–2 дня.", "category": "delivery_info"}
    assert client.post("/api/v1/articles", json=body, headers=ws.agent).status_code == 403
    created = client.post("/api/v1/articles", json=body, headers=ws.admin)
    assert created.status_code == 201
    aid = created.json()["id"]
    assert created.json()["slug"] == "sroki-dostavki" and created.json()["version"] == 1
    assert client.get(f"/api/v1/articles/{aid}", headers=ws.agent).json()["title"] == "Сроки доставки"
    updated = client.patch(f"/api/v1/articles/{aid}", json={"published": False}, headers=ws.admin)
    assert updated.status_code == 200 and updated.json()["published"] is False
    assert client.patch(f"/api/v1/articles/{aid}", json={"title": None}, headers=ws.admin).status_code == 422
    assert client.delete(f"/api/v1/articles/{aid}", headers=ws.agent).status_code == 403
    assert client.delete(f"/api/v1/articles/{aid}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/articles/{aid}", headers=ws.agent).status_code == 404
    audit = client.get("/api/v1/audit", params={"entity_type": "article", "entity_id": aid}, headers=ws.admin).json()
    assert [a["action"] for a in audit] == ["deleted", "updated", "created"]


def test_markdown_body_is_rendered_and_hostile_markup_sanitised(client, ws):
    hostile = ("# Заголовок\n\n**Жирный** и [ссылка](https://example.com).\n\n"
               "<script>alert(1)</script>\n\n[клик](javascript:alert(1)) <img src=x onerror=alert(1)>\n\n"
               "<a href=\"javascript:alert(2)\">a</a> [data](data:text/html;base64,PHNjcmlwdD4=)\n\n"
               "| Услуга | Цена |\n|---|---|\n| Подъём | 500 ₽ |")
    aid = client.post("/api/v1/articles", json={"title": "XSS", "body": hostile}, headers=ws.admin).json()["id"]
    html = client.get(f"/api/v1/articles/{aid}", headers=ws.agent).json()["body_html"]
    assert "<h1>Заголовок</h1>" in html and "<strong>Жирный</strong>" in html
    assert 'href="https://example.com"' in html and "<table>" in html and "<td>500 ₽</td>" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html  # raw HTML is shown as text, never markup
    tags = elements(html)
    assert {t for t, _ in tags} <= {"h1", "p", "strong", "a", "table", "thead", "tbody", "tr", "th", "td"}
    assert [a["href"] for t, a in tags if t == "a"] == ["https://example.com"]  # no javascript:/data: link
    assert not any(k.startswith("on") for _, a in tags for k in a)


def test_every_edit_is_a_version_and_restore_makes_a_new_one(client, ws):
    aid = client.post("/api/v1/articles", json={"title": "Оплата", "body": "Картой."}, headers=ws.admin).json()["id"]
    client.patch(f"/api/v1/articles/{aid}", json={"body": "Картой или по СБП."}, headers=ws.admin)
    same = client.patch(f"/api/v1/articles/{aid}", json={"body": "Картой или по СБП."}, headers=ws.admin)
    assert same.json()["version"] == 2  # nothing changed: no new version
    client.patch(f"/api/v1/articles/{aid}", json={"title": "Способы оплаты", "tags": ["оплата", " оплата ", "СБП"]},
                 headers=ws.admin)
    versions = client.get(f"/api/v1/articles/{aid}/versions", headers=ws.agent).json()
    assert [v["number"] for v in versions] == [3, 2, 1]
    assert versions[0]["tags"] == ["оплата", "СБП"] and versions[2]["body"] == "Картой."
    assert client.get(f"/api/v1/articles/{aid}/versions/1", headers=ws.agent).json()["title"] == "Оплата"
    assert client.get(f"/api/v1/articles/{aid}/versions/9", headers=ws.agent).status_code == 404
    assert client.post(f"/api/v1/articles/{aid}/versions/1/restore", headers=ws.agent).status_code == 403
    restored = client.post(f"/api/v1/articles/{aid}/versions/1/restore", headers=ws.admin).json()
    assert restored["version"] == 4 and restored["title"] == "Оплата" and restored["body"] == "Картой."
    versions = client.get(f"/api/v1/articles/{aid}/versions", headers=ws.agent).json()
    assert versions[0]["note"] == "restored version 1" and len(versions) == 4


def test_translations_are_linked_both_ways(client, ws):
    ru = client.post("/api/v1/articles", json={"title": "Возврат", "body": "7 дней.", "slug": "returns"},
                     headers=ws.admin).json()
    en = client.post("/api/v1/articles", json={"title": "Returns", "body": "7 days.", "language": "en",
                                               "slug": "en-returns", "translation_of_id": ru["id"]},
                     headers=ws.admin).json()
    assert en["translation_of_id"] == ru["id"]
    assert [a["slug"] for a in client.get(f"/api/v1/articles/{ru['id']}/translations", headers=ws.agent).json()] == [
        "en-returns"]
    assert [a["slug"] for a in client.get(f"/api/v1/articles/{en['id']}/translations", headers=ws.agent).json()] == [
        "returns"]
    # a translation of a translation, of itself, or of nothing: refused precisely
    for target in (en["id"], 10**9):
        r = client.post("/api/v1/articles", json={"title": "X", "body": "x", "translation_of_id": target},
                        headers=ws.admin)
        assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "translation_of_id"
    r = client.patch(f"/api/v1/articles/{ru['id']}", json={"translation_of_id": ru["id"]}, headers=ws.admin)
    assert r.status_code == 422
    # slugs are unique in a workspace
    r = client.post("/api/v1/articles", json={"title": "Y", "body": "y", "slug": "returns"}, headers=ws.admin)
    assert r.status_code == 409
    assert client.post("/api/v1/articles", json={"title": "Y", "body": "y", "slug": "Bad Slug"},
                       headers=ws.admin).status_code == 422


def test_faq_entries(client, ws, other_ws):
    aid = client.post("/api/v1/articles", json={"title": "Доставка", "body": "Курьером."}, headers=ws.admin).json()["id"]
    body = {"question": "Сколько хранится заказ в пункте выдачи?", "answer": "7 дней, можно продлить на 3.",
            "variants": ["срок хранения в пвз", "срок хранения в пвз "], "article_id": aid}
    assert client.post("/api/v1/faq", json=body, headers=ws.agent).status_code == 403
    entry = client.post("/api/v1/faq", json=body, headers=ws.admin)
    assert entry.status_code == 201 and entry.json()["variants"] == ["срок хранения в пвз"]
    fid = entry.json()["id"]
    assert client.patch(f"/api/v1/faq/{fid}", json={"answer": "7 дней."}, headers=ws.admin).json()["answer"] == "7 дней."
    assert [f["id"] for f in client.get("/api/v1/faq", headers=ws.agent).json()] == [fid]
    assert client.get(f"/api/v1/faq/{fid}", headers=other_ws.admin).status_code == 404
    foreign = client.post("/api/v1/articles", json={"title": "B", "body": "b"}, headers=other_ws.admin).json()["id"]
    r = client.post("/api/v1/faq", json={**body, "article_id": foreign}, headers=ws.admin)
    assert r.status_code == 422
    hits = client.get("/api/v1/knowledge/search", params={"q": "сколько дней хранят в пвз"}, headers=ws.agent).json()
    assert hits[0]["kind"] == "faq" and hits[0]["id"] == fid and hits[0]["article_id"] == aid
    assert client.delete(f"/api/v1/faq/{fid}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/faq/{fid}", headers=ws.admin).status_code == 404


def test_foreign_articles_versions_and_faq_are_404(client, ws, other_ws):
    aid = client.post("/api/v1/articles", json={"title": "B", "body": "b"}, headers=other_ws.admin).json()["id"]
    for method, url in [("GET", f"/api/v1/articles/{aid}"), ("GET", f"/api/v1/articles/{aid}/versions"),
                        ("GET", f"/api/v1/articles/{aid}/versions/1"),
                        ("POST", f"/api/v1/articles/{aid}/versions/1/restore"),
                        ("GET", f"/api/v1/articles/{aid}/translations")]:
        assert client.request(method, url, headers=ws.admin).status_code == 404, url


def test_malformed_input_is_a_precise_4xx(client, ws):
    cases = [
        {"title": "", "body": "x"}, {"title": "x", "body": ""}, {"title": "x", "body": "x", "language": "rus"},
        {"title": "x", "body": "x", "tags": ["a"] * 21}, {"title": "x", "body": "x", "unknown": 1},
        {"title": "x" * 301, "body": "x"}, {"title": "x", "body": "x", "questions": [""]},
        {"title": "x", "body": "x", "translation_of_id": 0},
    ]
    for body in cases:
        r = client.post("/api/v1/articles", json=body, headers=ws.admin)
        assert r.status_code == 422, (body, r.text)
    r = client.post("/api/v1/articles", content=b"{not json", headers={**ws.admin, "content-type": "application/json"})
    assert r.status_code == 400
    assert client.get("/api/v1/knowledge/search", params={"q": ""}, headers=ws.admin).status_code == 422
    assert client.get("/api/v1/knowledge/search", params={"q": "a" * 1001}, headers=ws.admin).status_code == 422
    assert client.get("/api/v1/knowledge/search", params={"q": "??? !!!"}, headers=ws.admin).json() == []
    assert client.get(f"/api/v1/articles/{2**70}", headers=ws.admin).status_code in (404, 422)
