"""Outbound mail: an outbox row -> one RFC 5322 message -> the workspace's SMTP server (STARTTLS/SSL + auth).

The outbox's idempotency key becomes the Message-ID (`<key@our-domain>`), and that id is written to the
Message-ID index before the SMTP transaction and stamped sent right after the server's 250: a retry after a
crash either finds the stamp and does not send again, or sends the very same Message-ID, which mail clients
show once. 4xx answers and broken connections are retried by the outbox; 5xx answers are permanent.
"""

from __future__ import annotations

import logging
import smtplib
import ssl
import threading
import time
from collections import deque
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import select

from otklik.accounts.models import Workspace
from otklik.channels.email import threading as email_threads
from otklik.channels.email.inbound import split_addresses
from otklik.channels.email.parsing import strip_subject
from otklik.conversations.models import Attachment, AuthorKind, Conversation, Message
from otklik.conversations.outbox import DeliveryError, OutboundMessage
from otklik.platform.config import get_settings
from otklik.platform.db import session_scope, utcnow

log = logging.getLogger(__name__)
TIMEOUT = 30.0
IDLE_SECONDS = 50.0


class _Pool:
    """Open SMTP connections per server+login, reused between messages (a TLS handshake per mail is slow)."""

    def __init__(self) -> None:
        self._idle: dict[tuple[Any, ...], list[tuple[float, smtplib.SMTP]]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[Any, ...]) -> smtplib.SMTP | None:
        with self._lock:
            items = self._idle.get(key) or []
            while items:
                since, conn = items.pop()
                if time.monotonic() - since < IDLE_SECONDS:
                    return conn
                _quit(conn)
        return None

    def give(self, key: tuple[Any, ...], conn: smtplib.SMTP) -> None:
        with self._lock:
            items = self._idle.setdefault(key, [])
            if len(items) < 4:
                items.append((time.monotonic(), conn))
                return
        _quit(conn)

    def clear(self) -> None:
        with self._lock:
            conns = [c for items in self._idle.values() for _, c in items]
            self._idle.clear()
        for conn in conns:
            _quit(conn)


