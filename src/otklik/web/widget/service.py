"""Rules of the chat widget: settings, visitors and their tokens, identity verification, what a visitor sees.

Every message a visitor writes goes through `conversations.service.receive()` (channel "widget"); agents'
replies come back through the outbox. A visitor's claims (a typed email or phone) are never trusted as a
verified identity: only a site's HMAC signature attaches one. Never log a token or a secret.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, User
from otklik.accounts.service import Actor, record_audit
from otklik.conversations import service as conversations
from otklik.conversations.models import Attachment, Conversation, DeliveryStatus, Direction, Message
from otklik.customers import service as customers
from otklik.customers import suggestions, tasks
from otklik.customers.identities import normalise_phone
from otklik.customers.models import Customer, Identity
from otklik.feedback import mystery
from otklik.platform import crypto
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, DomainError, Forbidden, NotFound, Unauthorized, field_error
from otklik.platform.events import Event, after_commit
from otklik.web.widget.models import PageVisit, WidgetSettings, WidgetVisitor

SECRET_PURPOSE = "otklik widget identity secret"  # noqa: S105 - a key-derivation label, not a secret
UPLOAD_PURPOSE = "otklik widget upload"
FILE_PURPOSE = "otklik widget file"
WIDGET_FILE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")
HISTORY_LIMIT = 100
MAX_URL = 2000
MAX_TITLE = 300
LANGUAGES = ("ru", "en")
BUTTON_KINDS = ("chat", "callback", "telegram", "vk", "whatsapp", "max", "email", "phone")
# Links a launcher button may open, per kind: an admin's typo must not turn a button into javascript:.
LINK_HOSTS = {"telegram": ("t.me",), "vk": ("vk.com", "vk.me", "m.vk.com"),
              "whatsapp": ("wa.me", "api.whatsapp.com"), "max": ("max.ru",)}
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


# -- settings -----------------------------------------------------------------------------------------

class Texts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field("", max_length=80)
    welcome: str = Field("", max_length=500)
    offline: str = Field("", max_length=500)


class LauncherButton(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str
    enabled: bool = True
    target: str = Field("", max_length=300)

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if value not in BUTTON_KINDS:
            raise ValueError(f"one of: {', '.join(BUTTON_KINDS)}")
        return value

    @model_validator(mode="after")
    def _target(self) -> LauncherButton:
        self.target = self.target.strip()
        if self.kind in ("chat", "callback"):
            self.target = ""
        elif self.kind in LINK_HOSTS:
            if self.target:
                parts = urlsplit(self.target)
                if parts.scheme != "https" or (parts.hostname or "") not in LINK_HOSTS[self.kind]:
                    raise ValueError(f"a {self.kind} link starts with https://{LINK_HOSTS[self.kind][0]}/")
        elif self.kind == "email" and self.target:
            from otklik.accounts.service import normalise_email

            try:
                self.target = normalise_email(self.target, "target")
            except DomainError:
                raise ValueError("not an email address") from None
        elif self.kind == "phone" and self.target:
            try:
                self.target = normalise_phone(self.target, field="target")
            except DomainError:
                raise ValueError("not a phone number") from None
        if self.enabled and self.kind not in ("chat", "callback") and not self.target:
            raise ValueError(f"an enabled {self.kind} button needs a target")
        return self


class Greeting(BaseModel):
    """Proactive greeting: shown after `delay_seconds` on pages whose path matches `url_pattern`."""

    model_config = ConfigDict(extra="forbid")
    id: str = Field("", max_length=16)
    url_pattern: str = Field(min_length=1, max_length=200)  # a glob: '*' is any run of characters
    delay_seconds: int = Field(10, ge=0, le=600)
    message: dict[str, str] = Field(default_factory=dict)
    enabled: bool = True

    @field_validator("message")
    @classmethod
    def _message(cls, value: dict[str, str]) -> dict[str, str]:
        if not value or set(value) - set(LANGUAGES):
            raise ValueError("texts keyed by language: ru, en")
        if any(len(v) > 500 or not v.strip() for v in value.values()):
            raise ValueError("each text holds 1 to 500 characters")
        return value


class Hours(BaseModel):
    """When the chat is staffed. `always`, `never` (offline form only), `calendar` (a business calendar: the one
    named, else the workspace default, holidays included) or `schedule` (the widget's own weekday ranges, kept for
    settings saved before calendars existed)."""

    model_config = ConfigDict(extra="forbid")
    mode: str = "always"
    timezone: str = "Europe/Moscow"
    days: dict[str, list[tuple[str, str]]] = Field(default_factory=dict)  # "0" = Monday
    calendar_id: int | None = None

    @model_validator(mode="after")
    def _check(self) -> Hours:
        if self.mode not in ("always", "never", "schedule", "calendar"):
            raise ValueError("mode is one of: always, never, calendar, schedule")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None
        for day, ranges in self.days.items():
            if day not in {str(i) for i in range(7)} or len(ranges) > 4:
                raise ValueError("days are '0' (Monday) to '6', at most 4 ranges each")
            for start, end in ranges:
                if not (_HHMM.match(start) and _HHMM.match(end)) or start >= end:
                    raise ValueError("a range is ['HH:MM', 'HH:MM'], start before end")
        return self


class WidgetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    color: str = Field("#2952cc", pattern=r"^#[0-9a-fA-F]{6}$")
    text_color: str = Field("#ffffff", pattern=r"^#[0-9a-fA-F]{6}$")
    position: str = Field("right", pattern=r"^(left|right)$")
    texts: dict[str, Texts] = Field(default_factory=dict)
    buttons: list[LauncherButton] = Field(default_factory=list, max_length=len(BUTTON_KINDS))
    quick_replies: dict[str, list[str]] = Field(default_factory=dict)
    greetings: list[Greeting] = Field(default_factory=list, max_length=30)
    hours: Hours = Field(default_factory=Hours)

    @field_validator("texts")
    @classmethod
    def _texts(cls, value: dict[str, Texts]) -> dict[str, Texts]:
        if set(value) - set(LANGUAGES):
            raise ValueError("languages: ru, en")
        return value

    @field_validator("quick_replies")
    @classmethod
    def _quick(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        if set(value) - set(LANGUAGES):
            raise ValueError("languages: ru, en")
        for replies in value.values():
            if len(replies) > 8 or any(not r.strip() or len(r) > 100 for r in replies):
                raise ValueError("at most 8 quick replies of 1 to 100 characters")
        return value

    @model_validator(mode="after")
    def _unique(self) -> WidgetConfig:
        kinds = [b.kind for b in self.buttons]
        if len(kinds) != len(set(kinds)):
            raise ValueError("each launcher button kind at most once")
        for rule in self.greetings:
            rule.id = rule.id if re.fullmatch(r"[a-z0-9]{1,16}", rule.id) else secrets.token_hex(4)
        return self


DEFAULT_TEXTS = {
    "ru": {"title": "Напишите нам", "welcome": "Здравствуйте! Чем можем помочь?",
           "offline": "Сейчас никого нет на месте. Оставьте сообщение — мы ответим, как только начнём работу."},
    "en": {"title": "Chat with us", "welcome": "Hello! How can we help?",
           "offline": "Nobody is here right now. Leave a message and we will answer as soon as we are back."},
}
# The seeds ask for a "multi-button" launcher (chat, messengers, callback form) and one-click buttons for typical
# questions (seeds/000: «мультикнопка», «быстрые кнопки для типовых запросов»; seeds/004: callback on one click).
DEFAULT_CONFIG: dict[str, Any] = {
    "texts": DEFAULT_TEXTS,
    "buttons": [{"kind": "chat"}, {"kind": "callback"}],
    "quick_replies": {"ru": ["Где мой заказ?", "Как оформить возврат?", "Сроки доставки"],
                      "en": ["Where is my order?", "How do I return an item?", "Delivery times"]},
}


def get_settings_row(session: Session, workspace_id: int) -> WidgetSettings:
    """The workspace's widget settings, created with defaults (and a fresh public key) on first use."""
    row = session.get(WidgetSettings, workspace_id)
    if row is None:
        row = WidgetSettings(workspace_id=workspace_id, public_key="wk_" + secrets.token_urlsafe(18),
                             enabled=True, config=WidgetConfig.model_validate(DEFAULT_CONFIG).model_dump(),
                             allowed_origins=[])
        session.add(row)
        session.flush()
    return row


