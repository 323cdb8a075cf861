"""Rules of proactive messages: when the business writes first, to whom, through which channel, and when not.

Every proactive message is a send row (`ProactiveSend`) claimed first — unique per (reason, customer), so a
retry, a second worker or a resumed campaign never writes to anyone twice — then decided at its `send_at`:

1. opted out («стоп», the API, the UI) → skipped, for every kind of message, service ones included;
2. marketing without recorded consent → skipped (38-ФЗ «О рекламе» ст. 18 ч. 1: advertising by
   telecommunication networks only with the subscriber's prior consent; 152-ФЗ «О персональных данных»
   ст. 15 ч. 1: personal data used to promote goods by direct contact only with prior consent). Service
   messages (an order delayed, delivered, returned) are not advertising and need no marketing consent;
3. marketing over the frequency cap (`cap_count` per `cap_days`, per customer) → skipped;
4. no channel that may write first (the customer's channel, by its own rules: a Telegram/VK/MAX/Viber/
   Instagram bot only after the customer wrote to it; WhatsApp free-form only in its 24-hour window, else the
   approved template; the widget, a phone line or a review cannot start a conversation) → skipped, reason kept;
5. quiet hours in the customer's time zone (their `timezone`, else the `tz` attribute, else the workspace's)
   → left pending until they end, and decided again then;
6. otherwise queued: a message in the customer's conversation of that channel (a new one when there is none
   open) and its outbox row, due at the channel's rate. A reply to it is an ordinary conversation.

Never imports a channel: a channel's own reply check runs through `conversations.reply_checks`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import re
import statistics
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Table, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from otklik.accounts.models import Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.conversations import reply_checks
from otklik.conversations.models import (
    AuthorKind,
    Conversation,
    ConversationTag,
    DeliveryStatus,
    Direction,
    Message,
    OutboxItem,
    OutboxStatus,
    Priority,
    Status,
)
from otklik.customers.models import Customer, Identity
from otklik.orders.models import Order
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, NotFound, field_error
from otklik.platform.html import text_to_html
from otklik.platform.text import search_terms
from otklik.proactive.models import (
    ConsentEvent,
    CustomerContact,
    ProactiveCampaign,
    ProactiveSend,
    ProactiveSettings,
    ProactiveTrigger,
)

# -- vocabulary -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TriggerKind:
    marketing: bool  # advertising in the sense of 38-ФЗ ст. 3: needs prior consent (ст. 18 ч. 1)
    text_ru: str
    text_en: str
    params: tuple[tuple[str, int, int, int], ...] = ()  # (name, default, min, max)


OPT_OUT_RU = "Чтобы не получать такие сообщения, ответьте «стоп»."
OPT_OUT_EN = "Reply STOP to stop these messages."
TRIGGERS: dict[str, TriggerKind] = {
    "order_delayed": TriggerKind(
        False,
        "Здравствуйте, {{name}}! Простите: заказ {{order_number}} задерживается — обещали доставить "
        "{{promised_on}}. Мы уже выясняем, в чём дело, и напишем новый срок. {{tracking_url}}",
        "Hello {{name}}, we are sorry: order {{order_number}} is late — it was promised for {{promised_on}}. "
        "We are finding out why and will write with the new date. {{tracking_url}}"),
    "order_delivered": TriggerKind(
        False,
        "{{name}}, заказ {{order_number}} доставлен. Всё ли в порядке? Если что-то не так — ответьте на это "
        "сообщение.",
        "{{name}}, order {{order_number}} was delivered. Is everything all right? If not, just reply here."),
    "order_returned": TriggerKind(
        False,
        "{{name}}, мы получили возврат по заказу {{order_number}}. Если остались вопросы о возврате денег — "
        "ответьте на это сообщение.",
        "{{name}}, we received the return of order {{order_number}}. Questions about the refund? Reply here."),
    "cart_abandoned": TriggerKind(
        True,
        "{{name}}, в вашей корзине остались товары: {{items}}. Оформить заказ: {{cart_url}}",
        "{{name}}, you left items in your cart: {{items}}. Check out: {{cart_url}}",
        (("delay_minutes", 60, 5, 7 * 24 * 60),)),
    "replenishment": TriggerKind(
        True,
        "{{name}}, кажется, {{product}} скоро закончится: вы покупаете его примерно раз в {{interval_days}} дн. "
        "Заказать снова? {{product_url}}",
        "{{name}}, your {{product}} may run out soon: you buy it about every {{interval_days}} days. "
        "Order again? {{product_url}}",
        (("days_before", 3, 0, 60), ("min_orders", 2, 2, 20))),
}
CAMPAIGN = "campaign"
SKIP_REASONS = ("opted_out", "no_consent", "frequency_cap", "no_channel", "channel_cannot_start",
                "customer_not_written", "whatsapp_window_closed", "channel_refused", "trigger_off",
                "campaign_cancelled", "ordered_meanwhile", "customer_gone")
# The channels' first-contact rules, as each vendor states them:
WROTE_FIRST = frozenset({"telegram", "vk", "max", "viber", "instagram"})  # a bot/community may write only to a
# user who wrote to it (Telegram Bot API: «bots can't initiate conversations with users»; VK: messages allowed by
# the user; Viber/MAX bots: a subscribed user; Instagram: within the messaging window)
CANNOT_START = frozenset({"widget", "phone", "review", "form"})  # nothing to deliver a first message through
# (the widget shows messages only on an open page; a phone line takes no text; a review site; a web form is
# answered by e-mail, which is then the channel)
# Messages per second the outbox is fed for a campaign, per channel (the vendors' published limits):
CHANNEL_RATES: dict[str, float] = {
    "telegram": 25.0,  # Bot API: about 30 messages a second for bulk notifications; we keep a margin
    "whatsapp": 70.0,  # Cloud API: 80 messages a second per business phone number by default
    "vk": 18.0,  # VK API: 20 requests a second with a community token
    "max": 25.0, "viber": 25.0, "instagram": 3.0,  # Instagram Graph: 200 calls an hour per user, per thread
    "email": 10.0,  # a typical relay's limit; set the campaign's own rate for a bigger one
    "api": 50.0,
}
DEFAULT_RATE = 10.0
STOP_WORDS = frozenset({"стоп", "stop", "отписаться", "unsubscribe", "отписка", "отпишите"})
CAMPAIGN_STATUSES = ("draft", "scheduled", "running", "done", "cancelled")
BATCH = 500
VARIABLE = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")


@dataclass(frozen=True)
class Limits:
    cap_count: int = 1
    cap_days: int = 7
    quiet_start: int = 21
    quiet_end: int = 9
    reply_days: int = 3
    conversion_days: int = 7


SETTINGS_RANGES = {"cap_count": (0, 100), "cap_days": (1, 365), "quiet_start": (0, 23), "quiet_end": (0, 23),
                   "reply_days": (1, 60), "conversion_days": (1, 90)}


def limits(session: Session, workspace_id: int) -> Limits:
    row = session.get(ProactiveSettings, workspace_id)
    if row is None:
        return Limits()
    return Limits(row.cap_count, row.cap_days, row.quiet_start, row.quiet_end, row.reply_days, row.conversion_days)


def _int_field(body: dict[str, Any], name: str, low: int, high: int) -> int:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise field_error(name, f"a whole number from {low} to {high}")
    return value


def update_settings(session: Session, actor: Actor, body: dict[str, Any]) -> Limits:
    from otklik.accounts.models import Role

    actor.require(Role.admin)
    unknown = set(body) - set(SETTINGS_RANGES)
    if unknown:
        raise field_error(sorted(unknown)[0], f"unknown field ({', '.join(SETTINGS_RANGES)})")
    row = session.get(ProactiveSettings, actor.workspace_id)
    if row is None:
        base = Limits()
        row = ProactiveSettings(workspace_id=actor.workspace_id, **base.__dict__)
        session.add(row)
    for name, (low, high) in SETTINGS_RANGES.items():
        if name in body:
            setattr(row, name, _int_field(body, name, low, high))
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="proactive_settings", entity_id=actor.workspace_id, action="updated",
                 after={k: body[k] for k in body})
    session.flush()
    return limits(session, actor.workspace_id)


# -- triggers ---------------------------------------------------------------------------------------------

def triggers(session: Session, workspace_id: int) -> dict[str, ProactiveTrigger]:
    """Every trigger kind, stored or as its default (off, with the shipped texts)."""
    stored = {t.kind: t for t in session.scalars(select(ProactiveTrigger).where(
        ProactiveTrigger.workspace_id == workspace_id))}
    out = {}
    for kind, spec in TRIGGERS.items():
        out[kind] = stored.get(kind) or ProactiveTrigger(
            workspace_id=workspace_id, kind=kind, enabled=False, text_ru=spec.text_ru, text_en=spec.text_en,
            whatsapp_template="", params={name: default for name, default, _, _ in spec.params})
    return out


def param(trigger: ProactiveTrigger, name: str) -> int:
    for pname, default, _, _ in TRIGGERS[trigger.kind].params:
        if pname == name:
            value = (trigger.params or {}).get(name, default)
            return int(value)
    raise KeyError(name)


def _text_field(body: dict[str, Any], name: str, limit: int, *, required: bool = False) -> str:
    value = body[name]
    if not isinstance(value, str):
        raise field_error(name, "must be text")
    value = value.strip()
    if required and not value:
        raise field_error(name, "required")
    if len(value) > limit:
        raise field_error(name, f"at most {limit} characters")
    unknown = sorted(set(VARIABLE.findall(value)) - VARIABLES)
    if unknown:
        raise field_error(name, f"unknown variable {{{{{unknown[0]}}}}}; known: {', '.join(sorted(VARIABLES))}")
    return value


_TEMPLATE_NAME = re.compile(r"^[a-z0-9_]{1,512}$")


def _template_field(body: dict[str, Any]) -> str:
    value = body["whatsapp_template"]
    if value in (None, ""):
        return ""
    if not isinstance(value, str) or not _TEMPLATE_NAME.match(value):
        raise field_error("whatsapp_template", "an approved WhatsApp template's name: a-z, 0-9 and _")
    return value


def update_trigger(session: Session, actor: Actor, kind: str, body: dict[str, Any]) -> ProactiveTrigger:
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    if kind not in TRIGGERS:
        raise NotFound(f"trigger {kind} not found")
    allowed = {"enabled", "text_ru", "text_en", "whatsapp_template", "params"}
    unknown = set(body) - allowed
    if unknown:
        raise field_error(sorted(unknown)[0], f"unknown field ({', '.join(sorted(allowed))})")
    current = triggers(session, actor.workspace_id)[kind]
    if current.id is None:
        session.add(current)
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise field_error("enabled", "true or false")
        current.enabled = body["enabled"]
    for name in ("text_ru", "text_en"):
        if name in body:
            setattr(current, name, _text_field(body, name, 2000, required=True))
    if "whatsapp_template" in body:
        current.whatsapp_template = _template_field(body)
    if "params" in body:
        raw = body["params"]
        if not isinstance(raw, dict):
            raise field_error("params", "an object")
        specs = {name: (low, high) for name, _, low, high in TRIGGERS[kind].params}
        params = dict(current.params or {})
        for name, value in raw.items():
            if name not in specs:
                raise field_error(f"params.{name}", f"unknown parameter ({', '.join(specs) or 'none'})")
            low, high = specs[name]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise field_error(f"params.{name}", f"a whole number from {low} to {high}")
            params[name] = value
        current.params = params
    current.updated_at = utcnow()
    record_audit(session, actor, entity_type="proactive_trigger", entity_id=0, action="updated",
                 after={"kind": kind, **{k: v for k, v in body.items() if k != "params"}})
    session.flush()
    return current


# -- consent and opt-out ----------------------------------------------------------------------------------

CONSENT_ACTIONS = ("consent_given", "consent_withdrawn", "opted_out", "opted_in")


def contact_of(session: Session, workspace_id: int, customer_id: int) -> CustomerContact:
    row = session.get(CustomerContact, customer_id)
    if row is None or row.workspace_id != workspace_id:
        return CustomerContact(customer_id=customer_id, workspace_id=workspace_id, opted_out=False,
                               marketing_consent=False)
    return row


def record_consent(session: Session, workspace_id: int, customer_id: int, action: str, *, source: str,
                   evidence: str = "", user_id: int | None = None) -> CustomerContact:
    """Change a customer's consent or opt-out and keep the record of it (who, how, the wording, when)."""
    if action not in CONSENT_ACTIONS:
        raise field_error("action", f"one of: {', '.join(CONSENT_ACTIONS)}")
    row = session.get(CustomerContact, customer_id)
    if row is None:
        row = CustomerContact(customer_id=customer_id, workspace_id=workspace_id, opted_out=False,
                              marketing_consent=False)
        session.add(row)
    if action == "consent_given":
        row.marketing_consent = True
    elif action == "consent_withdrawn":
        row.marketing_consent = False
    elif action == "opted_out":
        row.opted_out = True
        withdraw_queued(session, workspace_id, customer_id)
    else:
        row.opted_out = False
    row.updated_at = utcnow()
    session.add(ConsentEvent(workspace_id=workspace_id, customer_id=customer_id, action=action, source=source,
                             evidence=evidence[:2000], user_id=user_id, at=utcnow()))
    session.flush()
    return row


