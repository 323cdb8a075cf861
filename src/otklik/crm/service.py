"""The CRM integration's rules: connections (admin), matching customers to contacts, timeline notes, the
deals cache, the CRM's webhook, and the resumable bulk sync.

- A customer is matched to a CRM contact ONLY by identities Otklik verified (a phone proven by a call, WhatsApp
  or Telegram's shared contact; an e-mail proven by the widget's signature or mail received): a typed claim
  never links anyone. No verified identity: nothing is matched or created.
- Every vendor call happens outside a database transaction; what it changed is written after, in a short one.
- Idempotent both ways: a link is unique per (connection, customer), a contact is found by its verified
  identity before one is created (so a crash after the CRM's create is healed by the next search), a note is
  unique per (connection, key) and the key is written into the note, so a retry looks in the CRM first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets as token_source
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.conversations.models import AuthorKind, Conversation, Message
from otklik.crm.base import (
    Contact,
    CrmConnector,
    CrmError,
    WebhookChange,
    connectors,
    get_connector,
    same_phone,
)
from otklik.crm.models import (
    ConnectionStatus,
    CrmConnection,
    CrmDeal,
    CrmLink,
    CrmNote,
    CrmSync,
    NoteStatus,
    SyncStatus,
)
from otklik.customers.models import Customer, Identity, IdentityKind
from otklik.orders import service as orders
from otklik.platform import crypto
from otklik.platform.config import get_settings
from otklik.platform.db import affected, run_transaction, session_scope, utcnow
from otklik.platform.errors import Conflict, DomainError, InvalidInput, NotFound, field_error

log = logging.getLogger(__name__)
SECRET_PURPOSE = "otklik crm secrets"  # noqa: S105 - a key-derivation label, not a secret
MAX_NOTE_ATTEMPTS = 8
SYNC_BATCH = 100
SYNC_LEASE = dt.timedelta(seconds=60)
PHONE_KINDS = (IdentityKind.phone.value, IdentityKind.whatsapp.value)
T = TypeVar("T")


# -- secrets --------------------------------------------------------------------------------------------

def encrypt_secrets(values: dict[str, str]) -> str:
    return crypto.encrypt(json.dumps(values, ensure_ascii=False), purpose=SECRET_PURPOSE)


def decrypt_secrets(stored: str | None) -> dict[str, str]:
    """{} when none are stored or they cannot be decrypted (OTKLIK_SECRET_KEY changed: enter them again)."""
    if not stored:
        return {}
    try:
        data = json.loads(crypto.decrypt(stored, purpose=SECRET_PURPOSE))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


# -- connections (admin) --------------------------------------------------------------------------------

def _connector_class(kind: str) -> type[CrmConnector]:
    cls = get_connector(kind)
    if cls is None:
        raise field_error("kind", f"unknown CRM {kind!r}; one of: {', '.join(sorted(connectors()))}")
    return cls


def _config(cls: type[CrmConnector], raw: dict[str, Any]) -> dict[str, Any]:
    try:
        return cls.Config.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        fields = [{"field": "config." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
        raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields[:3]), fields=fields) from None


def _merge_secrets(cls: type[CrmConnector], stored: dict[str, str], given: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    return crypto.merge_write_only(cls.kind, cls.secret_fields, stored, given)


def get_connection(session: Session, actor: Actor, connection_id: int) -> CrmConnection:
    """Another workspace's connection is a 404, the same as one that does not exist."""
    connection = session.get(CrmConnection, connection_id)
    if connection is None or connection.workspace_id != actor.workspace_id or get_connector(connection.kind) is None:
        raise NotFound(f"CRM connection {connection_id} not found")
    return connection


def list_connections(session: Session, actor: Actor) -> list[CrmConnection]:
    return list(session.scalars(select(CrmConnection).where(CrmConnection.workspace_id == actor.workspace_id)
                                .order_by(CrmConnection.id)))


def create_connection(session: Session, actor: Actor, *, kind: str, name: str = "default",
                      config: dict[str, Any] | None = None, secrets: Mapping[str, Any] | None = None,
                      enabled: bool = True) -> CrmConnection:
    actor.require(Role.admin)
    cls = _connector_class(kind)
    clean = _config(cls, config or {})
    values, changed = _merge_secrets(cls, {}, secrets or {})
    name = (name or "default").strip()[:120] or "default"
    if session.scalar(select(CrmConnection.id).where(CrmConnection.workspace_id == actor.workspace_id,
                                                      CrmConnection.kind == kind, CrmConnection.name == name)):
        raise Conflict(f"a {cls.title} connection named {name!r} exists already", code="duplicate",
                       fields=[{"field": "name", "message": "already used"}])
    connection = CrmConnection(workspace_id=actor.workspace_id, kind=kind, name=name, config=clean,
                               secret=encrypt_secrets(values), webhook_token=token_source.token_urlsafe(24),
                               state={}, enabled=enabled, status=ConnectionStatus.disconnected.value)
    session.add(connection)
    session.flush()
    record_audit(session, actor, entity_type="crm_connection", entity_id=connection.id, action="created",
                 after={"kind": kind, "name": name, "config": clean, "secrets_set": sorted(changed)})
    return connection


