"""The phone channel: callback requests and the call log.

- `POST /api/v1/phone/callbacks` (API token or session): a callback request (name, phone -> E.164, preferred
  time window, comment) becomes a conversation on the "phone" channel and a task for an agent. Web forms
  configured as callback forms (the widget's "call me back") use the same `request_callback()`.
- `POST /api/v1/phone/events/<token>` (also `/api/v1/channels/phone/webhook/<token>`): a generic telephony
  webhook any PBX can call (Asterisk/FreePBX dialplan curl, Mango, Zadarma... through a small adapter),
  signed with `X-Otklik-Signature: sha256=<HMAC-SHA256 of the body with the account's signing secret>`.
  Events call.started / call.answered / call.ended / call.missed {call_id, from, to, direction, duration,
  recording_url (https only)} are written into the customer's phone conversation; a missed call creates a
  callback task. De-duplicated by call_id + event.

A phone conversation takes no written replies (its reply check says so); agents call back and note the result.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from typing import Annotated, Any, ClassVar, Literal

from fastapi import APIRouter, Request
from pydantic import AwareDatetime, BaseModel, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.channels.base import ChannelPlugin, add_plugin, record_event, webhook_account
from otklik.channels.inbound_kit import BadSignature, parse_json, unknown_account
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, Message, Status
from otklik.customers import service as customers
from otklik.customers.identities import normalise_phone
from otklik.customers.suggestions import identity_for_claim
from otklik.customers.tasks import create_task
from otklik.platform.db import run_transaction, utcnow
from otklik.platform.errors import InvalidInput, field_error

KIND = "phone"
MAX_WINDOW_AHEAD = dt.timedelta(days=60)


class PhoneConfig(BaseModel):
    default_region: Annotated[str, Field(pattern=r"^[A-Z]{2}$", title="Регион номеров без кода страны",
                                         description="RU: 8 916… и 916… читаются как +7 916…")] = "RU"
    missed_call_due_minutes: Annotated[int, Field(ge=0, le=1440, title="Перезвонить на пропущенный за, мин")] = 15


def _config(session: Session, workspace_id: int) -> dict[str, Any]:
    account = session.scalar(select(ChannelAccount).where(
        ChannelAccount.workspace_id == workspace_id, ChannelAccount.kind == KIND,
        ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id).limit(1))
    return dict(account.config or {}) if account is not None else {}


def _fmt_duration(seconds: int) -> str:
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}" if seconds >= 3600 \
        else f"{seconds // 60}:{seconds % 60:02d}"


def phone_reply_check(session: Session, conversation: Conversation, meta: dict[str, Any]) -> str | None:
    return ("A phone conversation takes no written replies: call the customer back (see the task) and log "
            "the result as an internal note, or answer in another channel of this customer.")


# -- callback requests ---------------------------------------------------------------------------------

class CallbackIn(BaseModel):
    phone: Annotated[str, Field(min_length=3, max_length=40, description="Any common format; stored as E.164")]
    name: Annotated[str, Field(max_length=200)] = ""
    preferred_from: AwareDatetime | None = Field(default=None, description="Start of the time to call")
    preferred_to: AwareDatetime | None = Field(default=None, description="End of the time to call")
    comment: Annotated[str, Field(max_length=2000)] = ""
    request_id: Annotated[str | None, Field(default=None, max_length=100, pattern=r"^[\w.:-]+$",
                                            description="Your id: the same request sent twice is stored once")]


class CallbackOut(BaseModel):
    conversation_id: int
    customer_id: int
    task_id: int | None
    phone: str
    duplicate: bool


def request_callback(session: Session, workspace_id: int, body: CallbackIn, *, source: str,
                     extra_meta: dict[str, Any] | None = None) -> CallbackOut:
    """A callback request -> a phone conversation with the number and time, and a task for an agent.

    The number is an unverified claim: it lands on a profile of its own (`claim:phone:...`), and the agent
    sees the probable match with a customer who holds that number (`customers.suggestions`)."""
    region = str(_config(session, workspace_id).get("default_region") or "RU")
    phone = normalise_phone(body.phone, default_region=region, field="phone")
    now = utcnow()
    if body.preferred_from and body.preferred_to and body.preferred_to <= body.preferred_from:
        raise field_error("preferred_to", "must be after preferred_from")
    for name, when in (("preferred_from", body.preferred_from), ("preferred_to", body.preferred_to)):
        if when is not None and when > now + MAX_WINDOW_AHEAD:
            raise field_error(name, "at most 60 days ahead")
    if body.preferred_to is not None and body.preferred_to < now:
        raise field_error("preferred_to", "is in the past")
    kind, value = identity_for_claim(session, workspace_id, "phone", phone, field="phone")
    lines = [f"📞 Просьба перезвонить: {phone}" + (f" ({body.name.strip()})" if body.name.strip() else "")]
    if body.preferred_from or body.preferred_to:
        window = " — ".join(v.isoformat(timespec="minutes") for v in (body.preferred_from, body.preferred_to) if v)
        lines.append(f"Удобное время: {window}")
    if body.comment.strip():
        lines.append(f"Комментарий: {body.comment.strip()}")
    message_id = f"callback:{source}:{body.request_id}" if body.request_id else None
    received = conversations.receive(session, workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind=kind, identity_value=value, text="\n".join(lines),
        customer_name=body.name.strip(), channel_message_id=message_id,
        meta={"callback": {"phone": phone, "source": source, **(extra_meta or {}),
                           "preferred_from": body.preferred_from.isoformat() if body.preferred_from else None,
                           "preferred_to": body.preferred_to.isoformat() if body.preferred_to else None}}))
    if received.duplicate:
        return CallbackOut(conversation_id=received.conversation.id, customer_id=received.conversation.customer_id,
                           task_id=None, phone=phone, duplicate=True)
    task = create_task(session, workspace_id, customer_id=received.conversation.customer_id,
                       title=f"Перезвонить {body.name.strip() or phone}: {phone}"[:300],
                       conversation_id=received.conversation.id, due_at=body.preferred_from or now,
                       note=body.comment.strip())
    return CallbackOut(conversation_id=received.conversation.id, customer_id=received.conversation.customer_id,
                       task_id=task.id, phone=phone, duplicate=False)


api_router = APIRouter(tags=["phone"])


@api_router.post("/phone/callbacks", response_model=CallbackOut, status_code=201)
def create_callback(body: CallbackIn, actor: CurrentActor, db: DB) -> CallbackOut:
    """A customer asked to be called back: a phone conversation and a task for an agent."""
    actor.require(Role.agent)
    return request_callback(db, actor.workspace_id, body, source="api")


# -- the telephony webhook -----------------------------------------------------------------------------

class CallEvent(BaseModel):
    event: Literal["call.started", "call.answered", "call.ended", "call.missed"]
    call_id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\w.:@-]+$")]
    from_: Annotated[str, Field(alias="from", min_length=3, max_length=40)]
    to: Annotated[str, Field(min_length=2, max_length=40)]
    direction: Literal["inbound", "outbound"] = "inbound"
    duration: Annotated[int | None, Field(ge=0, le=86_400)] = None
    recording_url: Annotated[str | None, Field(max_length=2000)] = None
    agent: Annotated[str | None, Field(max_length=200)] = None


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _describe(event: CallEvent, number: str) -> str:
    incoming = event.direction == "inbound"
    if event.event == "call.started":
        return f"📞 {'Входящий звонок с' if incoming else 'Исходящий звонок на'} {number}"
    if event.event == "call.answered":
        return "📞 Звонок принят" + (f": {event.agent}" if event.agent else "")
    if event.event == "call.missed":
        return f"📞 Пропущенный {'входящий ' if incoming else ''}звонок {'с' if incoming else 'на'} {number}"
    text = "📞 Звонок завершён" + (f", длительность {_fmt_duration(event.duration)}" if event.duration else "")
    if event.recording_url:
        text += f"\nЗапись: {event.recording_url}"
    return text


def _call_conversation(session: Session, workspace_id: int, call_id: str) -> Conversation | None:
    conversation_id = session.scalar(select(Message.conversation_id).where(
        Message.workspace_id == workspace_id, Message.channel == KIND, Message.channel_message_id == f"call:{call_id}"))
    return session.get(Conversation, conversation_id) if conversation_id is not None else None


def log_call_event(session: Session, account: ChannelAccount, event: CallEvent) -> dict[str, Any]:
    if event.recording_url is not None and not event.recording_url.startswith("https://"):
        raise field_error("recording_url", "must be an https:// URL")
    if record_event(session, account, f"call:{event.call_id}:{event.event}") is None:
        return {"status": "duplicate"}
    workspace_id = account.workspace_id
    region = str((account.config or {}).get("default_region") or "RU")
    raw_number = event.from_ if event.direction == "inbound" else event.to
    number = normalise_phone(raw_number, default_region=region, field="from" if event.direction == "inbound" else "to")
    meta = {"call": {"call_id": event.call_id, "event": event.event, "direction": event.direction,
                     "number": number, "duration": event.duration, "recording_url": event.recording_url,
                     "agent": event.agent}}
    text = _describe(event, number)
    conversation = _call_conversation(session, workspace_id, event.call_id)
    first_event, logged = conversation is None, False
    if conversation is None and event.direction == "inbound":
        # the caller's number comes from the phone network, not from a form: a new number is verified
        received = conversations.receive(session, workspace_id, conversations.InboundMessage(
            channel=KIND, identity_kind="phone", identity_value=number, identity_verified=True, text=text,
            channel_message_id=f"call:{event.call_id}", meta=meta))
        conversation, logged = received.conversation, True
    elif conversation is None:
        customer, _ = customers.resolve_or_create(session, workspace_id, kind="phone", external_id=number)
        conversation = session.scalar(select(Conversation).where(
            Conversation.workspace_id == workspace_id, Conversation.customer_id == customer.id,
            Conversation.channel == KIND, Conversation.merged_into_id.is_(None),
            Conversation.status != Status.closed.value).order_by(Conversation.id.desc()).limit(1))
        if conversation is None:
            conversation = conversations.create_conversation(session, Actor.system(workspace_id),
                                                             customer_id=customer.id, channel=KIND,
                                                             subject=f"Звонок {number}")
    while conversation.merged_into_id is not None:
        target = session.get(Conversation, conversation.merged_into_id)
        if target is None:
            break
        conversation = target
    if not logged:
        note = conversations.reply(session, Actor.system(workspace_id), conversation.id, text=text,
                                   is_internal=True, author=AuthorKind.system, meta=meta)
        if first_event:
            note.channel_message_id = f"call:{event.call_id}"  # later events of this call find it
    task_id = None
    if event.event == "call.missed":
        due = utcnow() + dt.timedelta(minutes=int((account.config or {}).get("missed_call_due_minutes", 15)))
        task_id = create_task(session, workspace_id, customer_id=conversation.customer_id,
                              title=f"Перезвонить: пропущенный звонок {number}", conversation_id=conversation.id,
                              due_at=due).id
    return {"status": "logged", "conversation_id": conversation.id, "task_id": task_id}


router = APIRouter(tags=["channels"])


async def _telephony_event(token: str, request: Request) -> dict[str, Any]:
    raw = await request.body()
    signature = request.headers.get("x-otklik-signature", "")

    def work(session: Session) -> dict[str, Any]:
        account = webhook_account(session, KIND, token)
        if account is None:
            raise unknown_account()
        secret = decrypt_secrets(account.secret).get("signing_secret", "")
        if not secret:
            raise BadSignature("the phone channel's signing secret is not configured")
        if not hmac.compare_digest(signature.encode(), sign(secret, raw).encode()):
            raise BadSignature("X-Otklik-Signature does not match the body")
        try:
            event = CallEvent.model_validate(parse_json(raw))
        except ValidationError as exc:
            fields = [{"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]}
                      for e in exc.errors()]
            raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields[:3]),
                               fields=fields) from None
        return log_call_event(session, account, event)

    return await run_in_threadpool(run_transaction, work)


@router.post("/phone/events/{token}", include_in_schema=False)
async def telephony_event(token: str, request: Request) -> dict[str, Any]:
    return await _telephony_event(token, request)


@router.post("/channels/phone/webhook/{token}", include_in_schema=False)
async def telephony_event_alias(token: str, request: Request) -> dict[str, Any]:
    return await _telephony_event(token, request)


class PhonePlugin(ChannelPlugin):
    kind = KIND
    title = "Телефон"
    description = "Заявки на обратный звонок и журнал звонков из АТС (вебхук с подписью HMAC-SHA256)"
    icon = "☎"
    Config = PhoneConfig
    secret_fields = ("signing_secret",)
    secret_titles: ClassVar[dict[str, str]] = {"signing_secret": "Секрет подписи вебхука АТС (X-Otklik-Signature)"}
    has_webhook = True
    router = router


PLUGIN = PhonePlugin()


def register() -> None:
    add_plugin(PLUGIN)
    reply_checks.register(KIND, phone_reply_check)
