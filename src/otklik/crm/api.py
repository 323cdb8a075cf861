"""HTTP surface of the CRM integration: the admin API under /api/v1/integrations/crm/… and the CRMs' webhook.

Secrets are write-only (shown as "set"/"missing"); another workspace's connection is a 404. The webhook is
public (its URL's token is the secret, plus the vendor's own token where it sends one), answers fast, leaves
vendor calls to jobs, and turns any hostile body into a 4xx, never a 500.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.deps import DB, ActorOnly, CurrentActor
from otklik.accounts.models import Role
from otklik.crm import jobs, service
from otklik.crm.base import CrmError, connectors, get_connector
from otklik.crm.models import CrmConnection, CrmSync
from otklik.platform.db import session_scope
from otklik.platform.errors import InvalidInput
from otklik.platform.jsonbody import SafeJSONRoute, loads_object

router = APIRouter(tags=["integrations"])
webhook_router = APIRouter(route_class=SafeJSONRoute, include_in_schema=False)
MAX_FIELDS = 1000


class KindOut(BaseModel):
    kind: str
    title: str
    description: str
    config_schema: dict[str, Any]
    secret_fields: list[str]
    secret_titles: dict[str, str]
    deal_word: str


class SyncOut(BaseModel):
    id: int
    connection_id: int
    status: str
    create_missing: bool
    cursor: int
    total: int
    processed: int
    matched: int
    created: int
    skipped: int
    error: str | None
    started_at: dt.datetime
    finished_at: dt.datetime | None


class ConnectionOut(BaseModel):
    id: int
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    secrets: dict[str, str] = Field(description='Each secret: "set" or "missing"; values are never returned')
    status: str = Field(description="disconnected / ok / error")
    last_error: str | None
    last_error_at: dt.datetime | None
    last_ok_at: dt.datetime | None
    webhook_path: str
    linked_customers: int
    notes_done: int
    notes_failed: int
    sync: SyncOut | None


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=16)
    name: str = Field(default="default", min_length=1, max_length=120)
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="Write-only")
    enabled: bool = True


class ConnectionUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    config: dict[str, Any] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="Write-only; an empty field keeps the value")
    enabled: bool | None = None


class SyncIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    create_missing: bool = Field(False, description="Create a CRM contact for customers the CRM does not have")


class ActionOut(BaseModel):
    ok: bool
    message: str


class DealOut(BaseModel):
    id: str
    number: str
    title: str
    status: str
    amount: str
    currency: str
    url: str
    changed_at: dt.datetime | None


class CustomerCrmOut(BaseModel):
    connection_id: int
    title: str
    status: str
    contact_id: str | None
    matched_by: str | None
    deals: list[DealOut]


def sync_out(sync: CrmSync | None) -> SyncOut | None:
    if sync is None:
        return None
    return SyncOut(id=sync.id, connection_id=sync.connection_id, status=sync.status,
                   create_missing=sync.create_missing, cursor=sync.cursor, total=sync.total,
                   processed=sync.processed, matched=sync.matched, created=sync.created, skipped=sync.skipped,
                   error=sync.error, started_at=sync.started_at, finished_at=sync.finished_at)


def connection_out(summary: service.ConnectionSummary) -> ConnectionOut:
    c = summary.connection
    return ConnectionOut(id=c.id, kind=c.kind, name=c.name, enabled=c.enabled, config=dict(c.config or {}),
                         secrets=summary.secrets, status=c.status, last_error=c.last_error,
                         last_error_at=c.last_error_at, last_ok_at=c.last_ok_at, webhook_path=service.webhook_path(c),
                         linked_customers=summary.links, notes_done=summary.notes_done,
                         notes_failed=summary.notes_failed, sync=sync_out(summary.sync))


def _one(db: Any, actor: Any, connection_id: int) -> ConnectionOut:
    db.flush()
    service.get_connection(db, actor, connection_id)
    return next(connection_out(s) for s in service.summaries(db, actor) if s.connection.id == connection_id)


@router.get("/integrations/crm/kinds", response_model=list[KindOut])
def list_kinds(actor: CurrentActor) -> list[KindOut]:
    actor.require(Role.admin)
    return [KindOut(kind=c.kind, title=c.title, description=c.description, config_schema=c.Config.model_json_schema(),
                    secret_fields=list(c.secret_fields), secret_titles=dict(c.secret_titles), deal_word=c.deal_word)
            for c in sorted(connectors().values(), key=lambda c: c.title)]


@router.get("/integrations/crm/connections", response_model=list[ConnectionOut])
def list_connections(actor: CurrentActor, db: DB) -> list[ConnectionOut]:
    actor.require(Role.admin)
    return [connection_out(s) for s in service.summaries(db, actor)]


@router.post("/integrations/crm/connections", response_model=ConnectionOut, status_code=201)
def create_connection(body: ConnectionCreate, actor: CurrentActor, db: DB) -> ConnectionOut:
    connection = service.create_connection(db, actor, kind=body.kind, name=body.name, config=body.config,
                                           secrets=body.secrets, enabled=body.enabled)
    return _one(db, actor, connection.id)


@router.get("/integrations/crm/connections/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: int, actor: CurrentActor, db: DB) -> ConnectionOut:
    actor.require(Role.admin)
    return _one(db, actor, connection_id)


@router.patch("/integrations/crm/connections/{connection_id}", response_model=ConnectionOut)
def update_connection(connection_id: int, body: ConnectionUpdate, actor: CurrentActor, db: DB) -> ConnectionOut:
    service.update_connection(db, actor, connection_id, name=body.name, config=body.config, secrets=body.secrets,
                              enabled=body.enabled)
    return _one(db, actor, connection_id)


@router.delete("/integrations/crm/connections/{connection_id}", status_code=204)
def delete_connection(connection_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_connection(db, actor, connection_id)
    return Response(status_code=204)


@router.post("/integrations/crm/connections/{connection_id}/test", response_model=ActionOut)
def test_connection(connection_id: int, actor: ActorOnly) -> ActionOut:
    """The test's outcome is the answer: a CRM that refuses or cannot be reached is `ok: false` with the
    readable reason (also on the connection's status line), not an error of this API."""
    try:
        return ActionOut(ok=True, message=service.test_connection(actor, connection_id))
    except CrmError as exc:
        return ActionOut(ok=False, message=exc.message)


@router.post("/integrations/crm/connections/{connection_id}/retry", response_model=ActionOut)
def retry_connection(connection_id: int, actor: ActorOnly) -> ActionOut:
    count = jobs.retry_failed(actor, connection_id)
    return ActionOut(ok=True, message=f"{count} queued again")


@router.post("/integrations/crm/connections/{connection_id}/sync", response_model=SyncOut, status_code=202)
def start_sync(connection_id: int, actor: ActorOnly, body: SyncIn | None = None) -> SyncOut | None:
    return sync_out(jobs.begin_sync(actor, connection_id, body.create_missing if body else False))


@router.get("/integrations/crm/syncs/{sync_id}", response_model=SyncOut)
def get_sync(sync_id: int, actor: CurrentActor, db: DB) -> SyncOut | None:
    actor.require(Role.admin)
    return sync_out(service.get_sync(db, actor, sync_id))


@router.get("/integrations/crm/customers/{customer_id}", response_model=list[CustomerCrmOut])
def customer_crm(customer_id: int, actor: CurrentActor, db: DB) -> list[CustomerCrmOut]:
    """The customer's CRM contacts and their cached deals/orders (any agent; read from the local cache)."""
    survivor = service.check_customer(db, actor, customer_id)
    return [CustomerCrmOut(connection_id=v.connection_id, title=v.title, status=v.status, contact_id=v.contact_id,
                           matched_by=v.matched_by,
                           deals=[DealOut(id=d.external_id, number=d.number, title=d.title, status=d.status,
                                          amount=d.amount, currency=d.currency, url=d.url, changed_at=d.changed_at)
                                  for d in v.deals])
            for v in service.customer_crm(db, actor.workspace_id, survivor)]


@router.post("/integrations/crm/customers/{customer_id}/refresh", response_model=ActionOut, status_code=202)
def refresh_customer_route(customer_id: int, actor: ActorOnly) -> ActionOut:
    count = jobs.refresh_all(actor, customer_id)
    return ActionOut(ok=True, message=f"{count} CRM connection(s) asked")


@webhook_router.get("/integrations/crm/amocrm/oauth")
def amocrm_oauth(code: str = "", state: str = "") -> Response:
    """amoCRM's redirect after the admin allowed access: the signed `state` names the connection."""
    from fastapi.responses import RedirectResponse

    connection_id = service.complete_oauth(state[:200], code)
    return RedirectResponse(f"/settings/integrations?connected={connection_id}", status_code=303)


# -- the CRMs' webhook ----------------------------------------------------------------------------------

def flatten(value: Any, prefix: str = "", out: dict[str, str] | None = None) -> dict[str, str]:
    """A JSON body as the flat bracketed keys a form would carry (data[FIELDS][ID]), strings only."""
    out = {} if out is None else out
    if len(out) >= MAX_FIELDS:
        return out
    if isinstance(value, dict):
        for key, item in value.items():
            flatten(item, f"{prefix}[{key}]" if prefix else str(key), out)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            flatten(item, f"{prefix}[{index}]", out)
    elif value is not None and prefix:
        out[prefix] = str(value).lower() if isinstance(value, bool) else str(value)
    return out


async def webhook_fields(request: Request) -> dict[str, str]:
    raw = await request.body()
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        return flatten(loads_object(raw))
    try:
        text = raw.decode("utf-8")
        pairs = urllib.parse.parse_qsl(text, keep_blank_values=True, strict_parsing=False,
                                       max_num_fields=MAX_FIELDS, errors="strict")
    except (UnicodeDecodeError, ValueError):
        raise InvalidInput("the body is neither JSON nor a UTF-8 form", code="malformed") from None
    fields: dict[str, str] = {}
    for key, value in pairs:
        if any("\ud800" <= ch <= "\udfff" for ch in key + value):
            raise InvalidInput("the body holds text that is not valid Unicode", code="malformed")
        fields[key[:200]] = value[:4000]
    return fields


@webhook_router.post("/integrations/crm/webhook/{token}")
async def crm_webhook(token: str, request: Request) -> dict[str, Any]:
    """The CRM's outgoing webhook (amoCRM, Bitrix24 event handlers, a RetailCRM trigger): checked, the deletions
    applied, the rest handed to jobs; the database and the queue are used off the event loop."""
    from starlette.concurrency import run_in_threadpool

    fields = await webhook_fields(request)
    headers = {k.lower(): v for k, v in request.headers.items()}
    return await run_in_threadpool(_accept, token, fields, headers)


def _accept(token: str, fields: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    connection_id, changes = service.accept_webhook(token, fields, headers)
    for change in changes:
        jobs.apply_change(connection_id, change.entity, change.id, change.contact_id)
    if get_connector_kind(connection_id) == "retailcrm":
        jobs.pull_feed(connection_id)  # its trigger is a nudge: the order history says what changed
    return {"ok": True, "changes": len(changes)}


def get_connector_kind(connection_id: int) -> str | None:
    with session_scope(write=False) as session:
        connection = session.get(CrmConnection, connection_id)
        return connection.kind if connection is not None and get_connector(connection.kind) else None
