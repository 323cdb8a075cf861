"""Customer pages: the list with search, the profile page, and the customer panel beside a conversation
(profile, identities, every earlier conversation on every channel, notes, tasks, visits, merge).

Everything shown here is customer-written text: templates print it autoescaped, never `|safe`. The panel
costs a fixed number of queries however long the customer's history is.
"""

from __future__ import annotations

import datetime as dt
import importlib
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.conversations import service as conversations
from otklik.customers import service as customers
from otklik.customers import tasks as tasks_service
from otklik.customers.models import Customer, Identity
from otklik.platform.errors import DomainError, field_error
from otklik.web.ui.deps import CurrentUser, UIUser, is_htmx, redirect, render, translator, ui_router

log = logging.getLogger(__name__)
router = ui_router()

HISTORY_LIMIT = 50
NOTES_LIMIT = 30
VISITS_LIMIT = 15

# channel and identity kinds -> (icon, label); the icon is decoration, the label is what screen readers read
CHANNEL_ICONS: dict[str, tuple[str, str]] = {
    "email": ("✉", "Email"), "phone": ("☎", "Phone"), "telegram": ("✈", "Telegram"), "vk": ("VK", "VK"),
    "whatsapp": ("◉", "WhatsApp"), "max": ("M", "MAX"), "widget": ("💬", "Website chat"),
    "viber": ("V", "Viber"), "instagram": ("IG", "Instagram"),
    "external": ("#", "External id"), "api": ("⇄", "API"), "form": ("✎", "Web form"), "review": ("★", "Review"),
}


def channel_icon(kind: str) -> tuple[str, str]:
    return CHANNEL_ICONS.get(kind, ("•", kind))


def _optional(module: str, name: str) -> Callable[..., Any] | None:
    """A function another engineer's module may provide; absent modules are skipped quietly."""
    try:
        found = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            return None
        raise
    func = getattr(found, name, None)
    return func if callable(func) else None


@dataclass
class Panel:
    customer: Customer
    identities: list[Identity]
    history: list[conversations.Conversation]
    notes: list[Any]
    tasks: list[tasks_service.Task]
    user_names: dict[int, str]
    users: list[Any]
    visits: list[Any]
    suggestions: list[Any]
    current_conversation_id: int | None


def _survivor(db: Session, user: UIUser, customer_id: int) -> Customer:
    customer = customers.get_customer(db, user.actor, customer_id)
    for _ in range(10):  # a merged duplicate shows the profile it was merged into
        if customer.merged_into_id is None:
            break
        customer = customers.get_customer(db, user.actor, customer.merged_into_id)
    return customer


def load_panel(db: Session, user: UIUser, customer_id: int, conversation_id: int | None = None) -> Panel:
    customer = _survivor(db, user, customer_id)
    identities = customers.identities_of(db, [customer.id])[customer.id]
    history, _ = conversations.list_conversations(
        db, user.actor, conversations.ConversationFilters(customer_id=customer.id), limit=HISTORY_LIMIT)
    notes = customers.list_notes(db, user.actor, customer.id)[-NOTES_LIMIT:][::-1]
    open_tasks = tasks_service.open_tasks_of(db, user.workspace.id, [customer.id])
    users = accounts.list_users(db, user.actor)
    visits: list[Any] = []
    recent_visits = _optional("otklik.web.widget.service", "recent_visits")
    if recent_visits is not None:
        try:
            visits = list(recent_visits(db, user.workspace.id, customer.id, VISITS_LIMIT))
        except DomainError:
            visits = []
    suggestions: list[Any] = []
    suggestions_for = _optional("otklik.customers.suggestions", "suggestions_for")
    if suggestions_for is not None:
        suggestions = list(suggestions_for(db, user.workspace.id, customer.id) or [])[:5]
    return Panel(customer=customer, identities=identities, history=history, notes=notes, tasks=open_tasks,
                 user_names={u.id: u.name for u in users}, users=[u for u in users if u.is_active],
                 visits=visits, suggestions=suggestions, current_conversation_id=conversation_id)


def _visit_fields(visit: Any) -> dict[str, Any]:
    """Page visits come from the widget's module; read the usual field names from an object or a dict."""
    def get(*names: str) -> Any:
        for name in names:
            value = visit.get(name) if isinstance(visit, dict) else getattr(visit, name, None)
            if value is not None:
                return value
        return None

    url = get("url", "page_url", "href")
    return {"url": str(url or ""), "title": str(get("title", "page_title") or ""),
            "at": get("visited_at", "created_at", "at")}


def _suggestion_fields(item: Any) -> dict[str, Any]:
    """A probable duplicate from the suggestions module: the other customer's id and name, and why."""
    def get(*names: str) -> Any:
        for name in names:
            value = item.get(name) if isinstance(item, dict) else getattr(item, name, None)
            if value is not None:
                return value
        return None

    reasons = get("reasons", "reason") or ""
    return {"customer_id": get("other_id", "other_customer_id"), "name": str(get("other_name", "name") or ""),
            "reason": "; ".join(map(str, reasons)) if isinstance(reasons, list | tuple) else str(reasons)}


