"""HTTP surface of duplicate suggestions: list a customer's probable duplicates, dismiss one.
Accepting a suggestion is the ordinary merge: POST /api/v1/customers/{id}/merge {"source_id": other_id}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.customers import service as customers
from otklik.customers import suggestions

router = APIRouter(tags=["customers"])


class SuggestionOut(BaseModel):
    customer_id: int
    other_id: int
    other_name: str
    score: float = Field(description="0..1; independent pieces of evidence add up")
    reasons: list[str]


class DismissIn(Strict):
    reason: Annotated[str, Field(max_length=300)] = ""


@router.get("/customers/{customer_id}/suggestions", response_model=list[SuggestionOut])
def list_suggestions(customer_id: int, actor: CurrentActor, db: DB) -> list[SuggestionOut]:
    """Probable duplicates of this customer (never merged automatically; accept with the merge endpoint)."""
    customers.get_customer(db, actor, customer_id)
    return [SuggestionOut(customer_id=s.customer_id, other_id=s.other_id, other_name=s.other_name,
                          score=s.score, reasons=s.reasons)
            for s in suggestions.suggestions_for(db, actor.workspace_id, customer_id)]


@router.post("/customers/{customer_id}/suggestions/{other_id}/dismiss", status_code=204)
def dismiss(customer_id: int, other_id: int, actor: CurrentActor, db: DB, body: DismissIn | None = None
            ) -> Response:
    """These two are different people: stop suggesting the pair."""
    actor.require(Role.agent)
    suggestions.dismiss_suggestion(db, actor, customer_id, other_id, reason=body.reason if body else "")
    return Response(status_code=204)
