"""Loyalty tiers and referrals, computed from the shop's orders (issue 16; docs/loyalty.md).

- A tier («Бронза — 5 покупок») is reached when the customer's purchases (paid orders, neither cancelled nor
  returned) or their sum, over the tier's period (days back from now, or all time), reach its threshold; of
  the tiers reached the one with the highest rank is the customer's. It is stored on the customer
  (`customers.loyalty_tier`) and recomputed whenever one of their orders is stored, when the tiers change,
  and daily for tiers counted over a period (purchases age out of it).
- A referral code belongs to one customer (unique in the workspace). A customer is linked to the one who
  referred them once (by the API, or an order carrying `attributes.referral_code`), only while they have
  bought nothing yet, never to their own code. When their first order is paid the reward is recorded, once
  (`rewarded_at` is set by a conditional UPDATE), and the shop's webhook is delivered: signed
  (`X-Otklik-Signature: sha256=<HMAC-SHA256 of the body>`), retried with back-off, under the same
  `Idempotency-Key` every time, so the shop grants the benefit exactly once.
It never sends anything inside a request: the webhook goes after commit, from a job.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.customers.models import Customer, Identity
from otklik.orders.loyalty_models import LoyaltySettings, LoyaltyTier, Referral, ReferralCode
from otklik.orders.models import Order
from otklik.platform import crypto
from otklik.platform.db import affected, session_scope, utcnow
from otklik.platform.errors import Conflict, DomainError, NotFound, field_error
from otklik.platform.events import Event, after_commit

log = logging.getLogger(__name__)

METRICS = ("purchases", "spent")
MAX_TIERS = 20
MAX_PERIOD_DAYS = 3660
NOT_PURCHASES = ("cancelled", "returned")
CODE_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read aloud over the phone
CODE_LENGTH = 8
SECRET_PURPOSE = "loyalty-webhook"  # noqa: S105 - the encryption purpose label, not a secret
WEBHOOK_STATUSES = ("unconfigured", "pending", "sending", "sent", "dead")
BACKOFF_SECONDS = (5, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600)
MAX_ATTEMPTS = 12
LEASE_SECONDS = 60


# -- tiers ----------------------------------------------------------------------------------------------

def list_tiers(session: Session, workspace_id: int) -> list[LoyaltyTier]:
    return list(session.scalars(select(LoyaltyTier).where(LoyaltyTier.workspace_id == workspace_id)
                                .order_by(LoyaltyTier.rank, LoyaltyTier.id)))


def _control(text: str) -> bool:
    """A control character (a NUL PostgreSQL cannot store, a newline in a name): refused with the field's name."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


def tier_out(tier: LoyaltyTier) -> dict[str, Any]:
    return {"id": tier.id, "name": tier.name, "metric": tier.metric, "threshold": _number(tier.threshold),
            "period_days": tier.period_days, "rank": tier.rank}


def get_tier(session: Session, workspace_id: int, tier_id: int) -> LoyaltyTier:
    tier = session.get(LoyaltyTier, tier_id)
    if tier is None or tier.workspace_id != workspace_id:
        raise NotFound(f"loyalty tier {tier_id} not found")
    return tier


