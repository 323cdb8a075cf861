"""Background work of agent notifications, through the platform's job queue.

An event handler only enqueues `notify_for_event`; the job records one row per agent (idempotent by its unique
key) and enqueues `deliver`, which sends now or, inside an agent's grouping window, schedules itself for the
window's end. `sweep` (periodic) picks up whatever a crashed worker left.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from otklik.notifications import service
from otklik.platform.db import session_scope, utcnow
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import task

log = logging.getLogger(__name__)


def on_event(event: Event) -> None:
    """Enqueues only what may notify someone: a customer's message or a note (not agents' and the assistant's
    replies), in a workspace where at least one agent linked Telegram (one indexed lookup, no job otherwise)."""
    data = event.data
    if event.type == "message.created" and not (data.get("author_kind") == "customer" or data.get("is_internal")):
        return
    if event.type == "conversation.updated" and "team_id" not in (data.get("changed") or []):
        return  # only a move to another team is news
    with session_scope(write=False) as session:
        if not service.workspace_has_links(session, event.workspace_id):
            return
    notify_for_event(event.type, event.workspace_id, dict(data))


@task(retries=3, retry_delay=10)
def notify_for_event(event_type: str, workspace_id: int, data: dict[str, Any]) -> int:
    with session_scope() as session:
        planned = service.plan(session, event_type, workspace_id, data)
        told = service.record(session, workspace_id, planned) if planned is not None and planned.user_ids else []
    for user_id in told:
        deliver(user_id)
    return len(told)


@task(retries=3, retry_delay=15)
def deliver(user_id: int) -> str:
    outcome = service.deliver_to(user_id)
    if outcome.result == "held" and outcome.retry_at is not None:
        delay = max(1.0, (outcome.retry_at - utcnow()).total_seconds() + 0.5)
        deliver.schedule(args=(user_id,), delay=delay)
    return outcome.result


def sweep(now: dt.datetime | None = None) -> int:
    """Deliver to every agent whose pending notifications wait on an open slot (also after a crash)."""
    users = service.due_users(now=now)
    for user_id in users:
        try:
            service.deliver_to(user_id, now=now)
        except Exception:
            log.exception("notification delivery to user %s failed; the next sweep tries again", user_id)
    return len(users)


def install() -> None:
    """Subscribe to this process's bus (`Bus.on` keeps a handler once)."""
    bus = get_bus()
    for event_type in service.EVENTS:
        bus.on(event_type, on_event)