def update_connection(session: Session, actor: Actor, connection_id: int, *, name: str | None = None,
                      config: dict[str, Any] | None = None, secrets: Mapping[str, Any] | None = None,
                      enabled: bool | None = None) -> CrmConnection:
    actor.require(Role.admin)
    connection = get_connection(session, actor, connection_id)
    cls = _connector_class(connection.kind)
    after: dict[str, Any] = {}
    if name is not None and name.strip() and name.strip() != connection.name:
        connection.name = after["name"] = name.strip()[:120]
    if config is not None:
        clean = _config(cls, {**dict(connection.config or {}), **config})
        if clean != connection.config:
            connection.config = after["config"] = clean
    if secrets:
        values, changed = _merge_secrets(cls, decrypt_secrets(connection.secret), secrets)
        if changed:
            connection.secret = encrypt_secrets(values)
            after["secrets_changed"] = sorted(changed)
            connection.status = ConnectionStatus.disconnected.value  # to be proven again
    if enabled is not None and enabled != connection.enabled:
        connection.enabled = after["enabled"] = enabled
    if after:
        record_audit(session, actor, entity_type="crm_connection", entity_id=connection.id, action="updated",
                     after=after)
    session.flush()
    return connection


def delete_connection(session: Session, actor: Actor, connection_id: int) -> None:
    actor.require(Role.admin)
    connection = get_connection(session, actor, connection_id)
    record_audit(session, actor, entity_type="crm_connection", entity_id=connection.id, action="deleted",
                 before={"kind": connection.kind, "name": connection.name})
    session.delete(connection)
    session.flush()


@dataclass
class ConnectionSummary:
    """What the settings page and the API show for one connection (never a secret's value)."""

    connection: CrmConnection
    title: str
    secrets: dict[str, str]
    links: int
    notes_failed: int
    notes_done: int
    sync: CrmSync | None


def summaries(session: Session, actor: Actor) -> list[ConnectionSummary]:
    rows = list_connections(session, actor)
    ids = [c.id for c in rows]
    links = dict(session.execute(select(CrmLink.connection_id, func.count()).where(CrmLink.connection_id.in_(ids))
                                 .group_by(CrmLink.connection_id)).all()) if ids else {}
    notes = {(c, s): n for c, s, n in session.execute(
        select(CrmNote.connection_id, CrmNote.status, func.count()).where(CrmNote.connection_id.in_(ids))
        .group_by(CrmNote.connection_id, CrmNote.status)).all()} if ids else {}
    out = []
    for c in rows:
        cls = get_connector(c.kind)
        if cls is None:
            continue
        stored = decrypt_secrets(c.secret)
        sync = latest_sync(session, c.id)
        out.append(ConnectionSummary(connection=c, title=cls.title,
                                     secrets={n: "set" if stored.get(n) else "missing" for n in cls.secret_fields
                                              if n not in cls.platform_secrets},
                                     links=links.get(c.id, 0), notes_failed=notes.get((c.id, "failed"), 0),
                                     notes_done=notes.get((c.id, "done"), 0), sync=sync))
    return out


def webhook_path(connection: CrmConnection) -> str:
    return f"/api/v1/integrations/crm/webhook/{connection.webhook_token}"


def add_demo_connections(session: Session, actor: Actor) -> list[CrmConnection]:
    """`make demo`: each CRM present, switched off and not connected, its settings form filled with examples."""
    made = []
    for cls in sorted(connectors().values(), key=lambda c: c.kind):
        made.append(create_connection(session, actor, kind=cls.kind, name="Пример", config=dict(cls.example_config),
                                      enabled=False))
    return made


# -- talking to the CRM -----------------------------------------------------------------------------------

@dataclass
class Snapshot:
    id: int
    workspace_id: int
    kind: str
    config: dict[str, Any]
    secrets: dict[str, str]
    state: dict[str, Any]


def snapshot(session: Session, connection: CrmConnection) -> Snapshot:
    return Snapshot(connection.id, connection.workspace_id, connection.kind, dict(connection.config or {}),
                    decrypt_secrets(connection.secret), dict(connection.state or {}))


def _save_secrets_for(connection_id: int) -> Callable[[dict[str, str]], None]:
    def save(changed: dict[str, str]) -> None:
        def work(session: Session) -> None:
            connection = session.get(CrmConnection, connection_id, with_for_update=True)
            if connection is not None:
                connection.secret = encrypt_secrets({**decrypt_secrets(connection.secret), **changed})
        run_transaction(work)
    return save


def _load_secrets_for(connection_id: int) -> Callable[[], dict[str, str]]:
    def load() -> dict[str, str]:
        with session_scope(write=False) as session:
            connection = session.get(CrmConnection, connection_id)
            return decrypt_secrets(connection.secret) if connection is not None else {}
    return load


# tests and the benchmark route vendor calls to stand-ins by their base URL; this hook lets them add a transport
TRANSPORT: Any = None


def open_connector(snap: Snapshot) -> CrmConnector:
    cls = _connector_class(snap.kind)
    try:
        return cls(snap.config, snap.secrets, _save_secrets_for(snap.id), transport=TRANSPORT,
                   load_secrets=_load_secrets_for(snap.id))
    except ValidationError:
        raise CrmError(f"the {cls.title} settings are incomplete: open Settings → Integrations") from None


