"""HTTP surface of the conversations domain: the inbox, threads, replies, inbound API channel, attachments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response, UploadFile
from fastapi.responses import FileResponse
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, ActorOnly, CurrentActor
from otklik.accounts.models import Role
from otklik.conversations import attachments as attachment_store
from otklik.conversations import outbox, service
from otklik.conversations.models import Conversation, Message, Priority, Status
from otklik.conversations.schemas import (
    AttachmentOut,
    ConversationCreate,
    ConversationOut,
    ConversationUpdate,
    CustomerBrief,
    InboundBatchIn,
    InboundIn,
    InboundOut,
    MergeConversationIn,
    MessageOut,
    OutboxOut,
    ReplyIn,
)
from otklik.platform.api import Page
from otklik.platform.db import run_transaction, utcnow
from otklik.platform.errors import NotFound
from otklik.platform.jsonbody import SafeJSONRoute
from otklik.platform.pagination import decode_cursor

router = APIRouter(route_class=SafeJSONRoute)  # /inbound is the API channel: bodies get the shared JSON limits


def conversations_out(db: Session, conversations: Sequence[Conversation]) -> list[ConversationOut]:
    ids = [c.id for c in conversations]
    tags = service.tags_of(db, ids)
    customer_ids = list({c.customer_id for c in conversations})
    names = service.customer_names(db, customer_ids)
    return [ConversationOut(
        id=c.id, number=c.number, channel=c.channel, subject=c.subject, status=Status(c.status),
        priority=c.priority, category=c.category, language=c.language, tags=tags[c.id],
        assignee_id=c.assignee_id, team_id=c.team_id, customer=CustomerBrief(id=c.customer_id,
                                                                             name=names.get(c.customer_id, "")),
        previous_conversation_id=c.previous_conversation_id, merged_into_id=c.merged_into_id,
        message_count=c.message_count, last_message_preview=c.last_message_preview, version=c.version,
        created_at=c.created_at, updated_at=c.updated_at, last_message_at=c.last_message_at,
        last_customer_message_at=c.last_customer_message_at, first_response_at=c.first_response_at,
        solved_at=c.solved_at, closed_at=c.closed_at, waiting_since=c.waiting_since,
        assistant_answered_at=c.assistant_answered_at, sla_due_at=c.sla_due_at,
        sla_breached=bool(c.sla_breached), legal_due_at=c.legal_due_at,
        transfer_count=c.transfer_count or 0) for c in conversations]


def messages_out(db: Session, messages: Sequence[Message]) -> list[MessageOut]:
    atts = service.attachments_of(db, [m.id for m in messages])
    return [MessageOut(
        id=m.id, conversation_id=m.conversation_id, channel=m.channel, direction=m.direction,
        author_kind=m.author_kind, author_user_id=m.author_user_id, body_text=m.body_text, body_html=m.body_html,
        is_internal=m.is_internal, channel_message_id=m.channel_message_id, delivery_status=m.delivery_status,
        delivery_error=m.delivery_error, attachments=[AttachmentOut.model_validate(a) for a in atts[m.id]],
        created_at=m.created_at) for m in messages]


@router.get("/conversations", response_model=Page[ConversationOut], tags=["conversations"])
def list_conversations(
    actor: CurrentActor, db: DB,
    status: Annotated[list[Status] | None, Query()] = None,
    assignee_id: int | None = None,
    unassigned: bool = False,
    team_id: int | None = None,
    channel: Annotated[str | None, Query(max_length=16)] = None,
    tag: Annotated[str | None, Query(max_length=48)] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    customer_id: int | None = None,
    created_from: dt.datetime | None = None,
    created_to: dt.datetime | None = None,
    q: Annotated[str | None, Query(max_length=200, description="full-text search in messages")] = None,
    sla_breached: Annotated[bool, Query(description="only conversations with a breached SLA target")] = False,
    due_within: Annotated[int | None, Query(ge=0, le=525_600, description="only conversations whose earliest "
                                            "running SLA target is due within this many minutes")] = None,
    legal_due_within: Annotated[int | None, Query(ge=0, le=525_600, description="only conversations with a "
                                                  "consumer-law deadline due within this many minutes or "
                                                  "already past (2880: «within 2 days»)")] = None,
    sort: Literal["last_message_at", "waiting", "created_at", "priority", "number", "due"] = "last_message_at",
    order: Literal["asc", "desc"] = "desc",
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 25,
) -> Page[ConversationOut]:
    """`sort=due`: the soonest SLA due time first (ascending whatever `order` says), then conversations with
    no running target."""
    filters = service.ConversationFilters(
        status=status or [], assignee_id=assignee_id, unassigned=unassigned, team_id=team_id, channel=channel,
        tag=tag, priority=priority or [], customer_id=customer_id,
        created_from=_aware(created_from), created_to=_aware(created_to), q=q, sla_breached=sla_breached,
        due_before=utcnow() + dt.timedelta(minutes=due_within) if due_within is not None else None,
        legal_due_before=(utcnow() + dt.timedelta(minutes=legal_due_within)
                          if legal_due_within is not None else None))
    rows, next_cursor = service.list_conversations(db, actor, filters, sort=sort, descending=order == "desc",
                                                   cursor=cursor, limit=limit)
    return Page(items=conversations_out(db, rows), next_cursor=next_cursor)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@router.post("/conversations", response_model=ConversationOut, status_code=201, tags=["conversations"])
def create_conversation(body: ConversationCreate, actor: CurrentActor, db: DB) -> ConversationOut:
    conversation = service.create_conversation(db, actor, customer_id=body.customer_id, channel=body.channel,
                                               subject=body.subject, priority=body.priority,
                                               assignee_id=body.assignee_id, team_id=body.team_id, tags=body.tags)
    return conversations_out(db, [conversation])[0]


@router.get("/conversations/by-number/{number}", response_model=ConversationOut, tags=["conversations"])
def get_by_number(number: int, actor: CurrentActor, db: DB) -> ConversationOut:
    return conversations_out(db, [service.get_by_number(db, actor, number)])[0]


@router.get("/conversations/{conversation_id}", response_model=ConversationOut, tags=["conversations"])
def get_conversation(conversation_id: int, actor: CurrentActor, db: DB) -> ConversationOut:
    return conversations_out(db, [service.get_conversation(db, actor, conversation_id)])[0]


@router.patch("/conversations/{conversation_id}", response_model=ConversationOut, tags=["conversations"])
def update_conversation(conversation_id: int, body: ConversationUpdate, actor: CurrentActor, db: DB,
                        request: Request) -> ConversationOut:
    changes = body.model_dump(exclude_unset=True)
    version = changes.pop("version", None)
    if_match = request.headers.get("if-match", "").strip('" ')
    if version is None and if_match.isdigit():
        version = int(if_match)
    for key in ("status", "priority"):
        if key in changes and changes[key] is None:
            changes.pop(key)
    conversation = service.update_conversation(db, actor, conversation_id, changes, expected_version=version)
    return conversations_out(db, [conversation])[0]


@router.post("/conversations/{conversation_id}/merge", response_model=ConversationOut, tags=["conversations"])
def merge_conversations(conversation_id: int, body: MergeConversationIn, actor: CurrentActor, db: DB
                        ) -> ConversationOut:
    conversation = service.merge_conversations(db, actor, target_id=conversation_id, source_id=body.source_id)
    return conversations_out(db, [conversation])[0]


@router.get("/conversations/{conversation_id}/messages", response_model=Page[MessageOut], tags=["messages"])
def list_messages(conversation_id: int, actor: CurrentActor, db: DB,
                  cursor: Annotated[str | None, Query(max_length=500)] = None,
                  limit: Annotated[int, Query(ge=1, le=500)] = 100) -> Page[MessageOut]:
    after_id = None
    if cursor:
        _, after_id = decode_cursor(cursor)
    rows, next_cursor = service.list_messages(db, actor, conversation_id, after_id=after_id, limit=limit)
    return Page(items=messages_out(db, rows), next_cursor=next_cursor)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut, status_code=201,
             tags=["messages"])
def reply(conversation_id: int, body: ReplyIn, actor: CurrentActor, db: DB) -> MessageOut:
    """An agent's reply (delivered through the outbox) or, with `is_internal`, a note only agents see."""
    message = service.reply(db, actor, conversation_id, text=body.text, html=body.html,
                            is_internal=body.is_internal, attachment_ids=body.attachment_ids, channel=body.channel,
                            acknowledge=body.acknowledge, path="api")
    return messages_out(db, [message])[0]