def settings_by_key(session: Session, key: str) -> WidgetSettings:
    row = session.scalar(select(WidgetSettings).where(WidgetSettings.public_key == key[:40])) if key else None
    if row is None or not row.enabled:
        raise NotFound("no enabled widget has this key", code="unknown_widget")
    return row


def normalise_origin(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/") or parts.query:
        raise ValueError(f"{raw!r} is not an origin such as https://shop.example")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def update_settings(session: Session, actor: Actor, *, config: WidgetConfig | None = None,
                    allowed_origins: list[str] | None = None, enabled: bool | None = None) -> WidgetSettings:
    actor.require(Role.admin)
    row = get_settings_row(session, actor.workspace_id)
    before = {"enabled": row.enabled, "allowed_origins": list(row.allowed_origins or [])}
    if config is not None:
        row.config = config.model_dump()
    if allowed_origins is not None:
        origins: list[str] = []
        for i, raw in enumerate(allowed_origins):
            try:
                origins.append(normalise_origin(raw))
            except ValueError as exc:
                raise field_error(f"allowed_origins.{i}", str(exc)) from None
        row.allowed_origins = list(dict.fromkeys(origins))
    if enabled is not None:
        row.enabled = enabled
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="widget_settings", entity_id=actor.workspace_id, action="updated",
                 before=before, after={"enabled": row.enabled, "allowed_origins": row.allowed_origins})
    return row


