"""The assistant answers order questions from the shop's data («где мой заказ 4512?»), only to the order's owner.

Called by `service.process_message` after the decision (like the legal check): when the message is about an
order — it names one, it continues a question the bot asked about one, or it asks about «my order» — the
order's data replace the knowledge-base answer:

- status, where it is (with the tracking link), when it arrives, what was in it, how to pay — in the customer's
  language (ru/en; others get English, as the bot's other fixed texts);
- only for the order's owner: the conversation's customer holds the order's identity *verified* (a messenger,
  a signed-in widget visitor), or the phone / e-mail on the order was written in this conversation. Anyone
  else gets «Назовите, пожалуйста, телефон из заказа» and nothing of the order, whatever the order says;
- a late order (promised day passed, not delivered) is answered with an apology (and the workspace's
  late-delivery compensation, where it allows one: `service`);
- what the data cannot answer (cancel, return, change, no date known, no way to pay) goes to a person with the
  order in the hand-off note; an order system that does not answer in time too;
- without a number: the customer's one open order is the one meant; with several the bot asks which.

The state between turns (the order asked about, what is awaited) is kept in the decision's details
(`details["order"]`), read back from the conversation's last decision.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import normalise_email
from otklik.assistant.understanding import Understanding
from otklik.conversations.models import AuthorKind, Conversation, Direction, Message
from otklik.customers.identities import normalise_phone
from otklik.customers.models import Identity
from otklik.orders import lookup
from otklik.orders import service as orders
from otklik.orders.models import Order, OrderSettings
from otklik.platform.errors import DomainError

# reasons whose questions are about one particular order by nature
ORDER_REASONS = frozenset({"order_status", "late_delivery"})
# the hard reasons to hand off that an order's data do not change
KEEP_HANDOFF = frozenset({"abuse", "legal_threat", "legal_deadline", "human_requested", "public_comment"})
_MY_ORDER = re.compile(
    r"(?:мо[йеёяю]|наш)\w*\s+(?:заказ|посылк)|где\s+(?:же\s+)?(?:заказ|посылк)|заказ\w*\s+(?:ещё|еще|так\s+и|всё|все)\s+"
    r"не|\bmy\s+(?:order|parcel|package|delivery)|where\s+is\s+(?:my|the)\s+(?:order|parcel|package)|\bzakaz",
    re.IGNORECASE)
_WHEN = re.compile(r"когда|срок|привез|доставят|доставите|прид[её]т|прибуд|ожидать|\bwhen\b|arriv|how\s+long|"
                   r"\beta\b|expected", re.IGNORECASE)
_ITEMS = re.compile(r"что\s+(?:было\s+|я\s+)?(?:в\s+заказе|заказал|заказывал)|состав|каки[ех]\s+товар|позици|"
                    r"what(?:'s|\s+is|\s+was|\s+did)\s+(?:in|i\s+order)|\bitems\b|contents|what\s+i\s+ordered",
                    re.IGNORECASE)
_PAY = re.compile(r"оплат|заплат|\bpay\b|\bpaid\b|payment|\bpaying\b", re.IGNORECASE)
_ACTION = re.compile(r"отмен|вернуть|возврат|обмен|измени|поменя|перенес|другой\s+адрес|\bcancel|\breturn|refund|"
                     r"\bchange\b|exchange|reschedul|different\s+address", re.IGNORECASE)
_BARE_NUMBER = re.compile(r"(?<![\d+])(\d{3,12})(?!\d)")

ASK_PHONE = {"ru": "Назовите, пожалуйста, телефон из заказа — так я пойму, что заказ ваш.",
             "en": "Please tell me the phone number on the order, so I know the order is yours."}
ASK_CONTACT = {"ru": "Назовите, пожалуйста, телефон или e-mail из заказа — так я пойму, что заказ ваш.",
               "en": "Please tell me the phone number or e-mail on the order, so I know the order is yours."}
ASK_NUMBER = {"ru": "Назовите, пожалуйста, номер заказа — он есть в письме или SMS о заказе.",
              "en": "Please tell me the order number — it is in the e-mail or text message about the order."}
ASK_WHICH = {"ru": "У вас несколько заказов в работе: {list}. О каком из них речь?",
             "en": "You have several orders in progress: {list}. Which one do you mean?"}
NOT_FOUND = {"ru": "Я не нашёл заказ № {n}. Проверьте, пожалуйста, номер — он есть в письме или SMS о заказе.",
             "en": "I couldn't find order {n}. Please check the number — it is in the e-mail or text message about "
                   "the order."}
STATUS = {
    "ru": {"created": "оформлен", "paid": "оплачен, мы его собираем", "shipped": "передан в доставку",
           "delivered": "доставлен", "cancelled": "отменён", "returned": "возвращён"},
    "en": {"created": "has been placed", "paid": "is paid and being prepared", "shipped": "has been handed to delivery",
           "delivered": "has been delivered", "cancelled": "was cancelled", "returned": "was returned"},
}
HEAD = {"ru": "Заказ № {n} {status}.", "en": "Order {n} {status}."}
SINCE = {"ru": " ({d})", "en": " ({d})"}
PROMISED = {"ru": "Ожидаемая дата доставки — {d}.", "en": "Expected delivery date: {d}."}
LATE = {"ru": "Приносим извинения: мы обещали доставить заказ {d}, но не успели. Он уже в работе, и мы следим, "
              "чтобы он доехал как можно скорее.",
        "en": "We're sorry: we promised to deliver the order by {d} and we are late. It is on its way, and we are "
              "making sure it reaches you as soon as possible."}
TRACK = {"ru": "Отследить доставку: {url}", "en": "Track the delivery: {url}"}
TRACK_NUMBER = {"ru": "Трек-номер: {t}.", "en": "Tracking number: {t}."}
ITEMS = {"ru": "В заказе: {list}. Итого: {total}.", "en": "In the order: {list}. Total: {total}."}
ITEMS_NO_TOTAL = {"ru": "В заказе: {list}.", "en": "In the order: {list}."}
PAID = {"ru": "Заказ оплачен.", "en": "The order is paid."}
PARTLY = {"ru": "Оплачено {paid} из {total}.", "en": "{paid} of {total} is paid."}
PAY_LINK = {"ru": "Оплатить заказ можно по ссылке: {url}", "en": "You can pay for the order here: {url}"}
METHOD = {"ru": "Способ доставки: {m}.", "en": "Delivery: {m}."}


def _t(table: dict[str, Any], language: str) -> Any:
    return table.get(language) or table["en"]


def money(amount: Any, currency: str, language: str) -> str:
    if amount is None:
        return ""
    value = float(amount)
    whole = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
    if language == "ru":
        whole = whole.replace(",", " ").replace(".", ",")
        return f"{whole} ₽" if currency == "RUB" else f"{whole} {currency}"
    return f"{whole} {'RUB' if currency == 'RUB' else currency}"


def _date(iso: str | None, language: str) -> str:
    if not iso:
        return ""
    day = dt.date.fromisoformat(iso[:10])
    return day.strftime("%d.%m.%Y") if language == "ru" else day.strftime("%d %b %Y").lstrip("0")


@dataclass
class OrderReply:
    """What the order data make of the message: a reply (answer / clarify) or a hand-off with a note."""

    action: str  # answer | clarify | handoff
    reason: str  # order | order_verify | order_number | order_which | order_not_found | order_handoff | order_unavailable
    reply: str = ""
    note: str = ""
    info: dict[str, Any] = field(default_factory=dict)  # kept in the decision's details["order"]


# -- who may hear about an order ---------------------------------------------------------------------

def contacts_in(texts: list[str]) -> set[tuple[str, str]]:
    """Phones and e-mails written in the texts (the assistant's entity rules), normalised like identities."""
    from otklik.assistant.understanding import _EMAIL, _PHONE

    found: set[tuple[str, str]] = set()
    for text in texts:
        if not text or not any(ch.isdigit() or ch == "@" for ch in text):
            continue
        for raw in _PHONE.findall(text):
            with contextlib.suppress(DomainError):
                found.add(("phone", normalise_phone(raw)))
        for raw in _EMAIL.findall(text):
            with contextlib.suppress(DomainError):
                found.add(("email", normalise_email(raw.rstrip("."), "email")))
    return found


def order_keys(order: Order) -> set[tuple[str, str]]:
    kind = "phone" if order.customer_kind == "whatsapp" else order.customer_kind
    keys = {(kind, order.customer_value)}
    for key in ("phone", "email"):
        value = (order.contacts or {}).get(key)
        if value:
            keys.add((key, value))
    return keys


def verified_keys(session: Session, customer_id: int | None) -> set[tuple[str, str]]:
    if customer_id is None:
        return set()
    rows = session.execute(select(Identity.kind, Identity.external_id).where(
        Identity.customer_id == customer_id, Identity.verified.is_(True))).all()
    return {("phone" if kind == "whatsapp" else kind, value) for kind, value in rows}


def customer_texts(session: Session, conversation_id: int, limit: int = 20) -> list[str]:
    rows = session.scalars(select(Message.body_text).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.inbound.value,
        Message.author_kind == AuthorKind.customer.value).order_by(Message.id.desc()).limit(limit)).all()
    return [r or "" for r in rows]


