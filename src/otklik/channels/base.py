"""The one small interface every channel plugin implements, and the registry that loads them.

A plugin lives in `channels/<kind>/` and exposes `PLUGIN`, an instance of a `ChannelPlugin` subclass:

- **configuration**: `Config` (a Pydantic model of the public settings an admin fills in; field `title` and
  `description` label the generated form) and `secret_fields` (names of the settings that are secrets: stored
  encrypted in `ChannelAccount.secret`, see `secrets.py`, never shown back, never logged; `secret_titles`
  labels them). `generated_secrets` are secrets the platform creates itself (a webhook's shared secret).
- **inbound**: `router` (FastAPI routes for the vendor's webhooks, mounted under /api/v1, hidden from the
  OpenAPI schema; each verifies the vendor's signature or secret, de-duplicates by the vendor's id with
  `record_event()` and/or `conversations.service.receive()`, answers fast and leaves slow work to after
  commit) and/or `pollers` (functions the background runner calls every `poll_seconds`: IMAP, Telegram
  long polling). `has_webhook` plugins get a per-account URL: `/api/v1/channels/<kind>/webhook/<token>`,
  the account found with `webhook_account()`.
- **outbound**: `sender(account, config, secrets)` returns an object with `send(OutboundMessage) -> vendor id
  | None` that raises `DeliveryError` (permanent, or with `retry_after` for a vendor's 429). The outbox calls
  it with retries and back-off, and an idempotency key that stays the same across retries.
- **admin helpers** (optional): `test_connection()` (a cheap vendor call such as Telegram getMe; returns a
  line for the admin) and `connect_webhook()` (tells the vendor where to deliver; returns a line). Both raise
  `VendorError` with a readable message. `on_saved()` runs after the account is created or changed.
"""

from __future__ import annotations

import logging
import secrets as token_source
from collections.abc import Callable
from typing import Any, ClassVar

from fastapi import APIRouter
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.conversations.outbox import DeliveryError, OutboundMessage, Sender, register_sender
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict, DomainError

log = logging.getLogger(__name__)


class VendorError(DomainError):
    """The vendor refused or could not be reached (shown to the admin; never contains a secret)."""

    status_code = 502
    code = "vendor_error"


def clean_api_base(value: str, example: str) -> str:
    """A vendor API base URL from a settings form: http(s), no spaces, no trailing slash."""
    value = value.strip().rstrip("/")
    if not value.startswith(("https://", "http://")) or " " in value:
        raise ValueError(f"an http(s) address such as {example}")
    return value


def clean_button_labels(values: list[str], too_long: Callable[[str], str | None]) -> list[str]:
    """Quick-reply button labels from a settings form: blanks dropped; `too_long` names a vendor's limit."""
    cleaned = [v.strip() for v in values if v.strip()]
    for label in cleaned:
        problem = too_long(label)
        if problem:
            raise ValueError(f"button {label[:20]!r}… is longer than {problem}")
    return cleaned


