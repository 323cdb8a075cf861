"""The inbox page: views (Mine / Unassigned / My team / All / Mentions), filters, saved filters, unread counts.

Reads through the conversations service's keyset-paginated listing; the list and the counts are also served
as fragments (`/ui/inbox/list`, `/ui/inbox/counts`) that app.js re-fetches when a WebSocket event arrives.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.conversations import inbox
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation, Priority, Status
from otklik.conversations.service import CHANNELS, ConversationFilters
from otklik.platform.db import aware, utcnow
from otklik.platform.errors import field_error
from otklik.web.ui.deps import CurrentUser, UIUser, redirect, render, ui_router

router = ui_router()
PAGE_SIZE = 30
STATUS_CHOICES = ("active", "new", "open", "pending", "solved", "closed", "any")
SORT_CHOICES = {"waiting": ("waiting", False), "priority": ("priority", True), "recent": ("last_message_at", True),
                "due": ("due", False)}
# «SLA breached», «due within 30 minutes», «a legal deadline within 2 days (or past)», «a legal deadline past»
SLA_CHOICES = ("", "breached", "soon", "legal_soon", "legal_overdue")
LEGAL_SOON_DAYS = 2
DUE_SOON_MINUTES = 30
VIEW_LABELS = (("mine", "Mine"), ("unassigned", "Unassigned"), ("team", "My team"), ("all", "All"),
               ("mentions", "Mentions"))
FILTER_KEYS = ("view", "status", "channel", "priority", "tag", "category", "assignee", "language", "flagged",
               "sla", "sort")


@dataclass
class InboxQuery:
    """The inbox's query string, checked: unknown values are a 422, never a 500."""

    view: str = "mine"
    status: str = "active"
    channel: str = ""
    priority: str = ""
    tag: str = ""
    category: str = ""
    assignee: str = ""
    language: str = ""
    flagged: str = ""
    sla: str = ""
    sort: str = "waiting"
    cursor: str = ""
    _filter_query: str | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, params: Any) -> InboxQuery:
        q = cls()
        for key in (*FILTER_KEYS, "cursor"):
            value = params.get(key)
            if value is not None:
                if len(value) > 200:
                    raise field_error(key, "at most 200 characters")
                setattr(q, key, value.strip())
        q.view = q.view or "mine"
        if q.view not in inbox.VIEWS:
            raise field_error("view", f"one of: {', '.join(inbox.VIEWS)}")
        q.status = q.status or "active"
        if q.status not in STATUS_CHOICES:
            raise field_error("status", f"one of: {', '.join(STATUS_CHOICES)}")
        if q.channel and q.channel not in CHANNELS:
            raise field_error("channel", f"one of: {', '.join(CHANNELS)}")
        if q.priority and q.priority not in Priority.__members__:
            raise field_error("priority", f"one of: {', '.join(Priority.__members__)}")
        q.sort = q.sort or "waiting"
        if q.sort not in SORT_CHOICES:
            raise field_error("sort", f"one of: {', '.join(SORT_CHOICES)}")
        if q.assignee and q.assignee != "none" and not (q.assignee.isdigit() and len(q.assignee) < 12):
            raise field_error("assignee", "a user id or 'none'")
        if q.flagged not in ("", "1"):
            raise field_error("flagged", "'1' or empty")
        if q.sla not in SLA_CHOICES:
            raise field_error("sla", "'breached', 'soon', 'legal_soon', 'legal_overdue' or empty")
        if q.language and len(q.language) > 8:
            raise field_error("language", "at most 8 characters")
        return q

    def filters(self) -> ConversationFilters:
        f = ConversationFilters()
        if self.status == "active":
            f.status = list(inbox.ACTIVE)
        elif self.status != "any":
            f.status = [Status(self.status)]
        f.channel = self.channel or None
        f.priority = [Priority(self.priority)] if self.priority else []
        f.tag = self.tag or None
        f.category = self.category or None
        f.language = self.language or None
        f.flagged = self.flagged == "1"
        f.sla_breached = self.sla == "breached"
        if self.sla == "soon":
            f.due_before = utcnow() + dt.timedelta(minutes=DUE_SOON_MINUTES)
        elif self.sla == "legal_soon":
            f.legal_due_before = utcnow() + dt.timedelta(days=LEGAL_SOON_DAYS)
        elif self.sla == "legal_overdue":
            f.legal_due_before = utcnow()
        if self.assignee == "none":
            f.unassigned = True
        elif self.assignee:
            f.assignee_id = int(self.assignee)
        return f

    def params(self, **override: str) -> dict[str, str]:
        """The non-default filters, for links (the cursor is never carried over)."""
        values = {k: getattr(self, k) for k in FILTER_KEYS}
        values.update(override)
        defaults = {"view": "mine", "status": "active", "sort": "waiting"}
        return {k: v for k, v in values.items() if v and defaults.get(k) != v}

    def url(self, path: str = "/inbox", **override: str) -> str:
        params = self.params(**override)
        return path + ("?" + urlencode(params) if params else "")

    def view_url(self, view: str) -> str:
        """A view's link, naming the view even for «Mine» (a bare /inbox may land a supervisor elsewhere)."""
        params = self.params(view=view)
        params.setdefault("view", view)
        return "/inbox?" + urlencode(params)

    @property
    def filter_query(self) -> str:
        if self._filter_query is None:
            self._filter_query = urlencode(self.params())
        return self._filter_query

    @property
    def has_filters(self) -> bool:
        return any(getattr(self, k) for k in ("channel", "priority", "tag", "category", "assignee", "language",
                                              "flagged", "sla")) or self.status != "active"


