"""Probable duplicate customers, suggested to an agent and never merged silently.

A wrong automatic merge shows one person's orders and messages to another, so only *verified* identities
merge by themselves (`link_verified_identity`: WhatsApp proved a phone number, a Telegram contact shared its
own). Everything weaker is a scored suggestion an agent accepts (the ordinary merge) or dismisses:
- an unverified claim (a web form's "my email is ...", kept as `claim:<kind>:<value>`) of an identity
  another customer holds;
- the same phone number on two profiles where it is not verified on both (a phone vs a WhatsApp contact);
- the same name and a phone number that differs only in its last digits (a typo);
- the same e-mail local part at another domain (ivan.petrov@mail.ru / ivan.petrov@yandex.ru);
- the same name and the same city attribute.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from sqlalchemy import ForeignKey, String, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.service import Actor, record_audit
from otklik.customers import service as customers
from otklik.customers.identities import normalise_identity
from otklik.customers.models import Customer, Identity, IdentityKind
from otklik.platform.db import Base, UTCDateTime, utcnow
from otklik.platform.errors import NotFound, field_error
from otklik.platform.search import match_clause

CLAIM_PREFIX = "claim:"  # external identity of an unverified claim that a verified customer already owns
MAX_SUGGESTIONS = 10


class SuggestionDismissal(Base):
    """An agent said these two customers are different people: never suggest the pair again."""

    __tablename__ = "customer_suggestion_dismissals"
    __table_args__ = (UniqueConstraint("workspace_id", "customer_id", "other_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))  # the lower id
    other_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    dismissed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reason: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass
class Suggestion:
    customer_id: int
    other_id: int
    other_name: str
    score: float
    reasons: list[str] = field(default_factory=list)


def normalise_name(name: str) -> str:
    words = re.findall(r"\w+", (name or "").lower().replace("ё", "е"))
    return " ".join(sorted(w for w in words if not w.isdigit()))


def _survivor(session: Session, customer: Customer) -> Customer:
    for _ in range(10):
        if customer.merged_into_id is None:
            break
        nxt = session.get(Customer, customer.merged_into_id)
        if nxt is None:
            break
        customer = nxt
    return customer


# -- verified identities merge; claims do not ------------------------------------------------------------

def link_verified_identity(session: Session, workspace_id: int, customer_id: int, *, kind: str, value: str
                           ) -> int:
    """The channel proved that `customer_id` holds (kind, value) (WhatsApp's wa_id is the phone it runs on).

    Adds the identity as verified; if another customer owns it *verified*, the two are one person and are
    merged (into the older profile); if another owns it unverified, nothing moves: a suggestion shows it.
    Returns the surviving customer's id."""
    kind_enum, value = normalise_identity(kind, value)
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    customer = _survivor(session, customer)
    owner = session.scalar(select(Identity).where(Identity.workspace_id == workspace_id,
                                                  Identity.kind == kind_enum.value, Identity.external_id == value))
    system = Actor.system(workspace_id)
    if owner is None:
        customers.add_identity(session, system, customer.id, customers.IdentityInput(kind_enum.value, value,
                                                                                     verified=True))
        return customer.id
    owner_customer = session.get(Customer, owner.customer_id)
    assert owner_customer is not None
    owner_customer = _survivor(session, owner_customer)
    if owner_customer.id == customer.id:
        if not owner.verified:
            owner.verified = True
            record_audit(session, system, entity_type="customer", entity_id=customer.id,
                         action="identity_verified", after={"identity": f"{kind_enum.value}:{value}"})
        return customer.id
    if not owner.verified:
        return customer.id
    target, source = sorted((customer, owner_customer), key=lambda c: c.id)
    customers.merge_customers(session, system, target_id=target.id, source_id=source.id)
    return target.id


def identity_for_claim(session: Session, workspace_id: int, kind: str, value: str, *, field: str = "identity"
                       ) -> tuple[str, str]:
    """Where an *unverified* claim (a web form's e-mail or phone, a callback request's number) lands: an
    `external` identity `claim:<kind>:<value>` of its own, never the real identity.

    So the claim never joins an existing customer's history, and a later *verified* identity with that value
    (an e-mail, a Telegram contact's phone) never merges with it by itself: the claimant's profile is offered
    to the agent as a probable match (`suggestions_for`), accepted with the ordinary merge. The same claim
    made twice lands on the same profile. `session`/`workspace_id` keep the call shape of a resolver."""
    kind_enum, value = normalise_identity(kind, value, field=field)
    return IdentityKind.external.value, f"{CLAIM_PREFIX}{kind_enum.value}:{value}"[:200]


# -- suggestions ----------------------------------------------------------------------------------------

def _dismissed(session: Session, workspace_id: int, customer_id: int) -> set[int]:
    rows = session.execute(select(SuggestionDismissal.customer_id, SuggestionDismissal.other_id).where(
        SuggestionDismissal.workspace_id == workspace_id,
        (SuggestionDismissal.customer_id == customer_id) | (SuggestionDismissal.other_id == customer_id)))
    return {b if a == customer_id else a for a, b in rows}


def suggestions_for(session: Session, workspace_id: int, customer_id: int, *, limit: int = MAX_SUGGESTIONS
                    ) -> list[Suggestion]:
    """Probable duplicates of one customer, best first (never merged here)."""
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    if customer.merged_into_id is not None:
        return []
    idents = list(session.scalars(select(Identity).where(Identity.customer_id == customer.id)))
    found: dict[int, Suggestion] = {}

    def add(other_id: int, score: float, reason: str) -> None:
        if other_id == customer.id:
            return
        entry = found.setdefault(other_id, Suggestion(customer.id, other_id, "", 0.0))
        if reason not in entry.reasons:
            entry.reasons.append(reason)
            entry.score = min(0.99, 1 - (1 - entry.score) * (1 - score))  # independent evidence adds up

    def owners(kind: str, values: list[str]) -> list[tuple[int, str, bool]]:
        if not values:
            return []
        return [(c, v, ver) for c, v, ver in session.execute(select(
            Identity.customer_id, Identity.external_id, Identity.verified).where(
            Identity.workspace_id == workspace_id, Identity.kind == kind, Identity.external_id.in_(values)))]

    # 1. this profile holds an unverified claim of someone else's identity (or the reverse)
    claims = [i.external_id.removeprefix(CLAIM_PREFIX).split(":", 1) for i in idents
              if i.kind == IdentityKind.external.value and i.external_id.startswith(CLAIM_PREFIX)]
    for kind, value in (c for c in claims if len(c) == 2):
        for other, _, _ in owners(kind, [value]):
            add(other, 0.85, f"claims the {kind} {value} that customer {other} verified")
    own = [(i.kind, i.external_id) for i in idents if i.kind in (IdentityKind.email.value, IdentityKind.phone.value)]
    for kind, value in own:
        for other, _, _ in owners(IdentityKind.external.value, [f"{CLAIM_PREFIX}{kind}:{value}"]):
            add(other, 0.85, f"customer {other} claims this profile's {kind} {value} without verification")

    name = normalise_name(customer.name)
    same_name: dict[int, Customer] = {}
    if name:
        clause = match_clause(session, "customers", Customer.id, customer.name, prefix_last=False)
        if clause is not None:
            for namesake in session.scalars(select(Customer).where(
                    Customer.workspace_id == workspace_id, Customer.merged_into_id.is_(None),
                    Customer.id != customer.id, clause).limit(200)):
                if normalise_name(namesake.name) == name:
                    same_name[namesake.id] = namesake

    # 2. the same number as another customer's phone / WhatsApp, not proven by both (else they were merged)
    numbers = [v for k, v in ((i.kind, i.external_id) for i in idents) if k in ("phone", "whatsapp")]
    for other, other_value, _ in session.execute(select(
            Identity.customer_id, Identity.external_id, Identity.verified).where(
            Identity.workspace_id == workspace_id, Identity.kind.in_(("phone", "whatsapp")),
            Identity.external_id.in_(numbers), Identity.customer_id != customer.id).limit(50)) if numbers else ():
        add(other, 0.8, f"the same phone number {other_value}")

    # 3. same name + phone differing only in the last digits
    for kind, value in own:
        if kind != IdentityKind.phone.value or len(value) < 9:
            continue
        prefix = value[:-2]
        for other, other_value, _ in session.execute(select(
                Identity.customer_id, Identity.external_id, Identity.verified).where(
                Identity.workspace_id == workspace_id, Identity.kind.in_(("phone", "whatsapp")),
                Identity.external_id.startswith(prefix, autoescape=True), Identity.external_id != value).limit(50)):
            if other in same_name:
                add(other, 0.7, f"same name, and phone {other_value} differs from {value} only in the last digits")

    # 4. the same e-mail local part at another domain
    for kind, value in own:
        if kind != IdentityKind.email.value:
            continue
        local = value.split("@", 1)[0]
        if len(local) < 4:
            continue
        for other, other_value, _ in session.execute(select(
                Identity.customer_id, Identity.external_id, Identity.verified).where(
                Identity.workspace_id == workspace_id, Identity.kind == IdentityKind.email.value,
                Identity.external_id.startswith(local + "@", autoescape=True), Identity.external_id != value
        ).limit(50)):
            add(other, 0.6 if other in same_name else 0.4,
                f"e-mail {other_value} has the same name before @ as {value}")

    # 5. same name + same city
    city = str((customer.attributes or {}).get("city") or "").strip().lower()
    if city:
        for namesake in same_name.values():
            if str((namesake.attributes or {}).get("city") or "").strip().lower() == city:
                add(namesake.id, 0.5, f"same name and the same city ({city})")

    dismissed = _dismissed(session, workspace_id, customer.id)
    result = []
    for other_id, suggestion in found.items():
        other_customer = session.get(Customer, other_id)
        if other_id in dismissed or other_customer is None or other_customer.merged_into_id is not None \
                or other_customer.workspace_id != workspace_id:
            continue
        suggestion.other_name = other_customer.name
        suggestion.score = round(suggestion.score, 2)
        result.append(suggestion)
    result.sort(key=lambda s: (-s.score, s.other_id))
    return result[:limit]


def dismiss_suggestion(session: Session, actor: Actor, customer_id: int, other_id: int, *, reason: str = ""
                       ) -> None:
    """The agent says these are two people: the pair is not suggested again (idempotent)."""
    for cid in (customer_id, other_id):
        customers.get_customer(session, actor, cid)  # both in the actor's workspace, or 404
    if customer_id == other_id:
        raise field_error("other_id", "a customer is not a duplicate of itself")
    low, high = sorted((customer_id, other_id))
    exists = session.scalar(select(SuggestionDismissal.id).where(
        SuggestionDismissal.workspace_id == actor.workspace_id, SuggestionDismissal.customer_id == low,
        SuggestionDismissal.other_id == high))
    if exists is not None:
        return
    session.add(SuggestionDismissal(workspace_id=actor.workspace_id, customer_id=low, other_id=high,
                                    dismissed_by=actor.user_id, reason=reason[:300]))
    session.flush()
    record_audit(session, actor, entity_type="customer", entity_id=customer_id, action="suggestion_dismissed",
                 after={"other_id": other_id})