def rotate_identity_secret(session: Session, actor: Actor) -> str:
    """A new signing secret for identity verification; shown once to the admin, stored encrypted."""
    actor.require(Role.admin)
    row = get_settings_row(session, actor.workspace_id)
    secret = "wis_" + secrets.token_urlsafe(32)
    row.identity_secret = crypto.encrypt(secret, purpose=SECRET_PURPOSE)
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="widget_settings", entity_id=actor.workspace_id,
                 action="identity_secret_rotated")
    return secret


def origin_allowed(row: WidgetSettings, origin: str | None, own_host: str) -> bool:
    """An empty list allows every site; Otklik's own pages (settings preview, demo) are always allowed."""
    if not origin or not row.allowed_origins:
        return True
    try:
        normalised = normalise_origin(origin)
    except ValueError:
        return False
    return normalised in row.allowed_origins or urlsplit(normalised).netloc == own_host


def is_online(config: dict[str, Any], now: dt.datetime | None = None, *, session: Session | None = None,
              workspace_id: int | None = None) -> bool:
    hours = config.get("hours") or {}
    mode = hours.get("mode", "always")
    if mode == "always":
        return True
    if mode == "never":
        return False
    if mode == "calendar":
        if session is None or workspace_id is None:
            return True
        from otklik.calendars.models import Calendar
        from otklik.calendars.service import default_calendar, engine_of

        row = session.get(Calendar, hours["calendar_id"]) if hours.get("calendar_id") else None
        if row is None or row.workspace_id != workspace_id:
            row = default_calendar(session, workspace_id)
        return True if row is None else engine_of(row).is_open(now or utcnow())
    local = (now or utcnow()).astimezone(ZoneInfo(hours.get("timezone") or "Europe/Moscow"))
    hhmm = local.strftime("%H:%M")
    return any(start <= hhmm < end for start, end in (hours.get("days") or {}).get(str(local.weekday()), []))


