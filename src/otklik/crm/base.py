"""The one small interface every CRM connector implements (like `channels/base.py`'s ChannelPlugin).

A connector is a class with:

- **configuration**: `Config` (a Pydantic model of the public settings; each field's `title`/`description`
  label the generated form) and `secret_fields` (stored encrypted in `CrmConnection.secret`, never shown back,
  never logged; `secret_titles` labels them). Every connector's `Config` has `base_url`, so tests point the
  real HTTP client at local stand-ins.
- **operations**, on an instance made for one connection (`connector(config, secrets, save_secrets)`):
  `test_connection()`, `find_contact(phones, emails)` (only verified identities are ever passed in),
  `create_contact(...)`, `find_note(contact, key)` + `add_note(contact, text, key)` (the key is written into
  the note so a retry after a crash finds it in the CRM), `list_deals(contact)`, and `parse_webhook(...)`
  (the CRM's outgoing webhook → the contacts/deals it names; raises `WebhookRefused` on a bad token).

Every vendor call goes through `VendorHttp`: a 429 waits for the vendor's Retry-After (when short) and tries
again, a 5xx or a network failure is `CrmUnavailable` (retried by the job queue), 401/403 `CrmAuthError`.
Nothing here touches the database: `service.py` does, and never holds a transaction during a vendor call.
"""

from __future__ import annotations

import abc
import email.utils
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel

from otklik.platform.errors import DomainError, RateLimited

log = logging.getLogger(__name__)


class CrmError(DomainError):
    """The CRM refused a request for good (shown to the admin as the connection's last error)."""

    status_code = 502
    code = "crm_error"


class CrmAuthError(CrmError):
    code = "crm_auth"


class CrmUnavailable(CrmError):
    """Worth another try later: the CRM is down, slow, or answered 5xx."""

    status_code = 503
    code = "crm_unavailable"


class CrmRateLimited(RateLimited):
    """The CRM's rate limit, with a Retry-After longer than we wait inline: the job is retried after it."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


class WebhookRefused(DomainError):
    status_code = 403
    code = "forbidden"


def is_transient(exc: BaseException) -> bool:
    return isinstance(exc, CrmUnavailable | CrmRateLimited)


@dataclass
class Contact:
    id: str
    name: str = ""
    phones: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)


@dataclass
class Deal:
    id: str
    number: str = ""
    title: str = ""
    status: str = ""
    amount: str = ""
    currency: str = ""
    url: str = ""
    changed_at: str | None = None  # ISO 8601
    # a shop's order (RetailCRM; amoCRM leads and Bitrix24 deals are not orders and leave it None): the order
    # as the `orders` domain's PUT body describes it, less the customer (the service adds the linked one)
    order: dict[str, Any] | None = None


@dataclass
class WebhookChange:
    """What one CRM webhook says changed: a contact (updated / deleted) or a deal of a contact."""

    entity: str            # "contact" | "deal"
    id: str
    action: str = "update"  # "update" | "delete"
    contact_id: str | None = None


def retry_after_seconds(value: str | None, default: float = 1.0) -> float:
    """Retry-After is either seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return float(min(int(value), 86400))
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    return max(0.0, min(moment.timestamp() - time.time(), 86400.0))


