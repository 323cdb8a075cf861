"""Reply templates ("canned responses") and their variables: `{{customer.name}}`, `{{order_number}}`...

Templates are written by staff but filled with customer data, so they are never evaluated: a tiny
substitution replaces known names with plain text and leaves everything else (`{{__class__}}`) as written,
listed as unresolved so the UI can stop the agent from sending a half-filled reply.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, func, or_, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import ROLE_RANK, Role, User, Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import Conversation, Direction, Message
from otklik.conversations.service import get_conversation
from otklik.customers.models import Customer
from otklik.platform.db import Base, UTCDateTime, utcnow
from otklik.platform.errors import Conflict, Forbidden, NotFound, field_error

MAX_BODY = 10_000
MAX_NAME = 120
MAX_VARIABLES = 50
MAX_VARIABLE_VALUE = 1000
SHORTCUT = re.compile(r"^[\w-]{1,48}$")
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
KNOWN_VARIABLES = ("customer.name", "customer.first_name", "customer.loyalty_tier", "agent.name",
                   "agent.first_name", "conversation.number", "order_number", "workspace.name")
# attributes an integration may set on the customer for the order number (CRM field names vary)
ORDER_ATTRIBUTE_KEYS = ("order_number", "order", "order_id", "last_order", "номер_заказа")
# "заказ № 12345", "заказа 12345", "order #A-1234", "номер заказа: 12345", "№12345"
ORDER_IN_TEXT = re.compile(
    r"(?:заказ[а-я]*|order)\s*(?:(?:№|#|no\.?|n\.|номер|number)\s*)?[:\-]?\s*"
    r"(?P<a>[A-Za-zА-Яа-я]{0,4}-?\d{3,12})\b"
    r"|(?:№|#)\s*(?P<b>\d{3,12})\b",
    re.IGNORECASE)
MESSAGES_SCANNED = 50


class ReplyTemplate(Base):
    __tablename__ = "reply_templates"
    __table_args__ = (
        UniqueConstraint("workspace_id", "shortcut"),
        Index("ix_reply_templates_ws_name", "workspace_id", "name"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    shortcut: Mapped[str | None] = mapped_column(String(48))
    body: Mapped[str] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(8))
    # None: shared with the whole workspace; a user id: that agent's personal template
    owner_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


# -- substitution -------------------------------------------------------------------------------------

def variables_in(body: str) -> list[str]:
    """Variable names used by a template body, in order of first use."""
    seen: dict[str, None] = {}
    for match in VARIABLE.finditer(body):
        seen.setdefault(match.group(1), None)
    return list(seen)


def substitute(body: str, values: Mapping[str, str | None]) -> tuple[str, list[str]]:
    """Replace `{{name}}` by `values[name]` (plain text, inserted verbatim, never re-scanned).

    Names without a non-empty value stay in the text as written and are returned as unresolved.
    """
    unresolved: dict[str, None] = {}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        value = values.get(name)
        if value is None or not str(value).strip():
            unresolved.setdefault(name, None)
            return match.group(0)
        return str(value)

    return VARIABLE.sub(replace, body), list(unresolved)


def find_order_number(texts: list[str]) -> str | None:
    """The first order number mentioned in `texts` (newest first)."""
    for text in texts:
        # whitespace runs collapsed and the length capped: the pattern stays linear on hostile input
        match = ORDER_IN_TEXT.search(" ".join((text or "")[:20_000].split()))
        if match:
            return match.group("a") or match.group("b")
    return None


@dataclass(frozen=True)
class Rendered:
    text: str
    unresolved: list[str]
    values: dict[str, str | None]


def _first_name(name: str | None) -> str | None:
    parts = (name or "").split()
    return parts[0] if parts else None


def context_values(session: Session, actor: Actor, conversation_id: int | None) -> dict[str, str | None]:
    """Values of the known variables for a reply in a conversation (or just agent/workspace without one)."""
    values: dict[str, str | None] = dict.fromkeys(KNOWN_VARIABLES)
    workspace = session.get(Workspace, actor.workspace_id)
    values["workspace.name"] = workspace.name if workspace else None
    if actor.user_id is not None:
        user = session.get(User, actor.user_id)
        if user is not None:
            values["agent.name"] = user.name
            values["agent.first_name"] = _first_name(user.name)
    if conversation_id is None:
        return values
    conversation = get_conversation(session, actor, conversation_id)
    customer = session.get(Customer, conversation.customer_id)
    values["conversation.number"] = str(conversation.number)
    if customer is not None:
        values["customer.name"] = customer.name or None
        values["customer.first_name"] = _first_name(customer.name)
        values["customer.loyalty_tier"] = customer.loyalty_tier  # the tier's name (orders.loyalty computes it)
        attributes = customer.attributes or {}
        for key in ORDER_ATTRIBUTE_KEYS:
            value = attributes.get(key)
            if isinstance(value, str | int) and str(value).strip():
                values["order_number"] = str(value).strip()[:64]
                break
    if values["order_number"] is None:
        # What the customer wrote, this conversation first, then their earlier ones: the agent never asks
        # again for a number the customer already gave.
        texts = list(session.scalars(
            select(Message.body_text).join(Conversation, Conversation.id == Message.conversation_id)
            .where(Message.workspace_id == actor.workspace_id,
                   Conversation.customer_id == conversation.customer_id,
                   Message.direction == Direction.inbound.value)
            .order_by((Message.conversation_id == conversation.id).desc(), Message.id.desc())
            .limit(MESSAGES_SCANNED)))
        values["order_number"] = find_order_number(texts)
    return values


def _check_overrides(variables: Mapping[str, Any] | None) -> dict[str, str]:
    if not variables:
        return {}
    if len(variables) > MAX_VARIABLES:
        raise field_error("variables", f"at most {MAX_VARIABLES} variables")
    result = {}
    for name, value in variables.items():
        if not VARIABLE.fullmatch("{{" + str(name) + "}}"):
            raise field_error(f"variables.{name}"[:80], "a variable name is letters, digits, _ and dots")
        if value is not None and not isinstance(value, str | int | float):
            raise field_error(f"variables.{name}", "must be text")
        text = "" if value is None else str(value)
        if len(text) > MAX_VARIABLE_VALUE:
            raise field_error(f"variables.{name}", f"at most {MAX_VARIABLE_VALUE} characters")
        result[str(name)] = text
    return result


def render_body(session: Session, actor: Actor, body: str, *, conversation_id: int | None = None,
                variables: Mapping[str, Any] | None = None) -> Rendered:
    values = context_values(session, actor, conversation_id)
    values.update(_check_overrides(variables))
    text, unresolved = substitute(body, values)
    return Rendered(text=text, unresolved=unresolved, values=values)


def sample_values(session: Session, actor: Actor) -> dict[str, str]:
    """Made-up values for previewing a template without a conversation."""
    context = context_values(session, actor, None)
    return {"customer.name": "Анна Смирнова", "customer.first_name": "Анна", "conversation.number": "1024",
            "order_number": "12345", "agent.name": context["agent.name"] or "Мария",
            "agent.first_name": context["agent.first_name"] or "Мария",
            "workspace.name": context["workspace.name"] or ""}


# -- the templates themselves -------------------------------------------------------------------------

def _visible(actor: Actor) -> Any:
    return or_(ReplyTemplate.owner_user_id.is_(None), ReplyTemplate.owner_user_id == actor.user_id)


def _can_edit(actor: Actor, template: ReplyTemplate) -> None:
    if template.owner_user_id is not None and template.owner_user_id == actor.user_id:
        return
    actor.require(Role.supervisor)


def get_template(session: Session, actor: Actor, template_id: int) -> ReplyTemplate:
    template = session.get(ReplyTemplate, template_id)
    if (template is None or template.workspace_id != actor.workspace_id
            or template.owner_user_id not in (None, actor.user_id)):
        raise NotFound(f"template {template_id} not found")
    return template


def list_templates(session: Session, actor: Actor, *, q: str | None = None, limit: int = 100
                   ) -> list[ReplyTemplate]:
    """Shared templates and the actor's own; `q` matches the shortcut, name or text (shortcut hits first)."""
    stmt = select(ReplyTemplate).where(ReplyTemplate.workspace_id == actor.workspace_id, _visible(actor))
    q = (q or "").strip().lstrip("/").lower()
    if q:
        like = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.where(or_(func.lower(ReplyTemplate.shortcut).like(like, escape="\\"),
                              func.lower(ReplyTemplate.name).like(like, escape="\\"),
                              func.lower(ReplyTemplate.body).like(like, escape="\\")))
        prefix = q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        stmt = stmt.order_by(func.lower(ReplyTemplate.shortcut).like(prefix, escape="\\").desc())
    return list(session.scalars(stmt.order_by(ReplyTemplate.name, ReplyTemplate.id).limit(limit)))


