"""knowledge base: article versions, translations, FAQ entries, categories

Revision ID: 0006
Revises: 0005c
Create Date: 2026-11-24 03:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005c"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
SEARCHABLE = ("articles", "faq_entries")


def upgrade() -> None:
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slug", sa.String(length=120), nullable=True))
        batch_op.add_column(sa.Column("questions", JSON, nullable=False, server_default=sa.text("'[]'")))
        batch_op.add_column(sa.Column("translation_of_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), nullable=False, server_default="1"))
        batch_op.add_column(sa.Column("search_terms", sa.Text(), nullable=False, server_default=""))
    op.execute("UPDATE articles SET slug = 'article-' || CAST(id AS VARCHAR(20))")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.alter_column("slug", existing_type=sa.String(length=120), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_articles_workspace_id_slug"), ["workspace_id", "slug"])
        batch_op.create_foreign_key(batch_op.f("fk_articles_translation_of_id_articles"), "articles",
                                    ["translation_of_id"], ["id"], ondelete="SET NULL")
        batch_op.create_index(batch_op.f("ix_articles_translation_of_id"), ["translation_of_id"], unique=False)

    op.create_table(
        "article_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("article_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("tags", JSON, nullable=False),
        sa.Column("questions", JSON, nullable=False),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_article_versions_article_id_articles"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["users.id"], name=op.f("fk_article_versions_author_id_users"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_article_versions_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_article_versions")),
        sa.UniqueConstraint("article_id", "number", name=op.f("uq_article_versions_article_id_number")),
    )
    with op.batch_alter_table("article_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_article_versions_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "faq_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("question", sa.String(length=300), nullable=False),
        sa.Column("variants", JSON, nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=True),
        sa.Column("article_id", sa.Integer(), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("search_terms", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["article_id"], ["articles.id"], name=op.f("fk_faq_entries_article_id_articles"),
                                ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["workspace_id"], ["workspaces.id"],
                                name=op.f("fk_faq_entries_workspace_id_workspaces"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_faq_entries")),
    )
    with op.batch_alter_table("faq_entries", schema=None) as batch_op:
        batch_op.create_index("ix_faq_entries_ws", ["workspace_id", "language", "id"], unique=False)

    _backfill()  # before the index exists: an external-content FTS5 table must never see a row it lacks
    _create_search(op.get_bind().dialect.name)


def _backfill() -> None:
    """Articles written before this revision: their search terms and their first version."""
    from otklik.platform.text import search_terms

    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, workspace_id, title, body, language, category, tags, published, "
                                "created_at FROM articles")).all()
    for row in rows:
        tags = row.tags if isinstance(row.tags, list) else []
        bind.execute(sa.text("UPDATE articles SET search_terms = :t WHERE id = :id"),
                     {"t": search_terms(row.title, " ".join(tags), row.body), "id": row.id})
        bind.execute(sa.text(
            "INSERT INTO article_versions (workspace_id, article_id, number, title, body, language, category, tags, "
            "questions, published, note, created_at) VALUES (:ws, :id, 1, :title, :body, :language, :category, "
            ":tags, :questions, :published, '', :created_at)"
        ).bindparams(sa.bindparam("tags", type_=JSON), sa.bindparam("questions", type_=JSON)),
            {"ws": row.workspace_id, "id": row.id, "title": row.title, "body": row.body, "language": row.language,
             "category": row.category, "tags": tags, "questions": [], "published": row.published,
             "created_at": row.created_at})


def _create_search(dialect: str) -> None:
    for table in SEARCHABLE:
        if dialect == "sqlite":
            op.execute(f"CREATE VIRTUAL TABLE {table}_fts USING fts5(search_terms, content='{table}', "
                       f"content_rowid='id', tokenize='unicode61 remove_diacritics 0')")
            op.execute(f"INSERT INTO {table}_fts({table}_fts) VALUES ('rebuild')")  # rows already there
            op.execute(f"CREATE TRIGGER {table}_fts_ai AFTER INSERT ON {table} BEGIN "
                       f"INSERT INTO {table}_fts(rowid, search_terms) VALUES (new.id, new.search_terms); END")
            op.execute(f"CREATE TRIGGER {table}_fts_ad AFTER DELETE ON {table} BEGIN "
                       f"INSERT INTO {table}_fts({table}_fts, rowid, search_terms) "
                       f"VALUES ('delete', old.id, old.search_terms); END")
            op.execute(f"CREATE TRIGGER {table}_fts_au AFTER UPDATE OF search_terms ON {table} BEGIN "
                       f"INSERT INTO {table}_fts({table}_fts, rowid, search_terms) "
                       f"VALUES ('delete', old.id, old.search_terms); "
                       f"INSERT INTO {table}_fts(rowid, search_terms) VALUES (new.id, new.search_terms); END")
        else:
            op.execute(f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
                       f"GENERATED ALWAYS AS (to_tsvector('simple', search_terms)) STORED")
            op.execute(f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_vector)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for table in SEARCHABLE:
        if dialect == "sqlite":
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER IF EXISTS {table}_fts_{suffix}")
            op.execute(f"DROP TABLE IF EXISTS {table}_fts")
        else:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_search")
            op.execute(f"ALTER TABLE {table} DROP COLUMN IF EXISTS search_vector")
    op.drop_table("faq_entries")
    op.drop_table("article_versions")
    with op.batch_alter_table("articles", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_articles_translation_of_id"))
        batch_op.drop_constraint(batch_op.f("fk_articles_translation_of_id_articles"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("uq_articles_workspace_id_slug"), type_="unique")
        batch_op.drop_column("search_terms")
        batch_op.drop_column("version")
        batch_op.drop_column("translation_of_id")
        batch_op.drop_column("questions")
        batch_op.drop_column("slug")
