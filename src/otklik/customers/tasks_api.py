"""HTTP surface of customer tasks: create, list, change, complete, delete."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.customers import tasks
from otklik.platform.api import Page

router = APIRouter(tags=["tasks"])


class TaskCreate(Strict):
    customer_id: int
    title: str = Field(min_length=1, max_length=tasks.MAX_TITLE)
    conversation_id: int | None = None
    due_at: dt.datetime | None = None
    assignee_id: int | None = None
    note: str = Field(default="", max_length=tasks.MAX_NOTE)


class TaskUpdate(Strict):
    title: str | None = Field(default=None, min_length=1, max_length=tasks.MAX_TITLE)
    note: str | None = Field(default=None, max_length=tasks.MAX_NOTE)
    due_at: dt.datetime | None = None
    assignee_id: int | None = None
    done: bool | None = None


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    customer_id: int
    conversation_id: int | None
    title: str
    note: str
    due_at: dt.datetime | None
    assignee_id: int | None
    created_by: int | None
    done_at: dt.datetime | None
    done_by: int | None
    created_at: dt.datetime


@router.get("/tasks", response_model=Page[TaskOut])
def list_tasks(actor: CurrentActor, db: DB, customer_id: int | None = None, conversation_id: int | None = None,
               assignee_id: int | None = None, include_done: bool = False,
               cursor: Annotated[str | None, Query(max_length=500)] = None,
               limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[TaskOut]:
    rows, next_cursor = tasks.list_tasks(db, actor, customer_id=customer_id, conversation_id=conversation_id,
                                         assignee_id=assignee_id, open_only=not include_done, cursor=cursor,
                                         limit=limit)
    return Page(items=[TaskOut.model_validate(t) for t in rows], next_cursor=next_cursor)


@router.post("/tasks", response_model=TaskOut, status_code=201)
def create_task(body: TaskCreate, actor: CurrentActor, db: DB) -> TaskOut:
    task = tasks.create_task(db, actor.workspace_id, customer_id=body.customer_id, title=body.title,
                             conversation_id=body.conversation_id, due_at=body.due_at,
                             assignee_id=body.assignee_id, note=body.note, actor=actor)
    return TaskOut.model_validate(task)


@router.get("/tasks/{task_id}", response_model=TaskOut)
def get_task(task_id: int, actor: CurrentActor, db: DB) -> TaskOut:
    return TaskOut.model_validate(tasks.get_task(db, actor, task_id))


@router.patch("/tasks/{task_id}", response_model=TaskOut)
def update_task(task_id: int, body: TaskUpdate, actor: CurrentActor, db: DB) -> TaskOut:
    return TaskOut.model_validate(tasks.update_task(db, actor, task_id, body.model_dump(exclude_unset=True)))


@router.post("/tasks/{task_id}/complete", response_model=TaskOut)
def complete_task(task_id: int, actor: CurrentActor, db: DB) -> TaskOut:
    return TaskOut.model_validate(tasks.complete_task(db, actor, task_id))


@router.delete("/tasks/{task_id}", status_code=204)
def delete_task(task_id: int, actor: CurrentActor, db: DB) -> Response:
    tasks.delete_task(db, actor, task_id)
    return Response(status_code=204)
