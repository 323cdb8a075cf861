"""Compensations and authority limits (issue 14 §2): refunds, discounts, bonus points, free delivery and gifts an
agent gives on a conversation, applied at once within the agent's limit and sent for approval above it.

The seed: «если оператор может принять решение о компенсации до 1000 рублей без согласования с начальником,
проблема решается» — so an agent's default is 1,000 ₽ a case and 10,000 ₽ a day, a supervisor's 10,000 ₽ a case.
Rules kept here: the per-case sum counts every applied and pending action of the conversation (splitting one
case into several actions does not dodge it); a request locks the conversation and then the requester's daily
usage row, so two requests at once cannot both fit under a daily limit; nobody decides their own request. An
applied compensation is a thread entry, an audit record on the conversation and the customer, and a signed
webhook to the shop's system through the outbox (same idempotency key on every retry). Never imports a channel.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import uuid
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import ROLE_RANK, Role, User, Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import (
    AuthorKind,
    Conversation,
    DeliveryStatus,
    OutboxItem,
    OutboxStatus,
)
from otklik.conversations.service import conversation_event_data, get_conversation, reply
from otklik.customers.models import Customer, Identity
from otklik.guardrails.compensation_models import (
    Compensation,
    CompensationLimit,
    CompensationUsage,
    CompensationWebhook,
)
from otklik.platform import crypto
from otklik.platform.db import session_scope, utcnow
from otklik.platform.errors import Conflict, Forbidden, NotFound, field_error
from otklik.platform.events import Event, after_commit

log = logging.getLogger(__name__)

KINDS = ("refund", "discount", "bonus_points", "free_delivery", "gift")
ALL_KINDS = "*"
LIMIT_ROLES = ("agent", "supervisor", "admin", "assistant")
APPLIED, PENDING, REJECTED = "applied", "pending", "rejected"
MAX_AMOUNT = Decimal("100000000")  # 100 million roubles: a typo, not a compensation
MAX_REASON = 500
MAX_COMMENT = 500
DAY_ZONE = ZoneInfo("Europe/Moscow")  # a "day" of the daily limit is the Moscow calendar day
WEBHOOK_CHANNEL = "shop"  # the outbox channel name of the shop's compensation webhook
SECRET_PURPOSE = "compensation-webhook"  # noqa: S105 - the encryption purpose label, not a secret

# Shipped limits, used wherever a workspace has not set its own row for the same subject and kind. The agent's
# 1,000 ₽ is the seed's figure; the assistant may offer free delivery up to 300 ₽ (e.g. for a late order) and
# nothing else until a workspace allows it.
DEFAULT_LIMITS: dict[tuple[str, str], tuple[Decimal | None, Decimal | None]] = {
    ("role:agent", ALL_KINDS): (Decimal("1000"), Decimal("10000")),
    ("role:supervisor", ALL_KINDS): (Decimal("10000"), None),
    ("role:admin", ALL_KINDS): (None, None),
    ("role:assistant", "free_delivery"): (Decimal("300"), Decimal("30000")),
    ("role:assistant", ALL_KINDS): (Decimal("0"), Decimal("0")),
}


@dataclass(frozen=True)
class Limit:
    subject: str
    kind: str  # one kind, or "*": the sums counted against it are of that kind, or of all kinds
    per_case: Decimal | None
    per_day: Decimal | None
    shipped: bool = False  # a default, not a row the workspace set

    def view(self) -> dict[str, Any]:
        return {"subject": self.subject, "kind": self.kind, "per_case": money_text(self.per_case),
                "per_day": money_text(self.per_day), "shipped": self.shipped}


# -- input ------------------------------------------------------------------------------------------------------

def money_text(value: Decimal | None) -> str | None:
    return None if value is None else f"{value.quantize(Decimal('0.01'))}"


def parse_amount(raw: Any, field: str = "amount", *, allow_zero: bool = False) -> Decimal:
    """A sum in roubles: «1500», «1 500,50», 1500.5 → Decimal, or a 422 naming the field (no floats kept)."""
    if isinstance(raw, bool) or raw is None or raw == "":
        raise field_error(field, "a sum in roubles, e.g. 500 or 499.90")
    if isinstance(raw, float):
        raw = repr(raw)
    text = str(raw).strip().replace("\u00a0", "").replace(" ", "").replace(",", ".")
    if len(text) > 20:
        raise field_error(field, "a sum in roubles, e.g. 500 or 499.90")
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise field_error(field, "a sum in roubles, e.g. 500 or 499.90") from None
    if not value.is_finite():
        raise field_error(field, "a sum in roubles, e.g. 500 or 499.90")
    if value < 0 or (value == 0 and not allow_zero):
        raise field_error(field, "must be more than zero" if not allow_zero else "must not be negative")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2 and value != value.quantize(Decimal("0.01")):
        raise field_error(field, "at most two decimal places (kopecks)")
    if value > MAX_AMOUNT:
        raise field_error(field, f"at most {MAX_AMOUNT} roubles")
    return value.quantize(Decimal("0.01"))


def _kind(kind: Any, field: str = "kind", *, allow_all: bool = False) -> str:
    allowed = (*KINDS, ALL_KINDS) if allow_all else KINDS
    if not isinstance(kind, str) or kind not in allowed:
        raise field_error(field, f"one of: {', '.join(allowed)}")
    return kind


def _text(value: Any, field: str, limit: int, *, required: bool) -> str:
    text = " ".join(str(value or "").split()) if isinstance(value, str) or value is None else None
    if text is None:
        raise field_error(field, "text")
    if required and not text:
        raise field_error(field, "say why (it goes to the audit log and the shop)")
    if len(text) > limit:
        raise field_error(field, f"at most {limit} characters")
    return text


# -- limits -----------------------------------------------------------------------------------------------------

def subject_of(actor: Actor) -> str:
    return "role:assistant" if actor.kind == "assistant" or actor.user_id is None else f"user:{actor.user_id}"


def _role_subject(actor: Actor) -> str:
    return "role:assistant" if actor.kind == "assistant" or actor.user_id is None else f"role:{actor.role.value}"


def limit_table(session: Session, workspace_id: int) -> dict[tuple[str, str], Limit]:
    """The shipped defaults overlaid with the workspace's own rows (a row wins for its subject and kind)."""
    table = {key: Limit(key[0], key[1], case, day, shipped=True) for key, (case, day) in DEFAULT_LIMITS.items()}
    for row in session.scalars(select(CompensationLimit).where(CompensationLimit.workspace_id == workspace_id)):
        table[(row.subject, row.kind)] = Limit(row.subject, row.kind, row.per_case, row.per_day)
    return table