def panel_context(panel: Panel) -> dict[str, Any]:
    return {"panel": panel, "channel_icon": channel_icon, "now": dt.datetime.now(dt.UTC), "link_url": _link_url,
            "visits": [_visit_fields(v) for v in panel.visits],
            "suggestions": [s for s in map(_suggestion_fields, panel.suggestions) if s["customer_id"]]}


def panel_response(request: Request, panel: Panel, *, status_code: int = 200, message: str | None = None
                   ) -> Response:
    return render(request, "partials/customer_panel.html", status_code=status_code, message=message,
                  **panel_context(panel))


def _link_url(raw: str) -> str:
    """Only http(s) page links become clickable; anything else (javascript:) is shown as text."""
    return raw if raw.startswith(("http://", "https://")) else ""


# -- pages ---------------------------------------------------------------------------------------------

@router.get("/customers")
def customer_list(request: Request, user: CurrentUser, db: DB,
                  q: Annotated[str, Query(max_length=200)] = "",
                  cursor: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    error = None
    rows: list[Customer] = []
    next_cursor = None
    try:
        rows, next_cursor = customers.list_customers(db, user.actor, q=q.strip() or None, cursor=cursor, limit=50)
    except DomainError as exc:
        error = exc.message
    identities = customers.identities_of(db, [c.id for c in rows])
    return render(request, "customers/list.html", q=q, rows=rows, identities=identities, next_cursor=next_cursor,
                  error=error, channel_icon=channel_icon)


CUSTOMER_TABS = ("conversations", "orders", "tasks", "notes", "profile")
PAGE_CONVERSATIONS = 50


def _mentioned_orders(db: Session, user: UIUser, customer_id: int) -> list[dict[str, Any]]:
    """Order numbers the customer wrote in their messages (the assistant's entity rules), newest first, each with
    the conversations it came up in. An order integration's own list joins this when one is connected."""
    from otklik.assistant.understanding import entities
    from otklik.conversations.models import Conversation, Message

    rows = db.execute(select(Message.body_text, Message.created_at, Conversation.id, Conversation.number)
                      .join(Conversation, Conversation.id == Message.conversation_id)
                      .where(Conversation.workspace_id == user.actor.workspace_id,
                             Conversation.customer_id == customer_id, Message.direction == "inbound")
                      .order_by(Message.id.desc()).limit(500)).all()
    orders: dict[str, dict[str, Any]] = {}
    for text, at, conversation_id, number in rows:
        for order in entities(text or "").get("order", []):
            item = orders.setdefault(order, {"order": order, "last_at": at, "conversations": {}})
            item["conversations"][conversation_id] = number
    return list(orders.values())


@router.get("/customers/{customer_id}")
def customer_page(request: Request, customer_id: int, user: CurrentUser, db: DB,
                  tab: Annotated[str, Query(max_length=20)] = "conversations",
                  cursor: Annotated[str | None, Query(max_length=500)] = None) -> Response:
    """The customer's own page: the name and contacts once, then tabs — every conversation (paged), the orders
    they wrote about, tasks (open and done), notes, the profile (attributes, pages visited, probable duplicates)."""
    if tab not in CUSTOMER_TABS:
        raise field_error("tab", f"one of: {', '.join(CUSTOMER_TABS)}")
    panel = load_panel(db, user, customer_id)
    if panel.customer.id != customer_id:
        return redirect(f"/customers/{panel.customer.id}", request)
    context: dict[str, Any] = {"tab": tab, "tabs": CUSTOMER_TABS, "page_rows": [], "next_cursor": None,
                               "orders": [], "shop_orders": [], "all_tasks": [], "all_notes": [], "crm": []}
    counts = {"conversations": db.scalar(select(func.count()).select_from(conversations.Conversation).where(
        conversations.Conversation.workspace_id == user.actor.workspace_id,
        conversations.Conversation.customer_id == customer_id)) or 0}
    if tab == "conversations":
        context["page_rows"], context["next_cursor"] = conversations.list_conversations(
            db, user.actor, conversations.ConversationFilters(customer_id=customer_id), cursor=cursor,
            limit=PAGE_CONVERSATIONS)
    elif tab == "orders":
        context["orders"] = _mentioned_orders(db, user, customer_id)
        from otklik.crm import service as crm  # the CRMs' deals/orders, from the local cache (issue 18)

        context["crm"] = crm.customer_crm(db, user.actor.workspace_id, customer_id)
        from otklik.web.ui.orders import customer_orders

        context["shop_orders"] = customer_orders(db, user, customer_id)  # the shop's own, with their history
    elif tab == "tasks":
        context["all_tasks"], _ = tasks_service.list_tasks(db, user.actor, customer_id=customer_id, open_only=False,
                                                           limit=200)
    elif tab == "notes":
        context["all_notes"] = customers.list_notes(db, user.actor, customer_id)[::-1]
    return render(request, "customers/detail.html", **panel_context(panel), **context, counts=counts)


@router.get("/ui/customers/{customer_id}/panel")
def customer_panel(request: Request, customer_id: int, user: CurrentUser, db: DB,
                   conversation_id: int | None = None) -> Response:
    if conversation_id is None:
        # loaded by the conversation page: mark the conversation being read
        match = re.search(r"/conversations/(\d+)", request.headers.get("hx-current-url", ""))
        conversation_id = int(match.group(1)) if match and len(match.group(1)) < 19 else None
    return panel_response(request, load_panel(db, user, customer_id, conversation_id))


# -- inline actions (HTMX swaps the panel; plain forms come back to the profile page) -------------------

def _after_action(request: Request, db: Session, user: UIUser, customer_id: int, conversation_id: int | None,
                  message: str | None = None) -> Response:
    if is_htmx(request):
        return panel_response(request, load_panel(db, user, customer_id, conversation_id), message=message)
    return redirect(f"/customers/{customer_id}")


@router.post("/ui/customers/{customer_id}/notes")
def add_note(request: Request, customer_id: int, user: CurrentUser, db: DB,
             body: Annotated[str, Form(max_length=10_000)] = "",
             conversation_id: Annotated[int | None, Form()] = None) -> Response:
    _ = translator(request)
    if not body.strip():
        raise field_error("body", _("Write the note first."))
    customer = _survivor(db, user, customer_id)
    customers.add_note(db, user.actor, customer.id, body)
    return _after_action(request, db, user, customer.id, conversation_id, _("Note added."))


@router.post("/ui/customers/{customer_id}/tasks")
def add_task(request: Request, customer_id: int, user: CurrentUser, db: DB,
             title: Annotated[str, Form(max_length=tasks_service.MAX_TITLE)] = "",
             due_at: Annotated[str, Form(max_length=40)] = "",
             assignee_id: Annotated[str, Form(max_length=20)] = "",
             conversation_id: Annotated[int | None, Form()] = None) -> Response:
    _ = translator(request)
    due = None
    if due_at.strip():
        try:
            due = dt.datetime.fromisoformat(due_at.strip())
        except ValueError:
            raise field_error("due_at", _("Give the date and time as shown in the field.")) from None
        if due.tzinfo is None:  # the browser's datetime-local is in the workspace's timezone
            from zoneinfo import ZoneInfo

            due = due.replace(tzinfo=ZoneInfo(user.workspace.timezone))
    assignee = int(assignee_id) if assignee_id.strip().isdigit() else None
    customer = _survivor(db, user, customer_id)
    tasks_service.create_task(db, user.workspace.id, customer_id=customer.id, title=title,
                              conversation_id=conversation_id, due_at=due, assignee_id=assignee, actor=user.actor)
    return _after_action(request, db, user, customer.id, conversation_id, _("Task added."))


@router.post("/ui/tasks/{task_id}/complete")
def complete_task(request: Request, task_id: int, user: CurrentUser, db: DB,
                  conversation_id: Annotated[int | None, Form()] = None) -> Response:
    _ = translator(request)
    task = tasks_service.complete_task(db, user.actor, task_id)
    return _after_action(request, db, user, task.customer_id, conversation_id, _("Task done."))


@router.get("/ui/customers/{customer_id}/merge-candidates")
def merge_candidates(request: Request, customer_id: int, user: CurrentUser, db: DB,
                     q: Annotated[str, Query(max_length=200)] = "",
                     conversation_id: int | None = None) -> Response:
    customer = _survivor(db, user, customer_id)
    rows: list[Customer] = []
    error = None
    if q.strip():
        try:
            rows, _ = customers.list_customers(db, user.actor, q=q.strip(), limit=10)
        except DomainError as exc:
            error = exc.message
    rows = [c for c in rows if c.id != customer.id]
    return render(request, "partials/merge_candidates.html", customer=customer, rows=rows, q=q, error=error,
                  identities=customers.identities_of(db, [c.id for c in rows]), channel_icon=channel_icon,
                  conversation_id=conversation_id)


@router.post("/ui/customers/{customer_id}/merge")
def merge(request: Request, customer_id: int, user: CurrentUser, db: DB,
          source_id: Annotated[int, Form()], conversation_id: Annotated[int | None, Form()] = None) -> Response:
    _ = translator(request)
    target = customers.merge_customers(db, user.actor, target_id=customer_id, source_id=source_id)
    return _after_action(request, db, user, target.id, conversation_id, _("Customers merged."))