def _check_tier(session: Session, workspace_id: int, data: dict[str, Any], tier: LoyaltyTier | None
                ) -> dict[str, Any]:
    unknown = set(data) - {"name", "metric", "threshold", "period_days", "rank"}
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown field (name, metric, threshold, period_days, rank)")
    out: dict[str, Any] = {}
    if "name" in data or tier is None:
        name = data.get("name")
        if not isinstance(name, str) or not name.strip() or len(name.strip()) > 64 or _control(name):
            raise field_error("name", "1 to 64 characters, no control characters")
        name = " ".join(name.split())
        clash = session.scalar(select(LoyaltyTier.id).where(LoyaltyTier.workspace_id == workspace_id,
                                                            func.lower(LoyaltyTier.name) == name.lower()))
        if clash is not None and (tier is None or clash != tier.id):
            raise field_error("name", f"a tier named {name!r} exists")
        out["name"] = name
    metric = data.get("metric", tier.metric if tier else "purchases")
    if metric not in METRICS:
        raise field_error("metric", "purchases (paid orders) or spent (their sum)")
    out["metric"] = metric
    if "threshold" in data or tier is None or "metric" in data:
        raw = data.get("threshold", tier.threshold if tier else None)
        if isinstance(raw, bool) or not isinstance(raw, int | float | str | Decimal):
            raise field_error("threshold", "a number above zero")
        try:
            threshold = Decimal(str(raw).strip().replace(",", "."))
        except InvalidOperation:
            raise field_error("threshold", "a number above zero") from None
        if not threshold.is_finite() or threshold <= 0 or threshold > Decimal("999999999999"):
            raise field_error("threshold", "a number above zero")
        if metric == "purchases" and (threshold != threshold.to_integral_value() or threshold > 1_000_000):
            raise field_error("threshold", "a whole number of purchases, 1 to 1000000")
        out["threshold"] = threshold.quantize(Decimal("0.01"))
    if "period_days" in data:
        days = data["period_days"]
        if days is not None and (isinstance(days, bool) or not isinstance(days, int)
                                 or not 1 <= days <= MAX_PERIOD_DAYS):
            raise field_error("period_days", f"null (all time) or whole days, 1 to {MAX_PERIOD_DAYS}")
        out["period_days"] = days
    if "rank" in data:
        rank = data["rank"]
        if isinstance(rank, bool) or not isinstance(rank, int) or not 1 <= rank <= 1000:
            raise field_error("rank", "a whole number 1 to 1000 (the highest tier reached wins)")
        out["rank"] = rank
    return out


def create_tier(session: Session, actor: Actor, data: dict[str, Any]) -> LoyaltyTier:
    actor.require(Role.admin)
    ws = actor.workspace_id
    values = _check_tier(session, ws, data, None)
    existing = list_tiers(session, ws)
    if len(existing) >= MAX_TIERS:
        raise Conflict(f"at most {MAX_TIERS} tiers", code="too_many_tiers")
    values.setdefault("rank", max((t.rank for t in existing), default=0) + 1)
    tier = LoyaltyTier(workspace_id=ws, period_days=values.pop("period_days", None), **values)
    session.add(tier)
    session.flush()
    record_audit(session, actor, entity_type="loyalty_tier", entity_id=tier.id, action="created",
                 after=tier_out(tier))
    recompute(session, ws)
    return tier


def update_tier(session: Session, actor: Actor, tier_id: int, data: dict[str, Any]) -> LoyaltyTier:
    actor.require(Role.admin)
    tier = get_tier(session, actor.workspace_id, tier_id)
    before = tier_out(tier)
    values = _check_tier(session, actor.workspace_id, data, tier)
    old_name = tier.name
    for key, value in values.items():
        setattr(tier, key, value)
    tier.updated_at = utcnow()
    session.flush()
    if tier.name != old_name:  # the customers keep their tier under its new name at once
        session.execute(update(Customer).where(Customer.workspace_id == actor.workspace_id,
                                               Customer.loyalty_tier == old_name).values(loyalty_tier=tier.name))
    record_audit(session, actor, entity_type="loyalty_tier", entity_id=tier.id, action="updated", before=before,
                 after=tier_out(tier))
    recompute(session, actor.workspace_id)
    return tier


def delete_tier(session: Session, actor: Actor, tier_id: int) -> None:
    actor.require(Role.admin)
    tier = get_tier(session, actor.workspace_id, tier_id)
    record_audit(session, actor, entity_type="loyalty_tier", entity_id=tier.id, action="deleted",
                 before=tier_out(tier))
    session.delete(tier)
    session.flush()
    recompute(session, actor.workspace_id)


# -- what a customer has bought, and their tier ------------------------------------------------------

Stats = dict[int, tuple[int, Decimal]]  # customer id -> (purchases, spent)


def purchase_stats(session: Session, workspace_id: int, customer_ids: Sequence[int] | None,
                   since: dt.datetime | None) -> Stats:
    """Purchases (paid, neither cancelled nor returned) and their sum per customer, placed since `since`
    (an order without placed_at counts from when Otklik stored it). None: every customer with a purchase."""
    when = func.coalesce(Order.placed_at, Order.created_at)
    base = select(Order.customer_id, func.count(Order.id), func.coalesce(func.sum(Order.total), 0)).where(
        Order.workspace_id == workspace_id, Order.customer_id.is_not(None), Order.payment_status == "paid",
        Order.status.not_in(NOT_PURCHASES))
    if since is not None:
        base = base.where(when >= since)
    out: Stats = {}
    chunks: list[list[int] | None] = [None] if customer_ids is None else [
        list(customer_ids)[i:i + 500] for i in range(0, len(customer_ids), 500)]
    for chunk in chunks:
        stmt = base if chunk is None else base.where(Order.customer_id.in_(chunk))
        for customer_id, count, total in session.execute(stmt.group_by(Order.customer_id)):
            if customer_id is not None:
                out[int(customer_id)] = (int(count), Decimal(str(total)))
    return out


