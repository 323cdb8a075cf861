"""Background work of proactive messages: reactions to order and message events, the campaign runner, and the
periodic sweep (late orders, replenishment, sends whose time came, campaigns due or left by a dead worker).

Jobs are nudges: the send rows and the campaign's cursor are the truth, so running one twice changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from sqlalchemy.orm import Session

from otklik.platform.db import run_transaction
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import huey, task
from otklik.proactive import service

log = logging.getLogger(__name__)
CAMPAIGN_SLICE_SECONDS = 20.0  # a campaign job gives its worker back after this and enqueues the rest
REPLENISHMENT_EVERY_SECONDS = 3600.0
_last_replenishment = 0.0
_lock = threading.Lock()


def on_order_status_changed(event: Event) -> None:
    status, order_id = event.data.get("to"), event.data.get("order_id")
    if status not in service.ORDER_EVENT_TRIGGERS or not isinstance(order_id, int):
        return
    run_transaction(lambda db: service.on_order_status(db, event.workspace_id, order_id, str(status)))


def on_message_created(event: Event) -> None:
    """A customer's «стоп» / «отписаться» opts them out (every channel's inbound message passes here)."""
    data = event.data
    if data.get("direction") != "inbound" or not service.is_stop_reply(str(data.get("body_text") or "")):
        return
    message_id = data.get("id")
    if isinstance(message_id, int):
        run_transaction(lambda db: service.on_customer_message(db, event.workspace_id, message_id))


def run_campaign_now(campaign_id: int, *, seconds: float | None = None, batch: int = service.BATCH) -> dict[str, Any]:
    """Run a campaign's batches (each its own transaction) until it is done or `seconds` pass."""
    started = time.monotonic()
    totals = {"queued": 0, "pending": 0, "skipped": 0, "claimed": 0, "done": False}
    while True:
        step = run_transaction(lambda db: service.run_campaign_batch(db, campaign_id, batch=batch))
        for key in ("queued", "pending", "skipped", "claimed"):
            totals[key] = int(totals[key]) + int(step.get(key, 0))
        if step["done"]:
            totals["done"] = True
            return totals
        if seconds is not None and time.monotonic() - started > seconds:
            return totals


@task(retries=5, retry_delay=30)
def run_campaign(campaign_id: int) -> str:
    totals = run_campaign_now(campaign_id, seconds=None if huey.immediate else CAMPAIGN_SLICE_SECONDS)
    if not totals["done"]:
        run_campaign(campaign_id)  # the rest in a fresh job: other work gets the worker in between
    return f"queued {totals['queued']}, skipped {totals['skipped']}"


def sweep() -> dict[str, int]:
    """Every worker runs it every minute; whatever it fires is claimed by a unique row, so overlapping sweeps
    write to nobody twice."""
    global _last_replenishment
    out: dict[str, int] = {}
    out["delayed"] = run_transaction(lambda db: service.fire_delayed(db))
    with _lock:
        due = time.monotonic() - _last_replenishment > REPLENISHMENT_EVERY_SECONDS
        if due:
            _last_replenishment = time.monotonic()
    if due:
        out["replenishment"] = run_transaction(lambda db: service.fire_replenishment(db))
    out["due"] = run_transaction(lambda db: service.decide_due(db))
    out["due_campaign"] = run_transaction(lambda db: service.decide_due_campaign_sends(db))

    def campaigns(db: Session) -> list[int]:
        return service.start_due_campaigns(db) + service.stalled_campaigns(db)

    ids = run_transaction(campaigns)
    for campaign_id in ids:
        run_campaign(campaign_id)
    out["campaigns"] = len(ids)
    return out


def install() -> None:
    get_bus().on("order.status_changed", on_order_status_changed)
    get_bus().on("message.created", on_message_created)