def effective_limit(table: dict[tuple[str, str], Limit], actor: Actor, kind: str) -> Limit:
    """The most specific limit: the agent's own for this kind, their own for all kinds, their role's for this kind,
    their role's for all kinds; none at all is no authority (0)."""
    own, role = subject_of(actor), _role_subject(actor)
    subjects = (role,) if own == role else (own, role)
    for subject in subjects:
        for k in (kind, ALL_KINDS):
            found = table.get((subject, k))
            if found is not None:
                return found
    return Limit(role, ALL_KINDS, Decimal("0"), Decimal("0"), shipped=True)


def _case_sum(session: Session, conversation_id: int, kind_scope: str, *, statuses: tuple[str, ...],
              exclude_id: int | None = None) -> Decimal:
    stmt = select(func.coalesce(func.sum(Compensation.amount), 0)).where(
        Compensation.conversation_id == conversation_id, Compensation.status.in_(statuses))
    if kind_scope != ALL_KINDS:
        stmt = stmt.where(Compensation.kind == kind_scope)
    if exclude_id is not None:
        stmt = stmt.where(Compensation.id != exclude_id)
    return Decimal(str(session.scalar(stmt) or 0))


def today() -> dt.date:
    return dt.datetime.now(DAY_ZONE).date()


def _usage_key(actor: Actor, limit: Limit) -> str:
    return f"{subject_of(actor)}|{limit.kind}"


def _lock_usage(session: Session, workspace_id: int, key: str, day: dt.date) -> CompensationUsage:
    """The usage row of (subject, day), created if missing, locked FOR UPDATE (SQLite serialises writers)."""
    stmt = select(CompensationUsage).where(CompensationUsage.workspace_id == workspace_id,
                                           CompensationUsage.subject == key, CompensationUsage.day == day)
    row = session.scalar(stmt.with_for_update())
    if row is not None:
        return row
    try:
        with session.begin_nested():
            session.add(CompensationUsage(workspace_id=workspace_id, subject=key, day=day, amount=Decimal("0")))
    except IntegrityError:
        pass  # another request created it meanwhile: lock theirs
    row = session.scalar(stmt.with_for_update().execution_options(populate_existing=True))
    assert row is not None
    return row