def _since(days: int | None, now: dt.datetime) -> dt.datetime | None:
    return None if days is None else now - dt.timedelta(days=days)


def _value(tier: LoyaltyTier, stats: tuple[int, Decimal]) -> Decimal:
    return Decimal(stats[0]) if tier.metric == "purchases" else stats[1]


def tier_of(tiers: Sequence[LoyaltyTier], by_period: dict[int | None, Stats], customer_id: int) -> str | None:
    reached = [t for t in tiers
               if _value(t, by_period[t.period_days].get(customer_id, (0, Decimal(0)))) >= t.threshold]
    return max(reached, key=lambda t: (t.rank, t.threshold, -t.id)).name if reached else None


def recompute(session: Session, workspace_id: int, customer_ids: Iterable[int] | None = None, *,
              now: dt.datetime | None = None) -> int:
    """Store the tier of these customers (None: every customer of the workspace who has a purchase or a tier).
    Returns how many changed. A few statements for any number of customers."""
    now = now or utcnow()
    tiers = list_tiers(session, workspace_id)
    ids = None if customer_ids is None else sorted({c for c in customer_ids if c is not None})
    if ids == []:
        return 0
    by_period = {days: purchase_stats(session, workspace_id, ids, _since(days, now))
                 for days in {t.period_days for t in tiers}}
    if ids is None:
        pool = set(session.scalars(select(Customer.id).where(Customer.workspace_id == workspace_id,
                                                             Customer.loyalty_tier.is_not(None))))
        for stats in by_period.values():
            pool.update(stats)
        ids = sorted(pool)
    current: dict[int, str | None] = {}
    for start in range(0, len(ids), 500):
        current.update(session.execute(select(Customer.id, Customer.loyalty_tier).where(
            Customer.workspace_id == workspace_id, Customer.id.in_(ids[start:start + 500]))).tuples().all())
    wanted: dict[str | None, list[int]] = {}
    for customer_id, stored in current.items():
        tier = tier_of(tiers, by_period, customer_id) if tiers else None
        if tier != stored:
            wanted.setdefault(tier, []).append(customer_id)
    for tier, changed in wanted.items():
        for start in range(0, len(changed), 500):
            session.execute(update(Customer).where(Customer.id.in_(changed[start:start + 500]))
                            .values(loyalty_tier=tier).execution_options(synchronize_session=False))
    if wanted:
        session.expire_all()
    return sum(len(v) for v in wanted.values())


_periodic_done: dict[str, dt.date] = {}


def recompute_periodic_tiers(*, today: dt.date | None = None) -> int:
    """Once a day per process: recompute every workspace that has a tier counted over a period (a purchase
    leaves the period without any order being stored). Returns how many customers changed."""
    day = today or utcnow().date()
    if _periodic_done.get("day") == day:
        return 0
    _periodic_done["day"] = day
    changed = 0
    with session_scope(write=False) as session:
        workspaces = list(session.scalars(select(LoyaltyTier.workspace_id).where(
            LoyaltyTier.period_days.is_not(None)).distinct()))
    for workspace_id in workspaces:
        with session_scope() as session:
            changed += recompute(session, workspace_id)
    return changed