WITHDRAWN = "not sent: the customer opted out of proactive messages before it went out"


def withdraw_queued(session: Session, workspace_id: int, customer_id: int) -> int:
    """An opt-out also stops the customer's proactive messages still waiting in the outbox (a campaign's row due
    later at the channel's rate): each row still `pending` is set dead — one that a worker is sending already
    goes — its message marked not delivered with the reason, its send skipped `opted_out`. Returns how many."""
    sends = {s.message_id: s for s in session.scalars(select(ProactiveSend).where(
        ProactiveSend.workspace_id == workspace_id, ProactiveSend.customer_id == customer_id,
        ProactiveSend.status == "queued", ProactiveSend.message_id.is_not(None)))}
    if not sends:
        return 0
    outbox = cast(Table, OutboxItem.__table__)
    stopped = [int(m) for m in session.scalars(update(outbox).where(
        outbox.c.message_id.in_(list(sends)), outbox.c.status == OutboxStatus.pending.value)
        .values(status=OutboxStatus.dead.value, last_error=WITHDRAWN).returning(outbox.c.message_id))]
    if stopped:
        messages = cast(Table, Message.__table__)
        session.execute(update(messages).where(messages.c.id.in_(stopped)).values(
            delivery_status=DeliveryStatus.failed.value, delivery_error=WITHDRAWN))
        for message_id in stopped:
            sends[message_id].status, sends[message_id].reason = "skipped", "opted_out"
    return len(stopped)


def consent_history(session: Session, workspace_id: int, customer_id: int) -> list[ConsentEvent]:
    return list(session.scalars(select(ConsentEvent).where(
        ConsentEvent.workspace_id == workspace_id, ConsentEvent.customer_id == customer_id)
        .order_by(ConsentEvent.id.desc()).limit(100)))


def is_stop_reply(text: str) -> bool:
    """«Стоп», «STOP», «отписаться!» — the whole message, nothing else (a sentence that mentions «стоп» is not)."""
    words = re.sub(r"[^\w]+", " ", (text or "").lower()).split()
    return len(words) <= 2 and bool(words) and all(w in STOP_WORDS or w in {"пожалуйста", "please"} for w in words) \
        and any(w in STOP_WORDS for w in words)


