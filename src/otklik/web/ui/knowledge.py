"""Knowledge-base pages for the team: the article list with search, the editor with a live Markdown preview,
versions (view, restore), translations, FAQ entries, and import/export (JSONL, Markdown zip).

Everyone in the workspace reads; supervisors and admins write. The preview and the version pages show the
Markdown rendered by markdown-it-py with raw HTML off and sanitised by nh3; every other text is autoescaped.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from markupsafe import Markup

from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.knowledge import service as knowledge
from otklik.knowledge import transfer
from otklik.knowledge.markdown import render as render_markdown
from otklik.knowledge.models import Article
from otklik.platform.errors import InvalidInput, TooLarge, field_error
from otklik.web.ui.deps import CurrentUser, SupervisorUser, redirect, render, translator, ui_router

router = ui_router()
MAX_IMPORT_BYTES = 20 * 1_048_576


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()][:20]


def _safe(body: str) -> Markup:
    return Markup(render_markdown(body))  # noqa: S704 - rendered with raw HTML off, then sanitised by nh3


@router.get("/knowledge", response_class=HTMLResponse)
def article_list(request: Request, user: CurrentUser, db: DB, q: Annotated[str, Query(max_length=300)] = "",
                 language: Annotated[str, Query(max_length=2)] = "",
                 status: Annotated[str, Query(pattern="^(|published|draft)$")] = "") -> Response:
    published = {"published": True, "draft": False}.get(status)
    articles = knowledge.list_articles(db, user.actor, q=q.strip() or None, language=language or None,
                                       published=published)
    languages = sorted({a.language for a in knowledge.list_articles(db, user.actor)})
    from otklik.assistant.learning import pending_count

    return render(request, "knowledge/list.html", articles=articles, q=q, language=language, status=status,
                  languages=languages, can_edit=user.has_role(Role.supervisor),
                  proposals_pending=pending_count(db, user.actor.workspace_id))


@router.post("/knowledge/preview", response_class=HTMLResponse)
def preview(request: Request, user: CurrentUser, body: Annotated[str, Form(max_length=200_000)] = "") -> Response:
    return HTMLResponse(render_markdown(body), headers={"Cache-Control": "no-store"})


def _form_changes(title: str, body: str, language: str, category: str, tags: str, questions: str,
                  published: str, slug: str, translation_of_id: str) -> dict[str, object]:
    if not title.strip():
        raise field_error("title", "the title must not be empty")
    if not body.strip():
        raise field_error("body", "the text must not be empty")
    if len(language) != 2 or not language.isalpha() or not language.islower():
        raise field_error("language", "a two-letter code such as ru or en")
    try:
        original = int(translation_of_id) if translation_of_id.strip() else None
    except ValueError:
        raise field_error("translation_of_id", "not an article") from None
    changes: dict[str, object] = {"title": title, "body": body, "language": language, "category": category or None,
                                  "tags": _tags(tags), "questions": _lines(questions)[:50],
                                  "published": published == "on", "translation_of_id": original}
    if slug.strip():
        changes["slug"] = slug.strip()
    return changes


Text = Annotated[str, Form(max_length=300)]


@router.get("/knowledge/new", response_class=HTMLResponse)
def new_article(request: Request, user: SupervisorUser, db: DB,
                translation_of: Annotated[int | None, Query(ge=1)] = None) -> Response:
    original = knowledge.get_article(db, user.actor, translation_of) if translation_of else None
    return render(request, "knowledge/edit.html", article=None, original=original,
                  originals=_originals(db, user), versions=[], translations=[])


def _originals(db: DB, user: CurrentUser) -> list[Article]:
    return [a for a in knowledge.list_articles(db, user.actor) if a.translation_of_id is None]


@router.post("/knowledge/new")
def create(request: Request, user: SupervisorUser, db: DB, title: Text = "",
           body: Annotated[str, Form(max_length=200_000)] = "", language: Annotated[str, Form(max_length=8)] = "ru",
           category: Annotated[str, Form(max_length=64)] = "", tags: Annotated[str, Form(max_length=2000)] = "",
           questions: Annotated[str, Form(max_length=20_000)] = "", published: Annotated[str, Form()] = "",
           slug: Annotated[str, Form(max_length=120)] = "",
           translation_of_id: Annotated[str, Form(max_length=20)] = "") -> Response:
    changes = _form_changes(title, body, language, category, tags, questions, published, slug, translation_of_id)
    article = knowledge.create_article(db, user.actor, **changes)  # type: ignore[arg-type]
    return redirect(f"/knowledge/{article.id}?saved=1", request)


@router.get("/knowledge/faq", response_class=HTMLResponse)
def faq_list(request: Request, user: CurrentUser, db: DB) -> Response:
    return render(request, "knowledge/faq.html", entries=knowledge.list_faq(db, user.actor),
                  articles=knowledge.list_articles(db, user.actor),
                  can_edit=user.has_role(Role.supervisor))


@router.post("/knowledge/faq")
def faq_create(request: Request, user: SupervisorUser, db: DB, question: Text = "",
               answer: Annotated[str, Form(max_length=20_000)] = "",
               variants: Annotated[str, Form(max_length=20_000)] = "",
               language: Annotated[str, Form(max_length=8)] = "ru",
               article_id: Annotated[str, Form(max_length=20)] = "") -> Response:
    if not question.strip() or not answer.strip():
        raise field_error("question", "the question and the answer must not be empty")
    if language not in {"ru", "en"} and (len(language) != 2 or not language.isalpha()):
        raise field_error("language", "a two-letter code such as ru or en")
    linked = int(article_id) if article_id.strip().isdigit() else None
    knowledge.create_faq(db, user.actor, question=question, answer=answer, variants=_lines(variants)[:50],
                         language=language, article_id=linked)
    return redirect("/knowledge/faq", request)


@router.post("/knowledge/faq/{faq_id}/delete")
def faq_delete(request: Request, faq_id: int, user: SupervisorUser, db: DB) -> Response:
    knowledge.delete_faq(db, user.actor, faq_id)
    return redirect("/knowledge/faq", request)


@router.get("/knowledge/proposals", response_class=HTMLResponse)
def proposals_page(request: Request, user: CurrentUser, db: DB,
                   status: Annotated[str, Query(pattern="^(pending|accepted|rejected)$")] = "pending") -> Response:
    """Questions the assistant could not answer and an agent answered with an article: one click adds the
    customer's wording to the article, so the bot answers it next time (assistant.learning)."""
    from otklik.assistant import learning

    return render(request, "knowledge/proposals.html", status=status,
                  proposals=learning.list_proposals(db, user.actor, status=status, limit=200),
                  articles=knowledge.list_articles(db, user.actor),
                  can_edit=user.has_role(Role.supervisor))