def public_config(row: WidgetSettings, language: str, session: Session | None = None) -> dict[str, Any]:
    """What the widget needs to draw itself, in one language; nothing secret."""
    config = row.config or {}
    lang = language if language in LANGUAGES else "ru"
    texts = {**DEFAULT_TEXTS[lang], **{k: v for k, v in (config.get("texts") or {}).get(lang, {}).items() if v}}
    buttons = []
    for button in config.get("buttons") or []:
        if not button.get("enabled", True):
            continue
        kind, target = button["kind"], button.get("target", "")
        href = ("mailto:" + target if kind == "email" else "tel:" + target if kind == "phone"
                else target)
        buttons.append({"kind": kind, "href": href})
    return {
        "language": lang, "color": config.get("color", "#2952cc"), "text_color": config.get("text_color", "#ffffff"),
        "position": config.get("position", "right"), "texts": texts, "buttons": buttons,
        "quick_replies": (config.get("quick_replies") or {}).get(lang, []), "online": is_online(config, session=session, workspace_id=row.workspace_id),
        "identity_required_signature": bool(row.identity_secret),
    }


# -- greetings ----------------------------------------------------------------------------------------

def glob_match(pattern: str, text: str) -> bool:
    """'*' matches any run of characters; linear-time two-pointer matching, no regex built from user input."""
    p = t = 0
    star = -1
    mark = 0
    while t < len(text):
        if p < len(pattern) and pattern[p] != "*" and pattern[p] == text[t]:
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "*":
            star, mark = p, t
            p += 1
        elif star != -1:
            p = star + 1
            mark += 1
            t = mark
        else:
            return False
    while p < len(pattern) and pattern[p] == "*":
        p += 1
    return p == len(pattern)


def greeting_for(config: dict[str, Any], url: str, language: str) -> dict[str, Any] | None:
    """The first enabled rule whose pattern matches the page's path (+ query), in the visitor's language."""
    parts = urlsplit(url)
    path = parts.path or "/"
    target = path + ("?" + parts.query if parts.query else "")
    for rule in config.get("greetings") or []:
        if not rule.get("enabled", True):
            continue
        if glob_match(rule["url_pattern"], target) or glob_match(rule["url_pattern"], path):
            messages = rule.get("message") or {}
            text = messages.get(language) or messages.get("ru") or next(iter(messages.values()), "")
            return {"id": rule["id"], "text": text, "delay_seconds": rule.get("delay_seconds", 10)}
    return None


# -- visitors -----------------------------------------------------------------------------------------

def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SiteIdentity:
    """What the site says about its signed-in customer; trusted only with a valid `user_hash`."""

    user_id: str
    user_hash: str
    email: str | None = None
    name: str | None = None