def on_customer_message(session: Session, workspace_id: int, message_id: int) -> bool:
    """A customer's «стоп» / «отписаться» opts them out of every proactive message (recorded with the text)."""
    message = session.get(Message, message_id)
    if message is None or message.workspace_id != workspace_id or message.direction != Direction.inbound.value:
        return False
    if not is_stop_reply(message.body_text):
        return False
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is None:
        return False
    if contact_of(session, workspace_id, conversation.customer_id).opted_out:
        return False
    record_consent(session, workspace_id, conversation.customer_id, "opted_out", source="reply",
                   evidence=f"message {message.id}: {message.body_text[:200]}")
    return True


# -- time zones and quiet hours ---------------------------------------------------------------------------

def zone_of(customer: Customer, workspace_zone: str) -> ZoneInfo:
    for candidate in (customer.timezone, (customer.attributes or {}).get("tz"),
                      (customer.attributes or {}).get("timezone"), workspace_zone, "Europe/Moscow"):
        if isinstance(candidate, str) and candidate:
            try:
                return ZoneInfo(candidate)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def quiet_until(now: dt.datetime, zone: ZoneInfo, start: int, end: int) -> dt.datetime | None:
    """When the quiet hours around `now` end (UTC), or None when `now` is not in them. 21→9 spans midnight."""
    if start == end:
        return None
    local = now.astimezone(zone)
    hour = local.hour
    quiet = (hour >= start or hour < end) if start > end else (start <= hour < end)
    if not quiet:
        return None
    ends = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if ends <= local:
        ends = (local + dt.timedelta(days=1)).replace(hour=end, minute=0, second=0, microsecond=0)
    # re-localise: across a DST change the wall-clock hour keeps its meaning
    ends = dt.datetime.combine(ends.date(), dt.time(end), zone)
    return ends.astimezone(dt.UTC)


# -- texts ------------------------------------------------------------------------------------------------

VARIABLES = frozenset({"name", "order_number", "promised_on", "tracking_url", "items", "cart_url", "product",
                       "product_url", "interval_days", "sku"})


def render(text: str, values: dict[str, Any]) -> str:
    out = VARIABLE.sub(lambda m: str(values.get(m.group(1)) or ""), text)
    out = re.sub(r"[ \t]{2,}", " ", out).strip()
    return re.sub(r"\s+([,.!?])", r"\1", out)


def _first_name(name: str) -> str:
    return (name or "").split()[0] if (name or "").strip() else ""


# -- claiming ---------------------------------------------------------------------------------------------

def _insert(session: Session) -> Any:
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


