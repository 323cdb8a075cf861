"""The conversation view: the thread (messages, notes, system events), the reply box, the side bar.

Every change goes through the conversations service (reply, update_conversation); new messages and events
are served as fragments after a given id, which app.js fetches when the WebSocket says something changed.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.accounts.models import AuditEntry
from otklik.conversations import drafts, inbox, sla
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation, Message, Priority, Status
from otklik.conversations.service import CHANNELS
from otklik.conversations.templates import VARIABLE
from otklik.customers import service as customers
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict, field_error
from otklik.web import i18n
from otklik.web.ui.deps import CurrentUser, UIUser, render, request_language, translator, ui_router
from otklik.web.ui.inbox import InboxQuery, inbox_context

router = ui_router()
THREAD_LIMIT = 500
SYSTEM_ACTIONS = {"status_changed", "assigned", "team_changed", "priority_changed", "merged", "merged_into",
                  "tags_changed", "category_changed", "signals_changed", "sla_breached", "sla_warning", "sla_changed"}
# identity kinds a written reply can go out through (a phone number gets no chat message)
REPLY_KINDS = ("email", "telegram", "vk", "whatsapp", "max", "widget", "viber", "instagram")


@dataclass
class ThreadItem:
    kind: str  # message / event
    at: dt.datetime
    message: Message | None = None
    attachments: list[Any] | None = None
    author: str = ""
    event: AuditEntry | None = None
    event_text: str = ""


def _event_text(request: Request, entry: AuditEntry, users: dict[int, str]) -> str:
    _ = translator(request)
    who = users.get(entry.actor_user_id or 0) or (_("Assistant") if entry.actor_kind == "assistant" else
                                                  _("Automation rule") if entry.actor_kind == "rule" else _("System"))
    before, after = entry.before or {}, entry.after or {}
    if entry.action == "status_changed":
        return _("%(who)s changed the status: %(old)s → %(new)s", who=who,
                 old=_("status:" + str(before.get("status"))), new=_("status:" + str(after.get("status"))))
    if entry.action == "assigned":
        target = after.get("assignee_id")
        return (_("%(who)s assigned the conversation to %(name)s", who=who, name=users.get(target, "?"))
                if target else _("%(who)s unassigned the conversation", who=who))
    if entry.action == "priority_changed":
        return _("%(who)s changed the priority to %(new)s", who=who,
                 new=_("priority:" + str(after.get("priority"))))
    if entry.action == "team_changed":
        return _("%(who)s changed the team", who=who)
    if entry.action == "tags_changed":
        return _("%(who)s changed the tags: %(tags)s", who=who, tags=", ".join(after.get("tags") or []) or "—")
    if entry.action == "category_changed":
        return _("%(who)s changed the category to %(new)s", who=who,
                 new=i18n.coded(request_language(request), "category", after.get("category")))
    if entry.action in ("merged", "merged_into"):
        return _("%(who)s merged conversations", who=who)
    if entry.action == "sla_breached":
        return _("SLA breached: %(kind)s", kind=_("sla:" + str(after.get("kind"))))
    if entry.action == "sla_warning":
        return _("SLA: %(kind)s is due soon", kind=_("sla:" + str(after.get("kind"))))
    if entry.action == "sla_changed":
        return _("SLA targets recounted after the change")
    if entry.action == "macro_applied":
        return _("%(who)s applied the macro «%(name)s»", who=who, name=after.get("name") or "?")
    if entry.action == "signals_changed":
        words = []
        if "sentiment" in after:
            words.append(i18n.coded(request_language(request), "sentiment", str(after["sentiment"])))
        if "urgent" in after:
            words.append(_("urgent") if after["urgent"] else _("not urgent"))
        return _("Signals: %(signals)s", signals=", ".join(words) or "—")
    return entry.action


def thread_items(request: Request, db: Any, user: UIUser, conversation: Conversation, *,
                 after_message: int | None = None, after_event: int | None = None) -> list[ThreadItem]:
    """Messages and system events of a conversation in time order (the newest THREAD_LIMIT messages)."""
    messages, _cursor = conversations.list_messages(db, user.actor, conversation.id, after_id=after_message,
                                                    limit=THREAD_LIMIT)
    attachments = conversations.attachments_of(db, [m.id for m in messages])
    users = {u.id: u.name for u in accounts.list_users(db, user.actor)}
    entries = [e for e in accounts.list_audit(db, user.actor, entity_type="conversation", entity_id=conversation.id,
                                              limit=200)
               if e.action in SYSTEM_ACTIONS and (after_event is None or e.id > after_event)]
    customer_name = conversations.customer_names(db, [conversation.customer_id]).get(conversation.customer_id, "")
    items = []
    for m in messages:
        if m.author_kind == "customer":
            author = customer_name or translator(request)("Customer")
        elif m.author_kind == "assistant":
            author = translator(request)("Assistant")
        elif m.author_kind == "system":
            author = translator(request)("System")
        else:
            author = users.get(m.author_user_id or 0, "")
        items.append(ThreadItem(kind="message", at=m.created_at, message=m, attachments=attachments.get(m.id, []),
                                author=author))
    for e in entries:
        items.append(ThreadItem(kind="event", at=e.created_at, event=e, event_text=_event_text(request, e, users)))
    items.sort(key=lambda i: (i.at, 0 if i.kind == "message" else 1))
    return items


def reply_channels(db: Any, user: UIUser, conversation: Conversation) -> list[str]:
    """The channels a reply can go out through: the conversation's own first, then the customer's others."""
    channels = [conversation.channel]
    for ident in customers.identities_of(db, [conversation.customer_id]).get(conversation.customer_id, []):
        if ident.kind in REPLY_KINDS and ident.kind in CHANNELS and ident.kind not in channels:
            channels.append(ident.kind)
    return channels


def reply_warning(db: Any, conversation: Conversation) -> str | None:
    try:
        from otklik.conversations import reply_checks
    except ImportError:  # channel reply rules are optional
        return None
    return reply_checks.explain(db, conversation)


def delivery_warning(request: Request, db: Any, conversation: Conversation) -> str | None:
    """Said before the agent types: the conversation's channel has nothing connected to deliver a reply through
    (the reply may still be written; the outbox marks it not delivered, with the reason)."""
    if reply_warning(db, conversation) is not None:  # the channel's own rule already says why not
        return None
    from otklik.conversations import outbox

    if outbox.can_deliver(conversation.channel, conversation.workspace_id):
        return None
    _ = translator(request)
    channel = translator(request)(f"channel:{conversation.channel}")  # a coded key, not a message to extract
    return _("The %(channel)s channel of this conversation is not connected or is switched off: a reply will not "
             "be delivered. Connect it in Settings → Channels, or answer through another channel of this customer.",
             channel=channel)


def side_context(db: Any, user: UIUser, conversation: Conversation) -> dict[str, Any]:
    return {
        "conversation": conversation,
        "assignees": [u for u in accounts.list_users(db, user.actor) if u.is_active],
        "teams": accounts.list_teams(db, user.actor),
        "tags": conversations.tags_of(db, [conversation.id])[conversation.id],
        "statuses": [s.value for s in Status], "priorities": [p.value for p in Priority],
        "sla_timers": [sla.timer_view(t) for t in sla.timers_for(db, conversation.id)],
    }


@router.get("/conversations/{conversation_id}")
def conversation_page(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    query = InboxQuery.parse(request.query_params)
    with session_scope() as write:  # opening a conversation reads it: a small write of its own
        inbox.mark_read(write, user.actor, conversation_id)
    db.rollback()  # end the read snapshot taken before that write, so the counts below include it
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    items = thread_items(request, db, user, conversation)
    customer_name = conversations.customer_names(db, [conversation.customer_id]).get(conversation.customer_id, "")
    context = inbox_context(request, db, user, query, selected_id=conversation.id)
    context.update(side_context(db, user, conversation))
    return render(request, "conversation.html", **context, items=items, customer_name=customer_name,
                  reply_channels=reply_channels(db, user, conversation),
                  warning=reply_warning(db, conversation),
                  delivery_warning=delivery_warning(request, db, conversation),
                  draft=drafts.get_draft(db, user.actor, conversation.id),
                  **_file_limits(conversation.channel),
                  mention_users=[{"name": u.name, "handle": _handle(u)} for u in context.get("users", [])
                                 if u.is_active and u.id != user.actor.user_id],
                  whatsapp_templates=_used_templates(db, user.actor.workspace_id)
                  if conversation.channel == "whatsapp" else [],
                  legal=_legal(db, user, conversation),
                  last_question=_last_customer_text(db, conversation))


def _last_customer_text(db: Any, conversation: Conversation) -> str:
    """The customer's last message (the reply box hints when a reply may not answer it: phrases.js)."""
    from sqlalchemy import select

    text = db.scalar(select(Message.body_text).where(
        Message.conversation_id == conversation.id, Message.direction == "inbound",
        Message.is_internal.is_(False)).order_by(Message.id.desc()).limit(1))
    return (text or "")[:300]