def _inbound_message(body: InboundIn) -> service.InboundMessage:
    return service.InboundMessage(
        channel="api", identity_kind=body.identity_kind.value, identity_value=body.identity,
        customer_name=body.customer_name, text=body.text, html=body.html, subject=body.subject,
        channel_message_id=body.message_id, conversation_id=body.conversation_id,
        attachment_ids=tuple(body.attachment_ids), language=body.language, meta=body.meta)


def _inbound_out(result: service.Received) -> InboundOut:
    return InboundOut(conversation_id=result.conversation.id, conversation_number=result.conversation.number,
                      message_id=result.message.id, customer_id=result.conversation.customer_id,
                      duplicate=result.duplicate, new_conversation=result.new_conversation)


@router.post("/inbound", response_model=InboundOut, status_code=201, tags=["inbound"],
             responses={200: {"model": InboundOut, "description": "A retry of a message already stored"}})
def inbound(body: InboundIn, actor: ActorOnly, response: Response) -> InboundOut:
    """A customer message through the API channel. Idempotent on `message_id`: a retry answers 200."""
    result = run_transaction(lambda db: _inbound_out(service.receive(db, actor.workspace_id,
                                                                     _inbound_message(body))))
    if result.duplicate:
        response.status_code = 200
    return result


@router.post("/inbound/batch", response_model=list[InboundOut], status_code=201, tags=["inbound"])
def inbound_batch(body: InboundBatchIn, actor: ActorOnly) -> list[InboundOut]:
    """Up to 500 customer messages in one transaction: all are stored, or none (the error names the index)."""

    messages = [_inbound_message(m) for m in body.messages]

    def work(db: Session) -> list[InboundOut]:
        return [_inbound_out(r) for r in service.receive_many(db, actor.workspace_id, messages)]

    return run_transaction(work)