def claim(session: Session, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert send rows; the ones another run already claimed (same workspace, reason and customer) are left
    alone. Returns the ids of the rows this call claimed."""
    if not rows:
        return []
    now = utcnow()
    values = [{"status": "pending", "send_at": now, "context": {}, "created_at": now, "marketing": False,
               "campaign_id": None, **r} for r in rows]
    stmt = _insert(session)(ProactiveSend).on_conflict_do_nothing(
        index_elements=["workspace_id", "dedup_key", "customer_id"]).returning(ProactiveSend.id)
    return [int(i) for i in session.scalars(stmt, values)]  # one statement per batch of rows, not per row


# -- deciding and queuing ---------------------------------------------------------------------------------

@dataclass
class _Source:
    text_ru: str
    text_en: str
    whatsapp_template: str
    marketing: bool
    active: bool
    off_reason: str
    channels: tuple[str, ...] = ()


@dataclass
class _Batch:
    """What deciding a batch of sends needs, read with a few queries."""

    customers: dict[int, Customer]
    contacts: dict[int, CustomerContact]
    recent_marketing: dict[int, int]
    conversations: dict[tuple[int, str], Conversation]  # (customer, channel) -> newest not merged
    wrote: set[tuple[int, str]]  # (customer, channel) the customer has written in
    identities: dict[int, set[str]]  # customer -> identity kinds
    by_customer: dict[int, dict[str, Conversation]] = field(default_factory=dict)


def _load_batch(session: Session, workspace_id: int, customer_ids: Iterable[int], cap_days: int) -> _Batch:
    ids = sorted(set(customer_ids))
    customers = {c.id: c for c in session.scalars(select(Customer).where(
        Customer.workspace_id == workspace_id, Customer.id.in_(ids)))} if ids else {}
    contacts = {c.customer_id: c for c in session.scalars(select(CustomerContact).where(
        CustomerContact.customer_id.in_(ids)))} if ids else {}
    since = utcnow() - dt.timedelta(days=cap_days)
    recent = dict(session.execute(select(ProactiveSend.customer_id, func.count()).where(
        ProactiveSend.workspace_id == workspace_id, ProactiveSend.customer_id.in_(ids),
        ProactiveSend.marketing.is_(True), ProactiveSend.status == "queued", ProactiveSend.queued_at >= since)
        .group_by(ProactiveSend.customer_id)).all()) if ids else {}
    conversations: dict[tuple[int, str], Conversation] = {}
    for conv in session.scalars(select(Conversation).where(
            Conversation.workspace_id == workspace_id, Conversation.customer_id.in_(ids),
            Conversation.merged_into_id.is_(None)).order_by(Conversation.id)) if ids else ():
        conversations[(conv.customer_id, conv.channel)] = conv
    wrote: set[tuple[int, str]] = set()
    if conversations:
        rows = session.execute(select(Conversation.customer_id, Message.channel).join(
            Message, Message.conversation_id == Conversation.id).where(
            Conversation.workspace_id == workspace_id, Conversation.customer_id.in_(ids),
            Message.direction == Direction.inbound.value).distinct())
        wrote = {(int(c), str(ch)) for c, ch in rows}
    identities: dict[int, set[str]] = {}
    for cid, kind in session.execute(select(Identity.customer_id, Identity.kind).where(
            Identity.workspace_id == workspace_id, Identity.customer_id.in_(ids))) if ids else ():
        identities.setdefault(int(cid), set()).add(str(kind))
    by_customer: dict[int, dict[str, Conversation]] = {}
    for (cid, channel), conv in conversations.items():
        by_customer.setdefault(cid, {})[channel] = conv
    return _Batch(customers, contacts, {int(k): int(v) for k, v in recent.items()}, conversations, wrote,
                  identities, by_customer)


def _pick_channel(batch: _Batch, customer_id: int, allowed: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The channel to write first through: the one of the customer's newest conversation that can start one
    (an e-mail when that is a web form, the widget, a phone call or a review and they have an address).
    Returns (channel, None) or (None, skip reason)."""
    candidates = sorted(((conv.id, ch) for ch, conv in batch.by_customer.get(customer_id, {}).items()),
                        reverse=True)
    blocked: str | None = None
    for _, channel in candidates:
        if allowed and channel not in allowed:
            continue
        if channel in CANNOT_START:
            blocked = blocked or "channel_cannot_start"
            continue
        if channel in WROTE_FIRST and (customer_id, channel) not in batch.wrote:
            blocked = blocked or "customer_not_written"
            continue
        return channel, None
    if "email" in batch.identities.get(customer_id, set()) and (not allowed or "email" in allowed):
        return "email", None
    return None, blocked or "no_channel"


def _source_for(session: Session, workspace_id: int, send: ProactiveSend, cache: dict[Any, _Source]) -> _Source:
    key = (send.trigger, send.campaign_id)
    if key in cache:
        return cache[key]
    if send.campaign_id is not None:
        campaign = session.get(ProactiveCampaign, send.campaign_id)
        assert campaign is not None
        source = _Source(campaign.text_ru, campaign.text_en, campaign.whatsapp_template, campaign.marketing,
                         campaign.status in ("running", "scheduled", "done"), "campaign_cancelled",
                         tuple((campaign.segment or {}).get("channels") or ()))
    else:
        trigger = triggers(session, workspace_id)[send.trigger]
        source = _Source(trigger.text_ru, trigger.text_en, trigger.whatsapp_template, TRIGGERS[send.trigger].marketing,
                         trigger.enabled, "trigger_off")
    cache[key] = source
    return source


def _ordered_since(session: Session, workspace_id: int, customer_id: int, since: dt.datetime) -> bool:
    found = session.scalar(select(func.count()).select_from(Order).where(
        Order.workspace_id == workspace_id, Order.customer_id == customer_id,
        func.coalesce(Order.placed_at, Order.created_at) >= since))
    return bool(found)


def decide(session: Session, workspace_id: int, sends: Sequence[ProactiveSend], *, now: dt.datetime | None = None,
           slots: dict[str, str] | None = None, rate: float | None = None, announce: bool = True) -> dict[str, int]:
    """Decide each pending send (see the module's rules): queue it, leave it pending until quiet hours end, or
    skip it with the reason. `slots` (a campaign's, per channel) spreads the outbox rows at the channel's rate;
    without it they are due now and nudged after commit. Returns counts by outcome."""
    from otklik.platform.events import Event, after_commit

    now = now or utcnow()
    rules = limits(session, workspace_id)
    workspace = session.get(Workspace, workspace_id)
    workspace_zone = workspace.timezone if workspace is not None else "Europe/Moscow"
    batch = _load_batch(session, workspace_id, [s.customer_id for s in sends], rules.cap_days)
    sources: dict[Any, _Source] = {}
    counts = {"queued": 0, "pending": 0, "skipped": 0}
    to_queue: list[tuple[ProactiveSend, Customer, str, str, dict[str, Any]]] = []
    for send in sends:
        if send.status != "pending":
            continue
        source = _source_for(session, workspace_id, send, sources)
        customer = batch.customers.get(send.customer_id)
        contact = batch.contacts.get(send.customer_id)
        reason: str | None = None
        channel: str | None = None
        if customer is None or customer.merged_into_id is not None:
            reason = "customer_gone"
        elif not source.active:
            reason = source.off_reason
        elif contact is not None and contact.opted_out:
            reason = "opted_out"
        elif send.marketing and not (contact is not None and contact.marketing_consent):
            reason = "no_consent"  # 38-ФЗ ст. 18 ч. 1, 152-ФЗ ст. 15 ч. 1: prior consent for advertising
        elif send.marketing and batch.recent_marketing.get(send.customer_id, 0) >= rules.cap_count:
            reason = "frequency_cap"
        elif send.trigger == "cart_abandoned" and _ordered_since(session, workspace_id, send.customer_id,
                                                                 send.created_at):
            reason = "ordered_meanwhile"
        else:
            channel, reason = _pick_channel(batch, send.customer_id, source.channels)
        meta: dict[str, Any] = {"proactive": {"send_id": send.id, "trigger": send.trigger,
                                              "campaign_id": send.campaign_id}}
        conversation = batch.conversations.get((send.customer_id, channel)) if channel else None
        language = "en" if customer is not None and (customer.language or "").startswith("en") else "ru"
        if reason is None and channel is not None and customer is not None:
            probe = conversation or Conversation(workspace_id=workspace_id, customer_id=customer.id, channel=channel)
            refusal = reply_checks.explain(session, probe, channel=channel, meta={})
            if refusal is not None and channel == "whatsapp" and source.whatsapp_template:
                meta["whatsapp_template"] = {"name": source.whatsapp_template, "language": language,
                                             "parameters": []}
                refusal = reply_checks.explain(session, probe, channel=channel, meta=meta)
            if refusal is not None:
                reason = "whatsapp_window_closed" if channel == "whatsapp" else "channel_refused"
        if reason is not None:
            send.status, send.reason, send.channel = "skipped", reason, channel
            counts["skipped"] += 1
            continue
        assert customer is not None and channel is not None
        quiet = quiet_until(now, zone_of(customer, workspace_zone), rules.quiet_start, rules.quiet_end)
        if quiet is not None:
            send.send_at, send.reason, send.channel = quiet, "quiet_hours", channel
            counts["pending"] += 1
            continue
        values = {"name": _first_name(customer.name), **(send.context or {})}
        text = render(source.text_en if language == "en" and source.text_en else source.text_ru, values)
        if send.marketing:
            text = f"{text}\n\n{OPT_OUT_EN if language == 'en' else OPT_OUT_RU}"
        if send.marketing:
            batch.recent_marketing[customer.id] = batch.recent_marketing.get(customer.id, 0) + 1
        to_queue.append((send, customer, channel, text, meta))
        counts["queued"] += 1
    if not to_queue:
        session.flush()
        return counts
    # The batch is written with a few multi-row Core INSERTs (the ORM would insert row by row to learn each
    # new id): conversations first (their numbers taken as one block), then the messages, then the outbox rows.
    # What `conversations.service._add_message` sets on a message and its conversation is set here the same way.
    conversation_ids: dict[tuple[int, str], int] = {}
    fresh: list[tuple[int, str]] = []
    fresh_rows: list[dict[str, Any]] = []
    for _send, customer, channel, text, _meta in to_queue:
        key = (customer.id, channel)
        if key in conversation_ids or key in fresh:
            continue
        conversation = batch.conversations.get(key)
        if conversation is not None and conversation.status != Status.closed.value:
            conversation_ids[key] = conversation.id
            continue
        fresh.append(key)
        fresh_rows.append({
            "workspace_id": workspace_id, "customer_id": customer.id, "channel": channel, "subject": text[:80],
            "status": Status.open.value, "priority": Priority.normal, "language": customer.language,
            "previous_conversation_id": conversation.id if conversation is not None else None, "created_at": now,
            "updated_at": now, "last_message_at": now, "last_customer_message_at": now, "version": 1,
            "message_count": 0, "last_message_preview": ""})
    if fresh:
        last = session.scalar(update(Workspace).where(Workspace.id == workspace_id)
                              .values(conversation_seq=Workspace.conversation_seq + len(fresh))
                              .returning(Workspace.conversation_seq)
                              .execution_options(synchronize_session=False))
        assert last is not None
        for offset, row in enumerate(fresh_rows):
            row["number"] = int(last) - len(fresh) + 1 + offset
        # RETURNING without «in parameter order» (SQLite would then insert row by row): matched by number
        by_number = dict(session.execute(insert(Conversation).returning(Conversation.number, Conversation.id),
                                         fresh_rows).all())
        conversation_ids.update((key, by_number[row["number"]]) for key, row in zip(fresh, fresh_rows, strict=True))
    message_rows: list[dict[str, Any]] = [{
        "workspace_id": workspace_id, "conversation_id": conversation_ids[(customer.id, channel)], "channel": channel,
        "direction": Direction.outbound.value, "author_kind": AuthorKind.assistant.value, "author_user_id": None,
        "body_text": text, "body_html": text_to_html(text), "is_internal": False, "channel_message_id": None,
        "delivery_status": DeliveryStatus.queued.value, "meta": meta, "search_terms": search_terms(text),
        "created_at": now} for _send, customer, channel, text, meta in to_queue]
    by_send = {meta["proactive"]["send_id"]: message_id for message_id, meta in session.execute(
        insert(Message).returning(Message.id, Message.meta), message_rows).all()}
    message_ids = [by_send[row["meta"]["proactive"]["send_id"]] for row in message_rows]
    per_conversation: dict[int, list[str]] = {}
    for row in message_rows:
        per_conversation.setdefault(row["conversation_id"], []).append(row["body_text"])
    counted = [{"c_id": cid, "c_n": len(texts), "c_preview": " ".join(texts[-1].split())[:200]}
               for cid, texts in per_conversation.items()]
    table = cast(Table, Conversation.__table__)
    session.execute(update(table).where(table.c.id == bindparam("c_id")).values(
        message_count=table.c.message_count + bindparam("c_n"), last_message_preview=bindparam("c_preview"),
        last_message_at=now, updated_at=now, version=table.c.version + 1), counted)
    reopened = [conversation_ids[k] for k, c in batch.conversations.items()
                if k in conversation_ids and k not in fresh and c.status == Status.new.value]
    if reopened:  # a proactive message is a public reply: a «new» conversation becomes «open»
        session.execute(update(table).where(table.c.id.in_(reopened)).values(status=Status.open.value))
    outbox_rows = []
    for (send, _customer, channel, _, _), message_id, row in zip(to_queue, message_ids, message_rows, strict=True):
        due = now
        if slots is not None:
            per_second = rate or CHANNEL_RATES.get(channel, DEFAULT_RATE)
            slot = dt.datetime.fromisoformat(slots[channel]) if channel in slots else now
            due = max(slot, now)
            slots[channel] = (due + dt.timedelta(seconds=1 / per_second)).isoformat()
        outbox_rows.append({"workspace_id": workspace_id, "message_id": message_id, "channel": channel,
                            "status": OutboxStatus.pending.value, "attempts": 0,
                            "idempotency_key": uuid.uuid4().hex, "next_attempt_at": due, "created_at": now})
        send.status, send.reason, send.channel = "queued", None, channel
        send.conversation_id, send.message_id, send.queued_at = row["conversation_id"], message_id, now
    by_message = dict(session.execute(insert(OutboxItem).returning(OutboxItem.message_id, OutboxItem.id),
                                      outbox_rows).all())
    outbox_ids = [by_message[message_id] for message_id in message_ids]
    session.flush()
    for conversation in batch.conversations.values():
        if conversation.id in per_conversation:
            session.expire(conversation)  # changed by the statements above
    if announce:  # one trigger's few messages: shown live, and delivered right after commit
        from otklik.conversations import outbox

        for key, row in zip(fresh, fresh_rows, strict=True):
            after_commit(session, Event("conversation.created", workspace_id, {
                "id": conversation_ids[key], "number": row["number"], "status": Status.open.value,
                "priority": Priority.normal.value, "assignee_id": None, "team_id": None, "customer_id": key[0],
                "channel": key[1], "subject": row["subject"], "version": 1}))
        for message_id, row, outbox_id in zip(message_ids, message_rows, outbox_ids, strict=True):
            after_commit(session, Event("message.created", workspace_id, {
                "id": message_id, "conversation_id": row["conversation_id"], "direction": row["direction"],
                "author_kind": row["author_kind"], "author_user_id": None, "body_text": row["body_text"],
                "is_internal": False, "channel": row["channel"], "delivery_status": row["delivery_status"],
                "created_at": now.isoformat()}))
            outbox.enqueue_after_commit(session, outbox_id)
    return counts


# -- triggers firing --------------------------------------------------------------------------------------

def _order_context(order: Order) -> dict[str, Any]:
    delivery = order.delivery or {}
    return {"order_number": order.number, "promised_on": order.promised_on or "",
            "tracking_url": delivery.get("tracking_url") or ""}


def fire_for_order(session: Session, workspace_id: int, order_id: int, kind: str) -> int | None:
    """An order event (delayed, delivered, returned): claim the one send for it and decide it now."""
    order = session.get(Order, order_id)
    if order is None or order.workspace_id != workspace_id or order.customer_id is None:
        return None
    trigger = triggers(session, workspace_id)[kind]
    if not trigger.enabled:
        return None
    ids = claim(session, [{"workspace_id": workspace_id, "customer_id": order.customer_id, "trigger": kind,
                           "dedup_key": f"{kind}:{order.id}", "marketing": TRIGGERS[kind].marketing,
                           "context": _order_context(order)}])
    if not ids:
        return None
    sends = list(session.scalars(select(ProactiveSend).where(ProactiveSend.id.in_(ids))))
    decide(session, workspace_id, sends)
    return ids[0]


ORDER_EVENT_TRIGGERS = {"delivered": "order_delivered", "returned": "order_returned"}


def on_order_status(session: Session, workspace_id: int, order_id: int, status: str) -> int | None:
    kind = ORDER_EVENT_TRIGGERS.get(status)
    return fire_for_order(session, workspace_id, order_id, kind) if kind else None


def fire_delayed(session: Session, *, today: dt.date | None = None, limit: int = 500) -> int:
    """Open orders whose promised day has passed, in workspaces with the «delayed» trigger on: one send each."""
    from otklik.orders.service import CLOSED

    day = (today or utcnow().date()).isoformat()
    workspaces = list(session.scalars(select(ProactiveTrigger.workspace_id).where(
        ProactiveTrigger.kind == "order_delayed", ProactiveTrigger.enabled.is_(True))))
    fired = 0
    for workspace_id in workspaces:
        late = list(session.scalars(select(Order).where(
            Order.workspace_id == workspace_id, Order.status.not_in(tuple(CLOSED)), Order.promised_on.is_not(None),
            Order.promised_on < day, Order.customer_id.is_not(None)).order_by(Order.id)))
        keys = [f"order_delayed:{o.id}" for o in late]
        done: set[str] = set()
        for start in range(0, len(keys), 500):
            done.update(session.scalars(select(ProactiveSend.dedup_key).where(
                ProactiveSend.workspace_id == workspace_id, ProactiveSend.dedup_key.in_(keys[start:start + 500]))))
        orders = [o for o in late if f"order_delayed:{o.id}" not in done][:limit]
        rows = [{"workspace_id": workspace_id, "customer_id": o.customer_id, "trigger": "order_delayed",
                 "dedup_key": f"order_delayed:{o.id}", "context": _order_context(o)} for o in orders]
        ids = claim(session, rows)
        if ids:
            decide(session, workspace_id, list(session.scalars(select(ProactiveSend).where(ProactiveSend.id.in_(ids)))))
        fired += len(ids)
    return fired


# -- cart abandoned ---------------------------------------------------------------------------------------

CART_FIELDS = ("cart_id", "customer", "items", "cart_url", "abandoned_at")


def cart_abandoned(session: Session, actor: Actor, body: dict[str, Any]) -> ProactiveSend:
    """The shop says a cart was left: one send per cart, decided `delay_minutes` after it was abandoned (not
    sent if the customer ordered meanwhile)."""
    from otklik.orders.service import _customer, _items, check_number, parse_datetime, resolve_customers

    unknown = set(body) - set(CART_FIELDS)
    if unknown:
        raise field_error(sorted(unknown)[0], f"unknown field ({', '.join(CART_FIELDS)})")
    cart_id = check_number(body.get("cart_id"), "cart_id")
    if body.get("customer") is None:
        raise field_error("customer", 'required: {"kind": "email" | "phone" | …, "value": …}')
    identity, name, _ = _customer(body["customer"])
    items = _items(body.get("items") or [])
    if not items:
        raise field_error("items", "at least one item")
    cart_url = body.get("cart_url") or ""
    if cart_url and (not isinstance(cart_url, str) or not re.match(r"^https?://\S{1,990}$", cart_url)):
        raise field_error("cart_url", "an http(s) address")
    abandoned = parse_datetime(body["abandoned_at"], "abandoned_at") if body.get("abandoned_at") else utcnow()
    ids, _ = resolve_customers(session, actor.workspace_id, {identity: name})
    customer_id = ids[identity]
    trigger = triggers(session, actor.workspace_id)["cart_abandoned"]
    names = ", ".join(str(i["name"]) for i in items[:5]) + ("…" if len(items) > 5 else "")
    claimed = claim(session, [{
        "workspace_id": actor.workspace_id, "customer_id": customer_id, "trigger": "cart_abandoned",
        "dedup_key": f"cart:{cart_id}", "marketing": True,
        "send_at": abandoned + dt.timedelta(minutes=param(trigger, "delay_minutes")),
        "context": {"items": names, "cart_url": cart_url}, "created_at": abandoned}])
    send = session.scalar(select(ProactiveSend).where(
        ProactiveSend.workspace_id == actor.workspace_id, ProactiveSend.dedup_key == f"cart:{cart_id}",
        ProactiveSend.customer_id == customer_id))
    assert send is not None
    if claimed and send.send_at <= utcnow():
        decide(session, actor.workspace_id, [send])
    return send


# -- replenishment ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replenishment:
    customer_id: int
    sku: str
    product: str
    product_url: str
    last_order_id: int
    interval_days: float
    due_on: dt.date


def purchase_intervals(orders: Iterable[tuple[int, int, dt.datetime, list[dict[str, Any]]]], *, min_orders: int = 2
                       ) -> list[Replenishment]:
    """From (order id, customer id, placed at, items): per customer and SKU bought in at least `min_orders`
    orders on different days, the median gap between those purchases (days) and the day the next one is due
    (the last purchase + that median)."""
    bought: dict[tuple[int, str], list[tuple[dt.datetime, int, str, str]]] = {}
    for order_id, customer_id, placed_at, items in orders:
        for item in items or []:
            sku = item.get("sku")
            if sku:
                bought.setdefault((customer_id, str(sku)), []).append(
                    (placed_at, order_id, str(item.get("name") or sku), str(item.get("url") or "")))
    out = []
    for (customer_id, sku), rows in bought.items():
        rows.sort()
        days = sorted({r[0].date() for r in rows})
        if len(days) < max(2, min_orders):
            continue
        gaps = [(b - a).days for a, b in itertools.pairwise(days)]
        median = float(statistics.median(gaps))
        last = rows[-1]
        out.append(Replenishment(customer_id, sku, last[2], last[3], last[1], median,
                                 days[-1] + dt.timedelta(days=round(median))))
    return out


def fire_replenishment(session: Session, *, today: dt.date | None = None) -> int:
    """Customers whose next purchase of a SKU is due within `days_before` days (and not yet past): one send per
    (SKU, last order) — the next purchase starts a new interval."""
    day = today or utcnow().date()
    workspaces = list(session.scalars(select(ProactiveTrigger).where(
        ProactiveTrigger.kind == "replenishment", ProactiveTrigger.enabled.is_(True))))
    fired = 0
    for trigger in workspaces:
        ws = trigger.workspace_id
        since = dt.datetime.combine(day - dt.timedelta(days=730), dt.time(), dt.UTC)
        rows = session.execute(select(Order.id, Order.customer_id, Order.placed_at, Order.items).where(
            Order.workspace_id == ws, Order.customer_id.is_not(None), Order.placed_at >= since,
            Order.status.not_in(("cancelled", "returned")))).tuples()
        due = [r for r in purchase_intervals(((i, c, p, it) for i, c, p, it in rows if p is not None),
                                             min_orders=param(trigger, "min_orders"))
               if r.due_on - dt.timedelta(days=param(trigger, "days_before")) <= day <= r.due_on]
        claimed = claim(session, [{
            "workspace_id": ws, "customer_id": r.customer_id, "trigger": "replenishment", "marketing": True,
            "dedup_key": f"replenish:{r.sku[:60]}:{r.last_order_id}",
            "context": {"product": r.product, "product_url": r.product_url, "sku": r.sku,
                        "interval_days": round(r.interval_days)}} for r in due])
        if claimed:
            decide(session, ws, list(session.scalars(select(ProactiveSend).where(ProactiveSend.id.in_(claimed)))))
        fired += len(claimed)
    return fired


def decide_due(session: Session, *, limit: int = BATCH) -> int:
    """Pending sends whose time came (a cart's delay, quiet hours over): decided again, by workspace."""
    due = list(session.scalars(select(ProactiveSend).where(
        ProactiveSend.status == "pending", ProactiveSend.send_at <= utcnow(),
        ProactiveSend.campaign_id.is_(None)).order_by(ProactiveSend.id).limit(limit)))
    by_ws: dict[int, list[ProactiveSend]] = {}
    for send in due:
        by_ws.setdefault(send.workspace_id, []).append(send)
    for workspace_id, sends in by_ws.items():
        decide(session, workspace_id, sends)
    return len(due)


# -- campaigns --------------------------------------------------------------------------------------------

SEGMENT_KEYS = ("attributes", "tags", "channels", "languages", "loyalty_tiers")


def _segment(raw: Any) -> dict[str, Any]:
    from otklik.conversations.service import CHANNELS

    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise field_error("segment", "an object {attributes, tags, channels, languages}")
    unknown = set(raw) - set(SEGMENT_KEYS)
    if unknown:
        raise field_error(f"segment.{sorted(unknown)[0]}", f"unknown filter ({', '.join(SEGMENT_KEYS)})")
    out: dict[str, Any] = {}
    attributes = raw.get("attributes") or {}
    if not isinstance(attributes, dict) or len(attributes) > 20:
        raise field_error("segment.attributes", "an object of at most 20 attribute: value pairs")
    for key, value in attributes.items():
        if not isinstance(value, str | int | float | bool) or len(str(key)) > 64:
            raise field_error(f"segment.attributes.{key}", "a text, number or true/false value")
    if attributes:
        out["attributes"] = attributes
    for key in ("tags", "channels", "languages", "loyalty_tiers"):
        values = raw.get(key) or []
        if not isinstance(values, list) or len(values) > 50 or not all(isinstance(v, str) and 0 < len(v) <= 64
                                                                        for v in values):
            raise field_error(f"segment.{key}", "a list of at most 50 short texts")
        if key == "channels":
            for i, v in enumerate(values):
                if v not in CHANNELS or v in CANNOT_START:
                    allowed = [c for c in CHANNELS if c not in CANNOT_START]
                    raise field_error(f"segment.channels.{i}", f"one of: {', '.join(allowed)}")
        if values:
            out[key] = [v.strip().lower() if key != "channels" else v for v in values]
    return out


def _parse_when(value: Any) -> dt.datetime | None:
    from otklik.orders.service import parse_datetime

    return None if value in (None, "") else parse_datetime(value, "scheduled_at")


CAMPAIGN_FIELDS = ("name", "text_ru", "text_en", "whatsapp_template", "marketing", "segment", "scheduled_at",
                   "rate_per_second")


def _apply_campaign(campaign: ProactiveCampaign, body: dict[str, Any], *, creating: bool) -> None:
    unknown = set(body) - set(CAMPAIGN_FIELDS)
    if unknown:
        raise field_error(sorted(unknown)[0], f"unknown field ({', '.join(CAMPAIGN_FIELDS)})")
    if creating or "name" in body:
        if "name" not in body:
            raise field_error("name", "required")
        campaign.name = _text_field(body, "name", 200, required=True)
    if creating or "text_ru" in body:
        if "text_ru" not in body:
            raise field_error("text_ru", "required")
        campaign.text_ru = _text_field(body, "text_ru", 2000, required=True)
    if "text_en" in body:
        campaign.text_en = _text_field(body, "text_en", 2000) if body["text_en"] is not None else ""
    if "whatsapp_template" in body:
        campaign.whatsapp_template = _template_field(body)
    if "marketing" in body:
        if not isinstance(body["marketing"], bool):
            raise field_error("marketing", "true or false")
        campaign.marketing = body["marketing"]
    if "segment" in body:
        campaign.segment = _segment(body["segment"])
    if "scheduled_at" in body:
        campaign.scheduled_at = _parse_when(body["scheduled_at"])
    if "rate_per_second" in body:
        rate = body["rate_per_second"]
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int | float) or not 0.01 <= rate <= 1000):
            raise field_error("rate_per_second", "a number of messages a second from 0.01 to 1000, or null")
        campaign.rate_per_second = None if rate is None else float(rate)