def identity_signature(secret: str, user_id: str) -> str:
    """HMAC-SHA256(secret, user_id) as lowercase hex: what the site's server computes and passes as user_hash."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(row: WidgetSettings, claim: SiteIdentity) -> bool:
    if not row.identity_secret or not claim.user_hash:
        return False
    secret = crypto.decrypt(row.identity_secret, purpose=SECRET_PURPOSE)
    return hmac.compare_digest(identity_signature(secret, claim.user_id).encode(),
                               claim.user_hash.strip().lower().encode())


def visitor_by_token(session: Session, token: str | None, *, for_update: bool = False) -> WidgetVisitor:
    if not token or len(token) > 200:
        raise Unauthorized("send the visitor token from POST /api/v1/widget/session in X-Otklik-Visitor",
                           code="visitor_unknown")
    stmt = select(WidgetVisitor).where(WidgetVisitor.token_hash == _hash_token(token))
    if for_update:
        stmt = stmt.with_for_update()
    visitor = session.scalar(stmt)
    if visitor is None:
        raise Unauthorized("the visitor token is unknown; start a new session", code="visitor_unknown")
    return visitor


def _live_customer(session: Session, customer_id: int | None) -> Customer | None:
    customer = session.get(Customer, customer_id) if customer_id else None
    while customer is not None and customer.merged_into_id is not None:
        customer = session.get(Customer, customer.merged_into_id)
    return customer


def _visitor_customer(session: Session, visitor: WidgetVisitor, name: str = "") -> Customer:
    """The visitor's customer profile, created on first need with the visitor's "widget" identity."""
    customer = _live_customer(session, visitor.customer_id)
    if customer is None:
        customer, _ = customers.resolve_or_create(session, visitor.workspace_id, kind="widget",
                                                  external_id=visitor.public_id, name=name,
                                                  language=visitor.language)
    visitor.customer_id = customer.id
    return customer


def start_session(session: Session, row: WidgetSettings, *, token: str | None, language: str | None,
                  claim: SiteIdentity | None) -> tuple[WidgetVisitor, str | None]:
    """Resume the visitor of `token` (same workspace) or create a new one; returns (visitor, new token or None).

    A claim with a bad signature is refused with 403 before anything is written.
    """
    if claim is not None and not verify_identity(row, claim):
        raise Forbidden("the identity signature (user_hash) is not valid for this user_id; it was ignored",
                        code="identity_rejected", fields=[{"field": "identity.user_hash", "message": "invalid"}])
    visitor = None
    if token:
        found = session.scalar(select(WidgetVisitor).where(WidgetVisitor.token_hash == _hash_token(token[:200])))
        if found is not None and found.workspace_id == row.workspace_id:
            visitor = found
    new_token = None
    if visitor is None:
        new_token = "wv_" + secrets.token_urlsafe(32)
        visitor = WidgetVisitor(workspace_id=row.workspace_id, token_hash=_hash_token(new_token),
                                public_id="v" + secrets.token_hex(16), language=language)
        session.add(visitor)
        session.flush()
    visitor.last_seen_at = utcnow()
    if language:
        visitor.language = language
    if claim is not None:
        _attach_verified(session, visitor, claim)
    return visitor, new_token


def _attach_verified(session: Session, visitor: WidgetVisitor, claim: SiteIdentity) -> None:
    """Recognise a signed-in shop customer: one profile holds the visitor, the shop's id and the email.

    The site vouches for both with its signature, so the profile that already holds that shop id (or else that
    email, e.g. from the email channel) absorbs the visitor's profile. Emails typed into forms never get here.
    """
    system = Actor.system(visitor.workspace_id, kind="customer")
    email = None
    if claim.email:
        from otklik.accounts.service import normalise_email

        email = normalise_email(claim.email, "identity.email")
    current = _visitor_customer(session, visitor, name=claim.name or "")
    by_external = customers.find_by_identity(session, visitor.workspace_id, "external", claim.user_id)
    by_email = customers.find_by_identity(session, visitor.workspace_id, "email", email) if email else None
    if by_email is not None and not _may_absorb_by_email(session, visitor.workspace_id, by_email.id, email or ""):
        by_email = None
    target = _live_customer(session, by_external.id if by_external else by_email.id if by_email else current.id)
    assert target is not None
    for other in (current, _live_customer(session, by_email.id) if by_email else None):
        if other is not None and other.id != target.id:
            target = customers.merge_customers(session, system, target_id=target.id, source_id=other.id)
    if by_external is None:
        customers.add_identity(session, system, target.id, customers.IdentityInput(
            "external", claim.user_id, verified=True))
    if email:
        owned = session.scalar(select(Identity).where(Identity.workspace_id == visitor.workspace_id,
                                                      Identity.kind == "email", Identity.external_id == email))
        if owned is None:
            customers.add_identity(session, system, target.id, customers.IdentityInput("email", email, verified=True))
        elif owned.customer_id == target.id:
            owned.verified = True
    if claim.name and not target.name:
        target.name = claim.name[:200]
    visitor.customer_id = target.id
    visitor.external_id = claim.user_id


def _may_absorb_by_email(session: Session, workspace_id: int, owner_id: int, email: str) -> bool:
    """Whether a signed-in visitor may join the profile that holds `email`.

    Yes when the address is verified there, or when that profile is not another widget visitor's (e.g. it came
    from the email channel). A widget visitor who merely typed someone's address into the offline form must
    not end up sharing a profile, and so a chat history, with the real owner.
    """
    identity = session.scalar(select(Identity).where(Identity.workspace_id == workspace_id, Identity.kind == "email",
                                                     Identity.external_id == email))
    if identity is not None and identity.verified:
        return True
    return session.scalar(select(Identity.id).where(Identity.customer_id == owner_id, Identity.kind == "widget")
                          .limit(1)) is None


def _move_visitors(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    result = session.execute(update(WidgetVisitor).where(WidgetVisitor.workspace_id == workspace_id,
                                                         WidgetVisitor.customer_id == source_id)
                             .values(customer_id=target_id))
    return int(getattr(result, "rowcount", 0) or 0)


customers.register_merge_mover("widget_visitors", _move_visitors)


# -- messages -----------------------------------------------------------------------------------------

def upload_handle(visitor: WidgetVisitor, attachment_id: int) -> str:
    """Proof that this visitor uploaded this attachment (ids are guessable; the handle is not)."""
    return f"{attachment_id}.{crypto.signature(f'{visitor.id}:{attachment_id}', purpose=UPLOAD_PURPOSE)}"


def _attachment_ids(visitor: WidgetVisitor, handles: list[str]) -> tuple[int, ...]:
    ids = []
    for i, handle in enumerate(handles):
        raw_id = handle.partition(".")[0]
        if not raw_id.isdigit() or len(raw_id) > 18 or not hmac.compare_digest(
                upload_handle(visitor, int(raw_id)).encode(), handle.encode()):
            raise field_error(f"attachments.{i}", "not an upload of this visitor")
        ids.append(int(raw_id))
    return tuple(ids)


def file_url(workspace_id: int, attachment_id: int) -> str:
    sig = crypto.signature(f"{workspace_id}:{attachment_id}", purpose=FILE_PURPOSE)
    return f"/api/v1/widget/file?a={attachment_id}&w={workspace_id}&s={sig}"


def check_file_signature(workspace_id: int, attachment_id: int, sig: str) -> bool:
    expected = crypto.signature(f"{workspace_id}:{attachment_id}", purpose=FILE_PURPOSE)
    return hmac.compare_digest(expected.encode(), sig.encode())


def send_message(session: Session, visitor: WidgetVisitor, *, client_id: str, text: str,
                 attachments: list[str] | None = None, meta: dict[str, Any] | None = None
                 ) -> conversations.Received:
    """A visitor's message. `client_id` (generated in the browser) makes a retry a no-op, not a duplicate."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", client_id or ""):
        raise field_error("client_id", "8 to 64 letters, digits, - or _")
    customer = _visitor_customer(session, visitor)
    received = conversations.receive(session, visitor.workspace_id, conversations.InboundMessage(
        channel="widget", identity_kind="widget", identity_value=visitor.public_id, text=text,
        channel_message_id=f"{visitor.public_id}:{client_id}", conversation_id=visitor.conversation_id,
        attachment_ids=_attachment_ids(visitor, attachments or []), language=visitor.language,
        customer_name=customer.name, meta={"client_id": client_id, **(meta or {})}))
    if received.conversation.channel == "widget":
        visitor.conversation_id = received.conversation.id
    visitor.last_seen_at = utcnow()
    return received