def record_result(connection_id: int, error: BaseException | None) -> None:
    """The status line of a connection: ok with the time, or the last error (secret-free, vendor's words)."""
    now = utcnow()
    message = None
    if error is not None:
        message = (error.message if isinstance(error, DomainError) else f"{type(error).__name__}")[:2000]
    with session_scope() as session:
        values: dict[str, Any] = ({"status": ConnectionStatus.ok.value, "last_ok_at": now} if error is None else
                                  {"status": ConnectionStatus.error.value, "last_error": message, "last_error_at": now})
        session.execute(update(CrmConnection).where(CrmConnection.id == connection_id).values(**values))


def call(connection_id: int, work: Callable[[CrmConnector], T]) -> T:
    """Run `work` against the connection's CRM, outside any transaction, and record how it went."""
    with session_scope(write=False) as session:
        connection = session.get(CrmConnection, connection_id)
        if connection is None:
            raise NotFound(f"CRM connection {connection_id} not found")
        snap = snapshot(session, connection)
    connector = open_connector(snap)
    try:
        result = work(connector)
    except Exception as exc:
        record_result(connection_id, exc)
        raise
    finally:
        connector.close()
    record_result(connection_id, None)
    return result


def test_connection(actor: Actor, connection_id: int) -> str:
    actor.require(Role.admin)
    with session_scope(write=False) as session:
        get_connection(session, actor, connection_id)
    message = call(connection_id, lambda c: c.test_connection())
    with session_scope() as session:
        record_audit(session, actor, entity_type="crm_connection", entity_id=connection_id, action="tested",
                     after={"ok": True})
    return message


# -- matching ---------------------------------------------------------------------------------------------

def survivor_id(session: Session, customer_id: int) -> int:
    for _ in range(10):
        merged = session.scalar(select(Customer.merged_into_id).where(Customer.id == customer_id))
        if merged is None:
            break
        customer_id = merged
    return customer_id


def verified_identities(session: Session, customer_ids: list[int]) -> dict[int, tuple[list[str], list[str]]]:
    """(phones, e-mails) each customer holds VERIFIED; an unverified claim is never used to match."""
    out: dict[int, tuple[list[str], list[str]]] = {cid: ([], []) for cid in customer_ids}
    if not customer_ids:
        return out
    rows = session.execute(select(Identity.customer_id, Identity.kind, Identity.external_id).where(
        Identity.customer_id.in_(customer_ids), Identity.verified.is_(True),
        Identity.kind.in_([*PHONE_KINDS, IdentityKind.email.value])).order_by(Identity.id)).all()
    for customer_id, kind, value in rows:
        phones, emails = out[customer_id]
        target = phones if kind in PHONE_KINDS else emails
        if value not in target:
            target.append(value)
    return out


def match_contact(connector: CrmConnector, customer_id: int, name: str, phones: list[str], emails: list[str],
                  *, create: bool) -> tuple[Contact | None, str]:
    """The CRM contact of these verified identities: found, or created when allowed. (contact, how)."""
    if not phones and not emails:
        return None, "no verified phone or e-mail"
    contact = connector.find_contact(phones=phones, emails=emails)
    if contact is not None:
        theirs = {e.lower() for e in contact.emails}
        how = next((f"email:{e}" for e in emails if e.lower() in theirs), None) or next(
            (f"phone:{p}" for p in phones if any(same_phone(p, x) for x in contact.phones)), None)
        return contact, how or (f"phone:{phones[0]}" if phones else f"email:{emails[0]}")
    if not create:
        return None, "no CRM contact with this verified phone or e-mail"
    return connector.create_contact(name=name, phones=phones, emails=emails, otklik_id=customer_id), "created"


def _store_link(session: Session, connection: Snapshot, customer_id: int, contact: Contact, how: str) -> CrmLink:
    link = session.scalar(select(CrmLink).where(CrmLink.connection_id == connection.id,
                                                CrmLink.customer_id == customer_id))
    if link is None:
        link = CrmLink(workspace_id=connection.workspace_id, connection_id=connection.id, customer_id=customer_id,
                       external_id=contact.id[:64], matched_by=how[:300])
        session.add(link)
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:  # a concurrent job linked the same customer: keep theirs
            link = session.scalar(select(CrmLink).where(CrmLink.connection_id == connection.id,
                                                        CrmLink.customer_id == customer_id))
            assert link is not None
    return link


