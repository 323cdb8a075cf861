"""HTTP surface of SLA: policies (CRUD, ordered: the first that matches applies) and a conversation's timers."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.conversations import sla
from otklik.conversations.service import get_conversation

router = APIRouter(tags=["sla"])
Minutes = Annotated[int | None, Field(ge=1, le=sla.MAX_TARGET_MINUTES)]


class Conditions(Strict):
    channels: list[str] = Field(default_factory=list, max_length=20)
    priorities: list[str] = Field(default_factory=list, max_length=4)
    categories: list[str] = Field(default_factory=list, max_length=100)
    team_ids: list[int] = Field(default_factory=list, max_length=100)
    languages: list[str] = Field(default_factory=list, max_length=50)
    customer_attribute: dict[str, Any] | None = None
    loyalty_tiers: list[str] = Field(default_factory=list, max_length=100,
                                     description="the customer's loyalty tier is one of these (tier names)")


class Escalation(Strict):
    raise_priority: bool = False
    notify_team_lead: bool = False
    reassign_team_id: int | None = None


class PolicyIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    enabled: bool = True
    position: int | None = Field(default=None, ge=0, le=10_000)
    conditions: Conditions = Field(default_factory=Conditions)
    first_response_minutes: Minutes = None
    next_response_minutes: Minutes = None
    resolution_minutes: Minutes = None
    business_hours: bool = Field(default=True, description="Count working minutes on a calendar (the policy's, "
                                 "else the conversation team's, else the workspace default); false: calendar time")
    calendar_id: int | None = None
    warn_share: float = Field(default=sla.DEFAULT_WARN_SHARE, ge=0.1, le=0.99)
    escalation: Escalation = Field(default_factory=Escalation)


class PolicyPatch(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    enabled: bool | None = None
    position: int | None = Field(default=None, ge=0, le=10_000)
    conditions: Conditions | None = None
    first_response_minutes: Minutes = None
    next_response_minutes: Minutes = None
    resolution_minutes: Minutes = None
    business_hours: bool | None = None
    calendar_id: int | None = None
    warn_share: float | None = Field(default=None, ge=0.1, le=0.99)
    escalation: Escalation | None = None


class PolicyOut(BaseModel):
    id: int
    name: str
    enabled: bool
    position: int
    conditions: dict[str, Any]
    first_response_minutes: int | None
    next_response_minutes: int | None
    resolution_minutes: int | None
    business_hours: bool
    calendar_id: int | None
    warn_share: float
    escalation: dict[str, Any]
    created_at: dt.datetime
    updated_at: dt.datetime


class TimerOut(BaseModel):
    kind: str
    state: str
    policy_id: int | None
    target_minutes: int
    business_hours: bool
    started_at: dt.datetime
    due_at: dt.datetime | None
    seconds_left: int | None
    elapsed_minutes: int
    breached_at: dt.datetime | None
    stopped_at: dt.datetime | None


def _out(p: sla.SlaPolicy) -> PolicyOut:
    return PolicyOut(id=p.id, name=p.name, enabled=p.enabled, position=p.position, conditions=p.conditions or {},
                     first_response_minutes=p.first_response_minutes,
                     next_response_minutes=p.next_response_minutes, resolution_minutes=p.resolution_minutes,
                     business_hours=p.business_hours, calendar_id=p.calendar_id, warn_share=p.warn_share,
                     escalation=p.escalation or {}, created_at=p.created_at, updated_at=p.updated_at)


@router.get("/sla-policies", response_model=list[PolicyOut])
def list_policies(actor: CurrentActor, db: DB) -> list[PolicyOut]:
    return [_out(p) for p in sla.list_policies(db, actor)]


@router.post("/sla-policies", response_model=PolicyOut, status_code=201)
def create_policy(body: PolicyIn, actor: CurrentActor, db: DB) -> PolicyOut:
    data = body.model_dump()
    if data["position"] is None:
        data.pop("position")
    return _out(sla.create_policy(db, actor, data))


@router.get("/sla-policies/{policy_id}", response_model=PolicyOut)
def get_policy(policy_id: int, actor: CurrentActor, db: DB) -> PolicyOut:
    return _out(sla.get_policy(db, actor, policy_id))


@router.patch("/sla-policies/{policy_id}", response_model=PolicyOut)
def update_policy(policy_id: int, body: PolicyPatch, actor: CurrentActor, db: DB) -> PolicyOut:
    return _out(sla.update_policy(db, actor, policy_id, body.model_dump(exclude_unset=True)))


@router.delete("/sla-policies/{policy_id}", status_code=204)
def delete_policy(policy_id: int, actor: CurrentActor, db: DB) -> Response:
    sla.delete_policy(db, actor, policy_id)
    return Response(status_code=204)


@router.get("/conversations/{conversation_id}/sla", response_model=list[TimerOut], tags=["conversations"])
def conversation_timers(conversation_id: int, actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    """The conversation's SLA timers: first response, next response, resolution, each with its state (running,
    paused, met, breached, stopped), due time and seconds left (negative: late)."""
    conversation = get_conversation(db, actor, conversation_id)
    return [sla.timer_view(t) for t in sla.timers_for(db, conversation.id)]
