"""Bulk actions on conversations (the inbox's selection): one change — status, priority, assignee, team, tags
added — applied to up to MAX_BULK conversations, and merging several conversations of one customer into one.

Each conversation is changed in its own SAVEPOINT through the same `update_conversation` / `merge_conversations`
a single change uses (audit, events, SLA, routing, the legal timers all follow), so one that cannot be changed
(merged meanwhile, closed, another workspace's) is reported and the others still change; a change that is wrong
for all of them (a bad status) is one 422.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.accounts.service import Actor
from otklik.conversations import service
from otklik.conversations.models import Priority, Status
from otklik.platform.errors import DomainError, InvalidInput, field_error

MAX_BULK = 200
BULK_FIELDS = {"status", "priority", "assignee_id", "team_id", "category"}


def _ids(ids: Sequence[int]) -> list[int]:
    out = list(dict.fromkeys(int(i) for i in ids))
    if not out:
        raise field_error("ids", "select at least one conversation")
    if len(out) > MAX_BULK:
        raise field_error("ids", f"at most {MAX_BULK} conversations at once")
    return out


def _failure(cid: int, exc: DomainError) -> dict[str, Any]:
    return {"id": cid, "code": exc.code, "message": exc.message}


def bulk_update(session: Session, actor: Actor, ids: Sequence[int], changes: dict[str, Any],
                add_tags: Sequence[str] = ()) -> dict[str, Any]:
    """Apply `changes` (and add `add_tags`) to each conversation; returns {"updated": [ids], "failed": [...]}."""
    wanted = _ids(ids)
    unknown = set(changes) - BULK_FIELDS
    if unknown:
        raise field_error(f"changes.{sorted(unknown)[0]}", "cannot be changed in bulk")
    tags = [t.strip() for t in add_tags if t and t.strip()]
    if not changes and not tags:
        raise field_error("changes", "nothing to change")
    updated: list[int] = []
    failed: list[dict[str, Any]] = []
    invalid: list[InvalidInput] = []
    for cid in wanted:
        try:
            with session.begin_nested():
                one = dict(changes)
                if tags:
                    service.get_conversation(session, actor, cid)  # another workspace's: 404 before reading tags
                    have = service.tags_of(session, [cid])[cid]
                    one["tags"] = list(dict.fromkeys([*have, *tags]))
                service.update_conversation(session, actor, cid, one)
            updated.append(cid)
        except InvalidInput as exc:
            invalid.append(exc)
            failed.append(_failure(cid, exc))
        except DomainError as exc:
            failed.append(_failure(cid, exc))
    if invalid and not updated and len(invalid) == len(wanted):
        raise invalid[0]  # the change itself is wrong, whichever conversation it goes to
    return {"updated": updated, "failed": failed}


def bulk_merge(session: Session, actor: Actor, ids: Sequence[int], target_id: int | None = None) -> dict[str, Any]:
    """Merge the selected conversations of one customer into `target_id` (default: the oldest of them)."""
    wanted = _ids(ids)
    if target_id is not None and target_id not in wanted:
        wanted.insert(0, target_id)
    if len(wanted) < 2:
        raise field_error("ids", "select two or more conversations to merge")
    conversations = [service.get_conversation(session, actor, cid) for cid in wanted]  # 404: not this workspace's
    if len({c.customer_id for c in conversations}) > 1:
        raise field_error("ids", "merge conversations of one customer only (merge the customers first)")
    target = next((c for c in conversations if c.id == target_id), None) if target_id is not None else \
        min((c for c in conversations if c.merged_into_id is None and c.status != Status.closed.value),
            key=lambda c: (c.created_at, c.id), default=None)
    if target is None:
        raise field_error("target_id", "no open conversation among them to merge into")
    merged: list[int] = []
    failed: list[dict[str, Any]] = []
    for c in conversations:
        if c.id == target.id:
            continue
        try:
            with session.begin_nested():
                service.merge_conversations(session, actor, target_id=target.id, source_id=c.id)
            merged.append(c.id)
        except DomainError as exc:
            failed.append(_failure(c.id, exc))
    return {"target_id": target.id, "merged": merged, "failed": failed}


# -- API ---------------------------------------------------------------------------------------------------------

router = APIRouter(tags=["conversations"])


class BulkChanges(Strict):
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    category: str | None = Field(default=None, max_length=64)


class BulkIn(Strict):
    ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    changes: BulkChanges = Field(default_factory=BulkChanges, description="only the keys given change; "
                                 "`assignee_id: null` unassigns")
    add_tags: list[str] = Field(default_factory=list, max_length=20)


class Failure(BaseModel):
    id: int
    code: str
    message: str


class BulkOut(BaseModel):
    updated: list[int]
    failed: list[Failure]


class MergeManyIn(Strict):
    ids: list[int] = Field(min_length=1, max_length=MAX_BULK)
    target_id: int | None = Field(default=None, description="default: the oldest open one of them")


class MergeManyOut(BaseModel):
    target_id: int
    merged: list[int]
    failed: list[Failure]


@router.post("/conversations/bulk", response_model=BulkOut)
def bulk(body: BulkIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """One change to many conversations (the inbox's selection). Each is changed on its own: the ones that
    cannot be (merged, closed, not found) are listed in `failed` with the reason, the others change."""
    changes = body.changes.model_dump(exclude_unset=True, mode="json")
    for name in ("tags",):
        changes.pop(name, None)
    return bulk_update(db, actor, body.ids, changes, [t[:40] for t in body.add_tags])


@router.post("/conversations/bulk/merge", response_model=MergeManyOut)
def bulk_merge_api(body: MergeManyIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Merge several conversations of one customer into one (default: the oldest open one)."""
    return bulk_merge(db, actor, body.ids, body.target_id)
