"""HTTP surface of reply templates: list/search (the `/` picker), CRUD, and rendering for a conversation."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.conversations import templates
from otklik.platform.api import Page

router = APIRouter(tags=["templates"])


class TemplateCreate(Strict):
    name: str = Field(min_length=1, max_length=templates.MAX_NAME)
    body: str = Field(min_length=1, max_length=templates.MAX_BODY)
    shortcut: str | None = Field(default=None, max_length=49)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    personal: bool = Field(default=False, description="Only you see it (any role); shared ones need a "
                                                      "supervisor or admin.")


class TemplateUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=templates.MAX_NAME)
    body: str | None = Field(default=None, min_length=1, max_length=templates.MAX_BODY)
    shortcut: str | None = Field(default=None, max_length=49)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")


class TemplateOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    shortcut: str | None
    body: str
    language: str | None
    personal: bool
    variables: list[str]
    created_at: dt.datetime
    updated_at: dt.datetime


class RenderIn(Strict):
    conversation_id: int | None = Field(default=None, description="Fill customer/conversation variables from "
                                                                  "this conversation.")
    variables: dict[str, Any] = Field(default_factory=dict, description="Values that override or add to "
                                                                        "the ones found.")


class RenderOut(BaseModel):
    text: str
    unresolved: list[str]


def template_out(template: templates.ReplyTemplate) -> TemplateOut:
    return TemplateOut(id=template.id, name=template.name, shortcut=template.shortcut, body=template.body,
                       language=template.language, personal=template.owner_user_id is not None,
                       variables=templates.variables_in(template.body), created_at=template.created_at,
                       updated_at=template.updated_at)


@router.get("/templates", response_model=Page[TemplateOut])
def list_templates(actor: CurrentActor, db: DB, q: Annotated[str | None, Query(max_length=200)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 100) -> Page[TemplateOut]:
    return Page(items=[template_out(t) for t in templates.list_templates(db, actor, q=q, limit=limit)])


@router.post("/templates", response_model=TemplateOut, status_code=201)
def create_template(body: TemplateCreate, actor: CurrentActor, db: DB) -> TemplateOut:
    return template_out(templates.create_template(db, actor, name=body.name, body=body.body,
                                                  shortcut=body.shortcut, language=body.language,
                                                  personal=body.personal))


@router.get("/templates/{template_id}", response_model=TemplateOut)
def get_template(template_id: int, actor: CurrentActor, db: DB) -> TemplateOut:
    return template_out(templates.get_template(db, actor, template_id))


@router.patch("/templates/{template_id}", response_model=TemplateOut)
def update_template(template_id: int, body: TemplateUpdate, actor: CurrentActor, db: DB) -> TemplateOut:
    return template_out(templates.update_template(db, actor, template_id, body.model_dump(exclude_unset=True)))


@router.delete("/templates/{template_id}", status_code=204)
def delete_template(template_id: int, actor: CurrentActor, db: DB) -> Response:
    templates.delete_template(db, actor, template_id)
    return Response(status_code=204)


@router.post("/templates/{template_id}/render", response_model=RenderOut)
def render_template(template_id: int, body: RenderIn, actor: CurrentActor, db: DB) -> RenderOut:
    template = templates.get_template(db, actor, template_id)
    rendered = templates.render_body(db, actor, template.body, conversation_id=body.conversation_id,
                                     variables=body.variables)
    return RenderOut(text=rendered.text, unresolved=rendered.unresolved)