def used_today(session: Session, workspace_id: int, key: str) -> Decimal:
    row = session.get(CompensationUsage, (workspace_id, key, today()))
    return row.amount if row is not None else Decimal("0")


def _fits_case(session: Session, limit: Limit, conversation_id: int, amount: Decimal, *,
               exclude_id: int | None = None, statuses: tuple[str, ...] = (APPLIED, PENDING)) -> bool:
    if limit.per_case is None:
        return True
    return _case_sum(session, conversation_id, limit.kind, statuses=statuses, exclude_id=exclude_id) + amount \
        <= limit.per_case


def _take_daily(session: Session, actor: Actor, limit: Limit, amount: Decimal) -> bool:
    """Locks the actor's usage row of today and adds `amount` if it fits the daily limit."""
    row = _lock_usage(session, actor.workspace_id, _usage_key(actor, limit), today())
    if limit.per_day is not None and row.amount + amount > limit.per_day:
        return False
    row.amount = row.amount + amount
    return True


# -- reading ----------------------------------------------------------------------------------------------------

def get_compensation(session: Session, actor: Actor, compensation_id: int, *, for_update: bool = False
                     ) -> Compensation:
    stmt = select(Compensation).where(Compensation.id == compensation_id,
                                      Compensation.workspace_id == actor.workspace_id)
    if for_update:
        stmt = stmt.with_for_update()
    found = session.scalar(stmt)
    if found is None:
        raise NotFound(f"compensation {compensation_id} not found")
    return found


def list_for_conversation(session: Session, actor: Actor, conversation_id: int) -> list[Compensation]:
    get_conversation(session, actor, conversation_id)
    return list(session.scalars(select(Compensation).where(
        Compensation.workspace_id == actor.workspace_id, Compensation.conversation_id == conversation_id)
        .order_by(Compensation.id)))


def list_for_customer(session: Session, actor: Actor, customer_id: int) -> list[Compensation]:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    return list(session.scalars(select(Compensation).where(
        Compensation.workspace_id == actor.workspace_id, Compensation.customer_id == customer_id)
        .order_by(Compensation.id.desc()).limit(200)))


def can_decide(session: Session, actor: Actor, compensation: Compensation,
               table: dict[tuple[str, str], Limit] | None = None) -> bool:
    """Whether `actor` may approve this request: a supervisor or admin, not its requester, whose per-case limit
    covers the case's applied sum with this one."""
    if actor.user_id is None or ROLE_RANK[actor.role] < ROLE_RANK[Role.supervisor]:
        return False
    if compensation.requested_by == actor.user_id:
        return False
    limit = effective_limit(table or limit_table(session, actor.workspace_id), actor, compensation.kind)
    return _fits_case(session, limit, compensation.conversation_id, compensation.amount,
                      exclude_id=compensation.id, statuses=(APPLIED,))


def approvers(session: Session, workspace_id: int, compensation: Compensation) -> list[int]:
    table = limit_table(session, workspace_id)
    users = session.scalars(select(User).where(User.workspace_id == workspace_id, User.is_active.is_(True),
                                               User.role.in_([Role.supervisor.value, Role.admin.value])))
    return [u.id for u in users if can_decide(session, Actor(workspace_id, u.id, Role(u.role)), compensation,
                                              table)]


def pending_for(session: Session, actor: Actor, *, limit: int = 200) -> list[Compensation]:
    """The pending requests `actor` may decide, oldest first."""
    if ROLE_RANK[actor.role] < ROLE_RANK[Role.supervisor]:
        return []
    rows = session.scalars(select(Compensation).where(Compensation.workspace_id == actor.workspace_id,
                                                      Compensation.status == PENDING)
                           .order_by(Compensation.id).limit(limit))
    table = limit_table(session, actor.workspace_id)
    return [c for c in rows if can_decide(session, actor, c, table)]


