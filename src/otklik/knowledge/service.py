"""Knowledge base: articles (Markdown, languages, categories, tags, drafts, translations), every version of every
article, FAQ entries, ranked search with Russian/English morphology, and what the public help center reads.

Supervisors and admins write; everyone in the workspace reads; every change is audited and every article edit
is kept as a version that can be restored. `search_articles()` is what the assistant retrieves with.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.knowledge import search
from otklik.knowledge.markdown import slugify
from otklik.knowledge.models import Article, ArticleVersion, FaqEntry
from otklik.knowledge.search import SearchHit
from otklik.platform.errors import Conflict, NotFound, field_error
from otklik.platform.text import search_terms

ARTICLE_FIELDS = {"title", "body", "language", "category", "tags", "published", "questions", "slug",
                  "translation_of_id"}
VERSIONED = ("title", "body", "language", "category", "tags", "questions", "published")
NOT_NULL = {"title", "body", "language", "tags", "published", "questions", "slug"}

__all__ = ["SearchHit", "search_articles"]


def _article_terms(article: Article) -> str:
    return search_terms(article.title, " ".join(article.questions or []), " ".join(article.tags or []),
                        article.body)


def _clean_list(values: list[str] | None) -> list[str]:
    out: list[str] = []
    for v in values or []:
        v = v.strip()
        if v and v not in out:
            out.append(v)
    return out


def _unique_slug(session: Session, workspace_id: int, wanted: str, *, exclude_id: int | None = None) -> str:
    slug, n = wanted, 2
    while True:
        stmt = select(Article.id).where(Article.workspace_id == workspace_id, Article.slug == slug)
        found = session.scalar(stmt)
        if found is None or found == exclude_id:
            return slug
        slug = f"{wanted[:110]}-{n}"
        n += 1


def _check_translation(session: Session, actor: Actor, article: Article | None, target_id: int | None) -> None:
    if target_id is None:
        return
    target = session.get(Article, target_id)
    if target is None or target.workspace_id != actor.workspace_id:
        raise field_error("translation_of_id", "no such article in this workspace")
    if article is not None and target.id == article.id:
        raise field_error("translation_of_id", "an article cannot be a translation of itself")
    if target.translation_of_id is not None:
        raise field_error("translation_of_id", "link translations to the original article, not to a translation")


def _snapshot(session: Session, actor: Actor, article: Article, note: str = "") -> ArticleVersion:
    version = ArticleVersion(workspace_id=article.workspace_id, article_id=article.id, number=article.version,
                             author_id=actor.user_id, note=note[:200],
                             **{k: getattr(article, k) for k in VERSIONED})
    session.add(version)
    return version


# -- articles ------------------------------------------------------------------------------------------

def create_article(session: Session, actor: Actor, *, title: str, body: str, language: str = "ru",
                   category: str | None = None, tags: list[str] | None = None, published: bool = True,
                   questions: list[str] | None = None, slug: str | None = None,
                   translation_of_id: int | None = None) -> Article:
    actor.require(Role.supervisor)
    title = title.strip()
    if not title:
        raise field_error("title", "must not be blank")
    _check_translation(session, actor, None, translation_of_id)
    if slug:
        if session.scalar(select(Article.id).where(Article.workspace_id == actor.workspace_id,
                                                   Article.slug == slug)) is not None:
            raise Conflict(f"an article with the id {slug!r} already exists", fields=[
                {"field": "slug", "message": "already used in this workspace"}])
    else:
        slug = _unique_slug(session, actor.workspace_id, slugify(title))
    article = Article(workspace_id=actor.workspace_id, slug=slug, title=title, body=body, language=language,
                      category=(category or "").strip() or None, tags=_clean_list(tags),
                      questions=_clean_list(questions), published=published, translation_of_id=translation_of_id,
                      version=1)
    article.search_terms = _article_terms(article)
    session.add(article)
    session.flush()
    _snapshot(session, actor, article, "created")
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="created",
                 after={"title": article.title})
    return article


def get_article(session: Session, actor: Actor, article_id: int) -> Article:
    article = session.get(Article, article_id)
    if article is None or article.workspace_id != actor.workspace_id:
        raise NotFound(f"article {article_id} not found")
    return article


def get_article_by_slug(session: Session, workspace_id: int, slug: str) -> Article | None:
    return session.scalar(select(Article).where(Article.workspace_id == workspace_id, Article.slug == slug))


def update_article(session: Session, actor: Actor, article_id: int, changes: dict[str, Any], *,
                   note: str = "") -> Article:
    """Apply `changes`; when anything versioned changed, the new state becomes the next version."""
    actor.require(Role.supervisor)
    article = get_article(session, actor, article_id)
    for key, value in changes.items():
        if key not in ARTICLE_FIELDS:
            raise field_error(key, "cannot be changed")
        if value is None and key in NOT_NULL:
            raise field_error(key, "must not be null")
    if "title" in changes and not str(changes["title"]).strip():
        raise field_error("title", "must not be blank")
    if "translation_of_id" in changes:
        _check_translation(session, actor, article, changes["translation_of_id"])
        if changes["translation_of_id"] is not None and session.scalar(
                select(func.count(Article.id)).where(Article.translation_of_id == article.id)):
            raise field_error("translation_of_id", "this article has translations of its own")
    if ("slug" in changes and changes["slug"] != article.slug
            and get_article_by_slug(session, actor.workspace_id, changes["slug"]) is not None):
        raise Conflict(f"an article with the id {changes['slug']!r} already exists",
                       fields=[{"field": "slug", "message": "already used in this workspace"}])
    normalised = dict(changes)
    for key in ("tags", "questions"):
        if key in normalised:
            normalised[key] = _clean_list(normalised[key])
    if "title" in normalised:
        normalised["title"] = normalised["title"].strip()
    if "category" in normalised:
        normalised["category"] = (normalised["category"] or "").strip() or None
    before = {k: getattr(article, k) for k in normalised}
    changed = {k for k, v in normalised.items() if before[k] != v}
    if not changed:
        return article
    for key in changed:
        setattr(article, key, normalised[key])
    article.search_terms = _article_terms(article)
    if changed & set(VERSIONED):
        article.version += 1
        _snapshot(session, actor, article, note)
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="updated",
                 before={k: before[k] for k in changed}, after={k: getattr(article, k) for k in changed})
    session.flush()
    return article


def delete_article(session: Session, actor: Actor, article_id: int) -> None:
    actor.require(Role.supervisor)
    article = get_article(session, actor, article_id)
    record_audit(session, actor, entity_type="article", entity_id=article.id, action="deleted",
                 before={"title": article.title})
    session.delete(article)
    session.flush()


def list_articles(session: Session, actor: Actor, *, language: str | None = None,
                  category: str | None = None, published: bool | None = None, q: str | None = None,
                  limit: int = 1000) -> list[Article]:
    """The workspace's articles, newest ids last; with `q`, those matching it, best first."""
    if q:
        ranked = search.rank(session, actor.workspace_id, q, language=language, limit=limit, include_faq=False,
                             prefix_last=True, published_only=False)
        by_id = {a.id: a for a in session.scalars(select(Article).where(
            Article.workspace_id == actor.workspace_id, Article.id.in_([r[1] for r in ranked])))}
        found = [by_id[r[1]] for r in ranked if r[1] in by_id]
        return [a for a in found if (category is None or a.category == category)
                and (published is None or a.published == published)]
    stmt = select(Article).where(Article.workspace_id == actor.workspace_id)
    if language:
        stmt = stmt.where(Article.language == language)
    if category:
        stmt = stmt.where(Article.category == category)
    if published is not None:
        stmt = stmt.where(Article.published.is_(published))
    return list(session.scalars(stmt.order_by(Article.id).limit(limit)))