@dataclass
class Row:
    conversation: Any
    customer_name: str
    tags: list[str]
    unread: bool
    wait_seconds: int | None
    wait_state: str
    assignee_name: str
    sla_left: int | None = None  # seconds to the earliest running SLA target (negative: late)
    sla_state: str = "ok"
    legal_left: int | None = None  # seconds to the earliest running consumer-law deadline (negative: past)

    @property
    def alert(self) -> bool:
        c = self.conversation
        return bool(c.urgent) or c.sentiment == "negative" or c.priority == Priority.urgent


def list_rows(db: Session, user: UIUser, query: InboxQuery, team_ids: list[int],
              user_names: dict[int, str] | None = None) -> tuple[list[Row], str | None]:
    filters = inbox.view_filters(db, user.actor, query.view, query.filters(), team_ids=team_ids)
    sort, descending = SORT_CHOICES[query.sort]
    items, next_cursor = conversations.list_conversations(db, user.actor, filters, sort=sort, descending=descending,
                                                          cursor=query.cursor or None, limit=PAGE_SIZE)
    names = conversations.customer_names(db, list({c.customer_id for c in items}))
    tags = conversations.tags_of(db, [c.id for c in items])
    unread = inbox.unread_ids(db, user.actor, items)
    users = user_names if user_names is not None else (
        {u.id: u.name for u in accounts.list_users(db, user.actor)} if items else {})
    now = utcnow()
    rows = []
    for c in items:
        waited, state = inbox.wait_state(c, now)
        due = c.sla_due_at
        rows.append(Row(conversation=c, customer_name=names.get(c.customer_id, ""), tags=tags.get(c.id, []),
                        unread=c.id in unread, wait_seconds=waited, wait_state=state,
                        assignee_name=users.get(c.assignee_id, "") if c.assignee_id else "",
                        sla_left=int((aware(due) - now).total_seconds()) if due is not None else None,
                        sla_state=inbox.sla_colour(c, now),
                        legal_left=(int((aware(c.legal_due_at) - now).total_seconds())
                                    if c.legal_due_at is not None else None)))
    return rows, next_cursor


def inbox_context(request: Request, db: Session, user: UIUser, query: InboxQuery,
                  selected_id: int | None = None) -> dict[str, Any]:
    team_ids = inbox.team_ids_of(db, user.actor)
    users = accounts.list_users(db, user.actor)
    rows, next_cursor = list_rows(db, user, query, team_ids, {u.id: u.name for u in users})
    return {
        "query": query, "rows": rows, "next_cursor": next_cursor, "selected_id": selected_id,
        "counts": inbox.unread_counts(db, user.actor, team_ids), "view_labels": VIEW_LABELS,
        "saved_views": inbox.list_saved_views(db, user.actor),
        "users": users, "channels": CHANNELS,
        "priorities": [p.value for p in Priority], "status_choices": STATUS_CHOICES,
        "sort_choices": list(SORT_CHOICES), "sla_choices": SLA_CHOICES,
    }


@router.get("/inbox")
def inbox_page(request: Request, user: CurrentUser, db: DB) -> Response:
    query = InboxQuery.parse(request.query_params)
    if "view" not in request.query_params and user.has_role(Role.supervisor) and not query.cursor:
        # An admin or supervisor with nothing of their own lands where the work is: «Unassigned» when
        # conversations wait there, else «All» (an empty «Mine» while others wait was the first thing seen)
        landing = _landing_view(db, user, query)
        if landing != query.view:
            return redirect(query.url(view=landing))
    return render(request, "inbox.html", **inbox_context(request, db, user, query))