def customer_loyalty(session: Session, actor: Actor, customer_id: int) -> dict[str, Any]:
    """The customer's tier, how far they are in each tier (and to the next one), their referral code, who
    referred them and how many they referred."""
    from otklik.customers.service import get_customer

    customer = get_customer(session, actor, customer_id)
    ws = actor.workspace_id
    now = utcnow()
    tiers = list_tiers(session, ws)
    by_period = {days: purchase_stats(session, ws, [customer.id], _since(days, now))
                 for days in {t.period_days for t in tiers} | {None}}
    progress = []
    for t in tiers:
        value = _value(t, by_period[t.period_days].get(customer.id, (0, Decimal(0))))
        progress.append({**tier_out(t), "value": _number(value), "reached": value >= t.threshold})
    current = next((p for p in progress if p["name"] == customer.loyalty_tier), None)
    above = [p for p in progress if not p["reached"] and (current is None or p["rank"] > current["rank"])]
    next_tier = min(above, key=lambda p: p["rank"]) if above else None
    total = by_period[None].get(customer.id, (0, Decimal(0)))
    code = session.scalar(select(ReferralCode.code).where(ReferralCode.customer_id == customer.id))
    referred_by = session.scalar(select(Referral).where(Referral.workspace_id == ws,
                                                        Referral.referred_id == customer.id))
    referred = session.scalar(select(func.count(Referral.id)).where(Referral.workspace_id == ws,
                                                                   Referral.referrer_id == customer.id)) or 0
    return {"customer_id": customer.id, "tier": customer.loyalty_tier, "purchases": total[0],
            "spent": _number(total[1]), "tiers": progress,
            "next_tier": None if next_tier is None else {
                "name": next_tier["name"], "metric": next_tier["metric"],
                "missing": _number(Decimal(str(next_tier["threshold"])) - Decimal(str(next_tier["value"])))},
            "referral_code": code, "referred_by": None if referred_by is None else referral_out(referred_by),
            "referred_count": int(referred)}


# -- referral codes and referrals --------------------------------------------------------------------

def normalise_code(raw: Any, field: str = "code") -> str:
    code = raw.strip().upper() if isinstance(raw, str) else ""
    if not 4 <= len(code) <= 32 or not all(c.isascii() and (c.isalnum() or c == "-") for c in code):
        raise field_error(field, "a referral code: 4 to 32 letters, digits and -")
    return code


def ensure_code(session: Session, actor: Actor, customer_id: int) -> tuple[ReferralCode, bool]:
    """The customer's referral code, generated on first use: (row, created)."""
    from otklik.customers.service import get_customer

    customer = get_customer(session, actor, customer_id)
    row = session.scalar(select(ReferralCode).where(ReferralCode.customer_id == customer.id))
    if row is not None:
        return row, False
    for _ in range(10):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        taken = session.scalar(select(ReferralCode.id).where(ReferralCode.workspace_id == actor.workspace_id,
                                                            ReferralCode.code == code))
        if taken is None:
            break
    row = ReferralCode(workspace_id=actor.workspace_id, customer_id=customer.id, code=code)
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:  # the same customer's code made by a concurrent request: that one is theirs
        raise Conflict("the customer's code was just created; ask again", code="code_created") from None
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="referral_code_created",
                 after={"code": code})
    return row, True


def _has_purchase(session: Session, workspace_id: int, customer_id: int, *, besides: int | None = None) -> bool:
    stmt = select(Order.id).where(Order.workspace_id == workspace_id, Order.customer_id == customer_id,
                                  Order.payment_status == "paid", Order.status.not_in(NOT_PURCHASES))
    if besides is not None:
        stmt = stmt.where(Order.id != besides)
    return session.scalar(stmt.limit(1)) is not None


def attach(session: Session, actor: Actor, customer_id: int, raw_code: Any, *, source: str = "api") -> Referral:
    """Link the customer to whoever owns `code`: 422 for an unknown or own code, or a customer who has
    already bought; 409 when they were referred already."""
    from otklik.customers.service import get_customer

    code = normalise_code(raw_code)
    customer = get_customer(session, actor, customer_id)
    ws = actor.workspace_id
    owner = session.scalar(select(ReferralCode).where(ReferralCode.workspace_id == ws, ReferralCode.code == code))
    if owner is None:
        raise field_error("code", "no customer of this workspace has this referral code")
    if owner.customer_id == customer.id:
        raise field_error("code", "this is the customer's own referral code")
    if session.scalar(select(Referral.id).where(Referral.workspace_id == ws, Referral.referred_id == customer.id)):
        raise Conflict("this customer was referred already", code="already_referred")
    if _has_purchase(session, ws, customer.id):
        raise field_error("customer_id", "this customer has bought already; referrals are for new customers")
    referral = _link(session, ws, customer.id, owner, source)
    record_audit(session, actor, entity_type="customer", entity_id=customer.id, action="referral_linked",
                 after={"referrer_id": owner.customer_id, "code": code, "source": source})
    return referral