@dataclass
class Proof:
    """What the conversation proves about who is writing."""

    verified: set[tuple[str, str]]
    stated: set[tuple[str, str]]

    def owns(self, order: Order) -> bool:
        keys = order_keys(order)
        return bool(keys & self.verified) or bool(keys & self.stated)


def proof_for(session: Session, conversation: Conversation) -> Proof:
    return Proof(verified=verified_keys(session, conversation.customer_id),
                 stated=contacts_in(customer_texts(session, conversation.id)))


# -- composing the answer -----------------------------------------------------------------------------

def aspect_of(text: str) -> str:
    if _ACTION.search(text):
        return "action"
    if _ITEMS.search(text):
        return "items"
    if _PAY.search(text):
        return "pay"
    if _WHEN.search(text):
        return "when"
    return "where"


def order_note(order: Order, *, owner: bool | None = None) -> str:
    """One line about the order for the agent's hand-off note (Russian, like the rest of the note)."""
    d = order.delivery or {}
    parts = [f"Заказ № {order.number}: {STATUS['ru'].get(order.status, order.status)}"]
    if order.promised_on:
        parts.append(f"обещан {_date(order.promised_on, 'ru')}" + (" — опаздывает" if orders.is_late(order) else ""))
    if d.get("tracking_url"):
        parts.append(f"трек {d['tracking_url']}")
    if order.total is not None:
        parts.append(money(order.total, order.currency, "ru"))
    parts.append({"paid": "оплачен", "partially_paid": "оплачен частично", "refunded": "деньги возвращены"}.get(
        order.payment_status, "не оплачен"))
    parts.append(f"покупатель {order.customer_value}")
    if owner is False:
        parts.append("клиент не подтвердил, что заказ его (данные заказа ему не сообщались)")
    return "; ".join(parts)