def _landing_view(db: Session, user: UIUser, query: InboxQuery) -> str:
    team_ids = inbox.team_ids_of(db, user.actor)
    for view in ("mine", "unassigned"):
        filters = inbox.view_filters(db, user.actor, view, query.filters(), team_ids=team_ids)
        items, _ = conversations.list_conversations(db, user.actor, filters, limit=1)
        if items:
            return view
    return "all"


@router.get("/ui/inbox/list")
def inbox_list(request: Request, user: CurrentUser, db: DB, selected: int | None = None) -> HTMLResponse:
    """The list fragment: the next page (a cursor) or a live refresh."""
    query = InboxQuery.parse(request.query_params)
    team_ids = inbox.team_ids_of(db, user.actor)
    rows, next_cursor = list_rows(db, user, query, team_ids)
    return render(request, "partials/inbox_rows.html", query=query, rows=rows, next_cursor=next_cursor,
                  selected_id=selected, append=bool(query.cursor))


@router.get("/ui/inbox/counts")
def inbox_counts(request: Request, user: CurrentUser, db: DB) -> HTMLResponse:
    query = InboxQuery.parse(request.query_params)
    team_ids = inbox.team_ids_of(db, user.actor)
    return render(request, "partials/inbox_views.html", query=query, view_labels=VIEW_LABELS,
                  counts=inbox.unread_counts(db, user.actor, team_ids),
                  saved_views=inbox.list_saved_views(db, user.actor))


@router.post("/ui/saved-views")
def save_view(request: Request, user: CurrentUser, db: DB, name: Annotated[str, Form(max_length=200)],
              query: Annotated[str, Form(max_length=1000)] = "") -> Response:
    from urllib.parse import parse_qsl

    parsed = InboxQuery.parse(dict(parse_qsl(query, max_num_fields=20)))  # refuse a filter that cannot load
    saved = inbox.save_view(db, user.actor, name=name, query=urlencode(parsed.params()))
    return redirect(parsed.url() if saved.query else "/inbox", request)


@router.post("/ui/saved-views/{view_id}/delete")
def delete_view(request: Request, view_id: int, user: CurrentUser, db: DB) -> Response:
    inbox.delete_saved_view(db, user.actor, view_id)
    return redirect("/inbox", request)


@router.post("/ui/inbox/bulk")
async def inbox_bulk(request: Request, user: CurrentUser, db: DB) -> JSONResponse:
    """The inbox's bulk bar: one change to the picked conversations, or merge them (one customer's)."""
    from otklik.conversations import bulk

    form = await request.form()
    ids = [int(v) for v in form.getlist("ids") if isinstance(v, str) and v.isdigit() and len(v) < 12]
    if len(ids) > bulk.MAX_BULK:
        raise field_error("ids", f"at most {bulk.MAX_BULK} conversations at once")
    action = str(form.get("action") or "update")
    if action == "merge":
        result = bulk.bulk_merge(db, user.actor, ids)
        target = conversations.get_conversation(db, user.actor, result["target_id"])
        result["target_number"] = target.number
    elif action == "update":
        changes: dict[str, Any] = {}
        for name in ("status", "priority"):
            value = str(form.get(name) or "").strip()[:16]
            if value:
                changes[name] = value
        assignee = str(form.get("assignee") or "").strip()[:12]
        if assignee == "me":
            changes["assignee_id"] = user.actor.user_id
        elif assignee == "none":
            changes["assignee_id"] = None
        elif assignee:
            if not assignee.isdigit():
                raise field_error("assignee", "a user id, 'me' or 'none'")
            changes["assignee_id"] = int(assignee)
        tag = str(form.get("tag") or "").strip()[:40]
        result = bulk.bulk_update(db, user.actor, ids, changes, [tag] if tag else [])
    else:
        raise field_error("action", "'update' or 'merge'")
    failed_ids = [f["id"] for f in result["failed"]]
    numbers = dict(db.execute(select(Conversation.id, Conversation.number).where(
        Conversation.id.in_(failed_ids), Conversation.workspace_id == user.actor.workspace_id)).all()) \
        if failed_ids else {}
    for f in result["failed"]:
        f["number"] = numbers.get(f["id"])
    return JSONResponse(result)
