"""HTTP surface of the authority limits: compensations on a conversation, the approval queue, the limits and the
shop's webhook (admins). Amounts travel as decimal strings in roubles (numbers are accepted on input)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.guardrails import compensations as service
from otklik.guardrails.compensation_models import Compensation

router = APIRouter(tags=["compensations"])
KIND_HELP = f"One of: {', '.join(service.KINDS)}"


class CompensationIn(Strict):
    kind: str = Field(max_length=40, description=KIND_HELP)
    # checked by the service (a 422 naming `amount`): a decimal string or a number, never a bool
    amount: Any = Field(description="Roubles, at most two decimals, more than zero: \"499.90\"",
                        json_schema_extra={"type": ["string", "number"]})
    reason: str = Field(max_length=5000, description="Why (at most 500 characters)")
    customer_id: int | None = Field(default=None, description="Default: the conversation's customer")


class DecisionIn(Strict):
    comment: str | None = Field(default=None, max_length=5000, description="At most 500 characters")


class CompensationOut(BaseModel):
    id: int
    conversation_id: int
    customer_id: int
    kind: str
    amount: str
    reason: str
    status: str
    requested_by: int | None
    requested_by_kind: str
    decided_by: int | None
    decision_comment: str | None
    created_at: str
    decided_at: str | None
    applied_at: str | None
    webhook: str | None = None


class LimitIn(Strict):
    subject: str = Field(max_length=40, description="role:agent | role:supervisor | role:admin | role:assistant | "
                                                    "user:<id>")
    kind: str = Field(max_length=40, description=f"{KIND_HELP}, or * for all kinds together")
    per_case: Any = Field(default=None, description="Roubles; null: no limit",
                          json_schema_extra={"type": ["string", "number", "null"]})
    per_day: Any = Field(default=None, description="Roubles; null: no limit",
                         json_schema_extra={"type": ["string", "number", "null"]})


class WebhookIn(Strict):
    url: str = Field(max_length=2000, description="The shop's endpoint; empty removes it")
    secret: str | None = Field(default=None, max_length=2000, description="Signing secret; empty keeps the stored one")


def out(session: Session, c: Compensation) -> dict[str, Any]:
    return {"id": c.id, "conversation_id": c.conversation_id, "customer_id": c.customer_id, "kind": c.kind,
            "amount": service.money_text(c.amount), "reason": c.reason, "status": c.status,
            "requested_by": c.requested_by, "requested_by_kind": c.requested_by_kind, "decided_by": c.decided_by,
            "decision_comment": c.decision_comment, "created_at": c.created_at.isoformat(),
            "decided_at": c.decided_at.isoformat() if c.decided_at else None,
            "applied_at": c.applied_at.isoformat() if c.applied_at else None,
            "webhook": service.webhook_status(session, c)}


@router.get("/conversations/{conversation_id}/compensations", tags=["conversations"])
def conversation_compensations(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The conversation's compensations (applied, pending, rejected) and the caller's authority per kind: their
    limits, what they gave today, and the conversation's sum so far against each."""
    items = service.list_for_conversation(db, actor, conversation_id)
    return {"items": [out(db, c) for c in items], "authority": service.my_authority(db, actor, conversation_id)}


@router.post("/conversations/{conversation_id}/compensations", status_code=201, tags=["conversations"])
def give_compensation(conversation_id: int, body: CompensationIn, actor: CurrentActor, db: DB,
                      response: Response) -> dict[str, Any]:
    """Applied at once (`status: applied`) within the caller's limits, else a request for approval
    (`status: pending`, answered 202) that goes to whoever has the authority."""
    c = service.request_compensation(db, actor, conversation_id, kind=body.kind, amount=body.amount,
                                     reason=body.reason, customer_id=body.customer_id)
    if c.status == service.PENDING:
        response.status_code = 202
    return out(db, c)


@router.get("/compensations/pending")
def pending(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """«Ждут согласования»: the pending requests the caller may decide, oldest first."""
    return {"items": [out(db, c) for c in service.pending_for(db, actor)]}


@router.get("/compensations/mine")
def mine(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The caller's own requests and compensations, newest first."""
    return {"items": [out(db, c) for c in service.requested_by(db, actor)]}


@router.get("/compensations/{compensation_id}")
def get_one(compensation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return out(db, service.get_compensation(db, actor, compensation_id))


@router.post("/compensations/{compensation_id}/approve")
def approve(compensation_id: int, actor: CurrentActor, db: DB, body: DecisionIn | None = None) -> dict[str, Any]:
    """Approve a pending request: a supervisor or admin whose own limit covers it, never its requester."""
    return out(db, service.decide(db, actor, compensation_id, approve=True, comment=body.comment if body else None))


@router.post("/compensations/{compensation_id}/reject")
def reject(compensation_id: int, actor: CurrentActor, db: DB, body: DecisionIn | None = None) -> dict[str, Any]:
    return out(db, service.decide(db, actor, compensation_id, approve=False, comment=body.comment if body else None))


@router.get("/customers/{customer_id}/compensations", tags=["customers"])
def customer_compensations(customer_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    return {"items": [out(db, c) for c in service.list_for_customer(db, actor, customer_id)]}


@router.get("/compensation-limits")
def limits(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Every limit in force: the shipped defaults (`shipped: true`, no id) and the workspace's own rows."""
    return {"items": service.list_limits(db, actor), "kinds": list(service.KINDS),
            "webhook_url": service.webhook_url(db, actor.workspace_id)}


@router.put("/compensation-limits")
def put_limit(body: LimitIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Set one limit (admins). A missing bound is no limit; 0 is no authority (everything goes for approval)."""
    actor.require(Role.admin)
    row = service.set_limit(db, actor, subject=body.subject, kind=body.kind, per_case=body.per_case,
                            per_day=body.per_day)
    return {"id": row.id, "subject": row.subject, "kind": row.kind, "per_case": service.money_text(row.per_case),
            "per_day": service.money_text(row.per_day)}


@router.delete("/compensation-limits/{limit_id}", status_code=204)
def delete_limit(limit_id: int, actor: CurrentActor, db: DB) -> Response:
    actor.require(Role.admin)
    service.delete_limit(db, actor, limit_id)
    return Response(status_code=204)


@router.put("/compensation-webhook")
def put_webhook(body: WebhookIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Where applied compensations are POSTed, signed `X-Otklik-Signature: sha256=<HMAC of the body>` with an
    `Idempotency-Key` that stays the same across retries (admins)."""
    actor.require(Role.admin)
    row = service.set_webhook(db, actor, url=body.url, secret=body.secret)
    return {"url": row.url if row else None}
