"""HTTP surface of automation: /api/v1/rules (supervisors and admins; dry-run), /api/v1/macros (everyone lists
and applies, supervisors and admins edit), and a conversation's rule runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.service_levels import actions as action_kit
from otklik.service_levels import service
from otklik.service_levels.models import Macro, Rule, RuleRun

router = APIRouter(tags=["automation"])

TRIGGER_HELP = ("When the rule runs: " + ", ".join(service.TRIGGERS) + ". `time` needs trigger_options "
                "{\"status\": \"pending\", \"hours\": 72}: in that status and unchanged for that long.")
CONDITIONS_HELP = ("All must hold. Each {\"field\", \"op\", \"value\"}: fields " + ", ".join(service.FIELDS)
                   + ", customer.<attribute>; op is / is_not (value: one or a list, any of) or, for text and tags, "
                     "contains / not_contains.")
ACTIONS_HELP = ("In order. Each {\"type\", …}: " + ", ".join(action_kit.RULE_TYPES) + " (see docs/service-levels.md)."
                " A webhook's `secret` is write-only.")


class RuleIn(Strict):
    name: str = Field(description="Unique in the workspace, 1-120 characters")
    enabled: bool = True
    position: int | None = None
    trigger: str = Field(description=TRIGGER_HELP)
    trigger_options: dict[str, Any] = Field(default_factory=dict)
    conditions: list[Any] = Field(default_factory=list, description=CONDITIONS_HELP)
    actions: list[Any] = Field(description=ACTIONS_HELP)


class RulePatch(Strict):
    name: str | None = None
    enabled: bool | None = None
    position: int | None = None
    trigger: str | None = None
    trigger_options: dict[str, Any] | None = None
    conditions: list[Any] | None = None
    actions: list[Any] | None = None


class RuleOut(BaseModel):
    id: int
    name: str
    enabled: bool
    position: int
    trigger: str
    trigger_options: dict[str, Any]
    conditions: list[dict[str, Any]]
    actions: list[dict[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


class DryRunOut(BaseModel):
    rule_id: int
    checked: int
    matched: list[dict[str, Any]]


class MacroIn(Strict):
    name: str
    actions: list[Any] = Field(description="In order: " + ", ".join(action_kit.MACRO_TYPES))


class MacroPatch(Strict):
    name: str | None = None
    actions: list[Any] | None = None


class MacroOut(BaseModel):
    id: int
    name: str
    actions: list[dict[str, Any]]
    created_at: dt.datetime
    updated_at: dt.datetime


class ApplyIn(Strict):
    conversation_id: int


class ApplyOut(BaseModel):
    conversation_id: int
    done: list[str]


class RunOut(BaseModel):
    id: int
    rule_id: int | None
    rule_name: str
    trigger: str
    matched: bool
    depth: int
    actions_done: list[str]
    error: str | None
    created_at: dt.datetime


def rule_out(rule: Rule) -> RuleOut:
    return RuleOut(id=rule.id, name=rule.name, enabled=rule.enabled, position=rule.position, trigger=rule.trigger,
                   trigger_options=rule.trigger_options or {}, conditions=rule.conditions or [],
                   actions=action_kit.public_actions(rule.actions or []), created_at=rule.created_at,
                   updated_at=rule.updated_at)


def macro_out(macro: Macro) -> MacroOut:
    return MacroOut(id=macro.id, name=macro.name, actions=macro.actions or [], created_at=macro.created_at,
                    updated_at=macro.updated_at)


def run_out(run: RuleRun) -> RunOut:
    return RunOut(id=run.id, rule_id=run.rule_id, rule_name=run.rule_name, trigger=run.trigger, matched=run.matched,
                  depth=run.depth, actions_done=run.actions_done or [], error=run.error, created_at=run.created_at)


@router.get("/rules", response_model=list[RuleOut])
def list_rules(actor: CurrentActor, db: DB) -> list[RuleOut]:
    return [rule_out(r) for r in service.list_rules(db, actor)]


@router.post("/rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleIn, actor: CurrentActor, db: DB) -> RuleOut:
    data = body.model_dump()
    if data["position"] is None:
        data.pop("position")
    return rule_out(service.create_rule(db, actor, data))


@router.get("/rules/{rule_id}", response_model=RuleOut)
def get_rule(rule_id: int, actor: CurrentActor, db: DB) -> RuleOut:
    return rule_out(service.get_rule(db, actor, rule_id))


@router.patch("/rules/{rule_id}", response_model=RuleOut)
def update_rule(rule_id: int, body: RulePatch, actor: CurrentActor, db: DB) -> RuleOut:
    return rule_out(service.update_rule(db, actor, rule_id, body.model_dump(exclude_unset=True)))


@router.delete("/rules/{rule_id}", status_code=204)
def delete_rule(rule_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_rule(db, actor, rule_id)
    return Response(status_code=204)


@router.post("/rules/{rule_id}/dry-run", response_model=DryRunOut)
def dry_run(rule_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Which of the workspace's last 100 conversations this rule's conditions match now (ids and numbers);
    nothing is changed."""
    return service.dry_run(db, actor, rule_id)


@router.get("/macros", response_model=list[MacroOut])
def list_macros(actor: CurrentActor, db: DB) -> list[MacroOut]:
    return [macro_out(m) for m in service.list_macros(db, actor)]


@router.post("/macros", response_model=MacroOut, status_code=201)
def create_macro(body: MacroIn, actor: CurrentActor, db: DB) -> MacroOut:
    return macro_out(service.create_macro(db, actor, body.model_dump()))


@router.get("/macros/{macro_id}", response_model=MacroOut)
def get_macro(macro_id: int, actor: CurrentActor, db: DB) -> MacroOut:
    return macro_out(service.get_macro(db, actor, macro_id))


@router.patch("/macros/{macro_id}", response_model=MacroOut)
def update_macro(macro_id: int, body: MacroPatch, actor: CurrentActor, db: DB) -> MacroOut:
    return macro_out(service.update_macro(db, actor, macro_id, body.model_dump(exclude_unset=True)))


@router.delete("/macros/{macro_id}", status_code=204)
def delete_macro(macro_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_macro(db, actor, macro_id)
    return Response(status_code=204)


@router.post("/macros/{macro_id}/apply", response_model=ApplyOut)
def apply_macro(macro_id: int, body: ApplyIn, actor: CurrentActor, db: DB) -> ApplyOut:
    """Apply the macro's actions to a conversation as you (audited as you), all or nothing."""
    return ApplyOut(conversation_id=body.conversation_id,
                    done=service.apply_macro(db, actor, macro_id, body.conversation_id))


@router.get("/conversations/{conversation_id}/rule-runs", response_model=list[RunOut], tags=["conversations"])
def conversation_runs(conversation_id: int, actor: CurrentActor, db: DB) -> list[RunOut]:
    """The latest runs of automation rules on this conversation: rule, trigger, matched, actions done, error."""
    return [run_out(r) for r in service.runs_for(db, actor, conversation_id)]
