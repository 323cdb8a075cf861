"""Background work of the CRM integration, through the platform's job queue: a solved conversation's note,
a webhook's changes, the bulk sync, and the periodic sweep that retries what failed or a dead worker left.

Jobs are nudges: the rows (`crm_notes`, `crm_syncs`) are the truth, so running one twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select

from otklik.accounts.models import Role
from otklik.crm import service
from otklik.crm.base import is_transient
from otklik.crm.models import CrmConnection, CrmSync
from otklik.platform.db import session_scope
from otklik.platform.errors import DomainError
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import huey, task

log = logging.getLogger(__name__)
SYNC_SLICE_SECONDS = 20.0  # a sync job gives its worker back after this and enqueues the rest
RETRY_AFTER = dt.timedelta(minutes=2)


def on_conversation_updated(event: Event) -> None:
    data = event.data
    if "status" in (data.get("changed") or []) and data.get("status") == "solved":
        with session_scope(write=False) as session:
            connection_ids = service.note_connections(session, event.workspace_id)
        for connection_id in connection_ids:
            write_note(connection_id, int(data["id"]))


def on_conversation_created(event: Event) -> None:
    """A customer starts a conversation: their CRM contact is found (or created, when the connection creates
    contacts) and its deals/orders read, so the agent sees them while answering, not only after the solve."""
    customer_id = event.data.get("customer_id")
    if not isinstance(customer_id, int):
        return
    with session_scope(write=False) as session:
        connection_ids = service.enabled_connections(session, event.workspace_id)
    for connection_id in connection_ids:
        refresh_customer(connection_id, customer_id)


def _quietly(what: str, fn: object, *args: object) -> str:
    try:
        return str(fn(*args))  # type: ignore[operator]
    except Exception as exc:
        if is_transient(exc):
            raise  # Huey tries again after retry_delay
        log.info("crm %s%r: %s", what, args, exc.message if isinstance(exc, DomainError) else type(exc).__name__)
        return "failed"


@task(retries=3, retry_delay=30)
def write_note(connection_id: int, conversation_id: int) -> str:
    return _quietly("note", service.write_conversation_note, connection_id, conversation_id)


@task(retries=3, retry_delay=30)
def apply_change(connection_id: int, entity: str, external_id: str, contact_id: str | None) -> str:
    return _quietly("change", service.apply_change, connection_id, entity, external_id, contact_id)


@task(retries=2, retry_delay=10)
def refresh_customer(connection_id: int, customer_id: int) -> str:
    return _quietly("refresh", service.refresh_customer_deals, connection_id, customer_id)


@task(retries=5, retry_delay=30)
def run_sync(sync_id: int) -> str:
    try:
        more = service.run_sync(sync_id, seconds=None if huey.immediate else SYNC_SLICE_SECONDS)
    except Exception as exc:
        if is_transient(exc):
            raise
        return "failed"
    if more:
        run_sync(sync_id)
    return "more" if more else "done"


@task(retries=2, retry_delay=30)
def pull_feed(connection_id: int) -> int:
    """A connector's change feed (RetailCRM's order history) read now, each change applied by its own job."""
    try:
        changes = service.pull_changes(connection_id)
    except DomainError as exc:
        if is_transient(exc):
            raise
        return 0
    for change in changes:
        apply_change(connection_id, change.entity, change.id, change.contact_id)
    return len(changes)


# -- what the admin's buttons start (the API and the settings page) --------------------------------------

def retry_failed(actor: Any, connection_id: int) -> int:
    """The failed notes of a connection go back to the job queue (the settings page's «Retry» button)."""
    actor.require(Role.admin)
    with session_scope() as session:
        service.get_connection(session, actor, connection_id)
        pending = service.notes_to_retry(session, connection_id=connection_id)
        sync_ids = [s.id for s in [service.latest_sync(session, connection_id)] if s is not None
                    and s.status in ("failed", "running")]
        for sync_id in sync_ids:
            service.resume_sync(session, actor, sync_id)
    for conn_id, conversation_id in pending:
        write_note(conn_id, conversation_id)
    for sync_id in sync_ids:
        run_sync(sync_id)
    return len(pending) + len(sync_ids)


def begin_sync(actor: Any, connection_id: int, create_missing: bool) -> CrmSync:
    """Starts (or finds the running) bulk sync and hands it to the job queue."""
    with session_scope() as session:
        sync_id = service.start_sync(session, actor, connection_id, create_missing=create_missing).id
    run_sync(sync_id)
    with session_scope(write=False) as session:
        return _detached(session, sync_id)


def _detached(session: Any, sync_id: int) -> CrmSync:
    sync = session.get(CrmSync, sync_id)
    session.expunge(sync)
    return sync


def refresh_all(actor: Any, customer_id: int) -> int:
    with session_scope(write=False) as session:
        survivor = service.check_customer(session, actor, customer_id)
        ids = [c.id for c in service.list_connections(session, actor) if c.enabled]
    for connection_id in ids:
        refresh_customer(connection_id, survivor)
    return len(ids)


def sweep() -> int:
    """Every minute in the worker: failed/stale notes again, syncs whose worker died, change feeds read."""
    with session_scope(write=False) as session:
        notes = service.notes_to_retry(session, older_than=RETRY_AFTER)
        syncs = service.syncs_to_resume(session)
        feeds = list(session.scalars(select(CrmConnection.id).where(
            CrmConnection.enabled.is_(True), CrmConnection.kind == "retailcrm",
            CrmConnection.status != "disconnected")))
    for connection_id, conversation_id in notes:
        write_note(connection_id, conversation_id)
    for sync_id in syncs:
        run_sync(sync_id)
    for connection_id in feeds:
        pull_feed(connection_id)
    return len(notes) + len(syncs)


def install() -> None:
    """A new conversation links its customer and reads the CRM's deals; a solved one's summary goes to each
    connected CRM (`Bus.on` keeps a handler once)."""
    get_bus().on("conversation.updated", on_conversation_updated)
    get_bus().on("conversation.created", on_conversation_created)
