"""The workspace's order integration: pulling an order from the shop's order-lookup URL, and the push signature.

Pull: `lookup_url` is a template with `{number}` (e.g. `https://shop.example/api/orders/{number}`); Otklik sends
GET with the configured auth header (stored encrypted, like channel secrets) and reads the JSON answer through
the field `mapping` (README «Orders», a RetailCRM-style example). The answer is stored as the order (source
`pull`), so the agent sees it in the customer panel and its status history grows with each change seen.

Never blocks the conversation: one lookup waits at most `timeout_s` (default 1.5 s) in all — connecting,
waiting and reading together — and a shop that does not answer in time is «unavailable» (the assistant hands
the question to a person); answers (also «no such order») are kept `cache_s` seconds per process.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import re
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.orders import service
from otklik.orders.models import Order, OrderSettings
from otklik.platform import crypto
from otklik.platform.db import utcnow
from otklik.platform.errors import DomainError, Unauthorized, field_error

AUTH_PURPOSE = "orders: lookup auth header"
SIGNING_PURPOSE = "orders: push signing secret"
DEFAULT_TIMEOUT = 1.5
MAX_ANSWER_BYTES = 512 * 1024
_PATH = re.compile(r"^[\w\-]+(?:\.[\w\-]+){0,9}$")
_HEADER = re.compile(r"^[A-Za-z0-9-]{1,100}$")
TARGETS = ("number", "customer.kind", "customer.value", "customer.name", "customer.phone", "customer.email",
           "status", "status_at", "total", "currency", "paid", "payment_status", "payment_url", "placed_at",
           "delivery.method", "delivery.address", "delivery.tracking_url", "delivery.tracking_number",
           "delivery.carrier", "delivery.promised_on", "attributes")
ITEM_TARGETS = ("name", "sku", "quantity", "price", "url")


# -- settings --------------------------------------------------------------------------------------------

def get_settings_row(session: Session, workspace_id: int) -> OrderSettings:
    row = session.get(OrderSettings, workspace_id)
    if row is None:
        row = OrderSettings(workspace_id=workspace_id, lookup_url="", auth_header="", auth_value="", mapping={},
                            timeout_s=DEFAULT_TIMEOUT, cache_s=60, signing_secret="", require_signature=False)
    return row


def settings_out(row: OrderSettings) -> dict[str, Any]:
    return {"lookup_url": row.lookup_url or "", "auth_header": row.auth_header or "",
            "auth_value_set": bool(row.auth_value), "mapping": dict(row.mapping or {}),
            "timeout_s": row.timeout_s if row.timeout_s is not None else DEFAULT_TIMEOUT,
            "cache_s": row.cache_s if row.cache_s is not None else 60,
            "signing_secret_set": bool(row.signing_secret), "require_signature": bool(row.require_signature)}


def check_mapping(value: Any) -> dict[str, Any]:
    """{"root"?: path, "fields"?: {target: path}, "items"?: {"path": path, "fields": {item field: path}},
    "status_map"?: {shop's status: ours}, "customer_kind"?: kind when the answer has none}. Paths are dotted
    keys (`delivery.address`), list positions as numbers (`orders.0`)."""
    if value in (None, {}):
        return {}
    if not isinstance(value, dict) or set(value) - {"root", "fields", "items", "status_map", "customer_kind"}:
        raise field_error("mapping", "an object with root, fields, items, status_map, customer_kind")

    def path(v: Any, name: str) -> str:
        if not isinstance(v, str) or not _PATH.match(v):
            raise field_error(name, "a dotted path of keys, e.g. order.delivery.address")
        return v

    out: dict[str, Any] = {}
    if value.get("root"):
        out["root"] = path(value["root"], "mapping.root")
    fields = value.get("fields") or {}
    if not isinstance(fields, dict):
        raise field_error("mapping.fields", "an object {our field: their path}")
    for target, source in fields.items():
        if target not in TARGETS:
            raise field_error(f"mapping.fields.{str(target)[:40]}", f"one of: {', '.join(TARGETS)}")
        out.setdefault("fields", {})[target] = path(source, f"mapping.fields.{target}")
    items = value.get("items")
    if items:
        if not isinstance(items, dict) or not isinstance(items.get("fields", {}), dict):
            raise field_error("mapping.items", 'an object {"path": …, "fields": {name, sku, quantity, price}}')
        out["items"] = {"path": path(items.get("path"), "mapping.items.path"), "fields": {}}
        for target, source in (items.get("fields") or {}).items():
            if target not in ITEM_TARGETS:
                raise field_error(f"mapping.items.fields.{str(target)[:40]}", f"one of: {', '.join(ITEM_TARGETS)}")
            out["items"]["fields"][target] = path(source, f"mapping.items.fields.{target}")
    status_map = value.get("status_map") or {}
    if not isinstance(status_map, dict) or len(status_map) > 100:
        raise field_error("mapping.status_map", "an object {their status: ours}")
    for theirs, ours in status_map.items():
        out.setdefault("status_map", {})[str(theirs)[:100]] = service.parse_status(
            ours, f"mapping.status_map.{str(theirs)[:40]}")
    if value.get("customer_kind"):
        kind = value["customer_kind"]
        if kind not in ("email", "phone", "external", "telegram", "whatsapp", "vk", "max"):
            raise field_error("mapping.customer_kind", "email, phone, external, telegram, whatsapp, vk or max")
        out["customer_kind"] = kind
    return out


def update_settings(session: Session, actor: Actor, body: dict[str, Any]) -> tuple[OrderSettings, str | None]:
    actor.require(Role.admin)
    row = get_settings_row(session, actor.workspace_id)
    before = settings_out(row)
    new_secret = None
    for key, value in body.items():
        if key == "lookup_url":
            if value in (None, ""):
                row.lookup_url = ""
                continue
            if (not isinstance(value, str) or len(value) > 1000 or "{number}" not in value
                    or not re.match(r"^https?://[^\s]+$", value)):
                raise field_error("lookup_url", "an http(s) address with {number} where the order number goes")
            row.lookup_url = value.strip()
        elif key == "auth_header":
            if value not in (None, "") and (not isinstance(value, str) or not _HEADER.match(value)):
                raise field_error("auth_header", "a header name, e.g. X-API-KEY or Authorization")
            row.auth_header = value or ""
        elif key == "auth_value":
            if value not in (None, "") and (not isinstance(value, str) or len(value) > 2000
                                            or "\n" in value or "\r" in value):
                raise field_error("auth_value", "one line of at most 2000 characters")
            row.auth_value = crypto.encrypt(value, purpose=AUTH_PURPOSE) if value else ""
        elif key == "mapping":
            row.mapping = check_mapping(value)
        elif key == "timeout_s":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0.1 <= value <= 10:
                raise field_error("timeout_s", "seconds, from 0.1 to 10")
            row.timeout_s = float(value)
        elif key == "cache_s":
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 3600:
                raise field_error("cache_s", "whole seconds, from 0 to 3600")
            row.cache_s = value
        elif key == "rotate_signing_secret":
            if value is True:
                new_secret = secrets.token_urlsafe(32)
                row.signing_secret = crypto.encrypt(new_secret, purpose=SIGNING_PURPOSE)
        elif key == "require_signature":
            if not isinstance(value, bool):
                raise field_error("require_signature", "true or false")
            row.require_signature = value
        else:
            raise field_error(key, "unknown setting")
    if row.require_signature and not row.signing_secret:
        raise field_error("require_signature", "create a secret first (rotate_signing_secret: true)")
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    forget(actor.workspace_id)
    record_audit(session, actor, entity_type="order_settings", entity_id=actor.workspace_id, action="updated",
                 before=before, after={**settings_out(row), "signing_secret_rotated": new_secret is not None})
    return row, new_secret


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(session: Session, workspace_id: int, body: bytes, header: str | None) -> None:
    """With a signing secret set: a signature that is sent must be right; with `require_signature` one must be
    sent. Without a secret the header is ignored (the API token alone authenticates the push)."""
    row = session.get(OrderSettings, workspace_id)
    if row is None or not row.signing_secret:
        return
    if not header:
        if row.require_signature:
            raise Unauthorized("this workspace requires signed order pushes: send X-Otklik-Signature: "
                               "sha256=<HMAC-SHA256 of the body with the signing secret>", code="bad_signature")
        return
    expected = sign(crypto.decrypt(row.signing_secret, purpose=SIGNING_PURPOSE), body)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise Unauthorized("X-Otklik-Signature does not match the body", code="bad_signature")


# -- pulling ---------------------------------------------------------------------------------------------

class Unavailable(DomainError):
    """The shop's order-lookup URL did not answer usefully in time."""

    status_code = 502
    code = "order_lookup_unavailable"


@dataclass(frozen=True)
class Remote:
    url: str
    headers: dict[str, str]
    mapping: dict[str, Any]
    timeout: float
    cache_s: int


_cache: dict[tuple[int, str], tuple[float, Any]] = {}
_cache_lock = threading.Lock()
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="order-lookup")
_MISSING = "missing"


def forget(workspace_id: int) -> None:
    _NO_URL.pop(workspace_id, None)
    with _cache_lock:
        for key in [k for k in _cache if k[0] == workspace_id]:
            del _cache[key]


_NO_URL: dict[int, float] = {}  # workspace -> until when «no lookup URL» is taken as known (this process)


def _may_pull(session: Session, workspace_id: int) -> bool:
    """False when the workspace has no lookup URL, remembered 30 s (a change in this process forgets it at once):
    the assistant's order check saves a read on every message of a push-only shop."""
    now = time.monotonic()
    if _NO_URL.get(workspace_id, 0.0) > now:
        return False
    has = bool(session.scalar(select(OrderSettings.lookup_url).where(OrderSettings.workspace_id == workspace_id)))
    if not has:
        if len(_NO_URL) > 10_000:
            _NO_URL.clear()
        _NO_URL[workspace_id] = now + 30.0
    return has


def remote_for(row: OrderSettings | None) -> Remote | None:
    if row is None or not row.lookup_url:
        return None
    headers = {"Accept": "application/json"}
    if row.auth_header and row.auth_value:
        headers[row.auth_header] = crypto.decrypt(row.auth_value, purpose=AUTH_PURPOSE)
    return Remote(url=row.lookup_url, headers=headers, mapping=dict(row.mapping or {}),
                  timeout=row.timeout_s or DEFAULT_TIMEOUT, cache_s=row.cache_s if row.cache_s is not None else 60)


def _get_path(doc: Any, path: str | None) -> Any:
    if not path:
        return doc
    for part in path.split("."):
        if isinstance(doc, dict):
            doc = doc.get(part)
        elif isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        else:
            return None
    return doc


def map_answer(doc: Any, mapping: dict[str, Any], number: str) -> dict[str, Any]:
    """The shop's JSON answer as our order body (what `service.parse_order` reads). Without `fields`, the answer
    (under `root`) is taken to be in our shape already."""
    root = _get_path(doc, mapping.get("root"))
    if not isinstance(root, dict):
        raise Unavailable("the answer has no order object" + (f" at {mapping['root']}" if mapping.get("root") else ""))
    if not mapping.get("fields") and not mapping.get("items"):
        out = {k: v for k, v in root.items() if k in service.FIELDS}
    else:
        out = {}
        for target, source in (mapping.get("fields") or {}).items():
            value = _get_path(root, source)
            if value is None:
                continue
            head, _, tail = target.partition(".")
            if tail:
                out.setdefault(head, {})[tail] = value
            else:
                out[target] = value
        items = mapping.get("items")
        if items:
            rows = _get_path(root, items["path"])
            if isinstance(rows, list):
                out["items"] = [{t: _get_path(r, p) for t, p in items["fields"].items() if _get_path(r, p) is not None}
                                for r in rows[: service.MAX_ITEMS]]
    status_map = mapping.get("status_map") or {}
    if isinstance(out.get("status"), str) and out["status"] in status_map:
        out["status"] = status_map[out["status"]]
    if isinstance(out.get("customer"), dict) and "kind" not in out["customer"]:
        out["customer"]["kind"] = mapping.get("customer_kind", "phone")
    for key in ("value", "phone", "email"):  # shops send phones as numbers too
        if isinstance(out.get("customer"), dict) and isinstance(out["customer"].get(key), int):
            out["customer"][key] = str(out["customer"][key])
    out["number"] = number
    return out


_client: httpx.Client | None = None


def _shared_client() -> httpx.Client:
    """One client per process, its connections kept alive: a new client costs ~50–100 ms (TLS context)."""
    global _client
    with _cache_lock:
        if _client is None:
            _client = httpx.Client(follow_redirects=False, limits=httpx.Limits(max_connections=16))
        return _client


def _fetch(remote: Remote, number: str) -> Any:
    url = remote.url.replace("{number}", urllib.parse.quote(number, safe=""))
    with _shared_client().stream("GET", url, headers=remote.headers,
                                 timeout=httpx.Timeout(remote.timeout)) as response:
        if response.status_code == 404:
            return _MISSING
        if response.status_code != 200:
            raise Unavailable(f"the order lookup answered HTTP {response.status_code}")
        body = b""
        for chunk in response.iter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise Unavailable("the order lookup's answer is too large")
    from otklik.platform import jsonbody

    try:
        return jsonbody.loads(body, what="the order lookup's answer", max_bytes=MAX_ANSWER_BYTES)
    except DomainError as exc:
        raise Unavailable(exc.message) from None


def fetch(remote: Remote, number: str) -> Any:
    """The shop's answer for `number` (or `_MISSING`), in at most `remote.timeout` seconds in all."""
    future = _pool.submit(_fetch, remote, number)
    try:
        return future.result(timeout=remote.timeout)
    except concurrent.futures.TimeoutError:
        future.cancel()
        raise Unavailable(f"the order lookup did not answer within {remote.timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise Unavailable(f"the order lookup is unreachable: {type(exc).__name__}") from None


def pull(session: Session, workspace_id: int, number: str, *, use_cache: bool = True) -> Order | None:
    """The order as the shop's lookup URL describes it now (stored, source `pull`), None when it has no such
    order; Unavailable when it does not answer in time. No lookup URL: the local store alone."""
    local = service.find_order(session, workspace_id, number)
    remote = remote_for(session.get(OrderSettings, workspace_id)) if _may_pull(session, workspace_id) else None
    if remote is None:
        return local
    key = (workspace_id, number)
    now = time.monotonic()
    with _cache_lock:
        hit = _cache.get(key)
    if use_cache and hit is not None and hit[0] > now:
        return local  # the shop was asked within cache_s: what it said is stored (or it has no such order)
    answer = fetch(remote, number)
    with _cache_lock:
        if len(_cache) > 10_000:
            _cache.clear()
        _cache[key] = (now + remote.cache_s, answer if answer == _MISSING else "seen")
    if answer == _MISSING:
        return local  # pushed here but unknown to the lookup URL: the pushed copy stands
    item = service.parse_order(map_answer(answer, remote.mapping, number), number=number)
    result = service.upsert(session, Actor.system(workspace_id, kind="system"), item, source="pull")
    return result.order


def find(session: Session, workspace_id: int, number: str) -> Order | None:
    """The order for the assistant: the local store, refreshed from the pull URL when one is set (a stored copy
    is used when the shop does not answer in time and there is one)."""
    try:
        return pull(session, workspace_id, number)
    except Unavailable:
        local = service.find_order(session, workspace_id, number)
        if local is not None:
            return local
        raise


def try_lookup(session: Session, workspace_id: int, number: str) -> dict[str, Any]:
    remote = remote_for(session.get(OrderSettings, workspace_id))
    if remote is None:
        raise field_error("lookup_url", "no order-lookup URL is set")
    started = time.perf_counter()
    answer = fetch(remote, number)
    took = round((time.perf_counter() - started) * 1000, 1)
    if answer == _MISSING:
        return {"found": False, "ms": took}
    mapped = map_answer(answer, remote.mapping, number)
    service.parse_order(mapped, number=number)  # a 422 names what the mapping got wrong
    return {"found": True, "ms": took, "order": mapped}