def link_customer(connection_id: int, customer_id: int, *, create: bool | None = None) -> CrmLink | None:
    """The customer's link to a contact of this connection: stored, else found by verified identity (and
    created when the connection creates contacts). None when there is nothing verified to match on."""
    with session_scope(write=False) as session:
        connection = session.get(CrmConnection, connection_id)
        if connection is None:
            raise NotFound(f"CRM connection {connection_id} not found")
        snap = snapshot(session, connection)
        customer_id = survivor_id(session, customer_id)
        link = session.scalar(select(CrmLink).where(CrmLink.connection_id == connection_id,
                                                    CrmLink.customer_id == customer_id))
        if link is not None:
            session.expunge(link)
            return link
        name = session.scalar(select(Customer.name).where(Customer.id == customer_id)) or ""
        phones, emails = verified_identities(session, [customer_id])[customer_id]
    if not phones and not emails:
        return None  # nothing verified to match on: no vendor call
    if create is None:
        create = bool(snap.config.get("create_contacts"))
    contact, how = call(connection_id, lambda c: match_contact(c, customer_id, name, phones, emails, create=create))
    if contact is None:
        return None
    with session_scope() as session:
        link = _store_link(session, snap, customer_id, contact, how)
        session.flush()
        session.expunge(link)
    return link


# -- timeline notes ---------------------------------------------------------------------------------------

def conversation_url(conversation_id: int) -> str:
    base = (get_settings().public_url or "").rstrip("/")
    return f"{base}/conversations/{conversation_id}"


def conversation_summary(session: Session, conversation: Conversation) -> str:
    """The assistant's hand-off summary when it wrote one; else the customer's first message and the last reply."""
    noted = session.scalars(select(Message).where(Message.conversation_id == conversation.id,
                                                  Message.is_internal.is_(True))
                            .order_by(Message.id.desc()).limit(20)).all()
    for message in noted:
        meta = message.meta or {}
        if isinstance(meta.get("assistant"), dict) and meta["assistant"].get("summary"):
            return message.body_text.strip()[:3000]
    first = session.scalar(select(Message.body_text).where(
        Message.conversation_id == conversation.id, Message.author_kind == AuthorKind.customer.value)
        .order_by(Message.id).limit(1)) or ""
    last = session.scalar(select(Message.body_text).where(
        Message.conversation_id == conversation.id, Message.is_internal.is_(False),
        Message.author_kind.in_([AuthorKind.agent.value, AuthorKind.assistant.value]))
        .order_by(Message.id.desc()).limit(1)) or ""
    parts = [f"Клиент: {first.strip()[:1500]}"] if first.strip() else []
    if last.strip():
        parts.append(f"Ответ: {last.strip()[:1500]}")
    return "\n".join(parts) or "Без сообщений."


def note_key(conversation: Conversation) -> str:
    """One note per solve of a conversation: a re-opened and solved-again conversation gets a second one."""
    moment = conversation.solved_at or conversation.closed_at or conversation.updated_at
    return f"conv-{conversation.id}-solved-{int(moment.timestamp())}"


def note_text(session: Session, conversation: Conversation) -> str:
    return (f"Обращение #{conversation.number} решено (канал: {conversation.channel}).\n"
            f"{conversation_summary(session, conversation)}\n"
            f"Открыть в Отклике: {conversation_url(conversation.id)}")


def enabled_connections(session: Session, workspace_id: int) -> list[int]:
    return list(session.scalars(select(CrmConnection.id).where(
        CrmConnection.workspace_id == workspace_id, CrmConnection.enabled.is_(True)).order_by(CrmConnection.id)))


def note_connections(session: Session, workspace_id: int) -> list[int]:
    return [c.id for c in session.scalars(select(CrmConnection).where(
        CrmConnection.workspace_id == workspace_id, CrmConnection.enabled.is_(True)).order_by(CrmConnection.id))
        if (c.config or {}).get("note_on_solve", True)]


def write_conversation_note(connection_id: int, conversation_id: int) -> str:
    """Puts the solved conversation's summary into the contact's timeline, at most once per solve.

    Returns "done", "skipped" (no contact to write to) or "already"; raises the CRM's error after recording it
    on the note (failed) and the connection (status line), so the job queue retries what may pass later."""
    with session_scope() as session:
        conversation = session.get(Conversation, conversation_id)
        connection = session.get(CrmConnection, connection_id)
        if conversation is None or connection is None or conversation.workspace_id != connection.workspace_id \
                or not connection.enabled:
            return "skipped"
        if conversation.status not in ("solved", "closed"):
            return "skipped"
        key = note_key(conversation)
        text = note_text(session, conversation)
        customer_id = conversation.customer_id
        note = session.scalar(select(CrmNote).where(CrmNote.connection_id == connection_id,
                                                    CrmNote.idempotency_key == key).with_for_update())
        if note is not None and note.status == NoteStatus.done.value:
            return "already"
        if note is None:
            note = CrmNote(workspace_id=connection.workspace_id, connection_id=connection_id,
                           conversation_id=conversation_id, idempotency_key=key, status=NoteStatus.pending.value,
                           attempts=0)
            session.add(note)
            try:
                with session.begin_nested():
                    session.flush()
            except IntegrityError:
                return "already"  # a concurrent job claimed it
        tried_before = note.attempts > 0
        note.attempts += 1
        note.status = NoteStatus.pending.value
        note_id = note.id
    try:
        link = link_customer(connection_id, customer_id)
        if link is None:
            _finish_note(note_id, NoteStatus.done, error="no CRM contact: the customer has no verified phone or "
                                                         "e-mail that matches one")
            return "skipped"
        contact = link.external_id

        def write(connector: CrmConnector) -> str:
            if tried_before:  # an earlier attempt may have written it before failing: look first
                found = connector.find_note(contact, key)
                if found:
                    return found
            return connector.add_note(contact, text, key)

        external_id = call(connection_id, write)
    except Exception as exc:
        _finish_note(note_id, NoteStatus.failed, error=exc.message if isinstance(exc, DomainError)
                     else type(exc).__name__)
        raise
    _finish_note(note_id, NoteStatus.done, external_id=external_id)
    return "done"


