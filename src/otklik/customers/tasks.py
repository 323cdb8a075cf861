"""Follow-up tasks on a customer ("call back tomorrow at 10", "send the invoice"), optionally tied to a
conversation. Channels create them for callback requests; agents list and complete them in the customer panel.
Never reaches into conversations' code: a conversation id is checked against its table by a plain query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, column, select, table, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role, User
from otklik.accounts.service import Actor, record_audit
from otklik.customers.models import Customer
from otklik.customers.service import register_merge_mover
from otklik.platform.db import Base, UTCDateTime, affected, utcnow
from otklik.platform.errors import Conflict, NotFound, field_error
from otklik.platform.events import Event, after_commit
from otklik.platform.pagination import decode_cursor, encode_cursor

MAX_TITLE = 300
MAX_NOTE = 5000


class Task(Base):
    __tablename__ = "customer_tasks"
    __table_args__ = (
        Index("ix_customer_tasks_customer", "workspace_id", "customer_id", "done_at", "id"),
        Index("ix_customer_tasks_assignee", "workspace_id", "assignee_id", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # A plain reference checked by query below: customers sit under conversations in the layers.
    conversation_id: Mapped[int | None] = mapped_column(ForeignKey("conversations.id", ondelete="SET NULL"))
    title: Mapped[str] = mapped_column(String(MAX_TITLE))
    note: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


_conversations = table("conversations", column("id"), column("workspace_id"), column("customer_id"))


def task_event_data(task: Task) -> dict[str, Any]:
    return {"id": task.id, "customer_id": task.customer_id, "conversation_id": task.conversation_id,
            "title": task.title, "assignee_id": task.assignee_id,
            "due_at": task.due_at.isoformat() if task.due_at else None,
            "done_at": task.done_at.isoformat() if task.done_at else None}


def _customer(session: Session, workspace_id: int, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    # a task for a merged duplicate belongs to the surviving profile
    for _ in range(10):
        if customer.merged_into_id is None:
            break
        survivor = session.get(Customer, customer.merged_into_id)
        if survivor is None:
            break
        customer = survivor
    return customer


def _check_title(title: str) -> str:
    title = (title or "").strip()
    if not title:
        raise field_error("title", "must not be empty")
    if len(title) > MAX_TITLE:
        raise field_error("title", f"at most {MAX_TITLE} characters")
    return title


def _check_note(note: str) -> str:
    note = (note or "").strip()
    if len(note) > MAX_NOTE:
        raise field_error("note", f"at most {MAX_NOTE} characters")
    return note


def _check_due(due_at: dt.datetime | None) -> dt.datetime | None:
    if due_at is not None and due_at.tzinfo is None:
        raise field_error("due_at", "give a timezone (e.g. 2026-11-24T10:00:00+03:00)")
    return due_at


def _check_assignee(session: Session, workspace_id: int, assignee_id: int | None) -> None:
    if assignee_id is None:
        return
    found = session.scalar(select(User.id).where(User.id == assignee_id, User.workspace_id == workspace_id,
                                                 User.is_active.is_(True)))
    if found is None:
        raise field_error("assignee_id", f"no active user {assignee_id} in this workspace")


def _check_conversation(session: Session, workspace_id: int, conversation_id: int | None) -> None:
    if conversation_id is None:
        return
    found = session.scalar(select(_conversations.c.id).where(_conversations.c.id == conversation_id,
                                                             _conversations.c.workspace_id == workspace_id))
    if found is None:
        raise field_error("conversation_id", f"no conversation {conversation_id} in this workspace")


def create_task(session: Session, workspace_id: int, *, customer_id: int, title: str,
                conversation_id: int | None = None, due_at: dt.datetime | None = None,
                assignee_id: int | None = None, note: str = "", actor: Actor | None = None) -> Task:
    """A new open task. `actor` is who asked (None: the system, e.g. a phone callback request)."""
    actor = actor or Actor.system(workspace_id)
    if actor.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    title = _check_title(title)
    note = _check_note(note)
    _check_due(due_at)
    customer = _customer(session, workspace_id, customer_id)
    _check_conversation(session, workspace_id, conversation_id)
    _check_assignee(session, workspace_id, assignee_id)
    task = Task(workspace_id=workspace_id, customer_id=customer.id, conversation_id=conversation_id, title=title,
                note=note, due_at=due_at, assignee_id=assignee_id, created_by=actor.user_id)
    session.add(task)
    session.flush()
    record_audit(session, actor, entity_type="task", entity_id=task.id, action="created",
                 after={"customer_id": customer.id, "title": title, "assignee_id": assignee_id})
    after_commit(session, Event("task.created", workspace_id, task_event_data(task)))
    return task


def get_task(session: Session, actor: Actor, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.workspace_id != actor.workspace_id:
        raise NotFound(f"task {task_id} not found")
    return task


def list_tasks(session: Session, actor: Actor, *, customer_id: int | None = None,
               conversation_id: int | None = None, assignee_id: int | None = None, open_only: bool = True,
               cursor: str | None = None, limit: int = 50) -> tuple[list[Task], str | None]:
    """Tasks newest first (open ones by default)."""
    stmt = select(Task).where(Task.workspace_id == actor.workspace_id)
    if customer_id is not None:
        stmt = stmt.where(Task.customer_id == customer_id)
    if conversation_id is not None:
        stmt = stmt.where(Task.conversation_id == conversation_id)
    if assignee_id is not None:
        stmt = stmt.where(Task.assignee_id == assignee_id)
    if open_only:
        stmt = stmt.where(Task.done_at.is_(None))
    if cursor:
        _, last_id = decode_cursor(cursor)
        stmt = stmt.where(Task.id < last_id)
    rows = list(session.scalars(stmt.order_by(Task.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(None, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def open_tasks_of(session: Session, workspace_id: int, customer_ids: Sequence[int], limit: int = 50
                  ) -> list[Task]:
    """Open tasks of some customers, soonest due first (the customer panel)."""
    if not customer_ids:
        return []
    return list(session.scalars(
        select(Task).where(Task.workspace_id == workspace_id, Task.customer_id.in_(customer_ids),
                           Task.done_at.is_(None))
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id).limit(limit)))


def update_task(session: Session, actor: Actor, task_id: int, changes: dict[str, Any]) -> Task:
    task = get_task(session, actor, task_id)
    before = task_event_data(task)
    for key, value in changes.items():
        if key == "title":
            task.title = _check_title(value)
        elif key == "note":
            task.note = _check_note(value or "")
        elif key == "due_at":
            task.due_at = _check_due(value)
        elif key == "assignee_id":
            _check_assignee(session, actor.workspace_id, value)
            task.assignee_id = value
        elif key == "done":
            if value is None:
                raise field_error("done", "true or false")
            if value and task.done_at is None:
                task.done_at, task.done_by = utcnow(), actor.user_id
            elif not value:
                task.done_at = task.done_by = None
        else:
            raise field_error(key, "cannot be changed")
    session.flush()
    record_audit(session, actor, entity_type="task", entity_id=task.id, action="updated", before=before,
                 after=task_event_data(task))
    after_commit(session, Event("task.updated", actor.workspace_id, task_event_data(task)))
    return task


def complete_task(session: Session, actor: Actor, task_id: int) -> Task:
    """Mark done; completing a task twice is a conflict, so two agents never both think they did it."""
    task = get_task(session, actor, task_id)
    if task.done_at is not None:
        raise Conflict(f"task {task_id} is already done", code="already_done")
    return update_task(session, actor, task_id, {"done": True})


def delete_task(session: Session, actor: Actor, task_id: int) -> None:
    task = get_task(session, actor, task_id)
    if task.created_by != actor.user_id:
        actor.require(Role.supervisor)
    record_audit(session, actor, entity_type="task", entity_id=task.id, action="deleted",
                 before=task_event_data(task))
    session.delete(task)


def _move_tasks(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    return affected(session.execute(update(Task).where(Task.workspace_id == workspace_id,
                                                       Task.customer_id == source_id)
                                    .values(customer_id=target_id)))


register_merge_mover("tasks", _move_tasks)