def get_campaign(session: Session, workspace_id: int, campaign_id: int) -> ProactiveCampaign:
    campaign = session.get(ProactiveCampaign, campaign_id)
    if campaign is None or campaign.workspace_id != workspace_id:
        raise NotFound(f"campaign {campaign_id} not found")
    return campaign


def list_campaigns(session: Session, workspace_id: int, *, limit: int = 200) -> list[ProactiveCampaign]:
    return list(session.scalars(select(ProactiveCampaign).where(ProactiveCampaign.workspace_id == workspace_id)
                                .order_by(ProactiveCampaign.id.desc()).limit(limit)))


def create_campaign(session: Session, actor: Actor, body: dict[str, Any]) -> ProactiveCampaign:
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    now = utcnow()
    campaign = ProactiveCampaign(workspace_id=actor.workspace_id, status="draft", marketing=True, segment={},
                                 text_en="", whatsapp_template="", cursor=0, slots={}, created_by=actor.user_id,
                                 created_at=now, updated_at=now)
    _apply_campaign(campaign, body, creating=True)
    session.add(campaign)
    session.flush()
    record_audit(session, actor, entity_type="proactive_campaign", entity_id=campaign.id, action="created",
                 after={"name": campaign.name})
    return campaign


def update_campaign(session: Session, actor: Actor, campaign_id: int, body: dict[str, Any]) -> ProactiveCampaign:
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    campaign = get_campaign(session, actor.workspace_id, campaign_id)
    if campaign.status not in ("draft", "scheduled"):
        raise Conflict(f"a {campaign.status} campaign cannot be edited", code="campaign_started")
    _apply_campaign(campaign, body, creating=False)
    campaign.updated_at = utcnow()
    record_audit(session, actor, entity_type="proactive_campaign", entity_id=campaign.id, action="updated",
                 after={k: v for k, v in body.items() if k in ("name", "scheduled_at", "marketing")})
    return campaign