def _quit(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except Exception:
        conn.close()


pool = _Pool()


class _Rate:
    """At most `limit` mails a minute per account in this process: over it, the outbox waits and retries."""

    def __init__(self) -> None:
        self._sent: dict[int, deque[float]] = {}
        self._lock = threading.Lock()

    def wait_seconds(self, account_id: int, limit: int) -> float:
        now = time.monotonic()
        with self._lock:
            sent = self._sent.setdefault(account_id, deque())
            while sent and sent[0] <= now - 60:
                sent.popleft()
            if len(sent) >= limit:
                return sent[0] + 60 - now
            sent.append(now)
            return 0.0


rate = _Rate()


def reply_subject(subject: str, number: int) -> str:
    base = strip_subject(subject)
    return f"Re: {base} [#{number}]" if base else f"Re: [#{number}]"


class EmailSender:
    def __init__(self, account_id: int, config: dict[str, Any], secrets: dict[str, str]):
        self.account_id = account_id
        self.config = config
        self.password = secrets.get("smtp_password", "")
        self.addresses = split_addresses(config.get("addresses"))

    # -- building the mail ------------------------------------------------------------------------------
    def build(self, message: OutboundMessage) -> tuple[EmailMessage, str, str, bool]:
        """(mail, recipient, Message-ID, already sent) for an outbox row; records the Message-ID first."""
        if not self.addresses:
            raise DeliveryError("the email channel has no support address configured", permanent=True)
        sender_address = self.addresses[0]
        domain = sender_address.rsplit("@", 1)[1]
        header_id = f"{message.idempotency_key}@{domain}"
        with session_scope() as session:
            row = session.get(Message, message.message_id)
            conversation = session.get(Conversation, message.conversation_id)
            workspace = session.get(Workspace, message.workspace_id)
            assert row is not None and conversation is not None and workspace is not None
            recipient = self._recipient(session, message, conversation)
            references = email_threads.thread_ids(session, conversation.id)
            parent = email_threads.last_inbound_id(session, conversation.id) or (references[-1] if references else None)
            recorded = email_threads.remember(session, message.workspace_id, header_id,
                                              direction=email_threads.OUTBOUND, conversation_id=conversation.id,
                                              message_id=row.id)
            already_sent = recorded.sent_at is not None
            files = [(a.filename, a.content_type, a.storage_key) for a in session.scalars(
                select(Attachment).where(Attachment.message_id == row.id).order_by(Attachment.id))]
            automatic = row.author_kind in (AuthorKind.assistant.value, AuthorKind.system.value)
            subject, number, ws_name = conversation.subject, conversation.number, workspace.name

        mail = EmailMessage()
        from_name = (self.config.get("from_name") or ws_name or "").strip()
        mail["From"] = formataddr((from_name, sender_address)) if from_name else sender_address
        mail["To"] = recipient
        reply_to = (self.config.get("reply_to") or "").strip()
        mail["Reply-To"] = reply_to or sender_address
        mail["Subject"] = reply_subject(subject, number)
        mail["Date"] = format_datetime(utcnow())
        mail["Message-ID"] = f"<{header_id}>"
        if parent:
            mail["In-Reply-To"] = f"<{parent}>"
        if references:
            mail["References"] = " ".join(f"<{r}>" for r in references if r != header_id)
        # Autoresponders answer neither us (RFC 3834) nor Outlook's out-of-office to our replies
        mail["X-Auto-Response-Suppress"] = "OOF, AutoReply"
        if automatic:
            mail["Auto-Submitted"] = "auto-replied"
        mail["X-Otklik-Conversation"] = str(number)
        mail.set_content(message.text or " ", cte="quoted-printable")
        if message.html:
            mail.add_alternative(f"<!doctype html><html><body>{message.html}</body></html>", subtype="html",
                                 cte="quoted-printable")
        root = get_settings().attachments_dir
        for filename, content_type, key in files:
            maintype, _, subtype = content_type.partition("/")
            try:
                data = (root / key).read_bytes()
            except OSError:
                raise DeliveryError(f"attachment {filename!r} is missing from storage", permanent=True) from None
            mail.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream", filename=filename)
        return mail, recipient, header_id, already_sent

    def _recipient(self, session: Any, message: OutboundMessage, conversation: Conversation) -> str:
        """The address the customer last wrote from in this conversation, else their first email identity."""
        meta = session.scalar(select(Message.meta).where(
            Message.conversation_id == conversation.id, Message.direction == "inbound",
            Message.channel == "email").order_by(Message.id.desc()).limit(1))
        last_from = ((meta or {}).get("email") or {}).get("from")
        emails = [value for kind, value in message.recipients if kind == "email"]
        if last_from and last_from.lower() in {e.lower() for e in emails}:
            return str(last_from)
        if emails:
            return emails[0]
        raise DeliveryError("the customer has no email address", permanent=True)

    # -- sending ------------------------------------------------------------------------------------------
    def _pool_key(self) -> tuple[Any, ...]:
        c = self.config
        return (c.get("smtp_host"), int(c.get("smtp_port") or 587), c.get("smtp_security", "starttls"),
                c.get("smtp_username"), bool(c.get("verify_tls", True)), self.password)

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        host = str(c.get("smtp_host") or "")
        if not host:
            raise DeliveryError("the email channel has no SMTP server configured", permanent=True)
        port = int(c.get("smtp_port") or 587)
        security = c.get("smtp_security", "starttls")
        context = ssl.create_default_context()
        if not c.get("verify_tls", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        conn: smtplib.SMTP
        if security == "ssl":
            conn = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT, context=context)
        else:
            conn = smtplib.SMTP(host, port, timeout=TIMEOUT)
        try:
            conn.ehlo()
            if security == "starttls":
                conn.starttls(context=context)
                conn.ehlo()
            if c.get("smtp_username"):
                conn.login(str(c["smtp_username"]), self.password)
        except BaseException:
            conn.close()
            raise
        return conn

    def send(self, message: OutboundMessage) -> str | None:
        limit = int(self.config.get("max_per_minute") or 60)
        wait = rate.wait_seconds(self.account_id, limit)
        if wait > 0:
            raise DeliveryError(f"sending limit of {limit} mails a minute reached", retry_after=wait)
        mail, recipient, header_id, already_sent = self.build(message)
        if already_sent:
            return f"<{header_id}>"  # the server took it before a crash; sending again would duplicate
        sender_address = Address(addr_spec=self.addresses[0]).addr_spec
        key = self._pool_key()
        try:
            conn = pool.take(key)
            if conn is not None:
                try:
                    conn.rset()
                except (smtplib.SMTPException, OSError):
                    conn.close()
                    conn = None
            if conn is None:
                conn = self._connect()
            refused = conn.send_message(mail, from_addr=sender_address, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            raise _error(code, text, "recipient refused") from None
        except smtplib.SMTPResponseException as exc:
            raise _error(exc.smtp_code, exc.smtp_error, "server refused") from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP server unreachable: {type(exc).__name__}") from None
        if refused:
            code, text = next(iter(refused.values()))
            raise _error(code, text, "recipient refused")
        pool.give(key, conn)
        self._stamp_sent(message.workspace_id, header_id)
        return f"<{header_id}>"

    def _stamp_sent(self, workspace_id: int, header_id: str) -> None:
        with session_scope() as session:
            row = email_threads.lookup(session, workspace_id, header_id)
            if row is not None and row.sent_at is None:
                row.sent_at = utcnow()


def _error(code: int, text: bytes | str, what: str) -> DeliveryError:
    reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    reason = " ".join(reason.split())[:300]
    if code in (421, 450, 451, 452) and ("rate" in reason.lower() or "too many" in reason.lower()):
        return DeliveryError(f"{what}: {code} {reason}", retry_after=60.0)
    return DeliveryError(f"{what}: {code} {reason}", permanent=500 <= code < 600)
