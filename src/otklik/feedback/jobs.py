"""Surveys at work: a conversation that becomes solved gets its CSAT survey from a job, after commit."""

from __future__ import annotations

import logging

from otklik.feedback import service
from otklik.platform.db import run_transaction
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


@task()  # idempotent: a second run finds the survey already sent
def send_survey(workspace_id: int, conversation_id: int) -> bool:
    try:
        sent = run_transaction(lambda session: service.send_csat(session, workspace_id, conversation_id))
    except DomainError as exc:  # the channel refuses a message now (e.g. WhatsApp's 24-hour window): no survey
        log.info("no survey for conversation %s: %s", conversation_id, exc.message)
        return False
    return sent is not None


def install() -> None:
    """Subscribe to `conversation.updated` on this process's bus (`Bus.on` keeps a handler once)."""
    get_bus().on("conversation.updated", on_conversation_updated)