def requested_by(session: Session, actor: Actor, *, limit: int = 50) -> list[Compensation]:
    if actor.user_id is None:
        return []
    return list(session.scalars(select(Compensation).where(
        Compensation.workspace_id == actor.workspace_id, Compensation.requested_by == actor.user_id)
        .order_by(Compensation.id.desc()).limit(limit)))


def recent_decisions(session: Session, actor: Actor, *, limit: int = 30) -> list[Compensation]:
    return list(session.scalars(select(Compensation).where(
        Compensation.workspace_id == actor.workspace_id, Compensation.decided_by.is_not(None))
        .order_by(Compensation.decided_at.desc(), Compensation.id.desc()).limit(limit)))


def my_authority(session: Session, actor: Actor, conversation_id: int | None = None) -> list[dict[str, Any]]:
    """Per kind: the actor's limits, what they gave today against them, and the conversation's sum so far."""
    table = limit_table(session, actor.workspace_id)
    out = []
    for kind in KINDS:
        limit = effective_limit(table, actor, kind)
        row: dict[str, Any] = {**limit.view(), "kind": kind, "kind_scope": limit.kind,
                               "used_today": money_text(used_today(session, actor.workspace_id,
                                                                   _usage_key(actor, limit)))}
        if conversation_id is not None:
            row["case_sum"] = money_text(_case_sum(session, conversation_id, limit.kind, statuses=(APPLIED, PENDING)))
        out.append(row)
    return out


def pending_count(session: Session, actor: Actor) -> int:
    return len(pending_for(session, actor))


# -- writing ----------------------------------------------------------------------------------------------------

def rub(amount: Decimal | None) -> str:
    """«2 500 ₽», «499,90 ₽» (a no-break space between thousands)."""
    if amount is None:
        return ""
    whole, _, frac = f"{amount.quantize(Decimal('0.01'))}".partition(".")
    grouped = f"{int(whole):,}".replace(",", "\u00a0")
    return f"{grouped} ₽" if frac == "00" else f"{grouped},{frac} ₽"


KIND_WORDS = {
    "ru": {"refund": "возврат денег", "discount": "скидка / промокод", "bonus_points": "бонусные баллы",
           "free_delivery": "бесплатная доставка", "gift": "подарок"},
    "en": {"refund": "refund", "discount": "discount / promo code", "bonus_points": "bonus points",
           "free_delivery": "free delivery", "gift": "gift"},
}
ENTRY = {
    "ru": {"applied": "Компенсация применена: {kind}, {amount}. Причина: {reason}",
           "pending": "Запрошено согласование компенсации: {kind}, {amount} (выше лимита: {why}). Причина: {reason}",
           "approved": "Компенсация согласована ({who}): {kind}, {amount}.{comment}",
           "rejected": "Компенсация отклонена ({who}): {kind}, {amount}.{comment}",
           "per_case": "за обращение", "per_day": "за день", "comment": " Комментарий: {text}"},
    "en": {"applied": "Compensation applied: {kind}, {amount}. Reason: {reason}",
           "pending": "Approval requested for a compensation: {kind}, {amount} (above the {why} limit). "
                      "Reason: {reason}",
           "approved": "Compensation approved ({who}): {kind}, {amount}.{comment}",
           "rejected": "Compensation rejected ({who}): {kind}, {amount}.{comment}",
           "per_case": "per-case", "per_day": "daily", "comment": " Comment: {text}"},
}


def _words(session: Session, workspace_id: int) -> tuple[dict[str, str], dict[str, str]]:
    workspace = session.get(Workspace, workspace_id)
    lang = "en" if workspace is not None and workspace.language == "en" else "ru"
    return ENTRY[lang], KIND_WORDS[lang]


def _entry(session: Session, actor: Actor, compensation: Compensation, key: str, **extra: str) -> Any:
    """A visible system entry in the conversation's thread (an internal one: the customer never sees it)."""
    words, kinds = _words(session, compensation.workspace_id)
    text = words[key].format(kind=kinds[compensation.kind], amount=rub(compensation.amount),
                             reason=compensation.reason, **extra)
    return reply(session, actor, compensation.conversation_id, text=text, is_internal=True,
                 author=AuthorKind.system, meta={"compensation_id": compensation.id, "compensation": key})