def _link(session: Session, workspace_id: int, referred_id: int, owner: ReferralCode, source: str) -> Referral:
    referral = Referral(workspace_id=workspace_id, referrer_id=owner.customer_id, referred_id=referred_id,
                        code=owner.code, source=source, linked_at=utcnow(), idempotency_key=uuid.uuid4().hex,
                        webhook_status="none", attempts=0)
    try:
        with session.begin_nested():  # a concurrent link of the same customer wins; this one is refused
            session.add(referral)
            session.flush()
    except IntegrityError:
        raise Conflict("this customer was referred already", code="already_referred") from None
    return referral


def referral_out(r: Referral) -> dict[str, Any]:
    return {"id": r.id, "referrer_id": r.referrer_id, "referred_id": r.referred_id, "code": r.code,
            "source": r.source, "linked_at": r.linked_at.isoformat(), "order_number": r.order_number,
            "rewarded_at": r.rewarded_at.isoformat() if r.rewarded_at else None,
            "webhook_status": r.webhook_status, "attempts": r.attempts, "last_error": r.last_error,
            "idempotency_key": r.idempotency_key}


def list_referrals(session: Session, workspace_id: int, *, referrer_id: int | None = None,
                   rewarded: bool | None = None, limit: int = 100) -> list[Referral]:
    stmt = select(Referral).where(Referral.workspace_id == workspace_id)
    if referrer_id is not None:
        stmt = stmt.where(Referral.referrer_id == referrer_id)
    if rewarded is not None:
        stmt = stmt.where(Referral.rewarded_at.is_not(None) if rewarded else Referral.rewarded_at.is_(None))
    return list(session.scalars(stmt.order_by(Referral.id.desc()).limit(limit)))


# -- the orders hook ------------------------------------------------------------------------------------

def orders_stored(session: Session, workspace_id: int, changed: Sequence[dict[str, Any]]) -> None:
    """Called by `orders.service.upsert_many` in its transaction with the orders it created or changed
    (`order_id`, `number`, `customer_id`, `previous_customer_id`, `attributes`): link referral codes the
    orders carry, recompute the tiers of their customers, record the rewards now due."""
    customers = {c for o in changed for c in (o.get("customer_id"), o.get("previous_customer_id")) if c}
    if not customers:
        return
    coded = [o for o in changed if o.get("customer_id") and isinstance((o.get("attributes") or {}).get(
        "referral_code"), str)]
    if coded:
        _link_from_orders(session, workspace_id, coded)
    if session.scalar(select(LoyaltyTier.id).where(LoyaltyTier.workspace_id == workspace_id).limit(1)):
        recompute(session, workspace_id, customers)
    _reward_due(session, workspace_id, sorted(customers))


def _link_from_orders(session: Session, workspace_id: int, orders: Sequence[dict[str, Any]]) -> None:
    """An order's `attributes.referral_code` links its customer (once, only a new customer, never to their own
    code); an unknown code is ignored (the order is stored all the same). A few queries for the whole batch."""
    coded: list[tuple[dict[str, Any], str]] = []
    for order in orders:
        try:
            coded.append((order, normalise_code(order["attributes"]["referral_code"])))
        except DomainError:  # a malformed code never fails the order
            log.info("order %s: referral code %r ignored", order.get("number"), order["attributes"]["referral_code"])
    codes = sorted({code for _, code in coded})
    owners: dict[str, ReferralCode] = {}
    for start in range(0, len(codes), 500):
        owners.update((r.code, r) for r in session.scalars(select(ReferralCode).where(
            ReferralCode.workspace_id == workspace_id, ReferralCode.code.in_(codes[start:start + 500]))))
    customers = sorted({o["customer_id"] for o, code in coded if code in owners})
    referred: set[int] = set()
    for start in range(0, len(customers), 500):
        referred.update(session.scalars(select(Referral.referred_id).where(
            Referral.workspace_id == workspace_id, Referral.referred_id.in_(customers[start:start + 500]))))
    bought = _purchases_of(session, workspace_id, [c for c in customers if c not in referred])
    for order, code in coded:
        owner, customer_id = owners.get(code), order["customer_id"]
        if owner is None or owner.customer_id == customer_id or customer_id in referred:
            continue
        if {o for o, _ in bought.get(customer_id, [])} - {order["order_id"]}:  # bought before: not a new customer
            continue
        try:
            _link(session, workspace_id, customer_id, owner, "order")
        except Conflict:
            continue  # linked by a concurrent request meanwhile
        referred.add(customer_id)


