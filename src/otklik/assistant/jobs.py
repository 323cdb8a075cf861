"""Background work of the assistant: one Huey job per inbound customer message, plus a recovery sweep."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from typing import Any

from otklik.platform import metrics
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.errors import DomainError
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import is_permanent, task

log = logging.getLogger(__name__)
SWEEP_WINDOW = dt.timedelta(hours=6)


@task(retries=3, retry_delay=2)
def assistant_process(message_id: int) -> str:
    from sqlalchemy.exc import IntegrityError

    from otklik.assistant.service import process_message, record_failure

    started = time.perf_counter()
    outcome = "error"  # an exception: the job is retried, and each try is timed
    try:
        result = run_transaction(lambda session: _decide(process_message(session, message_id)))
        outcome = result[1]
        return result[0]
    except IntegrityError:  # a concurrent worker stored the decision for this message first
        outcome = "duplicate"
        return "duplicate"
    except DomainError as exc:
        if not is_permanent(exc):
            raise
        # no retry and no sweep can mend it: the failure becomes the message's decision, the agent gets a note
        log.warning("assistant gave up on message %s (not retried): %s %s", message_id, exc.code, exc.message)
        error = exc
        with contextlib.suppress(IntegrityError):  # a concurrent worker recorded it first
            run_transaction(lambda session: record_failure(session, message_id, error))
        outcome = "gave_up"
        return "gave up"
    finally:
        metrics.ASSISTANT_DECISIONS.labels(outcome).observe(time.perf_counter() - started)


def _decide(outcome: Any) -> tuple[str, str]:
    """(the job's result, the metric's outcome: the decision's action, or skipped / duplicate)."""
    decision = outcome.decision
    return outcome.status, (decision.action if outcome.status == "decided" and decision is not None
                            else outcome.status)


@task(retries=2, retry_delay=5)
def assistant_learn(message_id: int) -> str:
    """An agent's reply: propose the question it answers as a variant of its article (`learning`)."""
    from sqlalchemy.exc import IntegrityError

    from otklik.assistant.learning import plan_from_reply, store

    # read (and, for the reply's own words, search the KB: it may build the index) without the write lock,
    # then write the proposal in a short transaction of its own
    with session_scope(write=False) as session:
        plan = plan_from_reply(session, message_id)
    if plan is None:
        return "nothing to learn"
    try:
        proposal_id = run_transaction(lambda session: getattr(store(session, plan), "id", None))
    except IntegrityError:  # the same proposal stored by a concurrent run
        return "duplicate"
    return f"proposed {proposal_id}" if proposal_id else "already proposed"


def on_message_created(event: Event) -> None:
    data = event.data
    if data.get("is_internal"):
        return
    if data.get("direction") == "inbound" and data.get("author_kind") == "customer":
        assistant_process(int(data["id"]))
    elif data.get("direction") == "outbound" and data.get("author_kind") == "agent":
        assistant_learn(int(data["id"]))


def sweep_pending() -> int:
    """Re-enqueue customer messages of the last hours that have no decision (a crash between commit and job),
    then keep the KB indexes of the workspaces with the assistant on built (`service.warm_indexes`)."""
    from otklik.assistant.service import pending_message_ids, warm_indexes

    with session_scope(write=False) as session:
        ids = pending_message_ids(session, since=utcnow() - SWEEP_WINDOW)
    for message_id in ids:
        assistant_process(message_id)
    try:
        with session_scope(write=False) as session:
            warm_indexes(session)
    except Exception:  # a broken KB must not stop the recovery sweep; the message's own job reports it
        log.exception("warming the KB indexes failed")
    return len(ids)


def install() -> None:
    """Subscribe the assistant to `message.created` on this process's bus (`Bus.on` keeps a handler once)."""
    get_bus().on("message.created", on_message_created)
