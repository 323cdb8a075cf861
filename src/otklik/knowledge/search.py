"""Ranked retrieval over a workspace's published articles and FAQ entries, with Russian/English morphology.

Documents and queries go through the same Snowball stems as the rest of Otklik (`platform.text`). The
full-text index (FTS5 on SQLite, a `tsvector` with GIN on PostgreSQL, created by migration 0006) picks the
candidates that share at least one stem with the query; they are ranked by BM25F — title and question
variants weigh more than the body — from per-workspace statistics kept in memory and rebuilt whenever the
workspace's knowledge base changes (any insert, edit or delete changes the fingerprint). Scores are the same
on both databases, so the assistant's thresholds do not depend on the backend.
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, literal_column, select, text
from sqlalchemy.orm import Session

from otklik.knowledge.models import Article, FaqEntry
from otklik.platform.text import stem, tokens

# Words that carry no topic in a support question (compared after stemming).
_STOP = {stem(w) for w in (  # noqa: SIM905 - a word list reads best as text
    "и а но или да нет не ни же ли бы то это этот эта эти тот та те как так что чтобы кто где когда куда "
    "почему зачем какой какая какие каком сколько уже еще ещё вот вы вас вам ваш ваша ваши ваше мы нас нам "
    "наш я меня мне мой моя мои моё мое он она они его ее её их им ему ей у в во на с со к ко по о об от до "
    "из за для при про над под через без между можно нужно надо есть был была было были будет будут быть "
    "здравствуйте привет добрый день вечер утро пожалуйста спасибо подскажите скажите помогите хочу хотел "
    "хотела могу можете ли если или тоже также очень просто всё все весь вся там тут здесь сейчас "
    "the a an and or but not no to of in on at for with from by is are was were be been do does did "
    "i me my you your we our it its this that there what when where how why which can could would should "
    "please hi hello thanks thank"
).split()}
# BM25F field weights and parameters.
W_TITLE, W_QUESTIONS, W_TAGS, W_BODY = 3.0, 2.0, 1.5, 1.0
K1, B = 1.2, 0.75
CACHE_WORKSPACES = 64
MAX_QUERY_TERMS = 24


@dataclass(frozen=True)
class SearchHit:
    """One ranked result. `kind` is "article" or "faq"; `article_id` is the article to cite (for an FAQ entry,
    the article it is linked to, if any); `slug` is the article's stable id (the JSONL `id`)."""

    kind: str
    id: int
    article_id: int | None
    slug: str | None
    title: str
    body: str
    language: str
    category: str | None
    score: float
    coverage: float  # share of the query's weight (idf) that this document matches, 0..1
    matched: tuple[str, ...] = ()


@dataclass
class _Doc:
    kind: str
    id: int
    language: str
    published: bool
    fields: tuple[Counter[str], Counter[str], Counter[str], Counter[str]]  # title, questions, tags, body
    body_len: int


@dataclass
class _Corpus:
    fingerprint: tuple[Any, ...]
    docs: dict[tuple[str, int], _Doc] = field(default_factory=dict)
    df: Counter[str] = field(default_factory=Counter)
    avg_body: float = 1.0
    size: int = 0


_cache: OrderedDict[int, _Corpus] = OrderedDict()
_lock = threading.Lock()


def query_stems(query: str) -> list[str]:
    """The stems of a query that carry meaning, de-duplicated, in order."""
    seen: list[str] = []
    for word in tokens(query):
        s = stem(word)
        if s and s not in _STOP and s not in seen:
            seen.append(s)
    return seen[:MAX_QUERY_TERMS]


def _stems(*texts: str | None) -> Counter[str]:
    return Counter(stem(w) for t in texts if t for w in tokens(t))


def _fingerprint(session: Session, workspace_id: int) -> tuple[Any, ...]:
    a = session.execute(select(func.count(Article.id), func.max(Article.updated_at), func.sum(Article.id))
                        .where(Article.workspace_id == workspace_id)).one()
    f = session.execute(select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at), func.sum(FaqEntry.id))
                        .where(FaqEntry.workspace_id == workspace_id)).one()
    return (*a, *f)


