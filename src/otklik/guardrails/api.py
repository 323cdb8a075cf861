"""HTTP surface of the guardrails: consumer-law deadlines.

Contract that outside checks call (keep names): POST /consumer-law/deadlines with `situation`, optional ISO
dates `purchased_on`, `delivered_on`, `demanded_on`, `agreed_delivery_on`, `today`, numbers `price`, `prepaid`,
booleans `distance_sale`, `return_terms_in_writing`, `quality_check`, `in_stock` ->
{"obligations": [{"key", "article", "starts_on", "due_on", "days_left", "overdue_days", "penalty"}],
 "missing": [...]}; 422 naming the field on an unknown situation, impossible dates or negative sums.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.guardrails import service
from otklik.guardrails.law import SITUATIONS

router = APIRouter(tags=["consumer law"])
Money = Decimal


class DeadlinesIn(Strict):
    situation: str = Field(max_length=40, description=f"One of: {', '.join(SITUATIONS)}")
    purchased_on: dt.date | None = None
    delivered_on: dt.date | None = None
    demanded_on: dt.date | None = None
    agreed_delivery_on: dt.date | None = None
    today: dt.date | None = Field(default=None, description="Default: today in the workspace calendar's zone")
    price: Money | None = Field(default=None, ge=0, le=Decimal("1e12"), max_digits=20, decimal_places=2)
    prepaid: Money | None = Field(default=None, ge=0, le=Decimal("1e12"), max_digits=20, decimal_places=2)
    distance_sale: bool | None = None
    return_terms_in_writing: bool | None = None
    quality_check: bool | None = None
    in_stock: bool | None = None


class Obligation(BaseModel):
    key: str
    title: str
    article: str
    starts_on: str
    due_on: str
    days_left: int
    overdue_days: int
    penalty: str | None  # roubles, a decimal string; null when the law sets no penalty for this delay
    penalty_article: str | None = None
    penalty_rate_per_day: str | None = None
    source: str = "law"  # "shop": the workspace's own term is stricter for the seller than the law's
    law_due_on: str | None = None  # the law's due date (differs from due_on when source is "shop")
    customer_window: bool = False  # the customer's window to use a right (refuse, exchange), not a seller's duty


class DeadlinesOut(BaseModel):
    situation: str
    today: str
    law_version: str
    obligations: list[Obligation]
    missing: list[str]


@router.post("/consumer-law/deadlines", response_model=DeadlinesOut)
def consumer_law_deadlines(body: DeadlinesIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """What the seller owes in this situation, by when (ГК ст. 191–193 on the workspace's production calendar),
    and the penalty accrued to `today` once late."""
    return service.compute(db, actor.workspace_id, body.situation, body.model_dump(exclude={"situation"}))


class CaseIn(Strict):
    situation: str | None = Field(default=None, max_length=40, description="null: from the contact reason")
    inputs: dict[str, Any] = Field(default_factory=dict, description="purchased_on, delivered_on, demanded_on, "
                                   "agreed_delivery_on (ISO dates), price, prepaid (roubles), distance_sale, "
                                   "return_terms_in_writing, quality_check, in_stock (true/false)")


class CaseOut(BaseModel):
    situation: str | None
    chosen: bool
    inputs: dict[str, Any]
    obligations: list[Obligation]
    missing: list[str]
    law_version: str
    today: str | None = None


@router.get("/conversations/{conversation_id}/consumer-law", response_model=CaseOut, tags=["conversations"])
def get_case(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The conversation's consumer-law case: its situation (chosen by an agent, else from the contact reason),
    the inputs confirmed so far, what the seller owes and by when, and which inputs are still missing."""
    from otklik.conversations.service import get_conversation

    return service.case_view(db, actor, get_conversation(db, actor, conversation_id))


@router.put("/conversations/{conversation_id}/consumer-law", response_model=CaseOut, tags=["conversations"])
def put_case(conversation_id: int, body: CaseIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return service.save_case(db, actor, conversation_id, body.situation, body.inputs)


class LegalSettingsIn(Strict):
    reason_situations: dict[str, str | None] | None = Field(
        default=None, description="contact reason -> situation (empty: no situation); merged over the shipped "
                                  "store mapping")
    terms: list[dict[str, Any]] | None = Field(
        default=None, max_length=50, description="the shop's own terms: [{situation, key, days | months, title}]; "
                                                 "the stricter of these and the law is shown")
    warn_days: int | None = Field(default=None, description="warn this many days before a legal deadline")


@router.get("/consumer-law/settings")
def get_settings(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The workspace's contact reasons mapped to the law's situations, its own terms and warning days, and the
    situations and obligations a term can name."""
    return service.settings_view(db, actor.workspace_id)


@router.put("/consumer-law/settings")
def put_settings(body: LegalSettingsIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Admins: change the mapping, terms or warning days (only the keys given); the open conversations' legal
    timers are re-counted at once."""
    return service.update_settings(db, actor, body.model_dump(exclude_none=True))
