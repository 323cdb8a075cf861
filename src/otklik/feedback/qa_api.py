"""HTTP surface of QA scoring (docs/qa.md): a conversation's scorecards, a supervisor's review with the same
scorecard, and the sample worth reviewing."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.feedback import qa

router = APIRouter(tags=["qa"])


class ReviewBody(Strict):
    items: dict[Annotated[str, Field(max_length=32)], Annotated[str, Field(max_length=8)]] = Field(
        max_length=len(qa.ITEMS), description=f"item → pass / partial / fail / na; items: {', '.join(qa.ITEMS)}")
    comment: str = Field(default="", max_length=4000)


@router.get("/conversations/{conversation_id}/qa")
def conversation_qa(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The automatic scorecard (each item with its evidence: message ids), the manual review and their
    agreement."""
    return qa.scores_of(db, actor, conversation_id)


@router.post("/conversations/{conversation_id}/qa/review")
def review(conversation_id: int, body: ReviewBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A supervisor's scorecard of the conversation (items left out are n/a)."""
    qa.review(db, actor, conversation_id, body.items, body.comment)
    return qa.scores_of(db, actor, conversation_id)


@router.get("/qa/sample")
def qa_sample(actor: CurrentActor, db: DB, n: Annotated[int, Query(ge=1, le=100)] = 10) -> list[dict[str, Any]]:
    """Conversations to review by hand: the lowest scores, the low CSAT, a few at random (not reviewed yet)."""
    return qa.sample(db, actor, n)