def message_payload(session: Session, message: Message, names: dict[int, str] | None = None) -> dict[str, Any]:
    """A message as the visitor sees it: no internal data, agent's first name only."""
    author = ""
    if message.author_user_id:
        if names is not None and message.author_user_id in names:
            author = names[message.author_user_id]
        else:
            user = session.get(User, message.author_user_id)
            author = (user.name or "").split(" ")[0] if user else ""
    atts = conversations.attachments_of(session, [message.id])[message.id]
    return {
        "id": message.id, "conversation_id": message.conversation_id,
        "from": "visitor" if message.direction == Direction.inbound.value else "agent",
        "author": author, "text": message.body_text, "status": message.delivery_status,
        "client_id": (message.meta or {}).get("client_id"), "created_at": message.created_at.isoformat(),
        "attachments": [{"name": a.filename, "type": a.content_type, "size": a.size,
                         "url": file_url(message.workspace_id, a.id)} for a in atts],
    }


def visible_to_visitor(message: Message) -> bool:
    if message.is_internal:
        return False
    if message.direction == Direction.inbound.value:
        return True
    # an agent's reply shows once the outbox handed it over (then "read receipts" cannot race the outbox)
    return message.delivery_status in (DeliveryStatus.sent.value, DeliveryStatus.delivered.value,
                                       DeliveryStatus.read.value)