def _purchases_of(session: Session, workspace_id: int, customer_ids: Sequence[int]
                  ) -> dict[int, list[tuple[int, str]]]:
    """Each customer's purchases (order id, number), the first placed first."""
    out: dict[int, list[tuple[int, str]]] = {}
    ids = list(customer_ids)
    for start in range(0, len(ids), 500):
        for customer_id, order_id, number in session.execute(select(Order.customer_id, Order.id, Order.number).where(
                Order.workspace_id == workspace_id, Order.customer_id.in_(ids[start:start + 500]),
                Order.payment_status == "paid", Order.status.not_in(NOT_PURCHASES))
                .order_by(func.coalesce(Order.placed_at, Order.created_at), Order.id)):
            if customer_id is not None:
                out.setdefault(int(customer_id), []).append((int(order_id), str(number)))
    return out


def _reward_due(session: Session, workspace_id: int, customer_ids: list[int]) -> None:
    if not session.scalar(select(Referral.id).where(Referral.workspace_id == workspace_id,
                                                    Referral.rewarded_at.is_(None)).limit(1)):
        return
    pending: list[Referral] = []
    for start in range(0, len(customer_ids), 500):
        pending += session.scalars(select(Referral).where(
            Referral.workspace_id == workspace_id, Referral.rewarded_at.is_(None),
            Referral.referred_id.in_(customer_ids[start:start + 500]))).all()
    if not pending:
        return
    settings = session.get(LoyaltySettings, workspace_id)
    configured = settings is not None and bool(settings.webhook_url)
    bought = _purchases_of(session, workspace_id, [r.referred_id for r in pending])
    for referral in pending:
        if not bought.get(referral.referred_id):
            continue
        first = bought[referral.referred_id][0]
        now = utcnow()
        done = affected(session.execute(update(Referral).where(
            Referral.id == referral.id, Referral.rewarded_at.is_(None)).values(
            rewarded_at=now, order_id=first[0], order_number=first[1],
            webhook_status="pending" if configured else "unconfigured",
            next_attempt_at=now).execution_options(synchronize_session=False)))
        if done != 1:
            continue  # another transaction recorded it
        session.expire(referral)
        if configured:
            enqueue_after_commit(session, referral.id)
        after_commit(session, Event("referral.rewarded", workspace_id, {
            "id": referral.id, "referrer_id": referral.referrer_id, "referred_id": referral.referred_id,
            "order_number": first[1]}))


