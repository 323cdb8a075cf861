"""The public help center of a workspace: /help/{workspace}/ — categories, articles, search, ru/en.

No login: anyone may read a workspace's *published* articles, nothing else (drafts, FAQ internals and other
workspaces stay invisible, and an unknown workspace is a plain 404). Pages are small, need no JavaScript, and
are cacheable for a minute by browsers and proxies (`Cache-Control: public, max-age=60` and an ETag, so a
revalidation costs a 304). Article bodies are the knowledge base's Markdown rendered by markdown-it-py with raw
HTML off and then sanitised by nh3; every other text is autoescaped.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from markupsafe import Markup

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Workspace
from otklik.knowledge import service as knowledge
from otklik.knowledge.markdown import plain_text, render
from otklik.platform.errors import NotFound
from otklik.web.ui.deps import environment


class _Missing(Exception):
    pass


class _PublicRoute(APIRoute):
    """An unknown workspace or article is an HTML 404 page for a customer, not a JSON error."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except (_Missing, NotFound):
                slug = request.path_params.get("workspace_slug", "")
                return _missing(request, f"/help/{slug}/" if "article_slug" in request.path_params else "")

        return handler


router = APIRouter(include_in_schema=False, route_class=_PublicRoute)
CACHE = "public, max-age=60, stale-while-revalidate=300"
LANGUAGES = ("ru", "en")
TEXT = {
    "ru": {"help": "Справочный центр", "search": "Поиск по статьям", "find": "Найти",
           "placeholder": "Например: сроки доставки, возврат, гарантия", "results": "Результаты поиска",
           "nothing": "Ничего не нашлось. Попробуйте другие слова или напишите нам — поможем.",
           "other": "Другие статьи", "home": "Все статьи", "categories": "Разделы", "also": "Статья на других языках",
           "no_articles": "Здесь пока нет статей.", "updated": "Обновлено", "contact": "Не нашли ответ? Напишите нам "
           "в чат на сайте — оператор ответит.", "language": "Язык", "uncategorised": "Разное",
           "too_short": "Введите слово для поиска.", "articles": "статей",
           "missing": "Такой страницы нет"},
    "en": {"help": "Help center", "search": "Search articles", "find": "Search",
           "placeholder": "For example: delivery times, returns, warranty", "results": "Search results",
           "nothing": "Nothing found. Try other words, or write to us and we will help.",
           "other": "More articles", "home": "All articles", "categories": "Sections", "also": "This article in "
           "other languages", "no_articles": "No articles here yet.", "updated": "Updated", "contact": "Didn't "
           "find an answer? Write to us in the chat on our site and a person will reply.", "language": "Language",
           "uncategorised": "Other", "too_short": "Type a word to search for.", "articles": "articles",
           "missing": "Page not found"},
}
LANGUAGE_NAMES = {"ru": "Русский", "en": "English"}


def _workspace(db: DB, slug: str) -> Workspace:
    workspace = accounts.get_workspace_by_slug(db, slug) if len(slug) <= 64 else None
    if workspace is None:
        raise _Missing()
    return workspace


def _language(request: Request, workspace: Workspace, available: list[str], lang: str | None) -> str:
    """The asked language if it has articles, else the browser's, else the workspace's, else any."""
    if lang in available:
        return lang
    preferred = (request.headers.get("accept-language") or "")[:2].lower()
    for candidate in (preferred, workspace.language):
        if candidate in available:
            return candidate
    return available[0] if available else workspace.language


def _page(request: Request, template: str, *, lang: str, status_code: int = 200, **context: Any) -> Response:
    html = environment(lang).get_template(template).render(request=request, lang=lang, t=TEXT.get(lang, TEXT["en"]),
                                                          LANGUAGE_NAMES=LANGUAGE_NAMES, **context)
    etag = '"' + hashlib.sha256(html.encode()).hexdigest()[:32] + '"'
    headers = {"Cache-Control": CACHE, "ETag": etag, "Vary": "Accept-Language",
               "Content-Security-Policy": "default-src 'self'; img-src 'self' https: data:; style-src 'self'; "
                                          "script-src 'none'; frame-ancestors 'none'; base-uri 'none'",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}
    if status_code == 200 and etag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _grouped(articles: list[Any], other: str) -> OrderedDict[str, list[Any]]:
    groups: OrderedDict[str, list[Any]] = OrderedDict()
    for article in sorted(articles, key=lambda a: (a.category is None, a.category or "", a.title)):
        groups.setdefault(article.category or other, []).append(article)
    return groups


