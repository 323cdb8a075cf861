"""Knowledge-base articles: supervisors write them, agents read them, changes are audited."""

from __future__ import annotations


def test_article_lifecycle_and_roles(client, ws):
    body = {"title": "Сроки доставки", "body": "Доставка по Москве — 1–2 дня.", "category": "delivery_info"}
    assert client.post("/api/v1/articles", json=body, headers=ws.agent).status_code == 403
    created = client.post("/api/v1/articles", json=body, headers=ws.admin)
    assert created.status_code == 201
    aid = created.json()["id"]
    assert client.get(f"/api/v1/articles/{aid}", headers=ws.agent).json()["title"] == "Сроки доставки"
    updated = client.patch(f"/api/v1/articles/{aid}", json={"published": False}, headers=ws.admin)
    assert updated.status_code == 200 and updated.json()["published"] is False
    assert client.patch(f"/api/v1/articles/{aid}", json={"title": None}, headers=ws.admin).status_code == 422
    assert client.delete(f"/api/v1/articles/{aid}", headers=ws.agent).status_code == 403
    assert client.delete(f"/api/v1/articles/{aid}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/articles/{aid}", headers=ws.agent).status_code == 404
    audit = client.get("/api/v1/audit", params={"entity_type": "article", "entity_id": aid}, headers=ws.admin).json()
    assert [a["action"] for a in audit] == ["deleted", "updated", "created"]