def translations(session: Session, workspace_id: int, article: Article, *, published_only: bool = False
                 ) -> list[Article]:
    """The other language versions of `article`: its original and the original's translations."""
    root = article.translation_of_id or article.id
    stmt = select(Article).where(Article.workspace_id == workspace_id, Article.id != article.id,
                                 (Article.id == root) | (Article.translation_of_id == root))
    if published_only:
        stmt = stmt.where(Article.published.is_(True))
    return list(session.scalars(stmt.order_by(Article.language)))


# -- versions ------------------------------------------------------------------------------------------

def list_versions(session: Session, actor: Actor, article_id: int) -> list[ArticleVersion]:
    article = get_article(session, actor, article_id)
    return list(session.scalars(select(ArticleVersion).where(ArticleVersion.article_id == article.id)
                                .order_by(ArticleVersion.number.desc())))


def get_version(session: Session, actor: Actor, article_id: int, number: int) -> ArticleVersion:
    article = get_article(session, actor, article_id)
    version = session.scalar(select(ArticleVersion).where(ArticleVersion.article_id == article.id,
                                                          ArticleVersion.number == number))
    if version is None:
        raise NotFound(f"article {article_id} has no version {number}")
    return version


def restore_version(session: Session, actor: Actor, article_id: int, number: int) -> Article:
    """Make an old version current again (as a new version: history is never rewritten)."""
    version = get_version(session, actor, article_id, number)
    return update_article(session, actor, article_id, {k: getattr(version, k) for k in VERSIONED},
                          note=f"restored version {number}")