def schedule_campaign(session: Session, actor: Actor, campaign_id: int) -> ProactiveCampaign:
    """A draft goes out at its `scheduled_at` (now when none)."""
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    campaign = get_campaign(session, actor.workspace_id, campaign_id)
    if campaign.status != "draft":
        raise Conflict(f"only a draft can be scheduled (this one is {campaign.status})", code="campaign_started")
    campaign.status = "scheduled"
    campaign.scheduled_at = campaign.scheduled_at or utcnow()
    campaign.updated_at = utcnow()
    record_audit(session, actor, entity_type="proactive_campaign", entity_id=campaign.id, action="scheduled",
                 after={"scheduled_at": campaign.scheduled_at.isoformat()})
    return campaign


def cancel_campaign(session: Session, actor: Actor, campaign_id: int) -> ProactiveCampaign:
    """Stop: nothing more is claimed; its pending sends are skipped. Queued messages stay queued."""
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    campaign = get_campaign(session, actor.workspace_id, campaign_id)
    if campaign.status in ("done", "cancelled"):
        raise Conflict(f"the campaign is already {campaign.status}", code="campaign_finished")
    campaign.status = "cancelled"
    campaign.finished_at = campaign.updated_at = utcnow()
    session.execute(update(ProactiveSend).where(ProactiveSend.campaign_id == campaign.id,
                                                ProactiveSend.status == "pending")
                    .values(status="skipped", reason="campaign_cancelled"))
    record_audit(session, actor, entity_type="proactive_campaign", entity_id=campaign.id, action="cancelled")
    return campaign


