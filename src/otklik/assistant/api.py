"""HTTP surface of the assistant: workspace settings, its decisions in a conversation, agent assist."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.assistant import assist, service

router = APIRouter(tags=["assistant"])


class SettingsIn(Strict):
    enabled: bool | None = None
    channels: list[str] | None = Field(default=None, max_length=20)
    answer_threshold: float | None = Field(default=None, ge=0, le=1)
    negativity_threshold: float | None = Field(default=None, ge=0, le=1)
    urgency_threshold: float | None = Field(default=None, ge=0, le=1)
    tone: str | None = Field(default=None, pattern=r"^(formal|friendly)$")
    greeting: str | None = Field(default=None, max_length=1000)
    bot_name: str | None = Field(default=None, max_length=80)
    reasons: list[dict[str, Any]] | None = Field(default=None, max_length=60)
    out_of_hours_message: str | None = Field(default=None, max_length=1000)
    handoff_team_id: int | None = Field(default=None, ge=1)


class SettingsOut(BaseModel):
    enabled: bool
    channels: list[str]
    answer_threshold: float
    negativity_threshold: float
    urgency_threshold: float
    tone: str
    greeting: str
    bot_name: str
    reasons: list[dict[str, Any]]
    out_of_hours_message: str
    handoff_team_id: int | None


class DecisionOut(BaseModel):
    id: int
    message_id: int
    action: str
    reason: str
    article_id: str | None
    confidence: float
    reply_message_id: int | None
    details: dict[str, Any]
    created_at: dt.datetime


class SummaryOut(BaseModel):
    summary: str


class Suggestion(BaseModel):
    source: str  # kb | team
    title: str
    text: str
    score: float
    article_id: str | None = None


@router.get("/assistant/settings", response_model=SettingsOut)
def get_settings(db: DB, actor: CurrentActor) -> dict[str, Any]:
    return service.settings_dict(service.get_settings_row(db, actor.workspace_id))


@router.patch("/assistant/settings", response_model=SettingsOut)
def patch_settings(body: SettingsIn, db: DB, actor: CurrentActor) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    return service.settings_dict(service.update_settings(db, actor, changes))


@router.get("/conversations/{conversation_id}/assistant/decisions", response_model=list[DecisionOut])
def list_decisions(conversation_id: int, db: DB, actor: CurrentActor) -> list[Any]:
    return list(service.decisions_for(db, actor, conversation_id))


@router.get("/conversations/{conversation_id}/assistant/summary", response_model=SummaryOut)
def get_summary(conversation_id: int, db: DB, actor: CurrentActor) -> dict[str, str]:
    return {"summary": service.conversation_summary(db, actor, conversation_id)}


@router.get("/conversations/{conversation_id}/assistant/suggestions", response_model=list[Suggestion])
def get_suggestions(conversation_id: int, db: DB, actor: CurrentActor,
                    q: str | None = Query(default=None, max_length=2000)) -> list[dict[str, Any]]:
    return [s.as_dict() for s in assist.suggestions(db, actor, conversation_id, q=q)]


# -- learning from agents: the KB editor's review queue (issue 12 §6) ----------------------------------------

class ProposalOut(BaseModel):
    id: int
    text: str
    article_id: int
    article_title: str | None = None
    article_slug: str | None = None
    source: str  # link | text
    confidence: float
    status: str  # pending | accepted | rejected
    conversation_id: int | None
    agent_id: int | None
    created_at: str | None
    decided_at: str | None


class AcceptIn(Strict):
    text: str | None = Field(default=None, min_length=1, max_length=400)  # the wording, edited
    article_id: int | None = Field(default=None, ge=1)  # another article than the proposed one


@router.get("/knowledge/proposals", response_model=list[ProposalOut])
def list_proposals(db: DB, actor: CurrentActor,
                   status: str = Query(default="pending", pattern=r"^(pending|accepted|rejected)$"),
                   limit: int = Query(default=50, ge=1, le=200),
                   before_id: int | None = Query(default=None, ge=1)) -> list[dict[str, Any]]:
    from otklik.assistant import learning

    return [learning.as_dict(p, a) for p, a in learning.list_proposals(db, actor, status=status, limit=limit,
                                                                       before_id=before_id)]


@router.post("/knowledge/proposals/{proposal_id}/accept", response_model=ProposalOut)
def accept_proposal(proposal_id: int, db: DB, actor: CurrentActor, body: AcceptIn | None = None) -> dict[str, Any]:
    from otklik.assistant import learning

    proposal = learning.accept(db, actor, proposal_id, text=body.text if body else None,
                               article_id=body.article_id if body else None)
    return learning.as_dict(proposal)


@router.post("/knowledge/proposals/{proposal_id}/reject", response_model=ProposalOut)
def reject_proposal(proposal_id: int, db: DB, actor: CurrentActor) -> dict[str, Any]:
    from otklik.assistant import learning

    return learning.as_dict(learning.reject(db, actor, proposal_id))
