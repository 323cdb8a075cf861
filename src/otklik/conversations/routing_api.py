"""HTTP surface of routing: a team's auto-assignment settings, the workspace's routing settings, an agent's
availability (their own) and skills (set by supervisors)."""

from __future__ import annotations

import asyncio
import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, StrictBool

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.conversations import routing
from otklik.platform.errors import NotFound

router = APIRouter(tags=["routing"])
Capacity = Field(default=None, ge=0, le=routing.MAX_CAPACITY,
                 description="the most open (new, open, pending) conversations of this kind an agent gets")


class TeamRoutingIn(Strict):
    auto_assign: StrictBool | None = None
    method: Literal["round_robin", "least_busy"] | None = None
    capacity_chat: int | None = Capacity
    capacity_email: int | None = Capacity


class TeamRoutingOut(BaseModel):
    team_id: int
    auto_assign: bool
    method: str
    capacity_chat: int
    capacity_email: int
    queued: int = Field(description="unassigned open conversations of the team waiting for an agent")


class RoutingSettingsIn(Strict):
    out_of_hours_to_open_team: StrictBool | None = None
    away_after_minutes: int | None = Field(default=None, ge=0, le=24 * 60)


class RoutingSettingsOut(BaseModel):
    out_of_hours_to_open_team: bool
    away_after_minutes: int


class AvailabilityIn(Strict):
    state: Literal["online", "away", "offline"]


class SkillsIn(Strict):
    languages: list[str] | None = Field(default=None, max_length=50)
    categories: list[str] | None = Field(default=None, max_length=50)


class AgentOut(BaseModel):
    user_id: int
    availability: str = Field(description="online, away (chosen, or idle) or offline")
    chosen_availability: str
    languages: list[str]
    categories: list[str]
    open_chat: int
    open_email: int
    last_seen_at: dt.datetime | None


def _team_out(db: DB, row: routing.TeamRouting) -> TeamRoutingOut:
    from sqlalchemy import func, select

    from otklik.conversations.models import Conversation

    queued = db.scalar(select(func.count()).select_from(Conversation).where(
        Conversation.team_id == row.team_id, Conversation.assignee_id.is_(None),
        Conversation.status.in_(routing.OPEN_STATUSES), Conversation.merged_into_id.is_(None))) or 0
    return TeamRoutingOut(**routing.team_view(row), queued=queued)


@router.get("/teams/{team_id}/routing", response_model=TeamRoutingOut)
def get_team_routing(team_id: int, actor: CurrentActor, db: DB) -> TeamRoutingOut:
    return _team_out(db, routing.team_routing(db, actor, team_id))


@router.put("/teams/{team_id}/routing", response_model=TeamRoutingOut)
def put_team_routing(team_id: int, body: TeamRoutingIn, actor: CurrentActor, db: DB) -> TeamRoutingOut:
    """Supervisors and admins. Turning auto-assignment on or raising a capacity assigns the waiting queue."""
    row = routing.update_team_routing(db, actor, team_id, body.model_dump(exclude_none=True))
    return _team_out(db, row)


@router.get("/routing", response_model=RoutingSettingsOut)
def get_routing_settings(actor: CurrentActor, db: DB) -> RoutingSettingsOut:
    return RoutingSettingsOut(**routing.settings_view(routing.workspace_settings(db, actor.workspace_id)))


@router.put("/routing", response_model=RoutingSettingsOut)
def put_routing_settings(body: RoutingSettingsIn, actor: CurrentActor, db: DB) -> RoutingSettingsOut:
    """Admins: out of a team's hours, route to a team whose calendar is open now; minutes of idleness after
    which an online agent counts as away (0: never)."""
    row = routing.update_workspace_settings(db, actor, body.model_dump(exclude_none=True))
    return RoutingSettingsOut(**routing.settings_view(row))


def _agent_out(db: DB, row: routing.AgentRouting) -> AgentOut:
    return AgentOut(**routing.agent_view(db, row))


@router.get("/users/me/availability", response_model=AgentOut)
def get_my_availability(actor: CurrentActor, db: DB) -> AgentOut:
    if actor.user_id is None:
        raise NotFound("only a person has an availability")
    return _agent_out(db, routing.agent_row(db, actor.user_id))


@router.put("/users/me/availability", response_model=AgentOut)
def put_my_availability(body: AvailabilityIn, actor: CurrentActor, db: DB) -> AgentOut:
    """online, away or offline; only online agents get new conversations (online assigns what waits)."""
    return _agent_out(db, routing.set_availability(db, actor, body.state))


@router.get("/users/{user_id}/routing", response_model=AgentOut)
def get_agent_routing(user_id: int, actor: CurrentActor, db: DB) -> AgentOut:
    routing._user(db, actor, user_id)
    return _agent_out(db, routing.agent_row(db, user_id))


@router.put("/users/{user_id}/skills", response_model=AgentOut)
def put_skills(user_id: int, body: SkillsIn, actor: CurrentActor, db: DB) -> AgentOut:
    """Supervisors and admins: the languages and categories the agent takes (an empty list: any)."""
    return _agent_out(db, routing.set_skills(db, actor, user_id, body.model_dump(exclude_none=True)))


_seen_pool: ThreadPoolExecutor | None = None


async def seen(workspace_id: int, user_id: int | None) -> None:
    """Note an agent's activity (`routing.touch`, at most once a minute per process) on a thread of its own,
    named otklik-… like the app's other background work, so it is never counted as the request's."""
    global _seen_pool
    if user_id is None or not routing.due_to_touch(user_id):
        return
    if _seen_pool is None:
        _seen_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="otklik-seen")
    await asyncio.wrap_future(_seen_pool.submit(routing.touch, workspace_id, user_id))


class SeenAgents:
    """ASGI middleware: after a request of a signed-in person (API token or session), note that they are here."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
        if scope.get("type") != "http":
            return
        state = scope.get("state") or {}
        actor = state.get("actor")
        if actor is None and state.get("ui_user") is not None:
            actor = state["ui_user"].actor
        if actor is not None:
            await seen(actor.workspace_id, actor.user_id)