def compose(order: Order, aspect: str, language: str, *, today: dt.date | None = None) -> str | None:
    """The reply about `order` for `aspect`, or None when the data cannot answer it (a person will)."""
    lang = language if language in STATUS else "en"
    d = order.delivery or {}
    head = _t(HEAD, lang).format(n=order.number, status=_t(STATUS, lang)[order.status])
    lines = [head]
    late = orders.is_late(order, today)
    if late:
        lines.append(_t(LATE, lang).format(d=_date(order.promised_on, lang)))
    if aspect == "action":
        return None
    if aspect == "items":
        if not order.items:
            return None
        listed = "; ".join(
            f"{i['name']} × {i.get('quantity', 1)}" + (f" — {money(i['price'], order.currency, lang)}"
                                                       if i.get("price") is not None else "")
            for i in order.items[:20])
        lines.append(_t(ITEMS if order.total is not None else ITEMS_NO_TOTAL, lang).format(
            list=listed, total=money(order.total, order.currency, lang)))
        return "\n".join(lines)
    if aspect == "pay":
        if order.status in ("cancelled", "returned"):
            return "\n".join(lines)
        if order.payment_status == "paid":
            lines.append(_t(PAID, lang))
        elif order.payment_url:
            if order.payment_status == "partially_paid" and isinstance(order.paid, int | float):
                lines.append(_t(PARTLY, lang).format(paid=money(order.paid, order.currency, lang),
                                                     total=money(order.total, order.currency, lang)))
            lines.append(_t(PAY_LINK, lang).format(url=order.payment_url))
        else:
            return None  # unpaid and no link to pay: a person explains how
        return "\n".join(lines)
    # where / when
    if order.status not in orders.CLOSED:
        if order.promised_on and not late:
            lines.append(_t(PROMISED, lang).format(d=_date(order.promised_on, lang)))
        elif aspect == "when" and not order.promised_on and not d.get("tracking_url"):
            return None  # no date and nothing to track: a person finds out
        if d.get("method") and aspect == "where" and order.status == "shipped" and not d.get("tracking_url"):
            lines.append(_t(METHOD, lang).format(m=d["method"]))
        if d.get("tracking_url"):
            lines.append(_t(TRACK, lang).format(url=d["tracking_url"]))
        elif d.get("tracking_number"):
            lines.append(_t(TRACK_NUMBER, lang).format(t=d["tracking_number"]))
    return "\n".join(lines)


