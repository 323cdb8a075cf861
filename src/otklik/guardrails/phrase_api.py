"""HTTP surface of the phrase checker: the workspace's rules (CRUD; agents read, supervisors and admins edit),
the compiled rules the reply box checks with as the agent types, a check of a text, and the report of the
phrases agents used most.

    GET/POST /phrase-rules, GET/PATCH/DELETE /phrase-rules/{phrase_rule_id}  (shipped ids like «ru.must.you», own «ws.12»)
    GET  /phrase-rules/compiled?conversation_id=   the page's expression, the rules, the customer's mood
    POST /phrase-check {"text", "language"?} -> {"matches": [{"rule_id","start","end","phrase","severity",
                                                               "reason","alternatives"}], "hints": [...]}
    GET  /reports/phrases?since=&until=            per agent: replies, flagged replies, top phrases
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.conversations.service import MAX_BODY_CHARS, get_conversation
from otklik.guardrails import phrase_rules, phrases
from otklik.platform.api import Page
from otklik.platform.db import utcnow

router = APIRouter(tags=["phrase checker"])
RuleId = Annotated[str, Path(min_length=1, max_length=80)]
Language = Literal["ru", "en"]
Severity = Literal["never", "avoid"]


class RuleOut(BaseModel):
    id: str
    language: str
    phrase: str
    severity: str
    reason: str
    alternatives: list[str]
    shipped: bool
    enabled: bool
    changed: bool


class RuleCreate(Strict):
    language: Language
    phrase: str = Field(min_length=1, max_length=phrases.MAX_PHRASE,
                        description="Words; * any ending, (a|b) alternatives, ^ the start of a clause")
    severity: Severity
    reason: str = Field(min_length=1, max_length=phrase_rules.MAX_TEXT)
    alternatives: list[Annotated[str, Field(min_length=1, max_length=phrase_rules.MAX_TEXT)]] = Field(
        default_factory=list, max_length=phrase_rules.MAX_ALTERNATIVES)
    enabled: bool = True


class RuleUpdate(Strict):
    phrase: str | None = Field(default=None, min_length=1, max_length=phrases.MAX_PHRASE,
                               description="Own rules only")
    severity: Severity | None = None
    reason: str | None = Field(default=None, max_length=phrase_rules.MAX_TEXT)
    alternatives: list[Annotated[str, Field(min_length=1, max_length=phrase_rules.MAX_TEXT)]] | None = Field(
        default=None, max_length=phrase_rules.MAX_ALTERNATIVES)
    enabled: bool | None = None


class CheckIn(Strict):
    text: str = Field(max_length=MAX_BODY_CHARS)
    language: Language | None = Field(default=None, description="Only this language's rules (default: all)")
    conversation_id: int | None = Field(default=None, ge=1, description="Tone hints for this customer's mood")


class MatchOut(BaseModel):
    rule_id: str
    start: int
    end: int
    phrase: str
    severity: str
    reason: str
    alternatives: list[str]


class HintOut(BaseModel):
    code: str
    message: str
    alternatives: list[str]


class CheckOut(BaseModel):
    matches: list[MatchOut]
    hints: list[HintOut]


def rule_out(view: phrase_rules.RuleView) -> RuleOut:
    return RuleOut(**view.as_dict())


@router.get("/phrase-rules", response_model=Page[RuleOut])
def list_rules(actor: CurrentActor, db: DB, language: Language | None = None,
               q: Annotated[str | None, Query(max_length=200)] = None) -> Page[RuleOut]:
    return Page(items=[rule_out(v) for v in phrase_rules.rule_views(db, actor, language=language, q=q)])


@router.post("/phrase-rules", response_model=RuleOut, status_code=201)
def create_rule(body: RuleCreate, actor: CurrentActor, db: DB) -> RuleOut:
    return rule_out(phrase_rules.create_rule(db, actor, body.model_dump()))


@router.get("/phrase-rules/compiled")
def compiled_rules(actor: CurrentActor, db: DB,
                   conversation_id: Annotated[int | None, Query(ge=1)] = None) -> dict[str, Any]:
    """What the reply box needs to check as the agent types, with no round trip per key: the workspace's
    enabled rules as one expression (JavaScript flavour, flags "gmu", one capturing group per phrase variant,
    `groups` naming each group's rule), each rule's severity, reason and alternatives, and whether this
    conversation's customer is upset (for the empathetic-opening hint)."""
    engine = phrase_rules.engine_for(db, actor.workspace_id)
    upset = False
    if conversation_id is not None:
        upset = phrase_rules.is_upset(get_conversation(db, actor, conversation_id))
    return {"pattern": engine.js_pattern(),
            "rules": {r.id: {"severity": r.severity, "reason": r.reason, "alternatives": list(r.alternatives)}
                      for r in engine.rules},
            "upset": upset, "openings": {k: list(v) for k, v in phrases.OPENINGS.items()},
            "no_alternatives": {k: list(v) for k, v in phrases.NO_ALTERNATIVES.items()}}


@router.get("/phrase-rules/{phrase_rule_id}", response_model=RuleOut)
def get_rule(phrase_rule_id: RuleId, actor: CurrentActor, db: DB) -> RuleOut:
    return rule_out(phrase_rules.get_view(db, actor, phrase_rule_id))


@router.patch("/phrase-rules/{phrase_rule_id}", response_model=RuleOut)
def update_rule(phrase_rule_id: RuleId, body: RuleUpdate, actor: CurrentActor, db: DB) -> RuleOut:
    return rule_out(phrase_rules.update_rule(db, actor, phrase_rule_id, body.model_dump(exclude_unset=True)))


@router.delete("/phrase-rules/{phrase_rule_id}", status_code=204)
def delete_rule(phrase_rule_id: RuleId, actor: CurrentActor, db: DB) -> Response:
    phrase_rules.delete_rule(db, actor, phrase_rule_id)
    return Response(status_code=204)


@router.post("/phrase-check", response_model=CheckOut)
def check(body: CheckIn, actor: CurrentActor, db: DB) -> CheckOut:
    matches = phrase_rules.check_text(db, actor, body.text, language=body.language)
    upset = False
    if body.conversation_id is not None:
        upset = phrase_rules.is_upset(get_conversation(db, actor, body.conversation_id))
    hints = phrases.tone_hints(body.text, upset=upset, language=body.language or phrases.language_of(body.text))
    return CheckOut(matches=[MatchOut(**m.as_dict()) for m in matches], hints=[HintOut(**h) for h in hints])


@router.get("/reports/phrases")
def phrase_report(actor: CurrentActor, db: DB, since: dt.datetime | None = None,
                  until: dt.datetime | None = None,
                  top: Annotated[int, Query(ge=1, le=50)] = 5) -> dict[str, Any]:
    """Every public agent reply in [since, until) (default: the last 30 days) scored by the workspace's rules;
    supervisors and admins."""
    actor.require(Role.supervisor)
    until_at = _utc(until) if until else utcnow()
    since_at = _utc(since) if since else until_at - dt.timedelta(days=30)
    return phrase_rules.report(db, actor, since=since_at, until=until_at, top=top)


def _utc(value: dt.datetime) -> dt.datetime:
    """A time without a zone is read as UTC."""
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