def move_on_merge(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    """A merged customer's referral code and referrals follow them (the target keeps its own code if it has
    one); the target's tier is computed again from the orders it now holds."""
    moved = 0
    if session.scalar(select(ReferralCode.id).where(ReferralCode.customer_id == target_id)) is None:
        moved += affected(session.execute(update(ReferralCode).where(ReferralCode.customer_id == source_id)
                                          .values(customer_id=target_id)))
    else:
        session.execute(delete(ReferralCode).where(ReferralCode.customer_id == source_id))
    moved += affected(session.execute(update(Referral).where(
        Referral.workspace_id == workspace_id, Referral.referrer_id == source_id,
        Referral.referred_id != target_id).values(referrer_id=target_id)))
    if session.scalar(select(Referral.id).where(Referral.workspace_id == workspace_id,
                                                Referral.referred_id == target_id)) is None:
        moved += affected(session.execute(update(Referral).where(
            Referral.workspace_id == workspace_id, Referral.referred_id == source_id,
            Referral.referrer_id != target_id).values(referred_id=target_id)))
    session.flush()
    recompute(session, workspace_id, [target_id, source_id])
    return moved


# -- the shop's webhook: settings ------------------------------------------------------------------------

def settings_out(session: Session, workspace_id: int) -> dict[str, Any]:
    row = session.get(LoyaltySettings, workspace_id)
    return {"webhook_url": row.webhook_url if row else "", "secret_set": bool(row and row.secret_enc),
            "reward": row.reward if row else ""}


def update_settings(session: Session, actor: Actor, data: dict[str, Any]) -> dict[str, Any]:
    """`webhook_url` (empty: none), `secret` (16 to 200 characters; left out or empty keeps the stored one),
    `reward` (the benefit the shop grants, «10 %», sent in the webhook). Rewards recorded while no URL was set
    are sent once one is."""
    actor.require(Role.admin)
    unknown = set(data) - {"webhook_url", "secret", "reward"}
    if unknown:
        raise field_error(sorted(unknown)[0], "unknown field (webhook_url, secret, reward)")
    row = session.get(LoyaltySettings, actor.workspace_id)
    url = data.get("webhook_url", row.webhook_url if row else "")
    if not isinstance(url, str):
        raise field_error("webhook_url", "an http(s) URL or empty")
    url = url.strip()
    if url and (not url.startswith(("https://", "http://")) or len(url) > 500 or any(c.isspace() for c in url)
                or _control(url)):
        raise field_error("webhook_url", "an http(s) URL of at most 500 characters")
    secret = data.get("secret")
    if secret not in (None, "") and (not isinstance(secret, str) or not 16 <= len(secret) <= 200 or _control(secret)):
        raise field_error("secret", "16 to 200 characters, no control characters")
    if url and not secret and not (row and row.secret_enc):
        raise field_error("secret", "a signing secret (16 to 200 characters) the shop checks")
    reward = data.get("reward", row.reward if row else "")
    if not isinstance(reward, str) or len(reward.strip()) > 200 or _control(reward):
        raise field_error("reward", "at most 200 characters, no control characters")
    if row is None:
        row = LoyaltySettings(workspace_id=actor.workspace_id, webhook_url="", secret_enc="", reward="")
        session.add(row)
    row.webhook_url, row.reward, row.updated_at = url, " ".join(reward.split()), utcnow()
    if secret:
        row.secret_enc = crypto.encrypt(secret, purpose=SECRET_PURPOSE)
    session.flush()
    record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                 action="loyalty_settings_set", after={"webhook_url": url, "secret_changed": bool(secret),
                                                       "reward": row.reward})
    if url:
        waiting = list(session.scalars(select(Referral.id).where(Referral.workspace_id == actor.workspace_id,
                                                                 Referral.webhook_status == "unconfigured")))
        if waiting:
            session.execute(update(Referral).where(Referral.id.in_(waiting)).values(
                webhook_status="pending", next_attempt_at=utcnow()).execution_options(synchronize_session=False))
            for referral_id in waiting:
                enqueue_after_commit(session, referral_id)
    return settings_out(session, actor.workspace_id)


# -- the shop's webhook: delivery (at-least-once attempts, exactly-once effect by the idempotency key) -------