def _finish_note(note_id: int, status: NoteStatus, *, external_id: str | None = None, error: str | None = None) -> None:
    with session_scope() as session:
        session.execute(update(CrmNote).where(CrmNote.id == note_id).values(
            status=status.value, external_id=external_id[:64] if external_id else None,
            error=error[:2000] if error else None, updated_at=utcnow()))


def notes_to_retry(session: Session, *, connection_id: int | None = None, older_than: dt.timedelta | None = None,
                   limit: int = 200) -> list[tuple[int, int]]:
    """(connection, conversation) of failed notes, and of pending ones a dead worker left behind."""
    query = select(CrmNote.connection_id, CrmNote.conversation_id).where(
        CrmNote.status.in_([NoteStatus.failed.value, NoteStatus.pending.value]),
        CrmNote.attempts < MAX_NOTE_ATTEMPTS)
    if connection_id is not None:
        query = query.where(CrmNote.connection_id == connection_id)
    if older_than is not None:
        query = query.where(CrmNote.updated_at < utcnow() - older_than)
    return [(a, b) for a, b in session.execute(query.order_by(CrmNote.id).limit(limit)).all()]


def failed_notes(session: Session, actor: Actor, connection_id: int, limit: int = 20) -> list[CrmNote]:
    get_connection(session, actor, connection_id)
    return list(session.scalars(select(CrmNote).where(CrmNote.connection_id == connection_id,
                                                      CrmNote.status == NoteStatus.failed.value)
                                .order_by(CrmNote.id.desc()).limit(limit)))


# -- deals / orders cache ---------------------------------------------------------------------------------

MOSCOW = ZoneInfo("Europe/Moscow")


def _moment(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=MOSCOW)).astimezone(dt.UTC)


def refresh_contact_deals(connection_id: int, contact_id: str) -> int:
    """Reads the contact's deals/orders from the CRM and replaces the cached copy. Returns how many."""
    deals = call(connection_id, lambda c: c.list_deals(contact_id))
    now = utcnow()
    with session_scope() as session:
        connection = session.get(CrmConnection, connection_id)
        if connection is None:
            return 0
        session.execute(delete(CrmDeal).where(CrmDeal.connection_id == connection_id,
                                              CrmDeal.contact_external_id == contact_id))
        seen: set[str] = set()
        for deal in deals[:200]:
            if deal.id in seen:
                continue
            seen.add(deal.id)
            session.execute(delete(CrmDeal).where(CrmDeal.connection_id == connection_id,
                                                  CrmDeal.external_id == deal.id[:64]))
            session.add(CrmDeal(workspace_id=connection.workspace_id, connection_id=connection_id,
                                contact_external_id=contact_id[:64], external_id=deal.id[:64],
                                number=deal.number[:64], title=deal.title[:300], status=deal.status[:120],
                                amount=deal.amount[:32], currency=deal.currency[:8],
                                url=deal.url[:500] if deal.url.startswith(("https://", "http://")) else "",
                                changed_at=_moment(deal.changed_at), fetched_at=now))
        feed_orders(session, connection, contact_id, [d.order for d in deals[:200] if d.order is not None])
    return len(seen)


# -- CRM orders into the orders domain ---------------------------------------------------------------------

ORDER_SOURCE = "crm"  # `orders.source` / the history entries' source: the CRM said so


def _order_identity(session: Session, link: CrmLink, customer_id: int) -> tuple[str, str] | None:
    """The verified identity the contact was matched by (`matched_by` "phone:+7…" / "email:…"), with the kind
    the customer holds it under (a phone proven by WhatsApp is a `whatsapp` identity), so the order resolves to
    this very customer. A contact Otklik created: the customer's first verified phone, else e-mail."""
    rows = session.execute(select(Identity.kind, Identity.external_id).where(
        Identity.customer_id == customer_id, Identity.verified.is_(True),
        Identity.kind.in_([*PHONE_KINDS, IdentityKind.email.value])).order_by(Identity.id)).all()
    how, _, value = link.matched_by.partition(":")
    for kind, external_id in rows:
        if external_id == value and (kind in PHONE_KINDS if how == "phone" else kind == how):
            return kind, external_id
    phones = [(k, v) for k, v in rows if k in PHONE_KINDS]
    emails = [(k, v) for k, v in rows if k == IdentityKind.email.value]
    return (phones + emails)[0] if phones or emails else None


