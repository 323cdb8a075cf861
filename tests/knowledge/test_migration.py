"""Migration 0006 on a database that already has articles: slugs, search terms and a first version for each."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from otklik.migrations import upgrade


def test_existing_articles_are_carried_over(tmp_path):
    url = f"sqlite:///{tmp_path}/old.db"
    upgrade(url, revision="0005c")
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO workspaces (slug, name, language, timezone, conversation_seq, created_at) "
                          "VALUES ('old', 'Old', 'ru', 'Europe/Moscow', 0, '2026-01-01 00:00:00')"))
        conn.execute(text("INSERT INTO articles (workspace_id, title, body, language, category, tags, published, "
                          "created_at, updated_at) VALUES (1, 'Сроки доставки', 'Доставка заказов за 1–2 дня.', 'ru', "
                          "NULL, '[\"доставка\"]', 1, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    upgrade(url)
    with engine.begin() as conn:
        row = conn.execute(text("SELECT id, slug, version, search_terms FROM articles")).one()
        assert row.slug == f"article-{row.id}" and row.version == 1 and "заказ" in row.search_terms.split()
        found = conn.execute(text("SELECT rowid FROM articles_fts WHERE articles_fts MATCH '\"заказ\"'")).scalars()
        assert list(found) == [row.id]
        version = conn.execute(text("SELECT number, title FROM article_versions WHERE article_id = :id"),
                               {"id": row.id}).one()
        assert tuple(version) == (1, "Сроки доставки")
    engine.dispose()
