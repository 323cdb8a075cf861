"""Surveys at work: a conversation that becomes solved gets its CSAT survey from a job, after commit; the worker's
sweep asks the customers due an NPS survey (feedback/nps.py), one job each."""

from __future__ import annotations

import datetime as dt
import functools
import logging

from otklik.feedback import service
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import DomainError
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import task

log = logging.getLogger(__name__)
def on_conversation_updated(event: Event) -> None:
    data = event.data
    if "status" in (data.get("changed") or []) and data.get("status") == "solved":
        send_survey(event.workspace_id, int(data["id"]))
        score_qa(event.workspace_id, int(data["id"]))


@task()  # idempotent: a second run stores the same scorecard
def score_qa(workspace_id: int, conversation_id: int) -> float | None:
    """The solved conversation's automatic QA scorecard (docs/qa.md), stored."""
    from otklik.feedback import qa

    row = run_transaction(lambda session: qa.store_auto(session, workspace_id, conversation_id))
    return None if row is None else row.score


@task()  # idempotent: a second run stores the same scorecards
def rescore_qa(workspace_id: int) -> int:
    """Every solved conversation of the workspace scored again (after the scorecard or the phrase rules
    changed), in batches of 200 — one transaction and one read of each table a batch (docs/qa.md)."""
    from otklik.feedback import qa

    after, scored = 0, 0
    while True:
        with session_scope(write=False) as session:
            ids = qa.solved_ids_after(session, workspace_id, after)
        if not ids:
            return scored
        scored += run_transaction(functools.partial(qa.store_auto_many, workspace_id=workspace_id,
                                                    conversation_ids=ids))
        after = ids[-1]


@task()  # idempotent: a second run finds the survey already sent
def send_survey(workspace_id: int, conversation_id: int) -> bool:
    try:
        sent = run_transaction(lambda session: service.send_csat(session, workspace_id, conversation_id))
    except DomainError as exc:  # the channel refuses a message now (e.g. WhatsApp's 24-hour window): no survey
        log.info("no survey for conversation %s: %s", conversation_id, exc.message)
        return False
    return sent is not None


@task()  # idempotent: the quarter rule, checked under the customer's row lock, makes a second run a no-op
def send_nps(workspace_id: int, customer_id: int, trigger: str, trigger_at: str, conversation_id: int | None,
             order_number: str | None = None, now: str | None = None) -> bool:
    """`now`: the sweep's instant (the survey's sent time), so the quarter rule counts from when it was due."""
    from otklik.feedback import nps

    item = nps.Due(customer_id, trigger, dt.datetime.fromisoformat(trigger_at), conversation_id, order_number)
    at = dt.datetime.fromisoformat(now) if now else None
    try:
        answer, reason = run_transaction(lambda session: nps.send(session, workspace_id, item, now=at))
    except DomainError as exc:  # the channel refuses a message now (WhatsApp's 24-hour window): not this time
        log.info("no NPS survey for customer %s: %s", customer_id, exc.message)
        return False
    if answer is None:
        log.debug("no NPS survey for customer %s: %s", customer_id, reason)
    return answer is not None


def sweep_nps(now: dt.datetime | None = None, workspace_id: int | None = None) -> int:
    """Every workspace with NPS on (or only `workspace_id`): the customers due now, one `send_nps` job each.
    Returns how many were due."""
    from otklik.feedback import nps

    now = now or utcnow()
    with session_scope(write=False) as session:
        work = [(ws, nps.due(session, ws, now=now, delay_days=delay)) for ws, delay in nps.enabled_workspaces(session)
                if workspace_id is None or ws == workspace_id]
    count = 0
    for workspace_id, items in work:
        for item in items:
            send_nps(workspace_id, item.customer_id, item.trigger, nps._aware(item.trigger_at).isoformat(),
                     item.conversation_id, item.order_number, now.isoformat())
            count += 1
    return count


def install() -> None:
    """Subscribe to `conversation.updated` on this process's bus (`Bus.on` keeps a handler once)."""
    get_bus().on("conversation.updated", on_conversation_updated)