def _legal(db: Any, user: Any, conversation: Conversation) -> dict[str, Any]:
    from otklik.web.ui.legal import legal_context

    return legal_context(db, user, conversation)


def _used_templates(db: Any, workspace_id: int) -> list[dict[str, str]]:
    """The approved WhatsApp templates this workspace has sent before (names to pick from; Meta keeps the list)."""
    from sqlalchemy import select

    rows = db.scalars(select(Message.meta).where(Message.workspace_id == workspace_id, Message.channel == "whatsapp",
                                                 Message.direction == "outbound").order_by(Message.id.desc())
                      .limit(300))
    seen: dict[tuple[str, str], dict[str, str]] = {}
    for meta in rows:
        t = (meta or {}).get("whatsapp_template") if isinstance(meta, dict) else None
        if isinstance(t, dict) and isinstance(t.get("name"), str):
            key = (t["name"], str(t.get("language") or "ru"))
            seen.setdefault(key, {"name": key[0], "language": key[1]})
    return list(seen.values())[:30]


def _handle(u: Any) -> str:
    """What «@…» inserts for a colleague so that the note's mention finds them (conversations.inbox): the full
    name when it is one or two words, else the e-mail's local part."""
    words = u.name.split()
    return " ".join(words) if 1 <= len(words) <= 2 else u.email.split("@", 1)[0]