def start_due_campaigns(session: Session) -> list[int]:
    """Scheduled campaigns whose time came become running (each claimed by one UPDATE); returns their ids."""
    now = utcnow()
    ids = list(session.scalars(select(ProactiveCampaign.id).where(
        ProactiveCampaign.status == "scheduled", ProactiveCampaign.scheduled_at <= now)))
    started = []
    for campaign_id in ids:
        result = session.execute(update(ProactiveCampaign).where(
            ProactiveCampaign.id == campaign_id, ProactiveCampaign.status == "scheduled")
            .values(status="running", started_at=now, updated_at=now))
        if getattr(result, "rowcount", 0) == 1:
            started.append(campaign_id)
    return started


def stalled_campaigns(session: Session, *, older_than: dt.timedelta = dt.timedelta(minutes=2)) -> list[int]:
    """Running campaigns nobody advanced for a while (their worker died): run them again from the cursor."""
    return list(session.scalars(select(ProactiveCampaign.id).where(
        ProactiveCampaign.status == "running", ProactiveCampaign.updated_at < utcnow() - older_than)))


def _matches(segment: dict[str, Any], customer: Customer, tags: set[str]) -> bool:
    attributes = customer.attributes or {}
    for key, value in (segment.get("attributes") or {}).items():
        have = attributes.get(key)
        if isinstance(have, list):
            if value not in have and str(value).lower() not in {str(v).lower() for v in have}:
                return False
        elif str(have).lower() != str(value).lower():
            return False
    if segment.get("languages") and (customer.language or "").lower()[:2] not in segment["languages"]:
        return False
    if segment.get("loyalty_tiers"):
        tier = getattr(customer, "loyalty_tier", None) or attributes.get("loyalty_tier")
        if str(tier or "").lower() not in segment["loyalty_tiers"]:
            return False
    if segment.get("tags"):
        own = {str(t).lower() for t in (attributes.get("tags") or []) if isinstance(t, str)} | tags
        if not own & set(segment["tags"]):
            return False
    return True


def run_campaign_batch(session: Session, campaign_id: int, *, batch: int = BATCH) -> dict[str, Any]:
    """One step of a running campaign, in the caller's transaction: the next `batch` customers after the
    cursor are matched against the segment, a send row claimed for each (unique per campaign and customer:
    nobody is written to twice, whoever runs it), decided, and the cursor moved. A worker killed mid-step
    loses the step's transaction and the next run repeats it. Returns {"done": bool, counts}."""
    campaign = session.scalar(select(ProactiveCampaign).where(ProactiveCampaign.id == campaign_id)
                              .with_for_update())
    if campaign is None or campaign.status != "running":
        return {"done": True, "queued": 0, "pending": 0, "skipped": 0, "claimed": 0}
    ws = campaign.workspace_id
    customers = list(session.scalars(select(Customer).where(
        Customer.workspace_id == ws, Customer.id > campaign.cursor, Customer.merged_into_id.is_(None))
        .order_by(Customer.id).limit(batch)))
    segment = campaign.segment or {}
    tags: dict[int, set[str]] = {}
    if segment.get("tags") and customers:
        for cid, tag in session.execute(select(Conversation.customer_id, ConversationTag.tag).join(
                ConversationTag, ConversationTag.conversation_id == Conversation.id).where(
                Conversation.workspace_id == ws, Conversation.customer_id.in_([c.id for c in customers]))):
            tags.setdefault(int(cid), set()).add(str(tag).lower())
    chosen = [c for c in customers if _matches(segment, c, tags.get(c.id, set()))]
    claimed = claim(session, [{"workspace_id": ws, "customer_id": c.id, "trigger": CAMPAIGN,
                               "campaign_id": campaign.id, "dedup_key": f"campaign:{campaign.id}",
                               "marketing": campaign.marketing} for c in chosen])
    counts = {"queued": 0, "pending": 0, "skipped": 0}
    if claimed:
        sends = list(session.scalars(select(ProactiveSend).where(ProactiveSend.id.in_(claimed))
                                     .order_by(ProactiveSend.id)))
        slots = dict(campaign.slots or {})
        counts = decide(session, ws, sends, slots=slots, rate=campaign.rate_per_second, announce=False)
        campaign.slots = slots
    now = utcnow()
    if customers:
        campaign.cursor = customers[-1].id
    campaign.updated_at = now
    done = len(customers) < batch
    if done:
        campaign.status = "done"
        campaign.finished_at = now
    return {"done": done, "claimed": len(claimed), **counts}


def decide_due_campaign_sends(session: Session, *, limit: int = BATCH) -> int:
    """A campaign's sends left pending by quiet hours, decided again when they end (with the campaign's slots)."""
    due = list(session.scalars(select(ProactiveSend).where(
        ProactiveSend.status == "pending", ProactiveSend.send_at <= utcnow(),
        ProactiveSend.campaign_id.is_not(None)).order_by(ProactiveSend.id).limit(limit)))
    by_campaign: dict[int, list[ProactiveSend]] = {}
    for send in due:
        assert send.campaign_id is not None
        by_campaign.setdefault(send.campaign_id, []).append(send)
    for campaign_id, sends in by_campaign.items():
        campaign = session.get(ProactiveCampaign, campaign_id)
        assert campaign is not None
        slots = dict(campaign.slots or {})
        decide(session, campaign.workspace_id, sends, slots=slots, rate=campaign.rate_per_second, announce=False)
        campaign.slots = slots
    return len(due)


