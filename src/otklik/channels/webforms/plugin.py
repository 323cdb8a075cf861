"""Web forms: `POST /forms/<form token>` (also `/api/v1/channels/form/webhook/<token>`) from any site.

Accepts an HTML form post (urlencoded or multipart) or JSON: name, email and/or phone, message; every other
field is kept in the message meta (at most 30). Spam: a honeypot field (hidden from people; a bot that fills it
gets the same success answer and nothing is stored) and sliding-window rate limits per IP and per form.
HTML forms are redirected back (303) only to the form's allowed origins, with `otklik_form=sent`; JSON
clients get JSON (CORS allowed for the same origins). A callback form (`creates: callback`) makes a phone
callback request with a task instead of a message.

The email/phone a form gives is an unverified claim: it lands on a profile of its own (`claim:email:...`),
never on an existing customer, and the agent sees the probable match (`customers.suggestions`).
Replies to a form conversation go out by e-mail through the email channel.

Embed (docs/README): <form method="post" action="https://support.example.ru/forms/TOKEN"> <input name="name">
<input name="email" type="email"> <input name="phone"> <textarea name="message"></textarea>
<input name="website" tabindex="-1" autocomplete="off" style="position:absolute;left:-9999px" aria-hidden="true">
<button>Отправить</button></form>
"""

from __future__ import annotations

import dataclasses
import hashlib
import html
import urllib.parse
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from otklik.channels.base import ChannelPlugin, add_plugin, webhook_account
from otklik.channels.inbound_kit import Malformed, parse_json, unknown_account
from otklik.channels.models import ChannelAccount
from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation
from otklik.conversations.outbox import DeliveryError, NotConnected, OutboundMessage, get_sender
from otklik.customers.identities import normalise_phone
from otklik.customers.models import Identity
from otklik.customers.suggestions import CLAIM_PREFIX, identity_for_claim
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import field_error
from otklik.platform.ratelimit import SlidingWindow

KIND = "form"
MAX_FIELDS = 30
MAX_FIELD_CHARS = 5000
KNOWN = {"name", "email", "phone", "message", "text", "comment", "subject", "submission_id", "_redirect",
         "preferred_time"}
_limiters: dict[tuple[str, int, int], SlidingWindow] = {}


class FormConfig(BaseModel):
    title: Annotated[str, Field(max_length=120, title="Название формы", description="Тема обращений")] = "Форма на сайте"
    creates: Annotated[Literal["message", "callback"], Field(title="Что создаёт",
                                                             description="message — обращение; callback — "
                                                                         "заявку на звонок с задачей")] = "message"
    allowed_origins: Annotated[list[Annotated[str, Field(pattern=r"^https?://[^/\s]+$", max_length=200)]],
                               Field(max_length=20, title="Сайты формы",
                                     description="https://shop.ru — куда можно вернуть посетителя и кому "
                                                 "разрешён JSON из браузера")] = []
    honeypot_field: Annotated[str, Field(pattern=r"^[a-z_]{1,40}$", title="Поле-ловушка")] = "website"
    per_ip_per_hour: Annotated[int, Field(ge=1, le=10_000, title="Отправок в час с одного IP")] = 10
    per_form_per_hour: Annotated[int, Field(ge=1, le=1_000_000, title="Отправок в час всего")] = 500


def _limiter(token: str, limit: int, seconds: int) -> SlidingWindow:
    key = (token, limit, seconds)
    if key not in _limiters:
        if len(_limiters) > 10_000:
            _limiters.clear()
        # shared through Redis when configured; named by a digest of the form's token, never the token itself
        digest = hashlib.sha256(token.encode()).hexdigest()[:16]
        _limiters[key] = SlidingWindow(limit, seconds, name=f"form-{digest}-{limit}-{seconds}")
    return _limiters[key]


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def _allowed(config: dict[str, Any], url: str | None) -> bool:
    origin = _origin(url)
    return origin is not None and origin in {o.lower().rstrip("/") for o in config.get("allowed_origins") or []}