def _event(session: Session, event_type: str, compensation: Compensation, conversation: Conversation,
           notify: list[int]) -> None:
    after_commit(session, Event(event_type, compensation.workspace_id, {
        "id": compensation.id, "conversation_id": compensation.conversation_id, "number": conversation.number,
        "kind": compensation.kind, "amount": money_text(compensation.amount), "status": compensation.status,
        "requested_by": compensation.requested_by, "decided_by": compensation.decided_by,
        "notify_user_ids": notify}))


def _audit_view(compensation: Compensation) -> dict[str, Any]:
    return {"compensation_id": compensation.id, "kind": compensation.kind,
            "amount": money_text(compensation.amount), "reason": compensation.reason,
            "customer_id": compensation.customer_id, "conversation_id": compensation.conversation_id,
            "status": compensation.status}


def _apply(session: Session, actor: Actor, compensation: Compensation, entry_key: str, **extra: str) -> None:
    """Applied: the thread entry, the audit on the conversation and the customer, the webhook to the shop."""
    now = utcnow()
    compensation.status, compensation.applied_at = APPLIED, now
    message = _entry(session, actor, compensation, entry_key, **extra)
    compensation.message_id = message.id
    view = _audit_view(compensation)
    record_audit(session, actor, entity_type="customer", entity_id=compensation.customer_id,
                 action="compensation_applied", after=view)
    if session.get(CompensationWebhook, compensation.workspace_id) is not None:
        message.delivery_status = DeliveryStatus.queued.value
        item = OutboxItem(workspace_id=compensation.workspace_id, message_id=message.id, channel=WEBHOOK_CHANNEL,
                          status=OutboxStatus.pending.value, idempotency_key=compensation.idempotency_key,
                          next_attempt_at=now)
        session.add(item)
        session.flush()
        from otklik.conversations import outbox

        outbox.enqueue_after_commit(session, item.id)


def request_compensation(session: Session, actor: Actor, conversation_id: int, *, kind: str, amount: Any,
                         reason: str, customer_id: int | None = None) -> Compensation:
    """Gives a compensation on the conversation: applied at once within the actor's limits, else a pending
    request for whoever has the authority. The conversation is locked first (the per-case sum), then the
    actor's usage row of today (the daily sum)."""
    kind = _kind(kind)
    value = parse_amount(amount)
    why = _text(reason, "reason", MAX_REASON, required=True)
    conversation = get_conversation(session, actor, conversation_id, for_update=True)
    if conversation.merged_into_id is not None:
        raise Conflict(f"conversation {conversation_id} was merged into {conversation.merged_into_id}",
                       code="merged")
    if customer_id is None:
        customer_id = conversation.customer_id
    else:
        customer = session.get(Customer, customer_id)
        if customer is None or customer.workspace_id != actor.workspace_id:
            raise field_error("customer_id", f"customer {customer_id} not found")
    limit = effective_limit(limit_table(session, actor.workspace_id), actor, kind)
    compensation = Compensation(
        workspace_id=actor.workspace_id, conversation_id=conversation.id, customer_id=customer_id, kind=kind,
        amount=value, reason=why, status=PENDING, requested_by=actor.user_id,
        requested_by_kind="assistant" if actor.kind == "assistant" else "user",
        idempotency_key=uuid.uuid4().hex, created_at=utcnow())
    over = None if _fits_case(session, limit, conversation.id, value) else "per_case"
    if over is None and not _take_daily(session, actor, limit, value):
        over = "per_day"
    session.add(compensation)
    session.flush()
    record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                 action="compensation_requested" if over else "compensation_applied",
                 after={**_audit_view(compensation), "limit": limit.view(), "over": over})
    if over is None:
        _apply(session, actor, compensation, "applied")
        _event(session, "compensation.applied", compensation, conversation, [])
        return compensation
    if actor.kind == "assistant":
        raise Forbidden("above the assistant's limit: hand the conversation to a person", code="over_limit")
    words, _ = _words(session, actor.workspace_id)
    _entry(session, actor, compensation, "pending", why=words[over])
    _event(session, "compensation.requested", compensation, conversation,
           approvers(session, actor.workspace_id, compensation))
    return compensation