def history(session: Session, visitor: WidgetVisitor, *, after_id: int = 0, limit: int = HISTORY_LIMIT
            ) -> list[dict[str, Any]]:
    """The visitor's widget conversations' public messages, oldest first (the newest `limit`)."""
    customer = _live_customer(session, visitor.customer_id)
    if customer is None:
        return []
    conv_ids = select(Conversation.id).where(Conversation.workspace_id == visitor.workspace_id,
                                             Conversation.customer_id == customer.id,
                                             Conversation.channel == "widget")
    rows = list(session.scalars(select(Message).where(
        Message.conversation_id.in_(conv_ids), Message.id > after_id, Message.is_internal.is_(False))
        .order_by(Message.id.desc()).limit(limit)))
    rows.reverse()
    return [message_payload(session, m) for m in rows if visible_to_visitor(m)]


def visitor_conversation_ids(session: Session, visitor: WidgetVisitor) -> set[int]:
    customer = _live_customer(session, visitor.customer_id)
    if customer is None:
        return set()
    return set(session.scalars(select(Conversation.id).where(
        Conversation.workspace_id == visitor.workspace_id, Conversation.customer_id == customer.id,
        Conversation.channel == "widget")))


def mark_seen(session: Session, visitor: WidgetVisitor, *, up_to_id: int, status: str) -> int:
    """The visitor's browser shows agents' replies up to `up_to_id`: their status moves forward only."""
    if status not in ("delivered", "read"):
        raise field_error("status", "delivered or read")
    conv_ids = visitor_conversation_ids(session, visitor)
    if not conv_ids:
        return 0
    before = [DeliveryStatus.sent.value] + ([DeliveryStatus.delivered.value] if status == "read" else [])
    rows = list(session.scalars(select(Message).where(
        Message.workspace_id == visitor.workspace_id, Message.conversation_id.in_(conv_ids),
        Message.direction == Direction.outbound.value, Message.id <= up_to_id,
        Message.delivery_status.in_(before)).order_by(Message.id).limit(500)))
    for message in rows:
        message.delivery_status = status
        after_commit(session, Event("message.updated", message.workspace_id, {
            "id": message.id, "conversation_id": message.conversation_id, "delivery_status": status,
            "delivery_error": None}))
    return len(rows)


# -- pages, callbacks, offline messages ---------------------------------------------------------------

def clean_page_url(url: str) -> str:
    url = (url or "").strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise field_error("url", "an http(s) address")
    if len(url) > MAX_URL:
        raise field_error("url", f"at most {MAX_URL} characters")
    return url


def record_page_view(session: Session, visitor: WidgetVisitor, *, url: str, title: str) -> PageVisit:
    visit = PageVisit(workspace_id=visitor.workspace_id, visitor_id=visitor.id, url=clean_page_url(url),
                      title=" ".join((title or "").split())[:MAX_TITLE])
    session.add(visit)
    visitor.last_seen_at = utcnow()
    session.flush()
    if visitor.customer_id:
        after_commit(session, Event("widget.page_view", visitor.workspace_id, {
            "customer_id": visitor.customer_id, "url": visit.url, "title": visit.title,
            "visited_at": visit.visited_at.isoformat()}))
    return visit


def recent_visits(session: Session, workspace_id: int, customer_id: int, limit: int = 20) -> list[dict[str, Any]]:
    """Pages the customer's browsers opened, newest first: what an agent sees beside the conversation."""
    rows = session.execute(
        select(PageVisit.url, PageVisit.title, PageVisit.visited_at)
        .join(WidgetVisitor, WidgetVisitor.id == PageVisit.visitor_id)
        .where(WidgetVisitor.workspace_id == workspace_id, WidgetVisitor.customer_id == customer_id)
        .order_by(PageVisit.id.desc()).limit(max(1, min(limit, 200))))
    return [{"url": url, "title": title, "visited_at": at} for url, title, at in rows]