def _file_limits(channel: str) -> dict[str, Any]:
    """What the composer checks before uploading: the channel's limits, capped by the server's own upload cap."""
    from otklik.conversations import reply_checks
    from otklik.platform.config import get_settings

    cap = get_settings().max_attachment_bytes
    limits = reply_checks.file_limits(channel)
    view = limits.view() if limits is not None else {"max_bytes": None, "max_files": None, "total_bytes": None,
                                                      "by_type": {}, "note": ""}
    view["max_bytes"] = min(view["max_bytes"] or cap, cap)
    view["by_type"] = {k: min(v, cap) for k, v in view["by_type"].items()}
    return {"file_limits": view, "file_limits_note": view["note"]}


@router.get("/ui/conversations/{conversation_id}/thread")
def thread_fragment(request: Request, conversation_id: int, user: CurrentUser, db: DB,
                    after: int | None = None, after_event: int | None = None,
                    only: int | None = None) -> HTMLResponse:
    """Messages and events after the ones the page has (a live update), or `only` one message again
    (its delivery status changed)."""
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    if only is not None:
        items = [i for i in thread_items(request, db, user, conversation, after_message=only - 1,
                                         after_event=2**62) if i.message is not None and i.message.id == only]
    else:
        items = thread_items(request, db, user, conversation, after_message=after, after_event=after_event)
    return render(request, "partials/thread_items.html", items=items, conversation=conversation)


@router.post("/ui/conversations/{conversation_id}/read")
def mark_read(conversation_id: int, user: CurrentUser, db: DB) -> Response:
    inbox.mark_read(db, user.actor, conversation_id)
    return Response(status_code=204, headers={"HX-Trigger": "otklik:refresh-counts"})