async def _read_fields(request: Request, raw: bytes) -> tuple[dict[str, str], bool]:
    """The submitted fields, and whether this is an HTML form (answered with a redirect)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/json":
        payload = parse_json(raw)
        fields: dict[str, str] = {}
        for key, value in payload.items():
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                fields[str(key)] = str(value)
            elif value is not None:
                raise Malformed(f"field {str(key)[:40]!r} must be a string or a number")
        return fields, False
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True,
                                           max_num_fields=MAX_FIELDS * 2, strict_parsing=False)
        except (UnicodeDecodeError, ValueError):
            raise Malformed("the form body is not valid UTF-8 urlencoded data") from None
        return dict(pairs), True
    if content_type == "multipart/form-data":
        try:
            form = await request.form(max_files=0, max_fields=MAX_FIELDS * 2)
        except Exception:  # the multipart parser's own errors (bad boundary, files) are client errors
            raise Malformed("the multipart body could not be read (files are not accepted)") from None
        return {k: v for k, v in form.items() if isinstance(v, str)}, True
    raise Malformed("send application/x-www-form-urlencoded, multipart/form-data or application/json")


def submit(session: Session, account: ChannelAccount, fields: dict[str, str]) -> dict[str, Any]:
    """A human's form submission (spam already filtered) -> a conversation, or a callback request."""
    config = dict(account.config or {})
    if len(fields) > MAX_FIELDS:
        raise field_error("body", f"at most {MAX_FIELDS} fields")
    for key, value in fields.items():
        if len(key) > 64 or len(value) > MAX_FIELD_CHARS:
            raise field_error(key[:64], f"at most {MAX_FIELD_CHARS} characters")
    name = fields.get("name", "").strip()[:200]
    email = fields.get("email", "").strip()
    phone_raw = fields.get("phone", "").strip()
    text = (fields.get("message") or fields.get("text") or fields.get("comment") or "").strip()
    extra = {k: v for k, v in fields.items() if k not in KNOWN and k != config.get("honeypot_field", "website")}
    if config.get("creates") == "callback":
        from otklik.channels.phone.plugin import CallbackIn, request_callback

        if not phone_raw:
            raise field_error("phone", "a callback form needs a phone number")
        comment = "\n".join(p for p in (text, fields.get("preferred_time", "").strip() and
                                        f"Удобное время: {fields['preferred_time'].strip()}") if p)
        out = request_callback(session, account.workspace_id, CallbackIn(
            phone=phone_raw, name=name, comment=comment[:2000],
            request_id=fields.get("submission_id") or None), source=f"form{account.id}",
            extra_meta={"form": {"account_id": account.id, "fields": extra}})
        return {"status": "accepted", "conversation_id": out.conversation_id}
    if not text:
        raise field_error("message", "must not be empty")
    if not email and not phone_raw:
        raise field_error("email", "give an e-mail or a phone number to answer to")
    phone = normalise_phone(phone_raw, field="phone") if phone_raw else ""
    claim = ("email", email) if email else ("phone", phone)
    kind, value = identity_for_claim(session, account.workspace_id, *claim, field=claim[0])
    lines = [text]
    if email and phone:
        lines.append(f"Телефон: {phone}")
    lines += [f"{k}: {v}" for k, v in extra.items()]
    submission_id = fields.get("submission_id", "").strip()
    if len(submission_id) > 100:
        raise field_error("submission_id", "at most 100 characters")
    subject = (fields.get("subject", "").strip() or str(config.get("title") or ""))[:300]
    received = conversations.receive(session, account.workspace_id, conversations.InboundMessage(
        channel=KIND, identity_kind=kind, identity_value=value, text="\n".join(lines), customer_name=name,
        subject=subject, channel_message_id=f"form{account.id}:{submission_id}" if submission_id else None,
        meta={"form": {"account_id": account.id, "email": email or None, "phone": phone or None,
                       "fields": extra}}))
    return {"status": "accepted", "conversation_id": received.conversation.id}


def _cors(config: dict[str, Any], request: Request, response: Response) -> Response:
    origin = request.headers.get("origin")
    if origin and _allowed(config, origin):
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Vary"] = "Origin"
    return response


def _config_for(token: str) -> dict[str, Any]:
    with session_scope(write=False) as session:
        account = webhook_account(session, KIND, token)
        if account is None:
            raise unknown_account()
        return dict(account.config or {})


THANKS = ("<!doctype html><html lang=\"ru\"><meta charset=\"utf-8\"><title>Спасибо</title>"
          "<body style=\"font:16px system-ui;max-width:32rem;margin:3rem auto\"><h1>Спасибо!</h1>"
          "<p>Мы получили ваше сообщение и скоро ответим.</p><p>{back}</p></body></html>")