def _clean(name: str | None, shortcut: str | None, body: str | None) -> None:
    if name is not None and not name.strip():
        raise field_error("name", "must not be empty")
    if name is not None and len(name) > MAX_NAME:
        raise field_error("name", f"at most {MAX_NAME} characters")
    if shortcut is not None and not SHORTCUT.match(shortcut):
        raise field_error("shortcut", "1-48 letters, digits, '_' or '-' (typed after '/')")
    if body is not None and not body.strip():
        raise field_error("body", "must not be empty")
    if body is not None and len(body) > MAX_BODY:
        raise field_error("body", f"at most {MAX_BODY} characters")


def _check_shortcut_free(session: Session, actor: Actor, shortcut: str | None, template_id: int | None) -> None:
    if not shortcut:
        return
    taken = session.scalar(select(ReplyTemplate.id).where(ReplyTemplate.workspace_id == actor.workspace_id,
                                                          ReplyTemplate.shortcut == shortcut))
    if taken is not None and taken != template_id:
        raise Conflict(f"the shortcut /{shortcut} is already used", code="duplicate",
                       fields=[{"field": "shortcut", "message": "already used"}])


def create_template(session: Session, actor: Actor, *, name: str, body: str, shortcut: str | None = None,
                    language: str | None = None, personal: bool = False) -> ReplyTemplate:
    """Shared templates need a supervisor or admin; any agent may keep personal ones."""
    if not personal:
        actor.require(Role.supervisor)
    elif actor.user_id is None:
        raise Forbidden("personal templates belong to a user")
    shortcut = shortcut.strip().lstrip("/") if shortcut else None
    _clean(name, shortcut, body)
    _check_shortcut_free(session, actor, shortcut, None)
    template = ReplyTemplate(workspace_id=actor.workspace_id, name=name.strip(), shortcut=shortcut or None,
                             body=body, language=language, owner_user_id=actor.user_id if personal else None,
                             created_by=actor.user_id)
    session.add(template)
    session.flush()
    record_audit(session, actor, entity_type="template", entity_id=template.id, action="created",
                 after={"name": template.name, "shortcut": template.shortcut, "personal": personal})
    return template