def decide(session: Session, actor: Actor, compensation_id: int, *, approve: bool, comment: str | None = None
           ) -> Compensation:
    """Approve or reject a pending request. Only a supervisor or admin whose own per-case limit covers it, never
    its requester; an approval also counts against the approver's daily limit."""
    note = _text(comment, "comment", MAX_COMMENT, required=False)
    compensation = get_compensation(session, actor, compensation_id)
    conversation = get_conversation(session, actor, compensation.conversation_id, for_update=True)
    session.refresh(compensation, with_for_update=True)
    if compensation.status != PENDING:
        raise Conflict(f"this request is already {compensation.status}", code="decided")
    if actor.user_id is not None and compensation.requested_by == actor.user_id:
        raise Forbidden("nobody approves or rejects their own request", code="own_request")
    if actor.user_id is None or ROLE_RANK[actor.role] < ROLE_RANK[Role.supervisor]:
        raise Forbidden("deciding a compensation request needs the supervisor role")
    limit = effective_limit(limit_table(session, actor.workspace_id), actor, compensation.kind)
    if approve:
        if not _fits_case(session, limit, conversation.id, compensation.amount, exclude_id=compensation.id,
                          statuses=(APPLIED,)):
            raise Forbidden(f"above your own per-case limit ({money_text(limit.per_case)} ₽): an admin decides",
                            code="over_limit")
        if not _take_daily(session, actor, limit, compensation.amount):
            raise Forbidden(f"above your own daily limit ({money_text(limit.per_day)} ₽)", code="over_limit")
    before = _audit_view(compensation)
    compensation.decided_by, compensation.decided_at = actor.user_id, utcnow()
    compensation.decision_comment = note or None
    who = session.get(User, actor.user_id)
    words, _ = _words(session, actor.workspace_id)
    extra = {"who": who.name if who else "", "comment": words["comment"].format(text=note) if note else ""}
    if approve:
        _apply(session, actor, compensation, "approved", **extra)
    else:
        compensation.status = REJECTED
        _entry(session, actor, compensation, "rejected", **extra)
    record_audit(session, actor, entity_type="conversation", entity_id=conversation.id,
                 action="compensation_approved" if approve else "compensation_rejected", before=before,
                 after=_audit_view(compensation), note=note or None)
    _event(session, "compensation.decided", compensation, conversation,
           [compensation.requested_by] if compensation.requested_by else [])
    after_commit(session, Event("conversation.updated", actor.workspace_id, conversation_event_data(conversation)))
    return compensation


# -- the assistant ----------------------------------------------------------------------------------------------

def assistant_allowance(session: Session, workspace_id: int, conversation_id: int, kind: str) -> Decimal:
    """How much of `kind` the assistant may still give on this conversation on its own (0: hand off)."""
    actor = Actor.system(workspace_id, kind="assistant")
    limit = effective_limit(limit_table(session, workspace_id), actor, _kind(kind))
    room = [Decimal("100000000")]
    if limit.per_case is not None:
        room.append(limit.per_case - _case_sum(session, conversation_id, limit.kind, statuses=(APPLIED, PENDING)))
    if limit.per_day is not None:
        room.append(limit.per_day - used_today(session, workspace_id, _usage_key(actor, limit)))
    return max(Decimal("0"), min(room))


def offer_by_assistant(session: Session, workspace_id: int, conversation_id: int, *, kind: str, amount: Any,
                       reason: str) -> Compensation | None:
    """The assistant gives a compensation within its own limit; above it, None: hand the conversation off (the
    assistant never asks for approval itself — the person who takes over does)."""
    actor = Actor.system(workspace_id, kind="assistant")
    if parse_amount(amount) > assistant_allowance(session, workspace_id, conversation_id, kind):
        return None
    return request_compensation(session, actor, conversation_id, kind=kind, amount=amount, reason=reason)


LATE_DELIVERY_OFFER = {
    "ru": "Приносим извинения за задержку: доставку вашего следующего заказа мы сделаем бесплатной (до {amount}).",
    "en": "We are sorry for the delay: your next order's delivery is on us (up to {amount}).",
}


