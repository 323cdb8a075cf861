"""HTTP surface of the knowledge domain (articles)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.knowledge import service

router = APIRouter(tags=["knowledge"])


class ArticleIn(Strict):
    title: str = Field(min_length=1, max_length=300)
    body: str = Field(min_length=1, max_length=200_000)
    language: str = Field(default="ru", pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    tags: list[str] = Field(default_factory=list, max_length=20)
    published: bool = True


class ArticleUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    body: str | None = Field(default=None, min_length=1, max_length=200_000)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    category: str | None = Field(default=None, max_length=64)
    tags: list[str] | None = Field(default=None, max_length=20)
    published: bool | None = None


class ArticleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    title: str
    body: str
    language: str
    category: str | None
    tags: list[str]
    published: bool
    created_at: dt.datetime
    updated_at: dt.datetime


@router.get("/articles", response_model=list[ArticleOut])
def list_articles(actor: CurrentActor, db: DB,
                  language: Annotated[str | None, Query(pattern=r"^[a-z]{2}$")] = None) -> list[ArticleOut]:
    return [ArticleOut.model_validate(a) for a in service.list_articles(db, actor, language=language)]


@router.post("/articles", response_model=ArticleOut, status_code=201)
def create_article(body: ArticleIn, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.create_article(db, actor, **body.model_dump()))


@router.get("/articles/{article_id}", response_model=ArticleOut)
def get_article(article_id: int, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.get_article(db, actor, article_id))


@router.patch("/articles/{article_id}", response_model=ArticleOut)
def update_article(article_id: int, body: ArticleUpdate, actor: CurrentActor, db: DB) -> ArticleOut:
    return ArticleOut.model_validate(service.update_article(db, actor, article_id, body.model_dump(exclude_unset=True)))


@router.delete("/articles/{article_id}", status_code=204)
def delete_article(article_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_article(db, actor, article_id)
    return Response(status_code=204)