class ChannelPlugin:
    kind: ClassVar[str]                      # also the `channel` of its messages: "telegram", "email"...
    title: ClassVar[str]                     # shown in the settings pages ("Telegram", "Эл. почта")
    description: ClassVar[str] = ""          # one line under the title in the settings pages
    icon: ClassVar[str] = ""                 # one or two letters / an emoji for the settings list
    Config: ClassVar[type[BaseModel]]        # public settings
    secret_fields: ClassVar[tuple[str, ...]] = ()
    secret_titles: ClassVar[dict[str, str]] = {}
    generated_secrets: ClassVar[tuple[str, ...]] = ()   # created by the platform when missing
    has_webhook: ClassVar[bool] = False
    router: APIRouter | None = None
    pollers: ClassVar[tuple[Callable[[], None], ...]] = ()
    poll_seconds: ClassVar[float] = 2.0

    def sender(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> Sender | None:
        """The outbound half for one configured account; None when this channel cannot send."""
        return None

    def check_secrets(self, secrets: dict[str, str]) -> None:
        """Validate the secrets an admin entered (merged with the stored ones); raise `field_error`."""

    def test_connection(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str]) -> str:
        """A cheap vendor call proving the settings work (Telegram getMe); a plugin without one says so."""
        raise Conflict(f"{self.title} has no connection test", code="not_supported")

    def connect_webhook(self, account: ChannelAccount, config: dict[str, Any], secrets: dict[str, str],
                        url: str) -> str:
        """Registers `url` with the vendor (Telegram setWebhook); a plugin whose vendor takes none says so."""
        raise Conflict(f"{self.title} has no webhook to register", code="not_supported")

    def process_pending(self, event_id: int) -> None:
        """The slow work of an event stored with `record_event(pending=True)`: runs in a job after commit,
        again from the periodic sweep if a worker died; must finish the event (`finish_event`)."""

    def on_saved(self, session: Session, account: ChannelAccount) -> None:
        """After create/update, in the same transaction (e.g. reset polling state when the token changed)."""

    @property
    def can_test(self) -> bool:
        return type(self).test_connection is not ChannelPlugin.test_connection

    @property
    def can_connect_webhook(self) -> bool:
        return type(self).connect_webhook is not ChannelPlugin.connect_webhook

    def register(self) -> None:
        """Hooks the plugin's sender into the outbox: the workspace's first enabled account of this kind."""
        kind = self.kind

        def factory(workspace_id: int) -> Sender | None:
            from otklik.channels.secrets import decrypt_secrets

            with session_scope(write=False) as session:
                account = session.scalar(select(ChannelAccount).where(
                    ChannelAccount.workspace_id == workspace_id, ChannelAccount.kind == kind,
                    ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id).limit(1))
                if account is None:
                    return None
                session.expunge(account)
            try:
                values = decrypt_secrets(account.secret)
            except ValueError as exc:
                return _Unreadable(str(exc))
            return self.sender(account, dict(account.config or {}), values)

        register_sender(kind, factory)


class _Unreadable:
    """The account's secrets cannot be decrypted (the server key changed): every attempt fails, and is
    retried with back-off until an admin enters the secrets again or the row is dead."""

    def __init__(self, reason: str):
        self.reason = reason

    def send(self, message: OutboundMessage) -> str | None:
        raise DeliveryError(self.reason)


def webhook_path(kind: str, token: str) -> str:
    return f"/api/v1/channels/{kind}/webhook/{token}"


def new_webhook_token() -> str:
    return token_source.token_urlsafe(24)


def webhook_account(session: Session, kind: str, token: str) -> ChannelAccount | None:
    """The enabled account of `kind` behind a webhook URL's token (None: unknown, disabled or another kind)."""
    if not token or len(token) > 64:
        return None
    account = session.scalar(select(ChannelAccount).where(ChannelAccount.webhook_token == token))
    if account is None or account.kind != kind or not account.enabled:
        return None
    return account


def record_event(session: Session, account: ChannelAccount, event_id: str, *,
                 payload: dict[str, Any] | None = None, pending: bool = False) -> ChannelEvent | None:
    """Remember a vendor event by its id; None when it was seen before (a vendor's retry: acknowledge it).

    `pending=True` keeps the payload for slow work after commit (`finish_event` when done). A concurrent
    delivery of the same event loses on the unique key at flush, and its retried transaction finds this one.
    """
    event_id = event_id[:200]
    seen = session.scalar(select(ChannelEvent.id).where(ChannelEvent.account_id == account.id,
                                                        ChannelEvent.event_id == event_id))
    if seen is not None:
        return None
    event = ChannelEvent(workspace_id=account.workspace_id, account_id=account.id, event_id=event_id,
                         status=EventStatus.pending.value if pending else EventStatus.done.value,
                         payload=payload if pending else None, attempts=0)
    session.add(event)
    from sqlalchemy.exc import IntegrityError

    from otklik.platform.db import RetryTransaction

    try:
        session.flush()
    except IntegrityError:
        raise RetryTransaction("a concurrent delivery of the same vendor event won the race") from None
    return event


def finish_event(event: ChannelEvent, *, error: str | None = None) -> None:
    event.status = EventStatus.failed.value if error else EventStatus.done.value
    event.error = error[:2000] if error else None
    event.payload = None if not error else event.payload


_plugins: dict[str, ChannelPlugin] = {}


def add_plugin(plugin: ChannelPlugin) -> None:
    _plugins[plugin.kind] = plugin
    plugin.register()


def plugins() -> dict[str, ChannelPlugin]:
    return dict(_plugins)


def get_plugin(kind: str) -> ChannelPlugin | None:
    return _plugins.get(kind)
