"""Rules of the customers domain: one profile per person, identities unique per workspace, audited merges."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.customers.identities import normalise_identity
from otklik.customers.models import Customer, CustomerNote, Identity, IdentityKind
from otklik.platform.db import affected
from otklik.platform.errors import Conflict, NotFound, field_error
from otklik.platform.pagination import decode_cursor, encode_cursor
from otklik.platform.search import match_clause
from otklik.platform.text import search_terms

MAX_ATTRIBUTES_BYTES = 16_384

# Domains above this one register what they own of a customer, moved inside the same transaction on merge.
CustomerMover = Callable[[Session, int, int, int], int]  # (session, workspace_id, source_id, target_id) -> moved
_merge_movers: dict[str, CustomerMover] = {}


def register_merge_mover(name: str, mover: CustomerMover) -> None:
    _merge_movers[name] = mover


@dataclass(frozen=True)
class IdentityInput:
    kind: str
    external_id: str
    verified: bool = False
    display: str | None = None


def _refresh_search(session: Session, customer: Customer) -> None:
    idents = session.scalars(select(Identity).where(Identity.customer_id == customer.id)).all()
    customer.search_terms = search_terms(customer.name, *(i.external_id for i in idents),
                                         *(i.display or "" for i in idents))


def _check_attributes(attributes: dict[str, Any]) -> None:
    import json

    if len(json.dumps(attributes, ensure_ascii=False, default=str)) > MAX_ATTRIBUTES_BYTES:
        raise field_error("attributes", f"must serialise to at most {MAX_ATTRIBUTES_BYTES} bytes")


def get_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    return customer


def identities_of(session: Session, customer_ids: Sequence[int]) -> dict[int, list[Identity]]:
    result: dict[int, list[Identity]] = {c: [] for c in customer_ids}
    if customer_ids:
        for ident in session.scalars(select(Identity).where(Identity.customer_id.in_(customer_ids))
                                     .order_by(Identity.id)):
            result[ident.customer_id].append(ident)
    return result


def find_by_identity(session: Session, workspace_id: int, kind: str, external_id: str) -> Customer | None:
    kind_enum, value = normalise_identity(kind, external_id)
    return session.scalar(
        select(Customer).join(Identity, Identity.customer_id == Customer.id)
        .where(Identity.workspace_id == workspace_id, Identity.kind == kind_enum.value,
               Identity.external_id == value)
    )


def create_customer(session: Session, actor: Actor, *, name: str = "", language: str | None = None,
                    timezone: str | None = None, attributes: dict[str, Any] | None = None,
                    identities: Sequence[IdentityInput] = ()) -> Customer:
    attributes = attributes or {}
    _check_attributes(attributes)
    normalised = []
    for i, ident in enumerate(identities):
        kind, value = normalise_identity(ident.kind, ident.external_id, field=f"identities.{i}.external_id")
        existing = session.scalar(select(Identity.customer_id).where(
            Identity.workspace_id == actor.workspace_id, Identity.kind == kind.value,
            Identity.external_id == value))
        if existing is not None:
            raise Conflict(f"{kind.value} {value} already belongs to customer {existing}", code="duplicate",
                           fields=[{"field": f"identities.{i}", "message": f"belongs to customer {existing}"}])
        normalised.append((kind, value, ident))
    if len({(k, v) for k, v, _ in normalised}) != len(normalised):
        raise field_error("identities", "the same identity is given twice")
    customer = Customer(workspace_id=actor.workspace_id, name=name.strip(), language=language,
                        timezone=timezone, attributes=attributes)
    session.add(customer)
    session.flush()
    for kind, value, ident in normalised:
        session.add(Identity(workspace_id=actor.workspace_id, customer_id=customer.id, kind=kind.value,
                             external_id=value, verified=ident.verified, display=ident.display))
    session.flush()
    _refresh_search(session, customer)
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="created",
                 after={"name": customer.name, "identities": [f"{k.value}:{v}" for k, v, _ in normalised]})
    return customer


def update_customer(session: Session, actor: Actor, customer_id: int, *, changes: dict[str, Any]) -> Customer:
    customer = get_customer(session, actor, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(f"customer {customer_id} was merged into {customer.merged_into_id}", code="merged")
    before = {k: getattr(customer, k) for k in changes}
    if "attributes" in changes:
        _check_attributes(changes["attributes"] or {})
    for key, value in changes.items():
        if key not in {"name", "language", "timezone", "attributes"}:
            raise field_error(key, "cannot be changed")
        if key == "name" and value is None:
            raise field_error("name", "use an empty string to clear the name, not null")
        setattr(customer, key, value if key != "attributes" else (value or {}))
    _refresh_search(session, customer)
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="updated",
                 before=before, after={k: getattr(customer, k) for k in changes})
    return customer


def add_identity(session: Session, actor: Actor, customer_id: int, ident: IdentityInput) -> Identity:
    customer = get_customer(session, actor, customer_id)
    kind, value = normalise_identity(ident.kind, ident.external_id)
    owner = session.scalar(select(Identity.customer_id).where(
        Identity.workspace_id == actor.workspace_id, Identity.kind == kind.value, Identity.external_id == value))
    if owner is not None:
        raise Conflict(f"{kind.value} {value} already belongs to customer {owner}; merge the customers instead",
                       code="duplicate")
    identity = Identity(workspace_id=actor.workspace_id, customer_id=customer.id, kind=kind.value,
                        external_id=value, verified=ident.verified, display=ident.display)
    session.add(identity)
    session.flush()
    _refresh_search(session, customer)
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="identity_added",
                 after={"identity": f"{kind.value}:{value}", "verified": ident.verified})
    return identity


def remove_identity(session: Session, actor: Actor, customer_id: int, identity_id: int) -> None:
    customer = get_customer(session, actor, customer_id)
    identity = session.get(Identity, identity_id)
    if identity is None or identity.customer_id != customer.id:
        raise NotFound(f"identity {identity_id} not found on customer {customer_id}")
    session.delete(identity)
    session.flush()
    _refresh_search(session, customer)
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="identity_removed",
                 before={"identity": f"{identity.kind}:{identity.external_id}"})


def list_customers(session: Session, actor: Actor, *, q: str | None = None, identity_kind: str | None = None,
                   identity: str | None = None, cursor: str | None = None, limit: int = 50
                   ) -> tuple[list[Customer], str | None]:
    stmt = select(Customer).where(Customer.workspace_id == actor.workspace_id, Customer.merged_into_id.is_(None))
    if q:
        clause = match_clause(session, "customers", Customer.id, q)
        if clause is None:
            raise field_error("q", "has no searchable words")
        stmt = stmt.where(clause)
    if identity is not None:
        kind, value = normalise_identity(identity_kind or "email", identity, field="identity")
        stmt = stmt.where(Customer.id.in_(select(Identity.customer_id).where(
            Identity.workspace_id == actor.workspace_id, Identity.kind == kind.value,
            Identity.external_id == value)))
    if cursor:
        _, last_id = decode_cursor(cursor)
        stmt = stmt.where(Customer.id < last_id)
    rows = list(session.scalars(stmt.order_by(Customer.id.desc()).limit(limit + 1)))
    next_cursor = encode_cursor(None, rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor


def add_note(session: Session, actor: Actor, customer_id: int, body: str) -> CustomerNote:
    customer = get_customer(session, actor, customer_id)
    if not body.strip():
        raise field_error("body", "must not be empty")
    note = CustomerNote(workspace_id=actor.workspace_id, customer_id=customer.id, author_user_id=actor.user_id,
                        body=body.strip())
    session.add(note)
    session.flush()
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="note_added",
                 after={"note_id": note.id})
    return note


def list_notes(session: Session, actor: Actor, customer_id: int) -> list[CustomerNote]:
    get_customer(session, actor, customer_id)
    return list(session.scalars(select(CustomerNote).where(CustomerNote.customer_id == customer_id)
                                .order_by(CustomerNote.id)))


def merge_customers(session: Session, actor: Actor, *, target_id: int, source_id: int) -> Customer:
    """Move everything of `source` (identities, notes, and what other domains registered) onto `target`.

    The source stays as a tombstone pointing at the target so old links resolve; nothing is deleted.
    """
    actor.require(Role.agent)
    if target_id == source_id:
        raise field_error("source_id", "cannot merge a customer into itself")
    target = get_customer(session, actor, target_id)
    source = get_customer(session, actor, source_id)
    for customer in (target, source):
        if customer.merged_into_id is not None:
            raise Conflict(f"customer {customer.id} was already merged into {customer.merged_into_id}",
                           code="merged")
    moved: dict[str, int] = {}
    moved["identities"] = affected(session.execute(
        update(Identity).where(Identity.customer_id == source.id).values(customer_id=target.id)))
    moved["notes"] = affected(session.execute(
        update(CustomerNote).where(CustomerNote.customer_id == source.id).values(customer_id=target.id)))
    for name, mover in _merge_movers.items():
        moved[name] = mover(session, actor.workspace_id, source.id, target.id)
    merged_attrs = dict(source.attributes or {})
    merged_attrs.update(target.attributes or {})  # the surviving profile wins on conflicts
    target.attributes = merged_attrs
    if not target.name and source.name:
        target.name = source.name
    target.language = target.language or source.language
    target.timezone = target.timezone or source.timezone
    source.merged_into_id = target.id
    source.search_terms = ""
    session.flush()
    _refresh_search(session, target)
    record_audit(session, actor, entity_type="customer", entity_id=target.id, action="merged",
                 before={"source_id": source.id}, after={"moved": moved})
    record_audit(session, actor, entity_type="customer", entity_id=source.id, action="merged_into",
                 after={"target_id": target.id})
    target.updated_at = dt.datetime.now(dt.UTC)
    return target


def resolve_or_create(session: Session, workspace_id: int, *, kind: str, external_id: str, name: str = "",
                      verified: bool = False, language: str | None = None) -> tuple[Customer, bool]:
    """The customer behind a channel identity, created on first contact. Follows merge tombstones."""
    kind_enum, value = normalise_identity(kind, external_id)
    customer = _holder(session, workspace_id, kind_enum.value, value)
    if customer is not None:
        return customer, False
    actor = Actor.system(workspace_id, kind="customer")
    try:
        customer = create_customer(session, actor, name=name, language=language,
                                   identities=[IdentityInput(kind_enum.value, value, verified=verified)])
    except Conflict as exc:
        # Another transaction created this person between our lookup and our check (PostgreSQL, READ
        # COMMITTED): the identity now has a holder, and that customer is the answer.
        holder = _holder(session, workspace_id, kind_enum.value, value) if exc.code == "duplicate" else None
        if holder is None:
            raise
        return holder, False
    return customer, True


def _holder(session: Session, workspace_id: int, kind: str, value: str) -> Customer | None:
    customer = session.scalar(
        select(Customer).join(Identity, Identity.customer_id == Customer.id)
        .where(Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.external_id == value))
    while customer is not None and customer.merged_into_id is not None:
        nxt = session.get(Customer, customer.merged_into_id)
        if nxt is None:
            break
        customer = nxt
    return customer


__all__ = [
    "IdentityInput", "IdentityKind", "add_identity", "add_note", "create_customer", "find_by_identity",
    "get_customer", "identities_of", "list_customers", "list_notes", "merge_customers", "register_merge_mover",
    "remove_identity", "resolve_or_create", "update_customer",
]
