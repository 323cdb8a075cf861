"""Rules at work: the bus events they react to (after commit), the job that runs them, the time-rule sweep and
the webhook job (signed POST, retried; the secret never reaches a log line)."""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import DomainError
from otklik.platform.events import Event, get_bus
from otklik.platform.jobs import task

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT = 10.0
WEBHOOK_RETRIES = 4


def trigger_of(event: Event) -> tuple[str, int] | None:
    """(trigger, conversation id) of a bus event, or None when no rule reacts to it."""
    data = event.data
    if event.type == "message.created":
        if (data.get("direction") == "inbound" and data.get("author_kind") == "customer"
                and not data.get("is_internal")):
            return "customer_message", int(data["conversation_id"])
        return None
    if event.type == "conversation.created":
        return "conversation_created", int(data["id"])
    if event.type in ("sla.warning", "sla.breached"):
        return event.type.replace(".", "_"), int(data["conversation_id"])
    if event.type == "assistant.handoff":
        return "assistant_handoff", int(data["conversation_id"])
    return None


def on_event(event: Event) -> None:
    from otklik.service_levels.service import enabled_triggers

    data = event.data
    origin = data.get("origin") or {}
    used = enabled_triggers(event.workspace_id)
    if not used:
        return  # no enabled rule in this workspace: no job
    if event.type == "conversation.updated":
        changed = data.get("changed") or []
        if not changed:
            return
        triggers = ["conversation_updated"]
        if "status" in changed:
            triggers.append("status_changed")
        if data.get("tags_added"):
            triggers.append("tag_added")
        for trigger in triggers:
            if trigger in used:
                run_rules(event.workspace_id, trigger, int(data["id"]), origin, None)
        return
    found = trigger_of(event)
    if found is not None and found[0] in used:
        text = data.get("body_text") if event.type == "message.created" else None
        run_rules(event.workspace_id, found[0], found[1], origin, text)


@task()  # not retried: a retry would apply the rules that already ran again
def run_rules(workspace_id: int, trigger: str, conversation_id: int, origin: dict[str, Any],
              text: str | None) -> int:
    """Run the workspace's enabled rules for `trigger` on one conversation, each in its own transaction."""
    from otklik.service_levels import service

    depth = int(origin.get("depth") or 0)
    with session_scope(write=False) as session:
        rules = service.rules_for(session, workspace_id, trigger)
    ran = 0
    for rule_id, rule_name in rules:
        if rule_id == origin.get("rule_id"):
            continue  # a rule never runs on its own change
        if depth >= service.MAX_DEPTH:
            _record_error(workspace_id, rule_id, rule_name, conversation_id, trigger, depth,
                          f"loop protection: a chain of rules stops at depth {service.MAX_DEPTH}", matched=False)
            continue
        try:
            run_transaction(partial(service.run_one, rule_id=rule_id, conversation_id=conversation_id,
                                    trigger=trigger, depth=depth, text=text))
        except Exception as exc:  # one rule's failure is its run's error; the other rules still run
            if not isinstance(exc, DomainError):
                log.exception("rule %s failed on conversation %s", rule_id, conversation_id)
            message = exc.message if isinstance(exc, DomainError) else "internal error (see the server log)"
            _record_error(workspace_id, rule_id, rule_name, conversation_id, trigger, depth, message)
        ran += 1
    return ran


def _record_error(workspace_id: int, rule_id: int, rule_name: str, conversation_id: int, trigger: str, depth: int,
                  error: str, *, matched: bool = True) -> None:
    from otklik.service_levels import service

    def work(session: Session) -> None:
        service.record_run(session, workspace_id=workspace_id, rule_id=rule_id, rule_name=rule_name,
                           conversation_id=conversation_id, trigger=trigger, matched=matched, depth=depth,
                           error=error[:1000])

    run_transaction(work)


def sweep_time_rules(workspace_id: int | None = None) -> int:
    """Run the time rules that are due («pending for 3 days»): every worker may run it; each idle stretch of a
    conversation fires a rule once (the run is re-checked under the conversation's row lock). `workspace_id`:
    one workspace's rules only."""
    from otklik.service_levels import service
    from otklik.service_levels.models import Rule

    with session_scope(write=False) as session:
        pairs = service.time_candidates(session, workspace_id=workspace_id)
    for rule_id, conversation_id in pairs:
        try:
            run_transaction(partial(service.run_one, rule_id=rule_id, conversation_id=conversation_id,
                                    trigger="time", depth=0))
        except Exception as exc:
            if not isinstance(exc, DomainError):
                log.exception("time rule %s failed on conversation %s", rule_id, conversation_id)
            message = exc.message if isinstance(exc, DomainError) else "internal error (see the server log)"
            with session_scope(write=False) as session:
                rule = session.get(Rule, rule_id)
                workspace_id, name = (rule.workspace_id, rule.name) if rule is not None else (None, "")
            if workspace_id is not None:
                _record_error(workspace_id, rule_id, name, conversation_id, "time", 0, message)
    return len(pairs)


class WebhookFailed(Exception):
    """A retryable failure (network, timeout, 5xx, 429); the message names the host, never the secret."""


@task(retries=WEBHOOK_RETRIES, retry_delay=10)
def call_webhook(rule_id: int, index: int, body: str) -> str:
    import httpx

    from otklik.service_levels import actions
    from otklik.service_levels.models import Rule

    with session_scope(write=False) as session:
        rule = session.get(Rule, rule_id)
        target = actions.webhook_target(session, rule.actions or [], index) if rule is not None else None
    if target is None:
        return "gone"  # the rule or its webhook was removed meanwhile
    url, secret = target
    raw = body.encode()
    headers = {"content-type": "application/json", actions.SIGNATURE_HEADER: actions.sign(raw, secret),
               "Idempotency-Key": f"rule-{rule_id}-{index}-{json.loads(body)['conversation']['version']}"}
    host = urlsplit(url).netloc
    try:
        response = httpx.post(url, content=raw, headers=headers, timeout=WEBHOOK_TIMEOUT)
    except httpx.HTTPError as exc:
        log.warning("rule %s webhook to %s failed: %s", rule_id, host, type(exc).__name__)
        raise WebhookFailed(f"{host}: {type(exc).__name__}") from None
    if response.status_code >= 500 or response.status_code == 429:
        log.warning("rule %s webhook to %s answered %s; retrying", rule_id, host, response.status_code)
        raise WebhookFailed(f"{host}: HTTP {response.status_code}")
    if response.status_code >= 400:
        log.warning("rule %s webhook to %s refused with %s (not retried)", rule_id, host, response.status_code)
        return f"refused {response.status_code}"
    return "sent"


EVENTS = ("message.created", "conversation.created", "conversation.updated", "sla.warning", "sla.breached",
          "assistant.handoff")


def install() -> None:
    """Subscribe the rules to this process's bus (`Bus.on` keeps a handler once)."""
    bus = get_bus()
    for event_type in EVENTS:
        bus.on(event_type, on_event)