def feed_orders(session: Session, connection: CrmConnection, contact_id: str,
                descriptions: list[dict[str, Any]]) -> int:
    """The CRM's orders of a linked contact, stored in the orders domain through its own upsert (in the caller's
    transaction): the connection's workspace only, the buyer the linked customer's verified identity. A re-read
    of the same order changes nothing; a new status appends one history entry. An order the orders domain
    refuses (a number it cannot hold) is skipped and logged: the cache and the other orders stand.
    Returns how many were created or updated."""
    if not descriptions:
        return 0
    link = session.scalar(select(CrmLink).where(CrmLink.connection_id == connection.id,
                                                CrmLink.external_id == contact_id[:64]).order_by(CrmLink.id).limit(1))
    if link is None:
        return 0
    customer_id = survivor_id(session, link.customer_id)
    identity = _order_identity(session, link, customer_id)
    if identity is None:
        return 0
    kind, value = identity
    items: list[orders.OrderInput] = []
    for raw in descriptions:
        try:
            items.append(orders.parse_order({**raw, "customer": {"kind": kind, "value": value}}))
        except DomainError as exc:
            log.info("crm %s: order %r not stored: %s", connection.id, str(raw.get("number"))[:64], exc.message)
    actor = Actor.system(connection.workspace_id, kind="system")
    results = orders.upsert_many(session, actor, items, source=ORDER_SOURCE) if items else []
    for r in results:
        if r.error is not None:
            log.info("crm %s: order %r not stored: %s", connection.id, r.number, r.error.message)
    return sum(1 for r in results if r.outcome in ("created", "updated"))


def refresh_customer_deals(connection_id: int, customer_id: int) -> int:
    link = link_customer(connection_id, customer_id)
    return refresh_contact_deals(connection_id, link.external_id) if link else 0


@dataclass
class CustomerCrm:
    """One connection's view of a customer for the customer page: the link and the cached deals."""

    connection_id: int
    title: str
    deal_word: str
    status: str
    last_error: str | None
    contact_id: str | None
    matched_by: str | None
    deals: list[CrmDeal]


def customer_crm(session: Session, workspace_id: int, customer_id: int) -> list[CustomerCrm]:
    """What the customer page's orders tab shows from the CRMs (read from the local cache only: no vendor call)."""
    out = []
    for connection in session.scalars(select(CrmConnection).where(CrmConnection.workspace_id == workspace_id,
                                                                  CrmConnection.enabled.is_(True))
                                      .order_by(CrmConnection.id)):
        cls = get_connector(connection.kind)
        if cls is None:
            continue
        link = session.scalar(select(CrmLink).where(CrmLink.connection_id == connection.id,
                                                    CrmLink.customer_id == customer_id))
        deals = list(session.scalars(select(CrmDeal).where(
            CrmDeal.connection_id == connection.id, CrmDeal.contact_external_id == link.external_id)
            .order_by(CrmDeal.changed_at.desc(), CrmDeal.id.desc()).limit(50))) if link else []
        out.append(CustomerCrm(connection.id, cls.title, cls.deal_word, connection.status, connection.last_error,
                               link.external_id if link else None, link.matched_by if link else None, deals))
    return out


def check_customer(session: Session, actor: Actor, customer_id: int) -> int:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.workspace_id != actor.workspace_id:
        raise NotFound(f"customer {customer_id} not found")
    return survivor_id(session, customer_id)


# -- amoCRM's OAuth redirect -------------------------------------------------------------------------------

OAUTH_PURPOSE = "crm oauth state"


def oauth_state(connection_id: int) -> str:
    return f"{connection_id}.{crypto.signature(str(connection_id), purpose=OAUTH_PURPOSE)}"


def oauth_url(connection: CrmConnection) -> str | None:
    """Where the admin's browser authorises Otklik in the CRM (amoCRM's «Connect» button), or None."""
    cls = get_connector(connection.kind)
    base = getattr(cls, "authorize_url", None)
    client_id = (connection.config or {}).get("client_id")
    if not base or not client_id:
        return None
    from urllib.parse import urlencode

    return f"{base}?{urlencode({'client_id': client_id, 'state': oauth_state(connection.id), 'mode': 'post_message'})}"


def complete_oauth(state: str, code: str) -> int:
    """The CRM redirected back with a one-time code: exchanged for tokens at once (stored encrypted)."""
    import hmac

    raw_id, _, sig = state.partition(".")
    if not raw_id.isdigit() or len(raw_id) > 18 or not hmac.compare_digest(
            sig.encode(), crypto.signature(raw_id, purpose=OAUTH_PURPOSE).encode()):
        raise NotFound("unknown or forged OAuth state")
    if not code or len(code) > 2000:
        raise field_error("code", "the CRM sent no authorization code")
    connection_id = int(raw_id)

    def exchange(connector: CrmConnector) -> str:
        method = getattr(connector, "exchange_code", None)
        if method is None:
            raise Conflict("this CRM does not use OAuth", code="not_supported")
        return str(method(code))

    call(connection_id, exchange)
    return connection_id


# -- the CRM's webhook ------------------------------------------------------------------------------------

def webhook_connection(session: Session, token: str) -> CrmConnection | None:
    if not token or len(token) > 64 or not token.replace("-", "").replace("_", "").isalnum() or not token.isascii():
        return None  # token_urlsafe's alphabet only: a NUL or a path never reaches the database
    connection = session.scalar(select(CrmConnection).where(CrmConnection.webhook_token == token))
    if connection is None or not connection.enabled or get_connector(connection.kind) is None:
        return None
    return connection