@router.get("/messages/search", response_model=Page[MessageOut], tags=["messages"])
def search_messages(actor: CurrentActor, db: DB, q: Annotated[str, Query(min_length=1, max_length=200)],
                    cursor: Annotated[str | None, Query(max_length=500)] = None,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Page[MessageOut]:
    rows, next_cursor = service.search_messages(db, actor, q, cursor=cursor, limit=limit)
    return Page(items=messages_out(db, rows), next_cursor=next_cursor)


@router.post("/attachments", response_model=AttachmentOut, status_code=201, tags=["attachments"])
def upload_attachment(file: UploadFile, actor: CurrentActor, db: DB) -> AttachmentOut:
    def chunks() -> Iterator[bytes]:
        while True:
            chunk = file.file.read(65536)
            if not chunk:
                return
            yield chunk

    attachment = attachment_store.store(db, actor, filename=file.filename or "file",
                                        content_type=file.content_type or "", chunks=chunks())
    return AttachmentOut.model_validate(attachment)


@router.get("/attachments/{attachment_id}", tags=["attachments"], response_class=FileResponse)
@router.get("/attachments/{attachment_id}/content", tags=["attachments"], response_class=FileResponse,
            include_in_schema=False)  # the address the agent UI linked to before issue 19: old pages still work
def download_attachment(attachment_id: int, actor: CurrentActor, db: DB) -> FileResponse:
    attachment, path = attachment_store.get_attachment(db, actor, attachment_id)
    inline = attachment.content_type.startswith("image/") or attachment.content_type == "application/pdf"
    return FileResponse(path, media_type=attachment.content_type, filename=attachment.filename,
                        content_disposition_type="inline" if inline else "attachment",
                        headers={"X-Content-Type-Options": "nosniff",
                                 "Content-Security-Policy": "default-src 'none'; sandbox"})


@router.get("/outbox", response_model=list[OutboxOut], tags=["outbox"])
def list_outbox(actor: CurrentActor, db: DB, status: Annotated[str | None, Query(max_length=10)] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[OutboxOut]:
    actor.require(Role.supervisor)
    return [OutboxOut.model_validate(o) for o in outbox.list_items(db, actor.workspace_id, status=status,
                                                                   limit=limit)]


@router.post("/outbox/{outbox_id}/retry", response_model=OutboxOut, tags=["outbox"])
def retry_outbox(outbox_id: int, actor: CurrentActor, db: DB) -> OutboxOut:
    actor.require(Role.supervisor)
    item = outbox.retry_dead(db, actor.workspace_id, outbox_id)
    if item is None:
        raise NotFound(f"outbox item {outbox_id} not found")
    return OutboxOut.model_validate(item)