@router.get("/ui/conversations/{conversation_id}/side")
def side_fragment(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    return render(request, "partials/conversation_side.html", **side_context(db, user, conversation))


@router.post("/ui/conversations/{conversation_id}/reply")
def send_reply(request: Request, conversation_id: int, user: CurrentUser, db: DB,
               text: Annotated[str, Form(max_length=conversations.MAX_BODY_CHARS)] = "",
               mode: Annotated[str, Form(max_length=8)] = "reply",
               channel: Annotated[str, Form(max_length=16)] = "",
               acknowledge: Annotated[list[str] | None, Form()] = None,
               attachment_ids: Annotated[list[int] | None, Form()] = None) -> Response:
    """`acknowledge`: the codes of the warnings the agent saw and chose to send anyway (a «never» phrase:
    `phrase_never`), passed on to the reply checks."""
    _ = translator(request)
    if mode not in ("reply", "note"):
        raise field_error("mode", "'reply' or 'note'")
    files = list(dict.fromkeys(attachment_ids or []))[:20]
    if not text.strip() and not files:
        raise field_error("text", _("Write a message first."))
    unresolved = sorted({m.group(1) for m in VARIABLE.finditer(text)})
    if unresolved and mode == "reply":
        # a template variable nobody filled in must never reach a customer
        raise Conflict(_("Fill in the template variables first: %(names)s", names=", ".join(unresolved)),
                       code="unresolved_variables")
    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    if channel and channel not in reply_channels(db, user, conversation):
        raise field_error("channel", _("This customer cannot be reached through %(channel)s.", channel=channel))
    if mode == "reply":
        warning = reply_warning(db, conversation) if not channel or channel == conversation.channel else None
        if warning:
            raise Conflict(warning, code="reply_refused")
    try:
        message = conversations.reply(db, user.actor, conversation_id, text=text, is_internal=mode == "note",
                                      channel=channel if channel and channel != conversation.channel else None,
                                      acknowledge=[code[:60] for code in (acknowledge or [])[:20]], path="ui",
                                      attachment_ids=files)
    except Conflict as exc:
        if exc.code not in ("phrase_never", "legal_overdue"):
            raise
        # the page asks «send anyway?» and resends with acknowledge=<code> (phrases.js: a «never» phrase;
        # composer.js: a legal deadline past)
        return Response(exc.message, status_code=409, media_type="text/plain; charset=utf-8",
                        headers={"X-Otklik-Problem": exc.code})
    if mode == "note":
        inbox.record_mentions(db, user.actor, message)
    drafts.clear_draft(db, user.actor, conversation_id)
    inbox.mark_read(db, user.actor, conversation_id)
    return Response(status_code=204, headers={"HX-Trigger": "otklik:sent"})


@router.post("/ui/conversations/{conversation_id}/draft")
def save_draft(conversation_id: int, user: CurrentUser, db: DB,
               text: Annotated[str, Form(max_length=conversations.MAX_BODY_CHARS)] = "") -> Response:
    """The reply box's unsent text (phrases.js saves it as the agent types; an empty text drops it)."""
    drafts.save_draft(db, user.actor, conversation_id, text)
    return Response(status_code=204)


@router.post("/ui/conversations/{conversation_id}/update")
def update(request: Request, conversation_id: int, user: CurrentUser, db: DB,
           status: Annotated[str, Form(max_length=16)] = "",
           priority: Annotated[str, Form(max_length=16)] = "",
           assignee: Annotated[str, Form(max_length=12)] = "",
           team: Annotated[str, Form(max_length=12)] = "",
           tags: Annotated[str | None, Form(max_length=2000)] = None,
           version: Annotated[str, Form(max_length=12)] = "") -> Response:
    """Side-bar changes (and the `e` / `a` shortcuts). Only fields sent are changed; `me` assigns to me."""
    changes: dict[str, Any] = {}
    if status:
        if status not in Status.__members__:
            raise field_error("status", f"one of: {', '.join(Status.__members__)}")
        changes["status"] = status
    if priority:
        if priority not in Priority.__members__:
            raise field_error("priority", f"one of: {', '.join(Priority.__members__)}")
        changes["priority"] = priority
    for key, raw in (("assignee_id", assignee), ("team_id", team)):
        if raw:
            if raw == "none":
                changes[key] = None
            elif raw == "me" and key == "assignee_id":
                changes[key] = user.id
            elif raw.isdigit():
                changes[key] = int(raw)
            else:
                raise field_error(key, "an id, 'none' or 'me'")
    if tags is not None:
        changes["tags"] = [t for t in (part.strip() for part in tags.split(",")) if t]
    expected = int(version) if version.isdigit() else None
    if not changes:
        raise field_error("status", "nothing to change")
    conversation = conversations.update_conversation(db, user.actor, conversation_id, changes,
                                                     expected_version=expected)
    return render(request, "partials/conversation_side.html", **side_context(db, user, conversation),
                  headers={"HX-Trigger": "otklik:conversation-changed"})


@router.get("/ui/notify/{message_id}")
def notification(request: Request, message_id: int, user: CurrentUser, db: DB) -> JSONResponse:
    """What the browser notification of a new message says; `notify` only for my own conversations."""
    message = db.get(Message, message_id)
    if message is None or message.workspace_id != user.actor.workspace_id:
        return JSONResponse({"notify": False}, status_code=404)
    conversation = conversations.get_conversation(db, user.actor, message.conversation_id)
    name = conversations.customer_names(db, [conversation.customer_id]).get(conversation.customer_id, "")
    mine = (conversation.assignee_id == user.id and message.author_kind == "customer" and not message.is_internal)
    return JSONResponse({"notify": mine, "title": f"#{conversation.number} {name}".strip(),
                         "body": message.body_text[:200], "url": f"/conversations/{conversation.id}"})


@router.get("/ui/notify/conversation/{conversation_id}")
def team_notification(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> JSONResponse:
    """A conversation just created or moved to a team: `notify` when it waits unassigned in one of my teams
    and I chose to hear about those (Settings → My profile)."""
    from sqlalchemy import select

    from otklik.accounts.models import TeamMember

    conversation = conversations.get_conversation(db, user.actor, conversation_id)
    mine = bool(user.user.notify_team_new) and conversation.assignee_id is None \
        and conversation.team_id is not None and conversation.status in ("new", "open") \
        and conversation.merged_into_id is None and db.scalar(select(TeamMember.user_id).where(
            TeamMember.team_id == conversation.team_id, TeamMember.user_id == user.id)) is not None
    name = conversations.customer_names(db, [conversation.customer_id]).get(conversation.customer_id, "")
    return JSONResponse({"notify": mine, "title": f"#{conversation.number} {name}".strip(),
                         "body": conversation.last_message_preview or conversation.subject or "",
                         "url": f"/conversations/{conversation.id}"})
