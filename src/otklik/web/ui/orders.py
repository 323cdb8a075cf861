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
from otklik.web.ui.deps import AdminUser, CurrentUser, UIUser, render, ui_router

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


# -- Settings → Orders (admins): the pull URL, the push signature, a CSV import -------------------------

def _settings_page(request: Request, db: Session, *, error: str | None = None, secret: str | None = None,
                   tried: dict[str, Any] | None = None, imported: dict[str, Any] | None = None,
                   status_code: int = 200) -> HTMLResponse:
    import json

    from otklik.orders import lookup

    user: UIUser = request.state.ui_user
    row = lookup.get_settings_row(db, user.workspace.id)
    return render(request, "settings/orders.html", status_code=status_code, s=lookup.settings_out(row),
                  mapping=json.dumps(row.mapping or {}, ensure_ascii=False, indent=1) if row.mapping else "",
                  error=error, secret=secret, tried=tried, imported=imported)


@router.get("/settings/orders")
def order_settings(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    return _settings_page(request, db)


@router.post("/settings/orders")
async def order_settings_save(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    import json

    from otklik.orders import lookup
    from otklik.platform.errors import DomainError

    form = await request.form()
    get = lambda name: str(form.get(name) or "").strip()  # noqa: E731
    changes: dict[str, Any] = {"lookup_url": get("lookup_url"), "auth_header": get("auth_header"),
                               "require_signature": form.get("require_signature") == "on"}
    if get("auth_value"):  # empty keeps the stored value (it is never shown)
        changes["auth_value"] = get("auth_value")
    if form.get("rotate_signing_secret") == "on":
        changes = {"rotate_signing_secret": True, **changes}
    try:
        changes["timeout_s"] = float(get("timeout_s") or 1.5)
        changes["cache_s"] = int(get("cache_s") or 60)
        changes["mapping"] = json.loads(get("mapping")) if get("mapping") else {}
    except ValueError:
        return _settings_page(request, db, error="timeout_s, cache_s: numbers; mapping: JSON", status_code=422)
    try:
        _, secret = lookup.update_settings(db, user.actor, changes)
    except DomainError as exc:
        db.rollback()
        return _settings_page(request, db, error=exc.message, status_code=422)
    return _settings_page(request, db, secret=secret)


@router.post("/settings/orders/test")
async def order_settings_test(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    from otklik.orders import lookup
    from otklik.platform.errors import DomainError

    form = await request.form()
    try:
        tried = lookup.try_lookup(db, user.workspace.id, orders.check_number(str(form.get("number") or "")))
    except DomainError as exc:
        return _settings_page(request, db, error=exc.message, status_code=422)
    return _settings_page(request, db, tried=tried)


@router.post("/settings/orders/import")
async def order_settings_import(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    from starlette.datastructures import UploadFile

    from otklik.orders.csv_import import rows_from_csv
    from otklik.platform.errors import DomainError

    form = await request.form()
    upload = form.get("file")
    raw = await upload.read() if isinstance(upload, UploadFile) else b""
    try:
        imported = orders.store_batch(user.actor, rows_from_csv(raw), atomic=False, source="csv", prefix="rows",
                                      session=db)
    except DomainError as exc:
        return _settings_page(request, db, error=exc.message, status_code=422)
    return _settings_page(request, db, imported=imported)


from otklik.web.ui import loyalty as loyalty_pages  # noqa: E402 - the loyalty block and Settings → Loyalty

router.include_router(loyalty_pages.router)
