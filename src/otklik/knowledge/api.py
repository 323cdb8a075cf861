"""HTTP surface of the knowledge domain: articles, their versions, FAQ entries, search, import and export."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response, UploadFile
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.knowledge import service, transfer
from otklik.knowledge.markdown import SLUG_RE, render
from otklik.platform.errors import InvalidInput, TooLarge

router = APIRouter(tags=["knowledge"])

Lang = Annotated[str | None, Query(pattern=r"^[a-z]{2}$")]
Tag = Annotated[str, Field(min_length=1, max_length=64)]
Question = Annotated[str, Field(min_length=1, max_length=500)]
MAX_IMPORT_BYTES = 20 * 1_048_576


class ArticleIn(Strict):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=200_000)
    language: str = Field(default="ru", pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    questions: list[Question] = Field(default_factory=list, max_length=50)
    published: bool = True
    slug: str | None = Field(default=None, pattern=SLUG_RE)
    translation_of_id: int | None = Field(default=None, ge=1)


class ArticleUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, min_length=1, max_length=200_000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    tags: list[Tag] | None = Field(default=None, max_length=20)
    questions: list[Question] | None = Field(default=None, max_length=50)
    published: bool | None = None
    slug: str | None = Field(default=None, pattern=SLUG_RE)
    translation_of_id: int | None = Field(default=None, ge=1)


class ArticleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    title: str
    body: str
    language: str
    category: str | None
    tags: list[str]
    questions: list[str]
    published: bool
    translation_of_id: int | None
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime


class ArticleHtmlOut(ArticleOut):
    body_html: str


class VersionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    number: int
    title: str
    body: str
    language: str
    category: str | None
    tags: list[str]
    questions: list[str]
    published: bool
    author_id: int | None
    note: str
    created_at: dt.datetime


class FaqIn(Strict):
    question: str = Field(min_length=1, max_length=300)
    answer: str = Field(min_length=1, max_length=20_000)
    variants: list[Question] = Field(default_factory=list, max_length=50)
    language: str = Field(default="ru", pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    article_id: int | None = Field(default=None, ge=1)
    published: bool = True


class FaqUpdate(Strict):
    question: str | None = Field(default=None, min_length=1, max_length=300)
    answer: str | None = Field(default=None, min_length=1, max_length=20_000)
    variants: list[Question] | None = Field(default=None, max_length=50)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    article_id: int | None = Field(default=None, ge=1)
    published: bool | None = None


class FaqOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    question: str
    variants: list[str]
    answer: str
    language: str
    category: str | None
    article_id: int | None
    published: bool
    created_at: dt.datetime
    updated_at: dt.datetime


class HitOut(BaseModel):
    kind: str
    id: int
    article_id: int | None
    slug: str | None
    title: str
    language: str
    category: str | None
    score: float
    coverage: float


class ImportOut(BaseModel):
    created: int
    updated: int
    unchanged: int
    ids: list[str]


class CategoryOut(BaseModel):
    name: str
    articles: int


# -- articles ------------------------------------------------------------------------------------------

@router.get("/articles", response_model=list[ArticleOut])
def list_articles(actor: CurrentActor, db: DB, language: Lang = None,
                  category: Annotated[str | None, Query(max_length=64)] = None,
                  published: bool | None = None,
                  q: Annotated[str | None, Query(max_length=500)] = None) -> list[ArticleOut]:
    found = service.list_articles(db, actor, language=language, category=category, published=published, q=q)
    return [ArticleOut.model_validate(a) for a in found]


@router.post("/articles", response_model=ArticleOut, status_code=201)
def create_article(body: ArticleIn, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.create_article(db, actor, **body.model_dump()))


@router.get("/articles/{article_id}", response_model=ArticleHtmlOut)
def get_article(article_id: int, actor: CurrentActor, db: DB) -> ArticleHtmlOut:
    article = service.get_article(db, actor, article_id)
    return ArticleHtmlOut.model_validate({**ArticleOut.model_validate(article).model_dump(),
                                          "body_html": render(article.body)})


@router.patch("/articles/{article_id}", response_model=ArticleOut)
def update_article(article_id: int, body: ArticleUpdate, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.update_article(db, actor, article_id, body.model_dump(exclude_unset=True)))


@router.delete("/articles/{article_id}", status_code=204)
def delete_article(article_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_article(db, actor, article_id)
    return Response(status_code=204)


@router.get("/articles/{article_id}/translations", response_model=list[ArticleOut])
def article_translations(article_id: int, actor: CurrentActor, db: DB) -> list[ArticleOut]:
    article = service.get_article(db, actor, article_id)
    return [ArticleOut.model_validate(a) for a in service.translations(db, actor.workspace_id, article)]


@router.get("/articles/{article_id}/versions", response_model=list[VersionOut])
def list_versions(article_id: int, actor: CurrentActor, db: DB) -> list[VersionOut]:
    return [VersionOut.model_validate(v) for v in service.list_versions(db, actor, article_id)]


@router.get("/articles/{article_id}/versions/{number}", response_model=VersionOut)
def get_version(article_id: int, number: int, actor: CurrentActor, db: DB) -> VersionOut:
    return VersionOut.model_validate(service.get_version(db, actor, article_id, number))


@router.post("/articles/{article_id}/versions/{number}/restore", response_model=ArticleOut)
def restore_version(article_id: int, number: int, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.restore_version(db, actor, article_id, number))


# -- FAQ -----------------------------------------------------------------------------------------------

@router.get("/faq", response_model=list[FaqOut])
def list_faq(actor: CurrentActor, db: DB, language: Lang = None) -> list[FaqOut]:
    return [FaqOut.model_validate(f) for f in service.list_faq(db, actor, language=language)]


@router.post("/faq", response_model=FaqOut, status_code=201)
def create_faq(body: FaqIn, actor: CurrentActor, db: DB) -> FaqOut:
    return FaqOut.model_validate(service.create_faq(db, actor, **body.model_dump()))


@router.get("/faq/{faq_id}", response_model=FaqOut)
def get_faq(faq_id: int, actor: CurrentActor, db: DB) -> FaqOut:
    return FaqOut.model_validate(service.get_faq(db, actor, faq_id))


@router.patch("/faq/{faq_id}", response_model=FaqOut)
def update_faq(faq_id: int, body: FaqUpdate, actor: CurrentActor, db: DB) -> FaqOut:
    return FaqOut.model_validate(service.update_faq(db, actor, faq_id, body.model_dump(exclude_unset=True)))


@router.delete("/faq/{faq_id}", status_code=204)
def delete_faq(faq_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_faq(db, actor, faq_id)
    return Response(status_code=204)


# -- search, categories, import/export -------------------------------------------------------------------

@router.get("/knowledge/search", response_model=list[HitOut])
def search(actor: CurrentActor, db: DB, q: Annotated[str, Query(min_length=1, max_length=1000)],
           language: Lang = None, limit: Annotated[int, Query(ge=1, le=50)] = 10) -> list[HitOut]:
    """Published articles and FAQ entries ranked for `q` — what the assistant retrieves."""
    hits = service.search_articles(db, actor.workspace_id, q, language=language, limit=limit)
    return [HitOut(kind=h.kind, id=h.id, article_id=h.article_id, slug=h.slug, title=h.title, language=h.language,
                   category=h.category, score=h.score, coverage=h.coverage) for h in hits]


@router.get("/knowledge/categories", response_model=list[CategoryOut])
def list_categories(actor: CurrentActor, db: DB, language: Lang = None) -> list[CategoryOut]:
    return [CategoryOut(name=n, articles=c)
            for n, c in service.categories(db, actor.workspace_id, language=language, published_only=False)]


@router.post("/knowledge/import", response_model=ImportOut)
async def import_file(file: UploadFile, actor: CurrentActor, db: DB) -> ImportOut:
    """Upload a `.jsonl` (one article a line), a Markdown `.md` with front matter, or a `.zip` of them.
    Articles whose `id` exists are updated (as a new version), the others created; all or nothing."""
    actor.require(Role.supervisor)
    raw = await file.read(MAX_IMPORT_BYTES + 1)
    if len(raw) > MAX_IMPORT_BYTES:
        raise TooLarge("the file may be at most 20 MB")
    if not file.filename:
        raise InvalidInput("the upload has no file name", fields=[{"field": "file", "message": "no file name"}])
    result = transfer.import_file(db, actor, file.filename, raw)
    return ImportOut(created=result.created, updated=result.updated, unchanged=result.unchanged, ids=result.ids)


@router.get("/knowledge/export", responses={200: {"content": {"application/x-ndjson": {}, "application/zip": {}}}})
def export(actor: CurrentActor, db: DB, language: Lang = None,
           format: Annotated[str, Query(pattern="^(jsonl|markdown)$")] = "jsonl") -> Response:
    """Every article as JSONL (the import format), or as a zip of Markdown files with front matter."""
    if format == "markdown":
        return Response(transfer.export_markdown_zip(db, actor, language=language), media_type="application/zip",
                        headers={"Content-Disposition": 'attachment; filename="knowledge-base.zip"'})
    return Response(transfer.export_jsonl(db, actor, language=language), media_type="application/x-ndjson",
                    headers={"Content-Disposition": 'attachment; filename="knowledge-base.jsonl"'})