def request_callback(session: Session, visitor: WidgetVisitor, *, name: str, phone: str, preferred_time: str,
                     client_id: str) -> tuple[conversations.Received, int]:
    """A callback request: a conversation on the phone channel (unverified phone) and a task for an agent."""
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise field_error("name", "1 to 100 characters")
    e164 = normalise_phone(phone, field="phone")
    # a typed number is a claim: it never lands on a verified customer's profile (see customers.suggestions)
    kind, value = suggestions.identity_for_claim(session, visitor.workspace_id, "phone", e164, field="phone")
    preferred_time = " ".join(preferred_time.split())[:100]
    if not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", client_id or ""):
        raise field_error("client_id", "8 to 64 letters, digits, - or _")
    text = f"Просьба перезвонить / Callback request: {name}, {e164}" + (
        f"; удобное время / preferred time: {preferred_time}" if preferred_time else "")
    received = conversations.receive(session, visitor.workspace_id, conversations.InboundMessage(
        channel="phone", identity_kind=kind, identity_value=value, text=text, customer_name=name,
        channel_message_id=f"callback:{visitor.public_id}:{client_id}", subject=f"Перезвонить: {name}",
        language=visitor.language, meta={"callback": {"name": name, "phone": e164, "preferred_time": preferred_time,
                                                      "visitor": visitor.public_id}}))
    if received.duplicate:
        task = session.scalar(select(tasks.Task).where(tasks.Task.conversation_id == received.conversation.id)
                              .order_by(tasks.Task.id))
        return received, task.id if task else 0
    task = tasks.create_task(session, visitor.workspace_id, customer_id=received.conversation.customer_id,
                             title=f"Перезвонить {name} {e164}", conversation_id=received.conversation.id,
                             note=f"Удобное время: {preferred_time}" if preferred_time else "")
    return received, task.id


def leave_offline_message(session: Session, visitor: WidgetVisitor, *, name: str, email: str, phone: str,
                          text: str, client_id: str) -> conversations.Received:
    """The offline form: a widget conversation carrying the contact the visitor typed (unverified)."""
    name = " ".join(name.split())[:100]
    contact: dict[str, str] = {}
    if email.strip():
        from otklik.accounts.service import normalise_email

        contact["email"] = normalise_email(email, "email")
    if phone.strip():
        contact["phone"] = normalise_phone(phone, field="phone")
    if not contact:
        raise field_error("email", "leave an email or a phone so we can answer")
    if not text.strip():
        raise field_error("text", "write your question")
    customer = _visitor_customer(session, visitor, name=name)
    if name and not customer.name:
        customer.name = name
    system = Actor.system(visitor.workspace_id, kind="customer")
    for kind, value in contact.items():
        # an unverified identity, and only when nobody holds it: a typed address never merges two people
        if customers.find_by_identity(session, visitor.workspace_id, kind, value) is None:
            customers.add_identity(session, system, customer.id, customers.IdentityInput(kind, value))
    lines = " / ".join(f"{k}: {v}" for k, v in contact.items())
    return send_message(session, visitor, client_id=client_id, text=f"{text.strip()}\n\n[{lines}]",
                        meta={"offline": True, "contact": contact})


def get_visitor_customer(session: Session, actor: Actor, customer_id: int) -> Customer:
    customer = customers.get_customer(session, actor, customer_id)
    if customer.merged_into_id is not None:
        raise Conflict(f"customer {customer_id} was merged into {customer.merged_into_id}", code="merged")
    return customer


def attachment_for_file(session: Session, workspace_id: int, attachment_id: int) -> Attachment:
    att = session.get(Attachment, attachment_id)
    if att is None or att.workspace_id != workspace_id or att.message_id is None:
        raise NotFound("file not found")
    return att


def open_test_session(session: Session, workspace_id: int, text: str, language: str) -> int:
    """A mystery-shopper run (feedback/mystery.py): a new visitor of the workspace's widget sends `text` through
    the same steps as the widget's API (a session, then a message); returns the conversation it opened."""
    row = get_settings_row(session, workspace_id)
    if not row.enabled:
        raise Conflict("the website widget is turned off: turn it on to run a mystery shopper", code="widget_off")
    visitor, _ = start_session(session, row, token=None, language=language, claim=None)
    received = send_message(session, visitor, client_id="mystery-" + secrets.token_hex(8), text=text)
    return received.conversation.id


mystery.register_opener(open_test_session)  # the website widget is the mystery shopper's way in