# -- the turn ------------------------------------------------------------------------------------------

def _numbers(text: str, u: Understanding, pending: dict[str, Any] | None) -> list[str]:
    named = [n for n in (u.entities.get("order") or []) if orders.NUMBER.match(n)]
    if named or not pending or pending.get("awaiting") not in ("number", "which"):
        return named
    stripped = text
    for raw in (u.entities.get("phone") or []) + (u.entities.get("email") or []):
        stripped = stripped.replace(raw, " ")
    return _BARE_NUMBER.findall(stripped)[:1]


_HAS_ORDERS: dict[int, float] = {}  # workspace -> until when «it keeps orders» is taken as known (30 s)


def has_orders(session: Session, workspace_id: int) -> bool:
    """Whether the workspace keeps orders here (pushed, imported) or has an order-lookup URL. A yes is kept 30 s
    per process (a workspace that keeps orders keeps them); a no is asked again on the next message."""
    now = time.monotonic()
    if _HAS_ORDERS.get(workspace_id, 0.0) > now:
        return True
    found = session.scalar(select(Order.id).where(Order.workspace_id == workspace_id).limit(1)) is not None or bool(
        session.scalar(select(OrderSettings.lookup_url).where(OrderSettings.workspace_id == workspace_id)))
    if found:
        if len(_HAS_ORDERS) > 10_000:
            _HAS_ORDERS.clear()
        _HAS_ORDERS[workspace_id] = now + 30.0
    return found


_ABOUT_ONE = re.compile(r"где|статус|трек|отслед|не\s+пришл|не\s+пришёл|не\s+пришел|не\s+доставил|задерж|опазд|"
                        r"когда\s+(?:привез|доставят|прид)|\bwhere\b|status|track|(?:hasn'?t|not)\s+arrived|\blate\b|"
                        r"when\s+will", re.IGNORECASE)


def is_order_question(text: str, u: Understanding) -> bool:
    """About an order the customer already has: it names one, says «мой заказ / где заказ», or (reasons
    order_status / late_delivery) asks where, when or its status — «хочу оформить заказ» is not one."""
    if u.entities.get("order") or _MY_ORDER.search(text):
        return True
    return u.reason in ORDER_REASONS and bool(_ABOUT_ONE.search(text)) and bool(
        re.search(r"заказ|посылк|order|parcel|package|zakaz", text, re.I))