# -- FAQ -----------------------------------------------------------------------------------------------

def _faq_terms(entry: FaqEntry) -> str:
    return search_terms(entry.question, " ".join(entry.variants or []), entry.answer)


def _check_faq_article(session: Session, actor: Actor, article_id: int | None) -> None:
    if article_id is not None:
        target = session.get(Article, article_id)
        if target is None or target.workspace_id != actor.workspace_id:
            raise field_error("article_id", "no such article in this workspace")


def create_faq(session: Session, actor: Actor, *, question: str, answer: str, variants: list[str] | None = None,
               language: str = "ru", category: str | None = None, article_id: int | None = None,
               published: bool = True) -> FaqEntry:
    actor.require(Role.supervisor)
    if not question.strip():
        raise field_error("question", "must not be blank")
    _check_faq_article(session, actor, article_id)
    entry = FaqEntry(workspace_id=actor.workspace_id, question=question.strip(), answer=answer,
                     variants=_clean_list(variants), language=language, category=(category or "").strip() or None,
                     article_id=article_id, published=published)
    entry.search_terms = _faq_terms(entry)
    session.add(entry)
    session.flush()
    record_audit(session, actor, entity_type="faq", entity_id=entry.id, action="created",
                 after={"question": entry.question})
    return entry


def get_faq(session: Session, actor: Actor, faq_id: int) -> FaqEntry:
    entry = session.get(FaqEntry, faq_id)
    if entry is None or entry.workspace_id != actor.workspace_id:
        raise NotFound(f"FAQ entry {faq_id} not found")
    return entry


FAQ_FIELDS = {"question", "answer", "variants", "language", "category", "article_id", "published"}


def update_faq(session: Session, actor: Actor, faq_id: int, changes: dict[str, Any]) -> FaqEntry:
    actor.require(Role.supervisor)
    entry = get_faq(session, actor, faq_id)
    for key, value in changes.items():
        if key not in FAQ_FIELDS:
            raise field_error(key, "cannot be changed")
        if value is None and key in {"question", "answer", "variants", "language", "published"}:
            raise field_error(key, "must not be null")
    if "question" in changes and not changes["question"].strip():
        raise field_error("question", "must not be blank")
    if "article_id" in changes:
        _check_faq_article(session, actor, changes["article_id"])
    before = {k: getattr(entry, k) for k in changes}
    for key, value in changes.items():
        setattr(entry, key, _clean_list(value) if key == "variants" else value)
    entry.search_terms = _faq_terms(entry)
    record_audit(session, actor, entity_type="faq", entity_id=entry.id, action="updated", before=before,
                 after={k: getattr(entry, k) for k in changes})
    session.flush()
    return entry


