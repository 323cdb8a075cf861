"""Knowledge-base articles: create, update, list. (Search, versions and the help center come with the
assistant issue.)"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.knowledge.models import Article
from otklik.platform.errors import NotFound


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


def list_articles(session: Session, actor: Actor, *, language: str | None = None) -> list[Article]:
    stmt = select(Article).where(Article.workspace_id == actor.workspace_id)
    if language:
        stmt = stmt.where(Article.language == language)
    return list(session.scalars(stmt.order_by(Article.id)))
