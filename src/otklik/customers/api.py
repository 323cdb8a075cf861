"""HTTP surface of the customers domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.customers import service
from otklik.customers.models import Customer
from otklik.customers.schemas import (
    CustomerCreate,
    CustomerOut,
    CustomerUpdate,
    IdentityIn,
    IdentityOut,
    MergeIn,
    NoteIn,
    NoteOut,
)
from otklik.platform.api import Page

router = APIRouter(tags=["customers"])


def customers_out(db: Session, customers: Sequence[Customer]) -> list[CustomerOut]:
    idents = service.identities_of(db, [c.id for c in customers])
    return [CustomerOut(id=c.id, name=c.name, language=c.language, timezone=c.timezone,
                        attributes=c.attributes or {}, merged_into_id=c.merged_into_id, loyalty_tier=c.loyalty_tier,
                        identities=[IdentityOut.model_validate(i) for i in idents[c.id]],
                        created_at=c.created_at, updated_at=c.updated_at) for c in customers]


@router.get("/customers", response_model=Page[CustomerOut])
def list_customers(actor: CurrentActor, db: DB, q: Annotated[str | None, Query(max_length=200)] = None,
                   identity: Annotated[str | None, Query(max_length=254)] = None,
                   identity_kind: Annotated[str | None, Query(max_length=16)] = None,
                   cursor: Annotated[str | None, Query(max_length=500)] = None,
                   limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[CustomerOut]:
    rows, next_cursor = service.list_customers(db, actor, q=q, identity=identity, identity_kind=identity_kind,
                                               cursor=cursor, limit=limit)
    return Page(items=customers_out(db, rows), next_cursor=next_cursor)


@router.post("/customers", response_model=CustomerOut, status_code=201)
def create_customer(body: CustomerCreate, actor: CurrentActor, db: DB) -> CustomerOut:
    customer = service.create_customer(
        db, actor, name=body.name, language=body.language, timezone=body.timezone, attributes=body.attributes,
        identities=[service.IdentityInput(i.kind.value, i.external_id, i.verified, i.display)
                    for i in body.identities])
    return customers_out(db, [customer])[0]


@router.get("/customers/{customer_id}", response_model=CustomerOut)
def get_customer(customer_id: int, actor: CurrentActor, db: DB) -> CustomerOut:
    return customers_out(db, [service.get_customer(db, actor, customer_id)])[0]


@router.patch("/customers/{customer_id}", response_model=CustomerOut)
def update_customer(customer_id: int, body: CustomerUpdate, actor: CurrentActor, db: DB) -> CustomerOut:
    customer = service.update_customer(db, actor, customer_id, changes=body.model_dump(exclude_unset=True))
    return customers_out(db, [customer])[0]


@router.post("/customers/{customer_id}/identities", response_model=IdentityOut, status_code=201)
def add_identity(customer_id: int, body: IdentityIn, actor: CurrentActor, db: DB) -> IdentityOut:
    identity = service.add_identity(db, actor, customer_id, service.IdentityInput(
        body.kind.value, body.external_id, body.verified, body.display))
    return IdentityOut.model_validate(identity)


@router.delete("/customers/{customer_id}/identities/{identity_id}", status_code=204)
def remove_identity(customer_id: int, identity_id: int, actor: CurrentActor, db: DB) -> Response:
    service.remove_identity(db, actor, customer_id, identity_id)
    return Response(status_code=204)


@router.post("/customers/{customer_id}/merge", response_model=CustomerOut)
def merge(customer_id: int, body: MergeIn, actor: CurrentActor, db: DB) -> CustomerOut:
    customer = service.merge_customers(db, actor, target_id=customer_id, source_id=body.source_id)
    return customers_out(db, [customer])[0]


@router.get("/customers/{customer_id}/notes", response_model=list[NoteOut])
def list_notes(customer_id: int, actor: CurrentActor, db: DB) -> list[NoteOut]:
    return [NoteOut.model_validate(n) for n in service.list_notes(db, actor, customer_id)]


@router.post("/customers/{customer_id}/notes", response_model=NoteOut, status_code=201)
def add_note(customer_id: int, body: NoteIn, actor: CurrentActor, db: DB) -> NoteOut:
    return NoteOut.model_validate(service.add_note(db, actor, customer_id, body.body))