def offer_for_late_delivery(session: Session, workspace_id: int, conversation_id: int, language: str
                            ) -> str | None:
    """The assistant's offer on a late order: free delivery worth the workspace's own assistant limit for it
    (opt-in: only a workspace that set a `role:assistant` row for `free_delivery` gets it), given within the
    assistant's allowance; the sentence for the customer, or None (nothing allowed, or already given)."""
    row = session.scalar(select(CompensationLimit).where(CompensationLimit.workspace_id == workspace_id,
                                                         CompensationLimit.subject == "role:assistant",
                                                         CompensationLimit.kind == "free_delivery"))
    if row is None or not row.per_case:
        return None
    if assistant_allowance(session, workspace_id, conversation_id, "free_delivery") < row.per_case:
        return None  # given already on this case (or the day's budget is spent): a person decides more
    words = "Заказ опоздал: бесплатная доставка следующего заказа" if language == "ru" else \
        "Late order: free delivery of the next order"
    given = offer_by_assistant(session, workspace_id, conversation_id, kind="free_delivery", amount=row.per_case,
                               reason=words)
    if given is None:
        return None
    return LATE_DELIVERY_OFFER["en" if language == "en" else "ru"].format(amount=rub(given.amount))


# -- settings ---------------------------------------------------------------------------------------------------

def _subject(session: Session, actor: Actor, subject: Any) -> str:
    if isinstance(subject, str) and subject.startswith("role:") and subject[5:] in LIMIT_ROLES:
        return subject
    if isinstance(subject, str) and subject.startswith("user:") and subject[5:].isdigit():
        user = session.get(User, int(subject[5:]))
        if user is not None and user.workspace_id == actor.workspace_id:
            return subject
        raise field_error("subject", f"user {subject[5:]} not found")
    raise field_error("subject", f"role:<{'|'.join(LIMIT_ROLES)}> or user:<id>")


def set_limit(session: Session, actor: Actor, *, subject: Any, kind: Any, per_case: Any, per_day: Any
              ) -> CompensationLimit:
    actor.require(Role.admin)
    subject = _subject(session, actor, subject)
    kind = _kind(kind, allow_all=True)
    case = None if per_case in (None, "") else parse_amount(per_case, "per_case", allow_zero=True)
    day = None if per_day in (None, "") else parse_amount(per_day, "per_day", allow_zero=True)
    row = session.scalar(select(CompensationLimit).where(CompensationLimit.workspace_id == actor.workspace_id,
                                                         CompensationLimit.subject == subject,
                                                         CompensationLimit.kind == kind))
    before = None if row is None else {"per_case": money_text(row.per_case), "per_day": money_text(row.per_day)}
    if row is None:
        row = CompensationLimit(workspace_id=actor.workspace_id, subject=subject, kind=kind)
        session.add(row)
    row.per_case, row.per_day, row.updated_at, row.updated_by = case, day, utcnow(), actor.user_id
    session.flush()
    record_audit(session, actor, entity_type="compensation_limit", entity_id=row.id, action="limit_set",
                 before=before, after={"subject": subject, "kind": kind, "per_case": money_text(case),
                                       "per_day": money_text(day)})
    return row


def delete_limit(session: Session, actor: Actor, limit_id: int) -> None:
    actor.require(Role.admin)
    row = session.get(CompensationLimit, limit_id)
    if row is None or row.workspace_id != actor.workspace_id:
        raise NotFound(f"limit {limit_id} not found")
    record_audit(session, actor, entity_type="compensation_limit", entity_id=row.id, action="limit_deleted",
                 before={"subject": row.subject, "kind": row.kind, "per_case": money_text(row.per_case),
                         "per_day": money_text(row.per_day)})
    session.delete(row)


def list_limits(session: Session, actor: Actor) -> list[dict[str, Any]]:
    rows = {(r.subject, r.kind): r.id for r in session.scalars(
        select(CompensationLimit).where(CompensationLimit.workspace_id == actor.workspace_id))}
    table = limit_table(session, actor.workspace_id)
    return [{"id": rows.get(key), **limit.view()} for key, limit in sorted(table.items())]


def set_webhook(session: Session, actor: Actor, *, url: str, secret: str | None) -> CompensationWebhook | None:
    """The shop's endpoint (empty URL: none). A secret left empty keeps the stored one."""
    actor.require(Role.admin)
    row = session.get(CompensationWebhook, actor.workspace_id)
    url = (url or "").strip()
    if not url:
        if row is not None:
            session.delete(row)
            record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                         action="compensation_webhook_removed")
        return None
    if not url.startswith(("https://", "http://")) or len(url) > 500 or any(c.isspace() for c in url):
        raise field_error("url", "an http(s) URL of at most 500 characters")
    if secret:
        if len(secret) < 16 or len(secret) > 200:
            raise field_error("secret", "16 to 200 characters")
    elif row is None:
        raise field_error("secret", "a signing secret (16 to 200 characters) the shop checks")
    if row is None:
        row = CompensationWebhook(workspace_id=actor.workspace_id, url=url, secret_enc="")
        session.add(row)
    row.url, row.updated_at = url, utcnow()
    if secret:
        row.secret_enc = crypto.encrypt(secret, purpose=SECRET_PURPOSE)
    session.flush()
    record_audit(session, actor, entity_type="workspace", entity_id=actor.workspace_id,
                 action="compensation_webhook_set", after={"url": url, "secret_changed": bool(secret)})
    return row


