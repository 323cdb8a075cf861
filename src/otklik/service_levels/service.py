"""Automation rules (when / if / then) and macros: storage, checks, evaluation and the runs.

Semantics (docs/service-levels.md, «Rules and macros»):
- a rule has one trigger (`TRIGGERS`), conditions that must all hold (`FIELDS`), and actions (`actions.py`);
- enabled rules of a trigger run in order (position, then id), each in its own transaction: its actions and its
  run log row are kept together, or (on an error) only the run with the error;
- loop protection: what a rule changes is announced with `origin = {"rule_id", "depth"}`; the rule that made a
  change never runs on that change, and a chain of rules reacting to each other stops at `MAX_DEPTH` (logged).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, Team, User
from otklik.accounts.service import Actor, record_audit
from otklik.calendars.engine import CalendarRangeError
from otklik.calendars.service import calendar_for, engine_of
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, Direction, Message, Priority, Status
from otklik.customers.models import Customer
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, NotFound, field_error
from otklik.platform.events import after_commit
from otklik.service_levels import actions as action_kit
from otklik.service_levels.models import Macro, Rule, RuleRun

TRIGGERS = ("conversation_created", "customer_message", "conversation_updated", "status_changed", "tag_added",
            "sla_warning", "sla_breached", "assistant_handoff", "time")
FIELDS = ("channel", "status", "priority", "team_id", "assignee_id", "category", "language", "tags", "text",
          "sentiment", "urgent", "business_hours", "transfer_count", "loyalty_tier")  # and customer.<attribute>
OPS = ("is", "is_not", "contains", "not_contains")
MAX_DEPTH = 5
MAX_RULES = 200
MAX_CONDITIONS = 20
DRY_RUN_SIZE = 100
TIME_BATCH = 200
RULE_ACTOR_KIND = "rule"


# -- checks -------------------------------------------------------------------------------------------------------

def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        raise field_error("name", "1-120 characters")
    return name.strip()


def check_trigger(trigger: Any, options: Any) -> tuple[str, dict[str, Any]]:
    if trigger not in TRIGGERS:
        raise field_error("trigger", f"one of: {', '.join(TRIGGERS)}")
    if trigger != "time":
        return trigger, {}
    if not isinstance(options, dict):
        raise field_error("trigger_options", "{\"status\": …, \"hours\": …} for a time trigger")
    status = options.get("status")
    if status not in (Status.new.value, Status.open.value, Status.pending.value, Status.solved.value):
        raise field_error("trigger_options.status", "one of: new, open, pending, solved")
    hours = options.get("hours")
    if isinstance(hours, bool) or not isinstance(hours, int) or not 1 <= hours <= 24 * 365:
        raise field_error("trigger_options.hours", f"a whole number of hours, 1-{24 * 365}")
    return trigger, {"status": status, "hours": hours}


def _as_list(value: Any, field: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    if not items or len(items) > 100:
        raise field_error(field, "one value or a list of 1-100")
    return items


def check_conditions(session: Session, workspace_id: int, value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > MAX_CONDITIONS:
        raise field_error("conditions", f"a list of at most {MAX_CONDITIONS} conditions")
    out = []
    for i, cond in enumerate(value):
        at = f"conditions.{i}"
        if not isinstance(cond, dict):
            raise field_error(at, "an object with field, op and value")
        name, op, v = cond.get("field"), cond.get("op", "is"), cond.get("value")
        is_attr = isinstance(name, str) and name.startswith("customer.") and 9 < len(name) <= 72
        if name not in FIELDS and not is_attr:
            raise field_error(f"{at}.field", f"one of: {', '.join(FIELDS)}, customer.<attribute>")
        if op not in OPS:
            raise field_error(f"{at}.op", f"one of: {', '.join(OPS)}")
        if name in ("text", "tags"):
            if op not in ("contains", "not_contains"):
                raise field_error(f"{at}.op", "contains or not_contains")
            words = [" ".join(str(w).split()).lower() for w in _as_list(v, f"{at}.value")]
            if not all(words) or any(len(w) > 200 for w in words):
                raise field_error(f"{at}.value", "words or phrases of 1-200 characters")
            out.append({"field": name, "op": op, "value": words})
            continue
        if op not in ("is", "is_not"):
            raise field_error(f"{at}.op", "is or is_not")
        if name in ("urgent", "business_hours"):
            if not isinstance(v, bool):
                raise field_error(f"{at}.value", "true or false")
            out.append({"field": name, "op": op, "value": v})
            continue
        items = _as_list(v, f"{at}.value")
        if name == "status" and any(x not in {s.value for s in Status} for x in items):
            raise field_error(f"{at}.value", f"one of: {', '.join(s.value for s in Status)}")
        if name == "priority" and any(x not in {p.value for p in Priority} for x in items):
            raise field_error(f"{at}.value", f"one of: {', '.join(p.value for p in Priority)}")
        if name == "channel" and any(x not in conversations.CHANNELS for x in items):
            raise field_error(f"{at}.value", f"one of: {', '.join(conversations.CHANNELS)}")
        if name == "sentiment" and any(x not in ("negative", "neutral", "positive") for x in items):
            raise field_error(f"{at}.value", "negative, neutral or positive")
        if name in ("team_id", "assignee_id"):
            model: Any = Team if name == "team_id" else User
            for j, x in enumerate(items):
                if x is None:
                    continue  # no team / unassigned
                row = session.get(model, x) if isinstance(x, int) and not isinstance(x, bool) else None
                if row is None or row.workspace_id != workspace_id:
                    raise field_error(f"{at}.value.{j}" if len(items) > 1 else f"{at}.value", f"{x} not found")
        elif any(not isinstance(x, str | int | float) or isinstance(x, bool) or len(str(x)) > 200 for x in items):
            raise field_error(f"{at}.value", "text values of at most 200 characters")
        out.append({"field": name, "op": op, "value": items})
    return out


# -- which triggers a workspace uses (so an event with no rule to run costs no job) ----------------------------------

TRIGGERS_TTL = 5.0  # seconds another process may take to see a new rule's trigger
_triggers: dict[int, tuple[float, frozenset[str]]] = {}


def enabled_triggers(workspace_id: int) -> frozenset[str]:
    """The triggers of the workspace's enabled rules, cached per process for `TRIGGERS_TTL` seconds (dropped at once
    in the process that changes a rule)."""
    from otklik.platform.db import session_scope

    now = time.monotonic()
    hit = _triggers.get(workspace_id)
    if hit is not None and now - hit[0] < TRIGGERS_TTL:
        return hit[1]
    with session_scope(write=False) as session:
        found = frozenset(session.scalars(select(Rule.trigger).where(Rule.workspace_id == workspace_id,
                                                                     Rule.enabled.is_(True)).distinct()))
    _triggers[workspace_id] = (now, found)
    return found


def _forget_triggers(session: Session, workspace_id: int) -> None:
    def forget() -> None:
        _triggers.pop(workspace_id, None)

    forget()
    after_commit(session, forget)  # again once committed: a concurrent event may have cached the old set


# -- rules: storage -----------------------------------------------------------------------------------------------

def _snapshot(rule: Rule) -> dict[str, Any]:
    return {"name": rule.name, "enabled": rule.enabled, "trigger": rule.trigger, "trigger_options": rule.trigger_options,
            "conditions": rule.conditions, "actions": action_kit.public_actions(rule.actions or [])}


def list_rules(session: Session, actor: Actor) -> Sequence[Rule]:
    actor.require(Role.supervisor)
    return session.scalars(select(Rule).where(Rule.workspace_id == actor.workspace_id)
                           .order_by(Rule.position, Rule.id)).all()


def get_rule(session: Session, actor: Actor, rule_id: int) -> Rule:
    actor.require(Role.supervisor)
    rule = session.get(Rule, rule_id)
    if rule is None or rule.workspace_id != actor.workspace_id:
        raise NotFound(f"rule {rule_id} not found")
    return rule


def _apply(session: Session, actor: Actor, rule: Rule, data: dict[str, Any]) -> None:
    if "name" in data:
        rule.name = _check_name(data["name"])
    if "enabled" in data:
        if not isinstance(data["enabled"], bool):
            raise field_error("enabled", "true or false")
        rule.enabled = data["enabled"]
    if "position" in data:
        pos = data["position"]
        if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos <= 10_000:
            raise field_error("position", "0-10000")
        rule.position = pos
    if "trigger" in data or "trigger_options" in data:
        rule.trigger, rule.trigger_options = check_trigger(data.get("trigger", rule.trigger),
                                                           data.get("trigger_options", rule.trigger_options))
    if "conditions" in data:
        rule.conditions = check_conditions(session, actor.workspace_id, data["conditions"])
    if "actions" in data:
        rule.actions = action_kit.check_actions(session, actor.workspace_id, data["actions"],
                                                allowed=action_kit.RULE_TYPES, previous=rule.actions or [])


def _name_taken(session: Session, model: Any, workspace_id: int, name: str, own_id: int | None) -> bool:
    found = session.scalar(select(model.id).where(model.workspace_id == workspace_id, model.name == name))
    return found is not None and found != own_id


def create_rule(session: Session, actor: Actor, data: dict[str, Any]) -> Rule:
    actor.require(Role.supervisor)
    for key in ("name", "trigger", "actions"):
        if key not in data:
            raise field_error(key, "is required")
    count = session.scalar(select(func.count(Rule.id)).where(Rule.workspace_id == actor.workspace_id)) or 0
    if count >= MAX_RULES:
        raise Conflict(f"a workspace has at most {MAX_RULES} rules", code="too_many")
    rule = Rule(workspace_id=actor.workspace_id, enabled=True, position=count, trigger_options={}, conditions=[],
                actions=[])
    _apply(session, actor, rule, data)
    if _name_taken(session, Rule, actor.workspace_id, rule.name, None):
        raise field_error("name", "another rule has this name")
    session.add(rule)
    session.flush()
    _forget_triggers(session, actor.workspace_id)
    record_audit(session, actor, entity_type="automation_rule", entity_id=rule.id, action="created",
                 after=_snapshot(rule))
    return rule


def update_rule(session: Session, actor: Actor, rule_id: int, data: dict[str, Any]) -> Rule:
    rule = get_rule(session, actor, rule_id)
    before = _snapshot(rule)
    _apply(session, actor, rule, data)
    if _name_taken(session, Rule, actor.workspace_id, rule.name, rule.id):
        raise field_error("name", "another rule has this name")
    rule.updated_at = utcnow()
    _forget_triggers(session, actor.workspace_id)
    record_audit(session, actor, entity_type="automation_rule", entity_id=rule.id, action="updated", before=before,
                 after=_snapshot(rule))
    return rule


def delete_rule(session: Session, actor: Actor, rule_id: int) -> None:
    rule = get_rule(session, actor, rule_id)
    record_audit(session, actor, entity_type="automation_rule", entity_id=rule.id, action="deleted",
                 before=_snapshot(rule))
    session.delete(rule)
    _forget_triggers(session, actor.workspace_id)


# -- evaluation ---------------------------------------------------------------------------------------------------

@dataclass
class Context:
    conversation: Conversation
    tags: list[str]
    text: str
    attributes: dict[str, Any]
    at: dt.datetime
    loyalty_tier: str | None = None  # the customer's tier (orders.loyalty), a tier's name

    _open: bool | None = None

    def business_hours(self, session: Session) -> bool:
        if self._open is None:
            row = calendar_for(session, self.conversation.workspace_id, self.conversation.team_id)
            try:
                self._open = True if row is None else engine_of(row).is_open(self.at)
            except CalendarRangeError:
                self._open = False
        return self._open


def context_for(session: Session, conversation: Conversation, *, text: str | None = None,
                at: dt.datetime | None = None) -> Context:
    """What conditions look at: `text` is the triggering customer message, else the latest one."""
    if text is None:
        text = session.scalar(select(Message.body_text).where(
            Message.conversation_id == conversation.id, Message.direction == Direction.inbound.value,
            Message.author_kind == AuthorKind.customer.value).order_by(Message.id.desc()).limit(1)) or ""
    customer = session.get(Customer, conversation.customer_id)
    return Context(conversation=conversation, tags=conversations.tags_of(session, [conversation.id])[conversation.id],
                   text=text, attributes=(customer.attributes if customer is not None else None) or {},
                   at=at or utcnow(), loyalty_tier=customer.loyalty_tier if customer is not None else None)


def _norm(value: Any) -> str:
    return "" if value is None else str(value).strip().lower()


def condition_holds(session: Session, cond: dict[str, Any], ctx: Context) -> bool:
    name, op, value = cond["field"], cond["op"], cond["value"]
    conv = ctx.conversation
    actual: Any
    if name == "text":
        # a word or phrase found at the start of a word: «суд» finds «в суд», «судом», never «посуда»
        haystack = " ".join(ctx.text.lower().replace("ё", "е").split())
        found = any(re.search(r"(?<!\w)" + re.escape(w.replace("ё", "е")), haystack) for w in value)
        return found if op == "contains" else not found
    if name == "tags":
        found = any(w in ctx.tags for w in value)
        return found if op == "contains" else not found
    if name in ("urgent", "business_hours"):
        actual = bool(conv.urgent) if name == "urgent" else ctx.business_hours(session)
        return (actual == value) if op == "is" else (actual != value)
    if name.startswith("customer."):
        actual = ctx.attributes.get(name.removeprefix("customer."))
    elif name == "loyalty_tier":  # tier names; a customer without a tier matches only `is_not`
        actual = ctx.loyalty_tier
    elif name == "priority":
        actual = Priority(conv.priority).value
    else:
        actual = getattr(conv, name)
    if name in ("team_id", "assignee_id"):
        hit = actual in value
    else:
        hit = _norm(actual) in {_norm(v) for v in value}
    return hit if op == "is" else not hit


def matches(session: Session, conditions: Sequence[dict[str, Any]], ctx: Context) -> bool:
    return all(condition_holds(session, c, ctx) for c in conditions)


def dry_run(session: Session, actor: Actor, rule_id: int) -> dict[str, Any]:
    """Which of the workspace's last `DRY_RUN_SIZE` conversations the rule's conditions hold for now (text: each
    one's latest customer message; business hours: at that message). Nothing is changed."""
    rule = get_rule(session, actor, rule_id)
    rows = session.scalars(select(Conversation).where(Conversation.workspace_id == actor.workspace_id,
                                                      Conversation.merged_into_id.is_(None))
                           .order_by(Conversation.id.desc()).limit(DRY_RUN_SIZE)).all()
    matched = []
    for conv in rows:
        if rule.trigger == "time" and conv.status != rule.trigger_options.get("status"):
            continue
        ctx = context_for(session, conv, at=conv.last_customer_message_at)
        if matches(session, rule.conditions or [], ctx):
            matched.append({"id": conv.id, "number": conv.number, "subject": conv.subject, "status": conv.status})
    return {"rule_id": rule.id, "checked": len(rows), "matched": matched}


# -- runs ---------------------------------------------------------------------------------------------------------

def rules_for(session: Session, workspace_id: int, trigger: str) -> list[tuple[int, str]]:
    return [(r.id, r.name) for r in session.execute(
        select(Rule.id, Rule.name).where(Rule.workspace_id == workspace_id, Rule.trigger == trigger,
                                         Rule.enabled.is_(True)).order_by(Rule.position, Rule.id))]


def record_run(session: Session, *, workspace_id: int, rule_id: int | None, rule_name: str, conversation_id: int,
               trigger: str, matched: bool, depth: int, done: Sequence[str] = (), error: str | None = None) -> None:
    session.add(RuleRun(workspace_id=workspace_id, rule_id=rule_id, rule_name=rule_name,
                        conversation_id=conversation_id, trigger=trigger, matched=matched, depth=depth,
                        actions_done=list(done), error=error))


def run_one(session: Session, rule_id: int, conversation_id: int, trigger: str, *, depth: int,
            text: str | None = None) -> RuleRun | None:
    """Evaluate one rule for one conversation and, if it matches, apply its actions as the actor kind "rule"; the
    caller commits. Whatever the actions change is announced with this rule as its origin (loop protection)."""
    rule = session.get(Rule, rule_id)
    conversation = session.get(Conversation, conversation_id)
    if rule is None or not rule.enabled or conversation is None or conversation.workspace_id != rule.workspace_id:
        return None
    if conversation.merged_into_id is not None:
        return None
    if trigger == "time":
        conversation = session.scalar(select(Conversation).where(Conversation.id == conversation_id)
                                      .with_for_update().execution_options(populate_existing=True))
        assert conversation is not None
        if not _time_due(session, rule, conversation, utcnow()):
            return None  # another sweeper ran it meanwhile, or the conversation moved on
    ctx = context_for(session, conversation, text=text)
    ok = matches(session, rule.conditions or [], ctx)
    run = RuleRun(workspace_id=rule.workspace_id, rule_id=rule.id, rule_name=rule.name,
                  conversation_id=conversation.id, trigger=trigger, matched=ok, depth=depth, actions_done=[])
    if ok:
        actor = Actor.system(rule.workspace_id, kind=RULE_ACTOR_KIND)
        session.info["event_origin"] = {"rule_id": rule.id, "depth": depth + 1}
        try:
            run.actions_done = action_kit.apply(session, actor, conversation.id, rule.actions or [],
                                                source={"id": rule.id, "name": rule.name, "trigger": trigger})
        finally:
            session.info.pop("event_origin", None)
    session.add(run)
    session.flush()
    return run


def _time_due(session: Session, rule: Rule, conversation: Conversation, now: dt.datetime) -> bool:
    opts = rule.trigger_options or {}
    if conversation.status != opts.get("status"):
        return False
    if conversation.updated_at > now - dt.timedelta(hours=int(opts.get("hours", 0))):
        return False
    ran = session.scalar(select(RuleRun.id).where(
        RuleRun.rule_id == rule.id, RuleRun.conversation_id == conversation.id, RuleRun.trigger == "time",
        RuleRun.created_at >= conversation.updated_at).limit(1))
    return ran is None


def time_candidates(session: Session, now: dt.datetime | None = None,
                    workspace_id: int | None = None) -> list[tuple[int, int]]:
    """(rule id, conversation id) pairs a time rule is due for: in the rule's status and unchanged for its hours,
    and not run since the conversation last changed (each idle stretch fires once). `workspace_id`: one
    workspace's rules only (tests, tools); the worker's sweep takes every workspace."""
    now = now or utcnow()
    pairs: list[tuple[int, int]] = []
    scope = [Rule.workspace_id == workspace_id] if workspace_id is not None else []
    for rule in session.scalars(select(Rule).where(Rule.trigger == "time", Rule.enabled.is_(True), *scope)):
        opts = rule.trigger_options or {}
        cutoff = now - dt.timedelta(hours=int(opts.get("hours", 0)))
        ran = exists().where(RuleRun.rule_id == rule.id, RuleRun.conversation_id == Conversation.id,
                             RuleRun.trigger == "time", RuleRun.created_at >= Conversation.updated_at)
        ids = session.scalars(select(Conversation.id).where(
            and_(Conversation.workspace_id == rule.workspace_id, Conversation.status == opts.get("status"),
                 Conversation.merged_into_id.is_(None), Conversation.updated_at <= cutoff), ~ran)
            .order_by(Conversation.updated_at).limit(TIME_BATCH)).all()
        pairs += [(rule.id, cid) for cid in ids]
    return pairs


def runs_for(session: Session, actor: Actor, conversation_id: int, limit: int = 50) -> list[RuleRun]:
    conversations.get_conversation(session, actor, conversation_id)
    return list(session.scalars(select(RuleRun).where(RuleRun.conversation_id == conversation_id)
                                .order_by(RuleRun.id.desc()).limit(limit)))


# -- macros -------------------------------------------------------------------------------------------------------

def list_macros(session: Session, actor: Actor) -> Sequence[Macro]:
    return session.scalars(select(Macro).where(Macro.workspace_id == actor.workspace_id).order_by(Macro.name)).all()


def get_macro(session: Session, actor: Actor, macro_id: int) -> Macro:
    macro = session.get(Macro, macro_id)
    if macro is None or macro.workspace_id != actor.workspace_id:
        raise NotFound(f"macro {macro_id} not found")
    return macro


def create_macro(session: Session, actor: Actor, data: dict[str, Any]) -> Macro:
    actor.require(Role.supervisor)
    name = _check_name(data.get("name"))
    actions = action_kit.check_actions(session, actor.workspace_id, data.get("actions"),
                                       allowed=action_kit.MACRO_TYPES)
    if _name_taken(session, Macro, actor.workspace_id, name, None):
        raise field_error("name", "another macro has this name")
    macro = Macro(workspace_id=actor.workspace_id, name=name, actions=actions)
    session.add(macro)
    try:
        session.flush()
    except IntegrityError:
        raise field_error("name", "another macro has this name") from None
    record_audit(session, actor, entity_type="macro", entity_id=macro.id, action="created",
                 after={"name": name, "actions": actions})
    return macro


def update_macro(session: Session, actor: Actor, macro_id: int, data: dict[str, Any]) -> Macro:
    actor.require(Role.supervisor)
    macro = get_macro(session, actor, macro_id)
    before = {"name": macro.name, "actions": macro.actions}
    if "name" in data:
        macro.name = _check_name(data["name"])
        if _name_taken(session, Macro, actor.workspace_id, macro.name, macro.id):
            raise field_error("name", "another macro has this name")
    if "actions" in data:
        macro.actions = action_kit.check_actions(session, actor.workspace_id, data["actions"],
                                                 allowed=action_kit.MACRO_TYPES)
    macro.updated_at = utcnow()
    record_audit(session, actor, entity_type="macro", entity_id=macro.id, action="updated", before=before,
                 after={"name": macro.name, "actions": macro.actions})
    return macro


def delete_macro(session: Session, actor: Actor, macro_id: int) -> None:
    actor.require(Role.supervisor)
    macro = get_macro(session, actor, macro_id)
    record_audit(session, actor, entity_type="macro", entity_id=macro.id, action="deleted",
                 before={"name": macro.name, "actions": macro.actions})
    session.delete(macro)


def apply_macro(session: Session, actor: Actor, macro_id: int, conversation_id: int) -> list[str]:
    """An agent applies a macro: its actions as that agent (audited as them), all or nothing."""
    macro = get_macro(session, actor, macro_id)
    done = action_kit.apply(session, actor, conversation_id, macro.actions or [],
                            source={"id": macro.id, "name": macro.name, "trigger": "macro"})
    record_audit(session, actor, entity_type="conversation", entity_id=conversation_id, action="macro_applied",
                 after={"macro_id": macro.id, "name": macro.name, "actions": done})
    return done
