"""Background work of the channels: slow parts of inbound events (media downloads), pollers, sweeps."""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.platform.db import affected, session_scope, utcnow
from otklik.platform.events import after_commit
from otklik.platform.jobs import task

log = logging.getLogger(__name__)
MAX_EVENT_ATTEMPTS = 5
STALE_SECONDS = 60
KEEP_DAYS = 7


@task(retries=0)
def process_channel_event(event_id: int) -> str:
    from otklik.channels.base import get_plugin

    with session_scope() as session:
        # claim: bump attempts so a crash loop ends in `failed` instead of retrying forever
        claimed = affected(session.execute(
            update(ChannelEvent).where(ChannelEvent.id == event_id, ChannelEvent.status == EventStatus.pending.value,
                                       ChannelEvent.attempts < MAX_EVENT_ATTEMPTS)
            .values(attempts=ChannelEvent.attempts + 1)))
        kind = session.scalar(select(ChannelAccount.kind).join(ChannelEvent, ChannelEvent.account_id == ChannelAccount.id)
                              .where(ChannelEvent.id == event_id)) if claimed else None
    plugin = get_plugin(kind) if kind else None
    if plugin is None:
        return "skipped"
    try:
        plugin.process_pending(event_id)
    except Exception as exc:
        log.warning("channel event %s failed: %s", event_id, type(exc).__name__)
        with session_scope() as session:
            event = session.get(ChannelEvent, event_id)
            if event is not None and event.status == EventStatus.pending.value:
                event.error = f"{type(exc).__name__}: {exc}"[:2000]
                if event.attempts >= MAX_EVENT_ATTEMPTS:
                    event.status = EventStatus.failed.value
        return "failed"
    return "done"


def enqueue_event_after_commit(session: Session, event_id: int) -> None:
    after_commit(session, lambda: process_channel_event(event_id))


def prune_events() -> int:
    """Forget finished events after KEEP_DAYS: vendors retry for hours (MAX: up to 8 h), never for days."""
    cutoff = utcnow() - dt.timedelta(days=KEEP_DAYS)
    with session_scope() as session:
        ids = list(session.scalars(select(ChannelEvent.id).where(
            ChannelEvent.status == EventStatus.done.value, ChannelEvent.received_at < cutoff,
            ~ChannelEvent.event_id.startswith("out:")).limit(5000)))  # delivered parts: kept for late retries
        if ids:
            session.execute(delete(ChannelEvent).where(ChannelEvent.id.in_(ids)))
    return len(ids)


def sweep_events() -> int:
    """Re-enqueue pending events a crashed worker (or a failed attempt) left behind; prune old ones."""
    prune_events()
    cutoff = utcnow() - dt.timedelta(seconds=STALE_SECONDS)
    with session_scope(write=False) as session:
        ids = list(session.scalars(select(ChannelEvent.id).where(
            ChannelEvent.status == EventStatus.pending.value, ChannelEvent.received_at < cutoff,
            ChannelEvent.attempts < MAX_EVENT_ATTEMPTS).order_by(ChannelEvent.id).limit(200)))
    for event_id in ids:
        process_channel_event(event_id)
    return len(ids)