def _build(session: Session, workspace_id: int, fingerprint: tuple[Any, ...]) -> _Corpus:
    corpus = _Corpus(fingerprint=fingerprint)
    articles = session.execute(
        select(Article.id, Article.title, Article.questions, Article.tags, Article.body, Article.language,
               Article.published).where(Article.workspace_id == workspace_id)).all()
    for row in articles:
        body = _stems(row.body)
        corpus.docs[("article", row.id)] = _Doc(
            "article", row.id, row.language, row.published,
            (_stems(row.title), _stems(*(row.questions or [])), _stems(*(row.tags or [])), body),
            sum(body.values()))
    faqs = session.execute(
        select(FaqEntry.id, FaqEntry.question, FaqEntry.variants, FaqEntry.answer, FaqEntry.language,
               FaqEntry.published).where(FaqEntry.workspace_id == workspace_id)).all()
    for row in faqs:  # type: ignore[assignment]  # another row shape
        body = _stems(row.answer)
        corpus.docs[("faq", row.id)] = _Doc("faq", row.id, row.language, row.published,
                                            (_stems(row.question), _stems(*(row.variants or [])), Counter(), body),
                                            sum(body.values()))
    # Statistics come from what customers can see, so drafts do not move the assistant's scores.
    public = [d for d in corpus.docs.values() if d.published]
    for doc in public:
        corpus.df.update(set().union(*doc.fields))
    corpus.size = len(public)
    if public:
        corpus.avg_body = max(1.0, sum(d.body_len for d in public) / len(public))
    return corpus


def _corpus(session: Session, workspace_id: int) -> _Corpus:
    fingerprint = _fingerprint(session, workspace_id)
    with _lock:
        cached = _cache.get(workspace_id)
        if cached is not None and cached.fingerprint == fingerprint:
            _cache.move_to_end(workspace_id)
            return cached
    corpus = _build(session, workspace_id, fingerprint)
    with _lock:
        _cache[workspace_id] = corpus
        _cache.move_to_end(workspace_id)
        while len(_cache) > CACHE_WORKSPACES:
            _cache.popitem(last=False)
    return corpus


def _candidates(session: Session, table: str, workspace_id: int, terms: list[str], prefix_last: bool) -> set[int]:
    """Ids of `table` rows sharing at least one stem with the query, from the full-text index."""
    model = Article if table == "articles" else FaqEntry
    if session.get_bind().dialect.name == "sqlite":
        fts = f"{table}_fts"  # fixed names, never user input
        parts = [f'"{t}"' for t in terms]
        if prefix_last:
            parts[-1] += "*"
        stmt = select(model.id).where(
            model.workspace_id == workspace_id,
            model.id.in_(text(f"SELECT rowid FROM {fts} WHERE {fts} MATCH :q")  # noqa: S608 - fixed table name
                         .bindparams(q=" OR ".join(parts))))
    else:
        parts = [f"'{t}'" for t in terms]
        if prefix_last:
            parts[-1] += ":*"
        vector: Any = literal_column(f"{table}.search_vector")
        stmt = select(model.id).where(
            model.workspace_id == workspace_id,
            vector.op("@@")(text("to_tsquery('simple', :q)").bindparams(q=" | ".join(parts))))
    return set(session.scalars(stmt))


def rank(session: Session, workspace_id: int, query: str, *, language: str | None = None, limit: int = 10,
         include_faq: bool = True, prefix_last: bool = False, published_only: bool = True) -> list[tuple[str, int, float, float, tuple[str, ...]]]:
    """(kind, id, score, coverage, matched stems) of the best documents for `query`, best first."""
    terms = query_stems(query)
    if not terms:
        return []
    corpus = _corpus(session, workspace_id)
    ids = {("article", i) for i in _candidates(session, "articles", workspace_id, terms, prefix_last)}
    if include_faq:
        ids |= {("faq", i) for i in _candidates(session, "faq_entries", workspace_id, terms, prefix_last)}
    n = max(1, corpus.size)
    idf = {t: math.log(1 + (n - corpus.df.get(t, 0) + 0.5) / (corpus.df.get(t, 0) + 0.5)) for t in terms}
    total_idf = sum(idf.values()) or 1.0
    results = []
    for key in ids:
        doc = corpus.docs.get(key)
        if doc is None or (language and doc.language != language) or (published_only and not doc.published):
            continue  # a draft, another language, or written after the statistics were read
        title, questions, tags, body = doc.fields
        norm = 1 - B + B * doc.body_len / corpus.avg_body
        score = 0.0
        matched = []
        for i, t in enumerate(terms):
            tf = W_TITLE * title[t] + W_QUESTIONS * questions[t] + W_TAGS * tags[t] + W_BODY * body[t] / norm
            if prefix_last and i == len(terms) - 1 and tf == 0:
                tf = W_BODY * sum(c for w, c in body.items() if w.startswith(t)) / norm + W_TITLE * sum(
                    c for w, c in title.items() if w.startswith(t))
            if tf > 0:
                matched.append(t)
                score += idf[t] * tf * (K1 + 1) / (tf + K1)
        if score > 0:
            coverage = sum(idf[t] for t in matched) / total_idf
            results.append((key[0], key[1], round(score, 4), round(coverage, 4), tuple(matched)))
    results.sort(key=lambda r: (-r[2], r[0], r[1]))
    return results[:limit]
