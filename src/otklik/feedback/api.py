"""HTTP surface of surveys: a conversation's survey answers (agents), sending the CSAT survey by hand
(supervisors), answering through a signed link (the customer; no sign-in, the link is the key), and the NPS
schedule's settings (admins)."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.conversations.service import get_conversation
from otklik.feedback import nps, service
from otklik.platform.errors import Conflict

router = APIRouter(tags=["surveys"])


class AnswerIn(Strict):
    token: str = Field(min_length=1, max_length=200, description="the survey link's key (its last path segment)")
    score: int | None = Field(default=None, description="CSAT 1–5, CES 1–7, NPS 0–10")
    comment: str | None = Field(default=None, max_length=service.MAX_COMMENT)


@router.get("/conversations/{conversation_id}/surveys")
def conversation_surveys(conversation_id: int, actor: CurrentActor, db: DB) -> list[dict[str, Any]]:
    return [service.answer_data(a) for a in service.answers_of(db, actor, conversation_id)]


@router.post("/conversations/{conversation_id}/surveys/csat", status_code=201)
def send_csat(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Send the CSAT survey now (it is sent on its own when the conversation is solved); 409 with the reason
    when the rules say no (not solved, merged, spam, opted out, already sent, quiet period)."""
    actor.require(Role.supervisor)
    conversation = get_conversation(db, actor, conversation_id)
    reason = service.why_not(db, conversation, now=service.utcnow())
    answer = service.send_csat(db, actor.workspace_id, conversation_id) if reason is None else None
    if answer is None:
        raise Conflict(f"no survey: {reason or 'not sent'}", code="survey_refused")
    return service.answer_data(answer)


@router.post("/surveys/answer")
def answer_by_link(body: AnswerIn, db: DB) -> dict[str, Any]:
    """The customer's answer with the key of a survey link (the widget's buttons, a messenger's reply); no
    sign-in: the signed key names one survey of one customer, and expires."""
    answer, linked_score = service.answer_for_token(db, body.token)
    answer = service.record_answer(db, answer, score=body.score if body.score is not None else linked_score,
                                   comment=body.comment)
    return {"kind": answer.kind, "score": answer.score, "comment": answer.comment}


class NpsTextsIn(Strict):
    question: str | None = Field(default=None, max_length=nps.MAX_QUESTION)
    why: str | None = Field(default=None, max_length=nps.MAX_WHY)


class NpsSettingsIn(Strict):
    enabled: bool | None = None
    delay_days: int | None = Field(default=None, ge=nps.DELAY_RANGE[0], le=nps.DELAY_RANGE[1],
                                   description="days after a contact or a delivered order (30 by default)")
    texts: dict[Literal["ru", "en"], NpsTextsIn] | None = Field(
        default=None, description="per language: the question and «почему?»; an empty text: the built-in one")


@router.get("/surveys/nps/settings")
def nps_settings(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The NPS schedule (docs/metrics.md «NPS»): on/off, the delay, the texts per language (supervisors)."""
    actor.require(Role.supervisor)
    return nps.settings_data(nps.settings_of(db, actor.workspace_id))


@router.put("/surveys/nps/settings")
def put_nps_settings(body: NpsSettingsIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Change the NPS schedule (admins)."""
    texts: dict[str, dict[str, str]] | None = None if body.texts is None else {
        str(lang): {k: v for k, v in t.model_dump().items() if v is not None} for lang, t in body.texts.items()}
    row = nps.update_settings(db, actor, enabled=body.enabled, delay_days=body.delay_days, texts=texts)
    return nps.settings_data(row)