def update_template(session: Session, actor: Actor, template_id: int, changes: dict[str, Any]) -> ReplyTemplate:
    template = get_template(session, actor, template_id)
    _can_edit(actor, template)
    if changes.get("shortcut"):
        changes["shortcut"] = str(changes["shortcut"]).strip().lstrip("/") or None
    _clean(changes.get("name"), changes.get("shortcut"), changes.get("body"))
    if "name" in changes and changes["name"] is None:
        raise field_error("name", "must not be empty")
    if "body" in changes and changes["body"] is None:
        raise field_error("body", "must not be empty")
    if changes.get("shortcut"):
        _check_shortcut_free(session, actor, changes["shortcut"], template.id)
    before = {k: getattr(template, k) for k in changes}
    for key, value in changes.items():
        if key not in {"name", "shortcut", "body", "language"}:
            raise field_error(key, "cannot be changed")
        setattr(template, key, value.strip() if key == "name" else (value or None) if key == "shortcut" else value)
    template.updated_at = utcnow()
    record_audit(session, actor, entity_type="template", entity_id=template.id, action="updated",
                 before=before, after={k: getattr(template, k) for k in changes})
    return template


def delete_template(session: Session, actor: Actor, template_id: int) -> None:
    template = get_template(session, actor, template_id)
    _can_edit(actor, template)
    record_audit(session, actor, entity_type="template", entity_id=template.id, action="deleted",
                 before={"name": template.name, "shortcut": template.shortcut})
    session.delete(template)


def can_manage_shared(actor: Actor) -> bool:
    return ROLE_RANK[actor.role] >= ROLE_RANK[Role.supervisor]