def webhook_url(session: Session, workspace_id: int) -> str | None:
    row = session.get(CompensationWebhook, workspace_id)
    return row.url if row is not None else None


def webhook_status(session: Session, compensation: Compensation) -> str | None:
    """sent / pending / sending / dead, or None when no webhook was due."""
    if compensation.message_id is None:
        return None
    return session.scalar(select(OutboxItem.status).where(OutboxItem.message_id == compensation.message_id))


# -- the webhook sender (through the outbox: leases, retries with back-off, the same idempotency key) ----------

def sign(secret: str, body: bytes) -> str:
    """`X-Otklik-Signature: sha256=<hex HMAC of the body>`, the same scheme as the API channel's webhooks."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_payload(session: Session, compensation: Compensation) -> dict[str, Any]:
    conversation = session.get(Conversation, compensation.conversation_id)
    customer = session.get(Customer, compensation.customer_id)
    return {
        "event": "compensation.applied", "id": compensation.id, "idempotency_key": compensation.idempotency_key,
        "kind": compensation.kind, "amount": money_text(compensation.amount), "currency": "RUB",
        "reason": compensation.reason,
        "customer": {"id": compensation.customer_id, "name": customer.name if customer else None,
                     "identities": [{"kind": i.kind, "id": i.external_id} for i in session.scalars(
                         select(Identity).where(Identity.customer_id == compensation.customer_id)
                         .order_by(Identity.id))]},
        "conversation": {"id": compensation.conversation_id, "number": conversation.number if conversation else None},
        "requested_by": compensation.requested_by, "requested_by_kind": compensation.requested_by_kind,
        "approved_by": compensation.decided_by,
        "applied_at": compensation.applied_at.isoformat() if compensation.applied_at else None,
    }


class ShopWebhookSender:
    def __init__(self, workspace_id: int, url: str, secret: str):
        self.workspace_id, self.url, self.secret = workspace_id, url, secret

    def send(self, message: Any) -> str | None:
        import httpx

        from otklik.conversations.outbox import DeliveryError

        with session_scope(write=False) as session:
            compensation = session.scalar(select(Compensation).where(
                Compensation.workspace_id == self.workspace_id, Compensation.message_id == message.message_id))
            if compensation is None:
                raise DeliveryError("the compensation of this entry is gone", permanent=True)
            body = json.dumps(webhook_payload(session, compensation), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key,
                   "X-Otklik-Event": "compensation.applied", "X-Otklik-Signature": sign(self.secret, body),
                   "X-Otklik-Attempt": str(message.attempt)}
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=httpx.Timeout(10.0, connect=5.0))
        except httpx.HTTPError as exc:
            raise DeliveryError(f"shop webhook unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500 or 300 <= response.status_code < 400:
            raise DeliveryError(f"shop webhook failed: HTTP {response.status_code}")
        if response.status_code >= 400:
            raise DeliveryError(f"shop webhook refused it: HTTP {response.status_code}", permanent=True)
        return f"compensation-{compensation.id}"


def sender_for(workspace_id: int) -> ShopWebhookSender | None:
    with session_scope(write=False) as session:
        row = session.get(CompensationWebhook, workspace_id)
        if row is None:
            return None
        try:
            secret = crypto.decrypt(row.secret_enc, purpose=SECRET_PURPOSE)
        except ValueError:
            log.warning("workspace %s: the compensation webhook secret cannot be decrypted", workspace_id)
            return None
        return ShopWebhookSender(workspace_id, row.url, secret)


def register() -> None:
    from otklik.conversations.outbox import register_sender

    register_sender(WEBHOOK_CHANNEL, sender_for)


register()