class VendorHttp:
    """One CRM's HTTP client: timeouts, Retry-After honoured, errors sorted into retry / give up."""

    MAX_INLINE_WAIT = 10.0  # a longer Retry-After ends this attempt; the job queue tries again after it
    ATTEMPTS = 4

    def __init__(self, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 15.0,
                 transport: httpx.BaseTransport | None = None, title: str = "CRM",
                 is_rate_limited: Callable[[httpx.Response], bool] | None = None):
        self.title = title
        self.is_rate_limited = is_rate_limited or (lambda response: response.status_code == 429)
        self.client = httpx.Client(base_url=base_url, headers=dict(headers or {}), timeout=timeout,
                                   transport=transport, follow_redirects=False)
        self.sleep: Callable[[float], None] = time.sleep

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, url: str, *, ok_statuses: tuple[int, ...] = (), **kwargs: Any) -> httpx.Response:
        for attempt in range(1, self.ATTEMPTS + 1):
            try:
                response = self.client.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                raise CrmUnavailable(f"{self.title} is not reachable: {type(exc).__name__}") from None
            if self.is_rate_limited(response):
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if wait > self.MAX_INLINE_WAIT or attempt == self.ATTEMPTS:
                    raise CrmRateLimited(f"{self.title} rate limit: retry after {wait:.0f} s", retry_after=wait)
                log.info("%s answered 429; waiting %.1f s as it asks", self.title, wait)
                self.sleep(wait)
                continue
            if response.status_code in ok_statuses or response.is_success:
                return response
            detail = _error_detail(response)
            if response.status_code in (401, 403):
                raise CrmAuthError(f"{self.title} refused the credentials ({response.status_code}): {detail}")
            if response.status_code >= 500:
                raise CrmUnavailable(f"{self.title} answered {response.status_code}: {detail}")
            raise CrmError(f"{self.title} refused the request ({response.status_code}): {detail}")
        raise AssertionError("unreachable")

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        response = self.request(method, url, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise CrmError(f"{self.title} answered something that is not JSON") from None


def _error_detail(response: httpx.Response) -> str:
    """A short, secret-free reason from a vendor's error body (their shapes differ)."""
    try:
        body = response.json()
    except ValueError:
        return response.reason_phrase or "no details"
    if isinstance(body, dict):
        found = ""
        for key in ("errorMsg", "error_description", "detail", "title", "hint", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                found = value
                break
        errors = body.get("errors")  # RetailCRM: {"field": "reason"}; amoCRM validation: a list of objects
        if isinstance(errors, dict | list) and errors:
            items = errors.values() if isinstance(errors, dict) else errors
            found = "; ".join([found, *(str(v) for v in list(items)[:3])]).strip("; ")
        if found:
            return found[:300]
    return response.reason_phrase or "no details"


SaveSecrets = Callable[[dict[str, str]], None]


class CrmConnector(abc.ABC):
    kind: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    icon: ClassVar[str] = ""
    Config: ClassVar[type[BaseModel]]
    secret_fields: ClassVar[tuple[str, ...]] = ()
    secret_titles: ClassVar[dict[str, str]] = {}
    platform_secrets: ClassVar[tuple[str, ...]] = ()  # written by the connector itself (OAuth tokens)
    example_config: ClassVar[dict[str, Any]] = {}   # `make demo` fills the settings form with these
    deal_word: ClassVar[str] = "deal"               # how the CRM calls it: lead / deal / order

    def __init__(self, config: dict[str, Any], secrets: dict[str, str], save_secrets: SaveSecrets | None = None,
                 *, transport: httpx.BaseTransport | None = None,
                 load_secrets: Callable[[], dict[str, str]] | None = None):
        self.config = self.Config.model_validate(config)
        self.secrets = dict(secrets)
        self._save = save_secrets
        self._load = load_secrets
        self.transport = transport

    def reload_secrets(self) -> dict[str, str]:
        """The secrets as stored now (another worker may have rotated a token since this one read them)."""
        if self._load is not None:
            self.secrets = dict(self._load())
        return self.secrets

    def save_secrets(self, changed: dict[str, str]) -> None:
        """Store rotated credentials (amoCRM's refresh token) at once, in a transaction of their own."""
        self.secrets.update(changed)
        if self._save is not None:
            self._save(changed)

    def close(self) -> None:  # noqa: B027 - optional: a connector without a client of its own keeps it
        """Release the HTTP client."""

    # -- operations -------------------------------------------------------------------------------------
    @abc.abstractmethod
    def test_connection(self) -> str:
        ...

    @abc.abstractmethod
    def find_contact(self, *, phones: list[str], emails: list[str]) -> Contact | None:
        ...

    @abc.abstractmethod
    def create_contact(self, *, name: str, phones: list[str], emails: list[str], otklik_id: int) -> Contact:
        ...

    @abc.abstractmethod
    def find_note(self, contact_id: str, key: str) -> str | None:
        ...

    @abc.abstractmethod
    def add_note(self, contact_id: str, text: str, key: str) -> str:
        ...

    @abc.abstractmethod
    def list_deals(self, contact_id: str) -> list[Deal]:
        ...

    def deal_contact(self, deal_id: str) -> str | None:
        """The contact a deal belongs to, when a webhook names only the deal (a new lead)."""
        return None

    def parse_webhook(self, *, fields: Mapping[str, Any], headers: Mapping[str, str]) -> list[WebhookChange]:
        """The changes an inbound webhook names; `fields` is the JSON object or the flattened form."""
        return []


def note_marker(key: str) -> str:
    """The idempotency key as it is written into a note's text, to find it again after a crash."""
    return f"[otklik:{key}]"


def digits(phone: str) -> str:
    return "".join(ch for ch in phone if ch.isdigit())


def same_phone(ours: str, theirs: str) -> bool:
    """Our E.164 number against one typed into a CRM: the same digits, or for Russia the same ten digits after
    the 7 / 8 trunk prefix («8 (916) 123-45-67» is +79161234567)."""
    a, b = digits(ours), digits(theirs)
    if a == b:
        return bool(a)
    return len(a) == len(b) == 11 and a[0] in "78" and b[0] in "78" and a[1:] == b[1:]


def phone_variants(phone: str) -> list[str]:
    """How a Russian number may be stored in a CRM, for vendors whose filter compares whole values."""
    d = digits(phone)
    if len(d) == 11 and d[0] == "7":
        return [phone, "8" + d[1:], d]
    return [phone]


_connectors: dict[str, type[CrmConnector]] = {}


def add_connector(cls: type[CrmConnector]) -> type[CrmConnector]:
    _connectors[cls.kind] = cls
    return cls


def connectors() -> dict[str, type[CrmConnector]]:
    from otklik.crm import amocrm, bitrix24, retailcrm  # noqa: F401  (each adds itself on import)

    return dict(_connectors)


def get_connector(kind: str) -> type[CrmConnector] | None:
    return connectors().get(kind)