def sign(secret: str, body: bytes) -> str:
    """`X-Otklik-Signature: sha256=<hex HMAC-SHA256 of the body>`, as the API channel and compensations sign."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def enqueue_after_commit(session: Session, referral_id: int) -> None:
    def nudge() -> None:
        from otklik.orders import loyalty_jobs

        loyalty_jobs.deliver_referral_webhook(referral_id)

    after_commit(session, nudge)


def backoff(attempt: int) -> float:
    return float(BACKOFF_SECONDS[min(attempt - 1, len(BACKOFF_SECONDS) - 1)])


def _person(session: Session, customer_id: int) -> dict[str, Any]:
    customer = session.get(Customer, customer_id)
    return {"id": customer_id, "name": customer.name if customer else None,
            "loyalty_tier": customer.loyalty_tier if customer else None,
            "identities": [{"kind": i.kind, "id": i.external_id} for i in session.scalars(
                select(Identity).where(Identity.customer_id == customer_id).order_by(Identity.id))]}


def webhook_payload(session: Session, referral: Referral) -> dict[str, Any]:
    settings = session.get(LoyaltySettings, referral.workspace_id)
    total = session.scalar(select(Order.total).where(Order.id == referral.order_id)) if referral.order_id else None
    return {"event": "referral.rewarded", "id": referral.id, "idempotency_key": referral.idempotency_key,
            "code": referral.code, "reward": settings.reward if settings else "",
            "referrer": _person(session, referral.referrer_id), "referred": _person(session, referral.referred_id),
            "order": {"number": referral.order_number, "total": None if total is None else str(total)},
            "rewarded_at": referral.rewarded_at.isoformat() if referral.rewarded_at else None}


def _claim(referral_id: int) -> tuple[int, int] | None:
    now = utcnow()
    with session_scope() as session:
        claimed = affected(session.execute(update(Referral).where(
            Referral.id == referral_id, Referral.next_attempt_at <= now,
            or_(Referral.webhook_status == "pending",
                (Referral.webhook_status == "sending") & (Referral.locked_until < now)))
            .values(webhook_status="sending", attempts=Referral.attempts + 1,
                    locked_until=now + dt.timedelta(seconds=LEASE_SECONDS))))
        if claimed != 1:
            return None
        row = session.get(Referral, referral_id)
        assert row is not None
        return row.workspace_id, row.attempts


def _finish(referral_id: int, attempt: int, error: str | None, *, permanent: bool = False) -> None:
    with session_scope() as session:
        row = session.scalar(select(Referral).where(Referral.id == referral_id).with_for_update())
        if row is None or row.attempts != attempt or row.webhook_status != "sending":
            return  # our lease ran out and someone else re-claimed it: their result counts
        row.locked_until = None
        if error is None:
            row.webhook_status, row.sent_at, row.last_error = "sent", utcnow(), None
        elif permanent or row.attempts >= MAX_ATTEMPTS:
            row.webhook_status, row.last_error = "dead", error[:2000]
        else:
            row.webhook_status, row.last_error = "pending", error[:2000]
            row.next_attempt_at = utcnow() + dt.timedelta(seconds=backoff(row.attempts))


def deliver(referral_id: int) -> str:
    """One attempt to tell the shop of one reward. Safe to call any number of times, from any process."""
    import httpx

    claim = _claim(referral_id)
    if claim is None:
        return "skipped"
    workspace_id, attempt = claim
    with session_scope(write=False) as session:
        settings = session.get(LoyaltySettings, workspace_id)
        referral = session.get(Referral, referral_id)
        key = referral.idempotency_key if referral is not None else ""
        if settings is None or not settings.webhook_url or referral is None:
            url, secret, body = "", "", b""
        else:
            url = settings.webhook_url
            try:
                secret = crypto.decrypt(settings.secret_enc, purpose=SECRET_PURPOSE)
            except ValueError:
                secret = ""
            body = json.dumps(webhook_payload(session, referral), ensure_ascii=False).encode()
    if not url or not secret:
        _finish(referral_id, attempt, "no webhook URL or secret is set")
        return "unconfigured"
    headers = {"Content-Type": "application/json", "Idempotency-Key": key,
               "X-Otklik-Event": "referral.rewarded", "X-Otklik-Signature": sign(secret, body),
               "X-Otklik-Attempt": str(attempt)}
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=httpx.Timeout(10.0, connect=5.0))
    except httpx.HTTPError as exc:
        _finish(referral_id, attempt, f"shop webhook unreachable: {type(exc).__name__}")
        return "failed"
    if response.status_code == 429 or response.status_code >= 500 or 300 <= response.status_code < 400:
        _finish(referral_id, attempt, f"shop webhook failed: HTTP {response.status_code}")
        return "failed"
    if response.status_code >= 400:
        _finish(referral_id, attempt, f"shop webhook refused it: HTTP {response.status_code}", permanent=True)
        return "dead"
    _finish(referral_id, attempt, None)
    return "sent"


def due_ids(limit: int = 500) -> list[int]:
    now = utcnow()
    with session_scope(write=False) as session:
        return list(session.scalars(select(Referral.id).where(
            or_((Referral.webhook_status == "pending") & (Referral.next_attempt_at <= now),
                (Referral.webhook_status == "sending") & (Referral.locked_until < now)))
            .order_by(Referral.id).limit(limit)))


def retry(session: Session, actor: Actor, referral_id: int) -> Referral:
    """Send a dead webhook again (admins), under the same idempotency key."""
    actor.require(Role.admin)
    row = session.get(Referral, referral_id)
    if row is None or row.workspace_id != actor.workspace_id:
        raise NotFound(f"referral {referral_id} not found")
    if row.webhook_status != "dead":
        raise Conflict("only a dead webhook is sent again", code="not_dead")
    row.webhook_status, row.attempts, row.next_attempt_at = "pending", 0, utcnow()
    enqueue_after_commit(session, row.id)
    return row


def _register() -> None:
    from otklik.customers.service import register_merge_mover

    register_merge_mover("loyalty", move_on_merge)


_register()