def accept_webhook(token: str, fields: Mapping[str, Any], headers: Mapping[str, str]) -> tuple[int, list[WebhookChange]]:
    """Checks the CRM's webhook (the URL's token, and the vendor's own token where it sends one) and applies
    what needs no vendor call (a deleted contact or deal leaves the cache at once). Returns the connection and
    the changes left to fetch (a job does that after the answer)."""
    with session_scope(write=False) as session:
        connection = webhook_connection(session, token)
        if connection is None:
            raise NotFound("unknown webhook")
        snap = snapshot(session, connection)
    connector = open_connector(snap)
    try:
        changes = connector.parse_webhook(fields=fields, headers=headers)[:100]
    finally:
        connector.close()
    deleted = [c for c in changes if c.action == "delete"]
    if deleted:
        with session_scope() as session:
            for change in deleted:
                if change.entity == "contact":
                    session.execute(delete(CrmLink).where(CrmLink.connection_id == snap.id,
                                                          CrmLink.external_id == change.id[:64]))
                    session.execute(delete(CrmDeal).where(CrmDeal.connection_id == snap.id,
                                                          CrmDeal.contact_external_id == change.id[:64]))
                else:
                    session.execute(delete(CrmDeal).where(CrmDeal.connection_id == snap.id,
                                                          CrmDeal.external_id == change.id[:64]))
    return snap.id, [c for c in changes if c.action != "delete"]


def apply_change(connection_id: int, entity: str, external_id: str, contact_id: str | None) -> int:
    """A contact or deal the CRM says changed: refresh the cached deals of the linked contact it belongs to."""
    with session_scope(write=False) as session:
        if entity == "deal" and not contact_id:
            contact_id = session.scalar(select(CrmDeal.contact_external_id).where(
                CrmDeal.connection_id == connection_id, CrmDeal.external_id == external_id[:64]))
        elif entity == "contact":
            contact_id = external_id
        linked = contact_id is not None and session.scalar(select(CrmLink.id).where(
            CrmLink.connection_id == connection_id, CrmLink.external_id == contact_id[:64]).limit(1)) is not None
    if entity == "deal" and contact_id is None:  # a new deal: ask the CRM whose it is
        contact_id = call(connection_id, lambda c: c.deal_contact(external_id))
        return apply_change(connection_id, "contact", contact_id, None) if contact_id else 0
    if not linked or contact_id is None:
        return 0  # not one of our customers' contacts: nothing to cache
    return refresh_contact_deals(connection_id, contact_id)


def pull_changes(connection_id: int) -> list[WebhookChange]:
    """Connectors with a change feed (RetailCRM's order history): read it from the stored cursor."""
    with session_scope(write=False) as session:
        connection = session.get(CrmConnection, connection_id)
        if connection is None:
            return []
        cursor = (connection.state or {}).get("history_cursor")
    result: dict[str, Any] = {}

    def read(connector: CrmConnector) -> list[WebhookChange]:
        pull = getattr(connector, "pull_changes", None)
        if pull is None:
            return []
        changes, result["cursor"] = pull(cursor)
        return list(changes)

    changes = call(connection_id, read)
    if result.get("cursor") and result["cursor"] != cursor:
        with session_scope() as session:
            connection = session.get(CrmConnection, connection_id, with_for_update=True)
            if connection is not None:
                connection.state = {**(connection.state or {}), "history_cursor": result["cursor"]}
    return changes


# -- bulk sync ------------------------------------------------------------------------------------------

def start_sync(session: Session, actor: Actor, connection_id: int, *, create_missing: bool) -> CrmSync:
    """A new bulk sync, or the one already running on this connection (never two at once)."""
    actor.require(Role.admin)
    connection = get_connection(session, actor, connection_id)
    running = session.scalar(select(CrmSync).where(CrmSync.connection_id == connection.id,
                                                   CrmSync.status == SyncStatus.running.value).limit(1))
    if running is not None:
        return running
    total = session.scalar(select(func.count()).select_from(Customer).where(
        Customer.workspace_id == actor.workspace_id, Customer.merged_into_id.is_(None))) or 0
    sync = CrmSync(workspace_id=actor.workspace_id, connection_id=connection.id, status=SyncStatus.running.value,
                   create_missing=create_missing, cursor=0, total=total, processed=0, matched=0, created=0,
                   skipped=0)
    session.add(sync)
    session.flush()
    record_audit(session, actor, entity_type="crm_connection", entity_id=connection.id, action="sync_started",
                 after={"sync_id": sync.id, "create_missing": create_missing, "total": total})
    return sync


def resume_sync(session: Session, actor: Actor, sync_id: int) -> CrmSync:
    actor.require(Role.admin)
    sync = session.get(CrmSync, sync_id)
    if sync is None or sync.workspace_id != actor.workspace_id:
        raise NotFound(f"sync {sync_id} not found")
    if sync.status == SyncStatus.failed.value:
        sync.status, sync.error, sync.lease_owner, sync.lease_until = SyncStatus.running.value, None, None, None
    return sync