@router.post("/knowledge/proposals/{proposal_id}/accept")
def proposal_accept(request: Request, proposal_id: int, user: SupervisorUser, db: DB,
                    text: Annotated[str, Form(max_length=400)] = "",
                    article_id: Annotated[str, Form(max_length=20)] = "") -> Response:
    from otklik.assistant import learning

    target = int(article_id) if article_id.strip().isdigit() else None
    learning.accept(db, user.actor, proposal_id, text=text if text.strip() else None, article_id=target)
    return redirect("/knowledge/proposals", request)


@router.post("/knowledge/proposals/{proposal_id}/reject")
def proposal_reject(request: Request, proposal_id: int, user: SupervisorUser, db: DB) -> Response:
    from otklik.assistant import learning

    learning.reject(db, user.actor, proposal_id)
    return redirect("/knowledge/proposals", request)


@router.get("/knowledge/transfer", response_class=HTMLResponse)
def transfer_page(request: Request, user: SupervisorUser, db: DB) -> Response:
    return render(request, "knowledge/transfer.html", result=None)


@router.post("/knowledge/import", response_class=HTMLResponse)
async def import_upload(request: Request, user: SupervisorUser, db: DB, file: UploadFile) -> Response:
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise TooLarge("the file may be at most 20 MB")
    if not file.filename:
        raise InvalidInput("choose a file to import")
    result = transfer.import_file(db, user.actor, file.filename, raw)
    return render(request, "knowledge/transfer.html", result=result)


@router.get("/knowledge/{article_id}", response_class=HTMLResponse)
def edit(request: Request, article_id: int, user: CurrentUser, db: DB,
         saved: Annotated[str, Query(max_length=2)] = "") -> Response:
    article = knowledge.get_article(db, user.actor, article_id)
    _ = translator(request)
    return render(request, "knowledge/edit.html", article=article, original=None, originals=_originals(db, user),
                  body_html=_safe(article.body), versions=knowledge.list_versions(db, user.actor, article_id)[:5],
                  translations=knowledge.translations(db, user.workspace.id, article),
                  can_edit=user.has_role(Role.supervisor), saved=_("Saved.") if saved else "")


@router.post("/knowledge/{article_id}")
def save(request: Request, article_id: int, user: SupervisorUser, db: DB, title: Text = "",
         body: Annotated[str, Form(max_length=200_000)] = "", language: Annotated[str, Form(max_length=8)] = "ru",
         category: Annotated[str, Form(max_length=64)] = "", tags: Annotated[str, Form(max_length=2000)] = "",
         questions: Annotated[str, Form(max_length=20_000)] = "", published: Annotated[str, Form()] = "",
         slug: Annotated[str, Form(max_length=120)] = "",
         translation_of_id: Annotated[str, Form(max_length=20)] = "",
         note: Annotated[str, Form(max_length=200)] = "") -> Response:
    changes = _form_changes(title, body, language, category, tags, questions, published, slug, translation_of_id)
    knowledge.update_article(db, user.actor, article_id, changes, note=note)
    return redirect(f"/knowledge/{article_id}?saved=1", request)


@router.post("/knowledge/{article_id}/delete")
def delete(request: Request, article_id: int, user: SupervisorUser, db: DB) -> Response:
    knowledge.delete_article(db, user.actor, article_id)
    return redirect("/knowledge", request)


@router.get("/knowledge/{article_id}/versions", response_class=HTMLResponse)
def versions(request: Request, article_id: int, user: CurrentUser, db: DB,
             number: Annotated[int | None, Query(ge=1)] = None) -> Response:
    article = knowledge.get_article(db, user.actor, article_id)
    listed = knowledge.list_versions(db, user.actor, article_id)
    shown = knowledge.get_version(db, user.actor, article_id, number) if number else (listed[0] if listed else None)
    return render(request, "knowledge/versions.html", article=article, versions=listed, shown=shown,
                  shown_html=_safe(shown.body) if shown else "", can_edit=user.has_role(Role.supervisor))


@router.post("/knowledge/{article_id}/versions/{number}/restore")
def restore(request: Request, article_id: int, number: int, user: SupervisorUser, db: DB) -> Response:
    knowledge.restore_version(db, user.actor, article_id, number)
    return redirect(f"/knowledge/{article_id}?saved=1", request)