def handle(session: Session, conversation: Conversation, text: str, u: Understanding,
           pending: dict[str, Any] | None, *, language: str, current_action: str, current_reason: str,
           today: dt.date | None = None) -> OrderReply | None:
    """The order data's say on this message, or None when the message is not about an order."""
    if pending is None and not has_orders(session, conversation.workspace_id):
        return None  # a workspace that keeps no orders in Otklik: the assistant behaves as before (hands off)
    numbers = _numbers(text, u, pending)
    gave_contact = bool(u.entities.get("phone") or u.entities.get("email"))
    continuing = pending is not None and (
        bool(numbers) or (pending.get("awaiting") == "phone" and gave_contact))
    if not (numbers or continuing or is_order_question(text, u)):
        return None
    ws = conversation.workspace_id
    aspect = aspect_of(text)
    if continuing and pending is not None and not numbers and pending.get("aspect"):
        aspect = pending["aspect"]
    number = numbers[0] if numbers else (pending or {}).get("number") if continuing else None
    keep = current_action == "handoff" and current_reason in KEEP_HANDOFF
    if number is None:
        proof = proof_for(session, conversation)
        mine = [o for o in orders.orders_of_customer(session, ws, conversation.customer_id, limit=50)
                if proof.owns(o)]
        open_ = [o for o in mine if o.status not in orders.CLOSED]
        if len(open_) == 1:
            return _about(open_[0], aspect, language, keep, today, owner=True)
        if keep:
            return OrderReply("handoff", current_reason, note="; ".join(order_note(o) for o in open_[:3]))
        if len(open_) > 1:
            listed = ", ".join(f"№ {o.number}" for o in open_[:5])
            return OrderReply("clarify", "order_which", _t(ASK_WHICH, language).format(list=listed),
                              info={"awaiting": "which", "aspect": aspect})
        return OrderReply("clarify", "order_number", _t(ASK_NUMBER, language),
                          info={"awaiting": "number", "aspect": aspect})
    try:
        order = lookup.find(session, ws, number)
    except lookup.Unavailable as exc:
        return OrderReply("handoff", current_reason if keep else "order_unavailable",
                          note=f"Заказ № {number}: система заказов не ответила ({exc.message})",
                          info={"number": number, "unavailable": True})
    if order is None:
        if keep:
            return OrderReply("handoff", current_reason, note=f"Заказ № {number} не найден")
        if pending and pending.get("awaiting") == "number" and pending.get("missing"):
            return OrderReply("handoff", "order_not_found", note=f"Заказы № {pending['missing']}, № {number} не найдены",
                              info={"number": number, "missing": True})
        return OrderReply("clarify", "order_not_found", _t(NOT_FOUND, language).format(n=number),
                          info={"awaiting": "number", "missing": number, "aspect": aspect})
    owner = proof_for(session, conversation).owns(order)
    if not owner:
        if keep:
            return OrderReply("handoff", current_reason, note=order_note(order, owner=False))
        attempts = int((pending or {}).get("attempts", 0)) + (1 if gave_contact else 0)
        if attempts >= 2:
            return OrderReply("handoff", "order_handoff", note=order_note(order, owner=False) +
                              "; названный клиентом телефон или e-mail не совпал с заказом",
                              info={"number": number, "owner": False})
        ask = ASK_PHONE if "phone" in {k for k, _ in order_keys(order)} else ASK_CONTACT
        return OrderReply("clarify", "order_verify", _t(ask, language),
                          info={"awaiting": "phone", "number": number, "aspect": aspect, "attempts": attempts})
    return _about(order, aspect, language, keep, today, owner=True)


def _about(order: Order, aspect: str, language: str, keep: bool, today: dt.date | None, *,
           owner: bool) -> OrderReply:
    info = {"number": order.number, "order_id": order.id, "owner": owner, "aspect": aspect,
            "status": order.status, "late": orders.is_late(order, today)}
    if keep:
        return OrderReply("handoff", "keep", note=order_note(order), info=info)
    text = compose(order, aspect, language, today=today)
    if text is None:
        return OrderReply("handoff", "order_handoff", note=order_note(order), info=info)
    return OrderReply("answer", "order", text, note=order_note(order), info=info)