def _claim(sync_id: int, owner: str) -> CrmSync | None:
    now = utcnow()
    with session_scope() as session:
        claimed = affected(session.execute(update(CrmSync).where(
            CrmSync.id == sync_id, CrmSync.status == SyncStatus.running.value,
            or_(CrmSync.lease_until.is_(None), CrmSync.lease_until < now, CrmSync.lease_owner == owner))
            .values(lease_owner=owner, lease_until=now + SYNC_LEASE)))
        if not claimed:
            return None
        sync = session.get(CrmSync, sync_id)
        assert sync is not None
        session.expunge(sync)
        return sync


def sync_step(sync_id: int, owner: str, *, batch: int = SYNC_BATCH) -> bool:
    """One batch of a bulk sync: the next customers after the cursor are matched (and created when asked),
    their links and the cursor written in one transaction. True while more remain. A worker killed mid-batch
    leaves the cursor where it was; its contacts already created in the CRM are found again by identity."""
    sync = _claim(sync_id, owner)
    if sync is None:
        return False
    with session_scope(write=False) as session:
        connection = session.get(CrmConnection, sync.connection_id)
        if connection is None:
            return False
        snap = snapshot(session, connection)
        rows = session.execute(select(Customer.id, Customer.name).where(
            Customer.workspace_id == sync.workspace_id, Customer.merged_into_id.is_(None), Customer.id > sync.cursor)
            .order_by(Customer.id).limit(batch)).all()
        ids = [r[0] for r in rows]
        linked = set(session.scalars(select(CrmLink.customer_id).where(CrmLink.connection_id == snap.id,
                                                                       CrmLink.customer_id.in_(ids)))) if ids else set()
        identities = verified_identities(session, [i for i in ids if i not in linked])
    if not rows:
        with session_scope() as session:
            session.execute(update(CrmSync).where(CrmSync.id == sync_id, CrmSync.lease_owner == owner).values(
                status=SyncStatus.done.value, finished_at=utcnow(), lease_owner=None, lease_until=None))
        return False
    found: list[tuple[int, Contact, str]] = []
    counts = {"matched": 0, "created": 0, "skipped": 0}
    error: BaseException | None = None
    done_upto = sync.cursor
    connector = open_connector(snap)
    try:
        for customer_id, name in rows:
            if customer_id in linked:
                counts["matched"] += 1
            else:
                phones, emails = identities.get(customer_id, ([], []))
                try:
                    contact, how = match_contact(connector, customer_id, name or "", phones, emails,
                                                 create=sync.create_missing)
                except Exception as exc:  # stop here; the cursor keeps what is done
                    error = exc
                    break
                if contact is None:
                    counts["skipped"] += 1
                else:
                    found.append((customer_id, contact, how))
                    counts["created" if how == "created" else "matched"] += 1
            done_upto = customer_id
    finally:
        connector.close()
    with session_scope() as session:
        for customer_id, contact, how in found:
            _store_link(session, snap, customer_id, contact, how)
        values: dict[str, Any] = {
            "cursor": done_upto, "processed": CrmSync.processed + sum(counts.values()),
            "matched": CrmSync.matched + counts["matched"], "created": CrmSync.created + counts["created"],
            "skipped": CrmSync.skipped + counts["skipped"], "lease_until": utcnow() + SYNC_LEASE}
        if error is not None and not _transient(error):
            values.update(status=SyncStatus.failed.value, lease_owner=None, lease_until=None,
                          error=(error.message if isinstance(error, DomainError) else type(error).__name__)[:2000])
        session.execute(update(CrmSync).where(CrmSync.id == sync_id, CrmSync.lease_owner == owner).values(**values))
    record_result(snap.id, error)
    if error is not None:
        raise error
    return True


def _transient(exc: BaseException) -> bool:
    from otklik.crm.base import is_transient

    return is_transient(exc)


def run_sync(sync_id: int, *, owner: str | None = None, seconds: float | None = None,
             batch: int = SYNC_BATCH) -> bool:
    """Steps until the sync is done (False) or `seconds` pass (True: more to do, enqueue again)."""
    import time

    owner = owner or uuid.uuid4().hex
    deadline = None if seconds is None else time.monotonic() + seconds
    while sync_step(sync_id, owner, batch=batch):
        if deadline is not None and time.monotonic() > deadline:
            return True
    return False


def syncs_to_resume(session: Session) -> list[int]:
    """Running syncs whose worker stopped renewing its lease (killed): the sweep hands them to a new one."""
    return list(session.scalars(select(CrmSync.id).where(
        CrmSync.status == SyncStatus.running.value,
        or_(CrmSync.lease_until.is_(None), CrmSync.lease_until < utcnow())).order_by(CrmSync.id).limit(20)))


def latest_sync(session: Session, connection_id: int) -> CrmSync | None:
    return session.scalar(select(CrmSync).where(CrmSync.connection_id == connection_id)
                          .order_by(CrmSync.id.desc()).limit(1))


def get_sync(session: Session, actor: Actor, sync_id: int) -> CrmSync:
    sync = session.get(CrmSync, sync_id)
    if sync is None or sync.workspace_id != actor.workspace_id:
        raise NotFound(f"sync {sync_id} not found")
    return sync