def delete_faq(session: Session, actor: Actor, faq_id: int) -> None:
    actor.require(Role.supervisor)
    entry = get_faq(session, actor, faq_id)
    record_audit(session, actor, entity_type="faq", entity_id=entry.id, action="deleted",
                 before={"question": entry.question})
    session.delete(entry)
    session.flush()


def list_faq(session: Session, actor: Actor, *, language: str | None = None) -> list[FaqEntry]:
    stmt = select(FaqEntry).where(FaqEntry.workspace_id == actor.workspace_id)
    if language:
        stmt = stmt.where(FaqEntry.language == language)
    return list(session.scalars(stmt.order_by(FaqEntry.id)))


# -- search (the assistant and the help center) -------------------------------------------------------

def search_articles(session: Session, workspace_id: int, query: str, language: str | None = None,
                    limit: int = 10, *, include_faq: bool = True, prefix_last: bool = False) -> list[SearchHit]:
    """Published articles (and FAQ entries) of the workspace best matching `query`, best first.

    Morphology: inflections of a word meet («заказа» finds «заказ»); different words of one root do not
    («возврат» / «вернуть»), which is what an article's question variants and tags are for (see
    tests/knowledge/test_search.py). `score` is BM25F (title and question variants weigh most); `coverage` is
    the share of the query's informative words (by idf) that the document contains.
    """
    ranked = search.rank(session, workspace_id, query, language=language, limit=limit, include_faq=include_faq,
                         prefix_last=prefix_last)
    article_ids = [r[1] for r in ranked if r[0] == "article"]
    faq_ids = [r[1] for r in ranked if r[0] == "faq"]
    articles = {a.id: a for a in session.scalars(select(Article).where(
        Article.workspace_id == workspace_id, Article.id.in_(article_ids)))} if article_ids else {}
    faqs = {f.id: f for f in session.scalars(select(FaqEntry).where(
        FaqEntry.workspace_id == workspace_id, FaqEntry.id.in_(faq_ids)))} if faq_ids else {}
    slugs: dict[int, str] = {}
    linked = [f.article_id for f in faqs.values() if f.article_id]
    if linked:
        slugs = dict(session.execute(select(Article.id, Article.slug).where(Article.id.in_(linked))).tuples().all())
    hits: list[SearchHit] = []
    for kind, ident, score, coverage, matched in ranked:
        if kind == "article" and ident in articles:
            a = articles[ident]
            hits.append(SearchHit("article", a.id, a.id, a.slug, a.title, a.body, a.language, a.category, score,
                                  coverage, matched))
        elif kind == "faq" and ident in faqs:
            f = faqs[ident]
            hits.append(SearchHit("faq", f.id, f.article_id, slugs.get(f.article_id or 0), f.question, f.answer,
                                  f.language, f.category, score, coverage, matched))
    return hits


# -- the public help center (no actor: only published articles of one workspace) -------------------------

def public_articles(session: Session, workspace_id: int, *, language: str | None = None) -> list[Article]:
    stmt = select(Article).where(Article.workspace_id == workspace_id, Article.published.is_(True))
    if language:
        stmt = stmt.where(Article.language == language)
    return list(session.scalars(stmt.order_by(Article.category, Article.title)))


def public_article(session: Session, workspace_id: int, slug: str) -> Article:
    article = get_article_by_slug(session, workspace_id, slug)
    if article is None or not article.published:
        raise NotFound("no such article")
    return article


def public_languages(session: Session, workspace_id: int) -> list[str]:
    return list(session.scalars(select(Article.language).where(
        Article.workspace_id == workspace_id, Article.published.is_(True)).distinct().order_by(Article.language)))


def categories(session: Session, workspace_id: int, *, language: str | None = None,
               published_only: bool = True) -> list[tuple[str, int]]:
    """(category, number of articles), alphabetically; articles without a category are left out."""
    stmt = select(Article.category, func.count(Article.id)).where(Article.workspace_id == workspace_id,
                                                                 Article.category.is_not(None))
    if language:
        stmt = stmt.where(Article.language == language)
    if published_only:
        stmt = stmt.where(Article.published.is_(True))
    return [(c or "", n) for c, n in session.execute(stmt.group_by(Article.category).order_by(Article.category))]
