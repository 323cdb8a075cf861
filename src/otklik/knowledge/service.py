"""Knowledge-base articles: create, update, list. (Search, versions and the help center come with the
assistant issue.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.knowledge.models import Article
from otklik.platform.errors import NotFound, field_error


def create_article(session: Session, actor: Actor, *, title: str, body: str, language: str = "ru",
                   category: str | None = None, tags: list[str] | None = None, published: bool = True) -> Article:
    actor.require(Role.supervisor)
    article = Article(workspace_id=actor.workspace_id, title=title.strip(), body=body, language=language,
                      category=category, tags=tags or [], published=published)
    session.add(article)
    session.flush()
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="created",
                 after={"title": article.title})
    return article


def get_article(session: Session, actor: Actor, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None or article.workspace_id != actor.workspace_id:
        raise NotFound(f"article {article_id} not found")
    return article


ARTICLE_FIELDS = {"title", "body", "language", "category", "tags", "published"}


def update_article(session: Session, actor: Actor, article_id: int, changes: dict[str, object]) -> Article:
    actor.require(Role.supervisor)
    article = get_article(session, actor, article_id)
    before = {k: getattr(article, k) for k in changes if k in ARTICLE_FIELDS}
    for key, value in changes.items():
        if key not in ARTICLE_FIELDS:
            raise field_error(key, "cannot be changed")
        if value is None and key in {"title", "body", "language", "tags", "published"}:
            raise field_error(key, "must not be null")
        setattr(article, key, value)
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="updated", before=before,
                 after={k: getattr(article, k) for k in before})
    return article


def delete_article(session: Session, actor: Actor, article_id: int) -> None:
    actor.require(Role.supervisor)
    article = get_article(session, actor, article_id)
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="deleted",
                 before={"title": article.title})
    session.delete(article)


def list_articles(session: Session, actor: Actor, *, language: str | None = None) -> list[Article]:
    stmt = select(Article).where(Article.workspace_id == actor.workspace_id)
    if language:
        stmt = stmt.where(Article.language == language)
    return list(session.scalars(stmt.order_by(Article.id)))