def _snippet(body: str, size: int = 180) -> str:
    text = " ".join(plain_text(body).split())
    return text if len(text) <= size else text[:size].rsplit(" ", 1)[0] + "…"


def _missing(request: Request, base: str = "") -> Response:
    lang = "en" if (request.headers.get("accept-language") or "").lower().startswith("en") else "ru"
    html = environment(lang).get_template("helpcenter/missing.html").render(lang=lang, t=TEXT[lang], base=base)
    return HTMLResponse(html, status_code=404, headers={"Cache-Control": "public, max-age=30"})


@router.get("/help/{workspace_slug}")
def help_redirect(workspace_slug: str) -> RedirectResponse:
    return RedirectResponse(f"/help/{workspace_slug}/", status_code=308)


@router.get("/help/{workspace_slug}/", response_class=HTMLResponse)
def help_home(request: Request, workspace_slug: str, db: DB,
              lang: Annotated[str | None, Query(max_length=8)] = None,
              category: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    workspace = _workspace(db, workspace_slug)
    available = knowledge.public_languages(db, workspace.id)
    language = _language(request, workspace, available, lang)
    articles = knowledge.public_articles(db, workspace.id, language=language)
    groups = _grouped(articles, TEXT[language]["uncategorised"] if language in TEXT else "Other")
    if category:
        groups = OrderedDict((k, v) for k, v in groups.items() if k == category)
    return _page(request, "helpcenter/index.html", lang=language, workspace=workspace, groups=groups,
                 languages=[x for x in LANGUAGES if x in available], category=category, q="",
                 base=f"/help/{workspace.slug}/")


@router.get("/help/{workspace_slug}/search", response_class=HTMLResponse)
def help_search(request: Request, workspace_slug: str, db: DB,
                q: Annotated[str, Query(max_length=300)] = "",
                lang: Annotated[str | None, Query(max_length=8)] = None) -> Response:
    workspace = _workspace(db, workspace_slug)
    available = knowledge.public_languages(db, workspace.id)
    language = _language(request, workspace, available, lang)
    hits = knowledge.search_articles(db, workspace.id, q, language=language, limit=20, include_faq=False,
                                     prefix_last=True) if q.strip() else []
    results = [(h, _snippet(h.body)) for h in hits]
    return _page(request, "helpcenter/search.html", lang=language, workspace=workspace, q=q, results=results,
                 languages=[x for x in LANGUAGES if x in available], base=f"/help/{workspace.slug}/")


@router.get("/help/{workspace_slug}/a/{article_slug}", response_class=HTMLResponse)
def help_article(request: Request, workspace_slug: str, article_slug: str, db: DB) -> Response:
    workspace = _workspace(db, workspace_slug)
    article = knowledge.public_article(db, workspace.id, article_slug[:120])
    others = knowledge.translations(db, workspace.id, article, published_only=True)
    related = [a for a in knowledge.public_articles(db, workspace.id, language=article.language)
               if a.category == article.category and a.id != article.id][:8]
    available = knowledge.public_languages(db, workspace.id)
    return _page(request, "helpcenter/article.html", lang=article.language if article.language in TEXT else "en",
                 workspace=workspace, article=article, body_html=Markup(render(article.body)),  # noqa: S704 - sanitised by nh3
                 translations=others, related=related, languages=[x for x in LANGUAGES if x in available],
                 q="", base=f"/help/{workspace.slug}/",
                 # the language switch on an article goes to its translation (the home page only where none)
                 lang_links={tr.language: f"/help/{workspace.slug}/a/{tr.slug}" for tr in others}
                 | {article.language: f"/help/{workspace.slug}/a/{article.slug}"})