# -- measuring --------------------------------------------------------------------------------------------

@dataclass
class Counts:
    """Per trigger or campaign (docs/proactive.md «Measured»):
    claimed — send rows; queued — a message was created; skipped — not sent, by reason; pending — waiting;
    sent — the channel accepted it (delivery status sent, delivered or read); delivered — the channel reported
    it delivered or read; replied — the customer wrote in that conversation within `reply_days` after it;
    converted — the customer placed an order (not cancelled) within `conversion_days` after it."""

    claimed: int = 0
    queued: int = 0
    pending: int = 0
    skipped: int = 0
    sent: int = 0
    delivered: int = 0
    replied: int = 0
    converted: int = 0

    def view(self) -> dict[str, int]:
        return dict(self.__dict__)


SENT = (DeliveryStatus.sent.value, DeliveryStatus.delivered.value, DeliveryStatus.read.value)
DELIVERED = (DeliveryStatus.delivered.value, DeliveryStatus.read.value)


def measure(session: Session, workspace_id: int, *, since: dt.datetime | None = None
            ) -> tuple[dict[str, Counts], dict[int, Counts], dict[str, dict[str, int]]]:
    """(counts by trigger kind, counts by campaign id, skip reasons by trigger kind or «campaign:<id>»)."""
    rules = limits(session, workspace_id)
    stmt = select(ProactiveSend.trigger, ProactiveSend.campaign_id, ProactiveSend.status, ProactiveSend.reason,
                  func.count()).where(ProactiveSend.workspace_id == workspace_id)
    if since is not None:
        stmt = stmt.where(ProactiveSend.created_at >= since)
    by_trigger: dict[str, Counts] = {kind: Counts() for kind in TRIGGERS}
    by_campaign: dict[int, Counts] = {}
    reasons: dict[str, dict[str, int]] = {}

    def bucket(trigger: str, campaign_id: int | None) -> Counts:
        if campaign_id is not None:
            return by_campaign.setdefault(campaign_id, Counts())
        return by_trigger.setdefault(trigger, Counts())

    for trigger, campaign_id, status, reason, n in session.execute(stmt.group_by(
            ProactiveSend.trigger, ProactiveSend.campaign_id, ProactiveSend.status, ProactiveSend.reason)):
        counts = bucket(trigger, campaign_id)
        counts.claimed += n
        if status in ("queued", "pending", "skipped"):
            setattr(counts, status, getattr(counts, status) + n)
        if status == "skipped" and reason:
            key = f"campaign:{campaign_id}" if campaign_id is not None else trigger
            reasons.setdefault(key, {})[reason] = reasons.setdefault(key, {}).get(reason, 0) + n
    queued = select(ProactiveSend.id, ProactiveSend.trigger, ProactiveSend.campaign_id, ProactiveSend.customer_id,
                    ProactiveSend.conversation_id, ProactiveSend.queued_at, Message.delivery_status).join(
        Message, Message.id == ProactiveSend.message_id).where(
        ProactiveSend.workspace_id == workspace_id, ProactiveSend.status == "queued")
    if since is not None:
        queued = queued.where(ProactiveSend.created_at >= since)
    rows = session.execute(queued).all()
    if not rows:
        return by_trigger, by_campaign, reasons
    first = min(r.queued_at for r in rows)
    conversation_ids = sorted({r.conversation_id for r in rows if r.conversation_id})
    customer_ids = sorted({r.customer_id for r in rows})
    inbound: dict[int, list[dt.datetime]] = {}
    for start in range(0, len(conversation_ids), 1000):
        for conv_id, at in session.execute(select(Message.conversation_id, Message.created_at).where(
                Message.conversation_id.in_(conversation_ids[start:start + 1000]),
                Message.direction == Direction.inbound.value, Message.created_at > first)):
            inbound.setdefault(conv_id, []).append(at)
    orders: dict[int, list[dt.datetime]] = {}
    for start in range(0, len(customer_ids), 1000):
        for cust_id, placed in session.execute(select(Order.customer_id, func.coalesce(Order.placed_at, Order.created_at))
                                               .where(Order.workspace_id == workspace_id,
                                                      Order.customer_id.in_(customer_ids[start:start + 1000]),
                                                      Order.status != "cancelled")):
            if placed is not None and cust_id is not None:
                orders.setdefault(cust_id, []).append(placed if placed.tzinfo else placed.replace(tzinfo=dt.UTC))
    reply_window = dt.timedelta(days=rules.reply_days)
    conversion_window = dt.timedelta(days=rules.conversion_days)
    for r in rows:
        counts = bucket(r.trigger, r.campaign_id)
        if r.delivery_status in SENT:
            counts.sent += 1
        if r.delivery_status in DELIVERED:
            counts.delivered += 1
        at = r.queued_at
        if any(at < m <= at + reply_window for m in inbound.get(r.conversation_id, ())):
            counts.replied += 1
        if any(at < p <= at + conversion_window for p in orders.get(r.customer_id, ())):
            counts.converted += 1
    return by_trigger, by_campaign, reasons


def list_sends(session: Session, workspace_id: int, *, trigger: str | None = None, campaign_id: int | None = None,
               status: str | None = None, customer_id: int | None = None, limit: int = 100) -> list[ProactiveSend]:
    stmt = select(ProactiveSend).where(ProactiveSend.workspace_id == workspace_id)
    if trigger:
        stmt = stmt.where(ProactiveSend.trigger == trigger)
    if campaign_id is not None:
        stmt = stmt.where(ProactiveSend.campaign_id == campaign_id)
    if status:
        stmt = stmt.where(ProactiveSend.status == status)
    if customer_id is not None:
        stmt = stmt.where(ProactiveSend.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(ProactiveSend.id.desc()).limit(limit)))


def send_out(send: ProactiveSend) -> dict[str, Any]:
    return {"id": send.id, "customer_id": send.customer_id, "trigger": send.trigger, "campaign_id": send.campaign_id,
            "marketing": send.marketing, "status": send.status, "reason": send.reason, "channel": send.channel,
            "send_at": send.send_at.isoformat(), "conversation_id": send.conversation_id,
            "message_id": send.message_id, "queued_at": send.queued_at.isoformat() if send.queued_at else None}


def trigger_out(trigger: ProactiveTrigger, counts: Counts | None = None) -> dict[str, Any]:
    spec = TRIGGERS[trigger.kind]
    return {"kind": trigger.kind, "enabled": trigger.enabled, "marketing": spec.marketing,
            "text_ru": trigger.text_ru, "text_en": trigger.text_en, "whatsapp_template": trigger.whatsapp_template,
            "params": {name: param(trigger, name) for name, *_ in spec.params},
            "counts": (counts or Counts()).view()}


def campaign_out(campaign: ProactiveCampaign, counts: Counts | None = None) -> dict[str, Any]:
    return {"id": campaign.id, "name": campaign.name, "status": campaign.status, "text_ru": campaign.text_ru,
            "text_en": campaign.text_en, "whatsapp_template": campaign.whatsapp_template,
            "marketing": campaign.marketing, "segment": campaign.segment or {},
            "scheduled_at": campaign.scheduled_at.isoformat() if campaign.scheduled_at else None,
            "rate_per_second": campaign.rate_per_second, "created_at": campaign.created_at.isoformat(),
            "started_at": campaign.started_at.isoformat() if campaign.started_at else None,
            "finished_at": campaign.finished_at.isoformat() if campaign.finished_at else None,
            "counts": (counts or Counts()).view()}


def ensure_customer(session: Session, workspace_id: int, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    return customer