async def _form_post(token: str, request: Request) -> Response:
    raw = await request.body()
    config = await run_in_threadpool(_config_for, token)
    client_ip = request.client.host if request.client else "unknown"
    _limiter(token, int(config.get("per_form_per_hour", 500)), 3600).hit("form")
    _limiter(token, int(config.get("per_ip_per_hour", 10)), 3600).hit(client_ip)
    fields, is_html = await _read_fields(request, raw)
    honeypot = config.get("honeypot_field", "website")
    if fields.get(honeypot, "").strip():
        result: dict[str, Any] = {"status": "accepted"}  # a bot: same answer, nothing stored
    else:
        result = await run_in_threadpool(run_transaction, lambda session: _submit_by_token(session, token, fields))
    if is_html:
        back = fields.get("_redirect") or request.headers.get("referer")
        if back and _allowed(config, back):
            parts = urllib.parse.urlsplit(back)
            query = urllib.parse.urlencode([*urllib.parse.parse_qsl(parts.query), ("otklik_form", "sent")])
            return RedirectResponse(urllib.parse.urlunsplit(parts._replace(query=query)), status_code=303)
        link = f"<a href=\"{html.escape(back)}\">Назад</a>" if back and _allowed(config, back) else ""
        return HTMLResponse(THANKS.format(back=link), status_code=200)
    public = {"status": result["status"]}  # the conversation id stays internal
    return _cors(config, request, JSONResponse(public, status_code=202))


def _submit_by_token(session: Session, token: str, fields: dict[str, str]) -> dict[str, Any]:
    account = webhook_account(session, KIND, token)
    if account is None:
        raise unknown_account()
    return submit(session, account, fields)


async def _preflight(token: str, request: Request) -> Response:
    config = await run_in_threadpool(_config_for, token)
    response = _cors(config, request, Response(status_code=204))
    if "Access-Control-Allow-Origin" in response.headers:
        response.headers["Access-Control-Allow-Methods"] = "POST"
        response.headers["Access-Control-Allow-Headers"] = "content-type"
        response.headers["Access-Control-Max-Age"] = "600"
    return response


public_router = APIRouter(tags=["forms"])  # mounted at the site root: /forms/<token>
router = APIRouter(tags=["channels"])      # mounted under /api/v1 like every channel webhook


@public_router.post("/forms/{token}", include_in_schema=False)
async def form_post(token: str, request: Request) -> Response:
    return await _form_post(token, request)


@public_router.options("/forms/{token}", include_in_schema=False)
async def form_preflight(token: str, request: Request) -> Response:
    return await _preflight(token, request)


@router.post("/channels/form/webhook/{token}", include_in_schema=False)
async def form_post_api(token: str, request: Request) -> Response:
    return await _form_post(token, request)


@router.options("/channels/form/webhook/{token}", include_in_schema=False)
async def form_preflight_api(token: str, request: Request) -> Response:
    return await _preflight(token, request)


# -- replies go out by e-mail -----------------------------------------------------------------------------

def _email_recipients(recipients: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The customer's e-mail, including an address only claimed on the form (mail to an address reaches
    its owner, so answering there leaks nothing)."""
    result = [(k, v) for k, v in recipients if k == "email"]
    for kind, value in recipients:
        if kind == "external" and value.startswith(f"{CLAIM_PREFIX}email:"):
            result.append(("email", value.removeprefix(f"{CLAIM_PREFIX}email:")))
    return result


def form_reply_check(session: Session, conversation: Conversation, meta: dict[str, Any]) -> str | None:
    values = session.execute(select(Identity.kind, Identity.external_id).where(
        Identity.customer_id == conversation.customer_id)).all()
    if _email_recipients([(k, v) for k, v in values]):
        return None
    return ("This form gave no e-mail address to answer to: call the customer back or reply in another "
            "channel of this customer.")


class FormSender:
    """Replies to a form conversation are e-mails, sent by the workspace's email channel."""

    def __init__(self, workspace_id: int):
        self.workspace_id = workspace_id

    def send(self, message: OutboundMessage) -> str | None:
        recipients = _email_recipients(message.recipients)
        if not recipients:
            raise DeliveryError("the form gave no e-mail address to answer to", permanent=True)
        email_sender = get_sender("email", self.workspace_id)
        if email_sender is None:
            raise NotConnected("email")  # form replies go by e-mail
        return email_sender.send(dataclasses.replace(message, channel="email", recipients=recipients))

    def can_deliver(self) -> bool:
        return get_sender("email", self.workspace_id) is not None


class FormPlugin(ChannelPlugin):
    kind = KIND
    title = "Формы на сайте"
    description = "Форма обратной связи или заказа звонка на вашем сайте: POST /forms/<токен>"
    icon = "✉"
    Config = FormConfig
    has_webhook = True
    router = router

    def register(self) -> None:
        from otklik.conversations.outbox import register_sender

        register_sender(KIND, FormSender)


PLUGIN = FormPlugin()


def register() -> None:
    add_plugin(PLUGIN)
    reply_checks.register(KIND, form_reply_check)
