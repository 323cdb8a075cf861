"""Storing one inbound email, whichever way it came (SMTP endpoint or IMAP): de-duplicate by Message-ID,
thread it, store its attachments, trim the quoted history for display, recognise auto-replies and bounces.

One transaction per email: the mail is acknowledged (SMTP 250, IMAP \\Seen) only after it committed.
Never answers anything itself; auto-replies are stored with `meta.automated` so nothing answers them either.
"""

from __future__ import annotations

import logging
import mimetypes
import re
import threading
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.service import Actor
from otklik.channels.email import threading as email_threads
from otklik.channels.email.parsing import (
    ParsedAttachment,
    ParsedEmail,
    normalise_id,
    parse_email,
    strip_subject,
    trim_html,
    trim_text,
)
from otklik.channels.models import ChannelAccount
from otklik.conversations import attachments as attachment_store
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, DeliveryStatus, Message, Status
from otklik.customers.identities import normalise_identity
from otklik.platform.config import get_settings
from otklik.platform.db import run_transaction, session_scope
from otklik.platform.errors import DomainError
from otklik.platform.events import Event, after_commit
from otklik.platform.html import html_to_text, sanitize_html

log = logging.getLogger(__name__)
KIND = "email"
MAX_TEXT = conversations.MAX_BODY_CHARS
MAX_HTML = 4 * conversations.MAX_BODY_CHARS
_ZIP_BASED = {"application/vnd.openxmlformats-officedocument.wordprocessingml.document",
              "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class RejectedMail(Exception):
    """The mail cannot be stored as it is (SMTP answers 5xx; the IMAP poller leaves it unread in the box)."""

    def __init__(self, reply: str):
        super().__init__(reply)
        self.reply = reply


@dataclass(frozen=True)
class IngestResult:
    outcome: str  # stored / duplicate / bounce / ignored
    conversation_id: int | None = None
    message_id: int | None = None
    detail: str = ""


# -- addresses -> workspaces ------------------------------------------------------------------------------

_ADDRESS_SPLIT = re.compile(r"[\s,;]+")


def split_addresses(value: Any) -> list[str]:
    items = value if isinstance(value, list | tuple) else _ADDRESS_SPLIT.split(str(value or ""))
    return [a.strip().lower() for a in items if a and "@" in str(a)]


class AddressBook:
    """address -> (workspace, account) of every enabled email account, re-read every few seconds.

    An address claimed by two workspaces belongs to the account configured first: a later workspace cannot
    take over another's mail by typing its address.
    """

    def __init__(self, ttl: float = 5.0):
        self.ttl = ttl
        self._map: dict[str, tuple[int, int]] = {}
        self._own: dict[int, set[str]] = {}
        self._loaded = 0.0
        self._lock = threading.Lock()

    def _load(self) -> None:
        with session_scope(write=False) as session:
            rows = session.execute(select(ChannelAccount.id, ChannelAccount.workspace_id, ChannelAccount.config)
                                   .where(ChannelAccount.kind == KIND, ChannelAccount.enabled.is_(True))
                                   .order_by(ChannelAccount.id)).all()
        mapping: dict[str, tuple[int, int]] = {}
        own: dict[int, set[str]] = {}
        for account_id, workspace_id, config in rows:
            for address in split_addresses((config or {}).get("addresses")):
                if address in mapping and mapping[address][0] != workspace_id:
                    log.warning("email address claimed by two workspaces; kept for the first account")
                    continue
                mapping.setdefault(address, (workspace_id, account_id))
                own.setdefault(workspace_id, set()).add(address)
        self._map, self._own, self._loaded = mapping, own, time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._loaded > self.ttl:
            with self._lock:
                if time.monotonic() - self._loaded > self.ttl:
                    self._load()

    def route(self, address: str) -> tuple[int, int] | None:
        self._fresh()
        address = address.strip().lower()
        found = self._map.get(address)
        if found is None and "+" in address.split("@", 1)[0]:  # support+anything@ -> support@
            local, _, domain = address.partition("@")
            found = self._map.get(local.split("+", 1)[0] + "@" + domain)
        return found

    def own_addresses(self, workspace_id: int) -> set[str]:
        self._fresh()
        return self._own.get(workspace_id, set())

    def invalidate(self) -> None:
        self._loaded = 0.0


address_book = AddressBook()


# -- storing ------------------------------------------------------------------------------------------------

def _stored_type(attachment: ParsedAttachment) -> str | None:
    """The type to store a file under: what its bytes are, when the platform accepts that type."""
    allowed = get_settings().allowed_attachment_types
    sniffed = attachment_store.sniff(attachment.data[:64])
    if sniffed == "application/zip":
        declared = attachment.content_type.lower()
        guessed = mimetypes.guess_type(attachment.filename)[0]
        for candidate in (declared, guessed):
            if candidate in _ZIP_BASED and candidate in allowed:
                return candidate
    return sniffed if sniffed in allowed else None


def _store_attachments(session: Session, workspace_id: int, parsed: ParsedEmail
                       ) -> tuple[list[int], dict[str, int], list[str]]:
    actor = Actor.system(workspace_id, kind="customer")
    ids: list[int] = []
    by_cid: dict[str, int] = {}
    skipped = list(parsed.skipped_parts)
    for attachment in parsed.attachments:
        content_type = _stored_type(attachment)
        if content_type is None:
            skipped.append(f"{attachment.filename} ({attachment.content_type}): type not accepted")
            continue
        try:
            stored = attachment_store.store(session, actor, filename=attachment.filename,
                                            content_type=content_type, chunks=[attachment.data])
        except DomainError as exc:
            skipped.append(f"{attachment.filename}: {exc.message}")
            continue
        ids.append(stored.id)
        if attachment.content_id:
            by_cid[attachment.content_id.lower()] = stored.id
    return ids, by_cid, skipped


def _link_inline_images(html: str, by_cid: dict[str, int]) -> str:
    if not by_cid:
        return html

    def replace(match: re.Match[str]) -> str:
        cid = match.group(2)
        from urllib.parse import unquote

        attachment_id = by_cid.get(unquote(cid).strip("<>").lower())
        if attachment_id is None:
            return match.group(0)
        return f"{match.group(1)}/api/v1/attachments/{attachment_id}"

    return re.sub(r"""(src\s*=\s*["']?)cid:([^"'\s>]+)""", replace, html, flags=re.IGNORECASE)


def _bodies(parsed: ParsedEmail, by_cid: dict[str, int]) -> tuple[str, str | None, dict[str, Any]]:
    """(shown text, shown html, originals) — the shown ones without quoted history or signature."""
    original_text = parsed.text[:MAX_TEXT]
    shown_text = trim_text(original_text)
    original: dict[str, Any] = {}
    shown_html: str | None = None
    if parsed.html:
        linked = _link_inline_images(parsed.html, by_cid)
        clean_full = sanitize_html(linked)
        trimmed = sanitize_html(trim_html(linked))
        if len(trimmed) <= MAX_HTML:
            shown_html = trimmed
        html_trimmed = trimmed != clean_full
        if html_trimmed and len(clean_full) <= MAX_HTML:
            original["original_html"] = clean_full
        if parsed.text_from_html or (html_trimmed and shown_text == original_text.strip()):
            shown_text = trim_text(html_to_text(trimmed))[:MAX_TEXT]
    if shown_text != original_text.strip():
        original["original_text"] = original_text
    return shown_text, shown_html, original


def _mark_bounced(session: Session, workspace_id: int, parsed: ParsedEmail) -> IngestResult:
    assert parsed.bounce is not None
    bounce = parsed.bounce
    if email_threads.lookup(session, workspace_id, parsed.message_id) is not None:
        return IngestResult("duplicate", detail="bounce seen before")
    email_threads.remember(session, workspace_id, parsed.message_id, direction=email_threads.BOUNCE,
                           conversation_id=None, message_id=None)
    reason = " ".join(f"{bounce.status} {bounce.diagnostic}".split()) or "the receiving server returned the mail"
    for original in bounce.original_ids:
        row = email_threads.lookup(session, workspace_id, original)
        if row is None or row.direction != email_threads.OUTBOUND or row.message_id is None:
            continue
        message = session.get(Message, row.message_id)
        if message is None or message.workspace_id != workspace_id:
            continue
        message.delivery_status = DeliveryStatus.failed.value
        message.delivery_error = f"bounce: {reason}"[:2000]
        after_commit(session, Event("message.updated", workspace_id, {
            "id": message.id, "conversation_id": message.conversation_id,
            "delivery_status": message.delivery_status, "delivery_error": message.delivery_error}))
        recipient = f" ({bounce.recipient})" if bounce.recipient else ""
        try:
            conversations.reply(session, Actor.system(workspace_id), message.conversation_id, is_internal=True,
                                author=AuthorKind.system, text=f"Письмо не доставлено{recipient}: {reason}")
        except DomainError:  # the conversation was merged away meanwhile: the failed status is enough
            log.info("bounce note skipped for message %s", message.id)
        return IngestResult("bounce", conversation_id=message.conversation_id, message_id=message.id,
                            detail=reason)
    return IngestResult("ignored", detail="a bounce for mail we did not send")


@dataclass
class _Prepared:
    parsed: ParsedEmail
    inbound: conversations.InboundMessage
    conversation_id: int | None
    status_before: str | None


def _prepare(session: Session, workspace_id: int, parsed: ParsedEmail, *, source: str) -> IngestResult | _Prepared:
    """Everything before `receive()`: de-duplication, bounces, loops, threading, attachments, bodies.

    Raises RejectedMail only before anything is written, so a batch can go on without the refused mail.
    """
    channel_id = normalise_id(parsed.message_id)
    duplicate = session.scalar(select(Message.id).where(Message.workspace_id == workspace_id,
                                                        Message.channel == KIND,
                                                        Message.channel_message_id == channel_id))
    if duplicate is not None:
        return IngestResult("duplicate", message_id=duplicate)
    if parsed.bounce is not None:
        return _mark_bounced(session, workspace_id, parsed)
    if parsed.report:
        return IngestResult("ignored", detail="a delivery or read report that reports no failure")
    known = email_threads.lookup(session, workspace_id, parsed.message_id)
    if known is not None and known.direction != email_threads.INBOUND:
        return IngestResult("ignored", detail="our own mail came back")
    if parsed.from_address.lower() in address_book.own_addresses(workspace_id):
        return IngestResult("ignored", detail="mail from our own address (a loop)")
    try:
        normalise_identity("email", parsed.from_address, field="from")
    except DomainError:
        raise RejectedMail("550 5.1.7 the sender address is missing or invalid") from None

    conversation_id = email_threads.find_conversation(session, workspace_id, parsed)
    status_before = None
    if conversation_id is not None:
        status_before = session.scalar(select(Conversation.status).where(Conversation.id == conversation_id))
    attachment_ids, by_cid, skipped = _store_attachments(session, workspace_id, parsed)
    text, html, original = _bodies(parsed, by_cid)
    if not text.strip() and not attachment_ids:
        text = strip_subject(parsed.subject) or "(пустое письмо)"
    meta: dict[str, Any] = {
        "automated": parsed.auto_reply,
        "email": {
            "message_id": parsed.message_id, "from": parsed.from_address, "to": parsed.to[:20],
            "cc": parsed.cc[:20], "reply_to": parsed.reply_to, "subject": parsed.subject[:500],
            "date": parsed.date.isoformat() if parsed.date else None, "in_reply_to": parsed.in_reply_to[:5],
            "references": parsed.references[-20:], "bulk": parsed.bulk, "source": source,
            **({"skipped_attachments": skipped} if skipped else {}), **original,
        },
    }
    inbound = conversations.InboundMessage(
        channel=KIND, identity_kind="email", identity_value=parsed.from_address,
        customer_name=parsed.from_name[:200], identity_verified=False, channel_message_id=channel_id,
        subject=strip_subject(parsed.subject)[:300], conversation_id=conversation_id, text=text, html=html,
        attachment_ids=tuple(attachment_ids), meta=meta)
    return _Prepared(parsed, inbound, conversation_id, status_before)


def _finish(session: Session, workspace_id: int, prepared: _Prepared, received: conversations.Received
            ) -> IngestResult:
    if received.duplicate:
        return IngestResult("duplicate", received.conversation.id, received.message.id)
    email_threads.remember(session, workspace_id, prepared.parsed.message_id, direction=email_threads.INBOUND,
                           conversation_id=received.conversation.id, message_id=received.message.id)
    conversation = received.conversation
    if (prepared.parsed.auto_reply and prepared.status_before in (Status.pending.value, Status.solved.value)
            and conversation.id == prepared.conversation_id and conversation.status != prepared.status_before):
        # an out-of-office answer to our reply does not reopen the conversation
        conversations.update_conversation(session, Actor.system(workspace_id), conversation.id,
                                          {"status": prepared.status_before})
    return IngestResult("stored", conversation.id, received.message.id)


def store_parsed(session: Session, workspace_id: int, parsed: ParsedEmail, *, source: str) -> IngestResult:
    """Store one parsed email in the caller's transaction."""
    prepared = _prepare(session, workspace_id, parsed, source=source)
    if isinstance(prepared, IngestResult):
        return prepared
    try:
        received = conversations.receive(session, workspace_id, prepared.inbound)
    except DomainError as exc:
        raise RejectedMail(f"550 5.6.0 the message cannot be stored: {exc.message}"[:200]) from None
    return _finish(session, workspace_id, prepared, received)


def store_many(session: Session, workspace_id: int, mails: list[ParsedEmail], *, source: str
               ) -> list[IngestResult | RejectedMail]:
    """Store mails that arrived together in one transaction: one `receive_many()` for the batch.

    A refused mail gets its RejectedMail in the list and the others go on; any other error fails the batch
    (the caller then stores the mails one by one).
    """
    results: list[IngestResult | RejectedMail | None] = [None] * len(mails)
    batch: list[tuple[int, _Prepared]] = []
    first_of: dict[str, int] = {}
    for i, parsed in enumerate(mails):
        key = normalise_id(parsed.message_id)
        if key in first_of:  # the same mail twice in one batch
            results[i] = IngestResult("duplicate")
            continue
        first_of[key] = i
        try:
            prepared = _prepare(session, workspace_id, parsed, source=source)
        except RejectedMail as exc:
            results[i] = exc
            continue
        if isinstance(prepared, IngestResult):
            results[i] = prepared
        else:
            batch.append((i, prepared))
    if batch:
        received = conversations.receive_many(session, workspace_id, [p.inbound for _, p in batch])
        for (i, prepared), one in zip(batch, received, strict=True):
            results[i] = _finish(session, workspace_id, prepared, one)
    return [r if r is not None else IngestResult("duplicate") for r in results]


def ingest(raw: bytes, workspace_id: int, *, source: str, parsed: ParsedEmail | None = None) -> IngestResult:
    """Parse and store one email in its own transaction (retried on a lost race); returns after commit."""
    mail = parsed if parsed is not None else parse_email(raw)
    return run_transaction(lambda session: store_parsed(session, workspace_id, mail, source=source))
