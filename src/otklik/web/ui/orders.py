"""Orders in the agent's workspace: the order cards beside a conversation (the orders it mentions, then the
customer's other open ones) and the customer page's «Orders» tab (every order with its status history).
A card's number links to the order on the customer's page."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.conversations import service as conversations
from otklik.conversations.models import Direction, Message
from otklik.orders import service as orders
from otklik.orders.models import Order, OrderEvent
from otklik.web.ui.deps import CurrentUser, UIUser, render, ui_router

router = ui_router()
MAX_CARDS = 5


@dataclass
class Card:
    order: Order
    history: list[OrderEvent]
    late: bool
    mentioned: bool
    total: str

    @property
    def tracking_url(self) -> str | None:
        return (self.order.delivery or {}).get("tracking_url")


def _money(order: Order) -> str:
    if order.total is None:
        return ""
    value = orders.money_out(order.total)
    text = f"{value:,}".replace(",", " ")
    return f"{text} ₽" if order.currency == "RUB" else f"{text} {order.currency}"


def cards(db: Session, rows: list[Order], mentioned: set[str] = frozenset()) -> list[Card]:  # type: ignore[assignment]
    history = orders.history_of(db, [o.id for o in rows])
    return [Card(o, history[o.id], orders.is_late(o), o.number in mentioned, _money(o)) for o in rows]


def mentioned_numbers(db: Session, conversation_id: int) -> list[str]:
    """Order numbers the customer wrote in this conversation (the assistant's entity rules), newest first."""
    from otklik.assistant.understanding import entities

    texts = db.scalars(select(Message.body_text).where(
        Message.conversation_id == conversation_id, Message.direction == Direction.inbound.value)
        .order_by(Message.id.desc()).limit(200)).all()
    numbers: list[str] = []
    for text in texts:
        for n in entities(text or "").get("order", []):
            if n not in numbers:
                numbers.append(n)
    return numbers


def conversation_cards(db: Session, user: UIUser, conversation_id: int) -> tuple[list[Card], list[str]]:
    """The orders the conversation mentions (found in the store), then the customer's open ones; and the
    numbers mentioned that the store does not know."""
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    ws = user.actor.workspace_id
    numbers = mentioned_numbers(db, conversation.id)[:MAX_CARDS]
    found = {o.number: o for o in db.scalars(select(Order).where(Order.workspace_id == ws,
                                                                 Order.number.in_(numbers)))} if numbers else {}
    rows = [found[n] for n in numbers if n in found]
    for order in orders.orders_of_customer(db, ws, conversation.customer_id, limit=20):
        if len(rows) >= MAX_CARDS:
            break
        if order.status not in orders.CLOSED and order not in rows:
            rows.append(order)
    return cards(db, rows, set(numbers)), [n for n in numbers if n not in found]


def customer_orders(db: Session, user: UIUser, customer_id: int) -> list[Card]:
    return cards(db, orders.orders_of_customer(db, user.actor.workspace_id, customer_id, limit=200))


@router.get("/ui/conversations/{conversation_id}/orders")
def conversation_orders(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    found, unknown = conversation_cards(db, user, conversation_id)
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    context: dict[str, Any] = {"cards": found, "unknown": unknown, "customer_id": conversation.customer_id}
    return render(request, "partials/order_cards.html", **context)
