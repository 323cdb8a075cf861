"""Admin API of channel accounts: any registered plugin's accounts, configured from its `Config`.

Secret fields are write-only: they are stored encrypted, never returned (shown as "set"), never logged and
never written to the audit log (only which ones changed). Every change is audited. Admin role only.
"""

from __future__ import annotations

import secrets as token_source
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, ActorOnly, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.channels.base import ChannelPlugin, get_plugin, new_webhook_token, plugins, webhook_path
from otklik.channels.models import ChannelAccount, ChannelEvent, EventStatus
from otklik.channels.secrets import decrypt_secrets, encrypt_secrets
from otklik.platform.crypto import merge_write_only
from otklik.platform.db import session_scope
from otklik.platform.errors import Conflict, InvalidInput, NotFound, field_error
from otklik.platform.netguard import check_public_url

router = APIRouter(tags=["channels"])


class KindOut(BaseModel):
    kind: str
    title: str
    description: str
    icon: str
    config_schema: dict[str, Any]
    secret_fields: list[str]
    secret_titles: dict[str, str]
    generated_secrets: list[str]
    has_webhook: bool
    can_test: bool
    can_connect_webhook: bool


class AccountOut(BaseModel):
    id: int
    kind: str
    name: str
    enabled: bool
    config: dict[str, Any]
    secrets: dict[str, str] = Field(description='Each secret field: "set" or "missing"; values are never returned')
    webhook_path: str | None
    state: dict[str, Any] = Field(description="What the plugin reports (the bot's id, polling errors...)")
    pending_events: int
    failed_events: int


class AccountCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: str = Field(min_length=1, max_length=16)
    name: str = Field(default="default", min_length=1, max_length=120)
    config: dict[str, Any] = Field(default_factory=dict)
    secrets: dict[str, str] = Field(default_factory=dict, description="Write-only")
    enabled: bool = True


class AccountUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    config: dict[str, Any] | None = None
    secrets: dict[str, str] | None = Field(default=None, description="Write-only; an omitted or empty field keeps "
                                                                      "the stored value")
    enabled: bool | None = None


class ConnectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(default=None, max_length=300, description="The public address of this server "
                                 "(https://support.example.ru); defaults to OTKLIK_PUBLIC_URL, else this request's")


class ActionOut(BaseModel):
    ok: bool
    message: str
    webhook_url: str | None = None


def _plugin(kind: str) -> ChannelPlugin:
    plugin = get_plugin(kind)
    if plugin is None:
        raise field_error("kind", f"unknown channel kind {kind!r}; one of: {', '.join(sorted(plugins()))}")
    return plugin


def _config(plugin: ChannelPlugin, raw: dict[str, Any]) -> dict[str, Any]:
    try:
        config = plugin.Config.model_validate(raw).model_dump(mode="json")
    except ValidationError as exc:
        fields = [{"field": "config." + ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
                  for e in exc.errors()]
        raise InvalidInput("; ".join(f"{f['field']}: {f['message']}" for f in fields[:3]), fields=fields) from None
    for name, value in config.items():  # every address the server will call: never its own network (SSRF)
        if isinstance(value, str) and value.lower().startswith(("http://", "https://")):
            try:
                check_public_url(value)
            except ValueError as exc:
                raise field_error(f"config.{name}", str(exc)) from None
    return config


def _secrets(plugin: ChannelPlugin, stored: dict[str, str], given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    merged, changed = merge_write_only(plugin.kind, tuple(plugin.secret_fields), stored, given)
    for name in plugin.generated_secrets:
        if not merged.get(name):
            merged[name] = token_source.token_urlsafe(32)
            changed.append(name)
    plugin.check_secrets(merged)
    return merged, changed


def _counts(session: Session, account_ids: list[int]) -> dict[tuple[int, str], int]:
    from sqlalchemy import func

    if not account_ids:
        return {}
    rows = session.execute(select(ChannelEvent.account_id, ChannelEvent.status, func.count()).where(
        ChannelEvent.account_id.in_(account_ids),
        ChannelEvent.status.in_([EventStatus.pending.value, EventStatus.failed.value]))
        .group_by(ChannelEvent.account_id, ChannelEvent.status)).all()
    return {(a, s): n for a, s, n in rows}


def readable_secrets(account: ChannelAccount) -> dict[str, str]:
    """The stored secrets; {} when they cannot be decrypted (OTKLIK_SECRET_KEY changed: enter them again)."""
    try:
        return decrypt_secrets(account.secret)
    except ValueError:
        return {}


def account_out(account: ChannelAccount, counts: dict[tuple[int, str], int] | None = None) -> AccountOut:
    plugin = get_plugin(account.kind)
    stored = readable_secrets(account)
    names = plugin.secret_fields if plugin else tuple(stored)
    counts = counts or {}
    state = {k: v for k, v in (account.state or {}).items() if not k.startswith("poll_owner")}
    return AccountOut(
        id=account.id, kind=account.kind, name=account.name, enabled=account.enabled, config=dict(account.config or {}),
        secrets={n: "set" if stored.get(n) else "missing" for n in names},
        webhook_path=webhook_path(account.kind, account.webhook_token)
        if plugin and plugin.has_webhook and account.webhook_token else None,
        state=state, pending_events=counts.get((account.id, EventStatus.pending.value), 0),
        failed_events=counts.get((account.id, EventStatus.failed.value), 0))


def get_account(session: Session, actor: Actor, account_id: int) -> ChannelAccount:
    account = session.get(ChannelAccount, account_id)
    if account is None or account.workspace_id != actor.workspace_id or get_plugin(account.kind) is None:
        raise NotFound(f"channel account {account_id} not found")
    return account


def list_accounts(session: Session, actor: Actor) -> list[AccountOut]:
    kinds = list(plugins())
    accounts = list(session.scalars(select(ChannelAccount).where(
        ChannelAccount.workspace_id == actor.workspace_id, ChannelAccount.kind.in_(kinds)).order_by(ChannelAccount.id)))
    counts = _counts(session, [a.id for a in accounts])
    return [account_out(a, counts) for a in accounts]


def _name_taken(session: Session, actor: Actor, kind: str, name: str, exclude: int | None = None) -> bool:
    found = session.scalar(select(ChannelAccount.id).where(
        ChannelAccount.workspace_id == actor.workspace_id, ChannelAccount.kind == kind, ChannelAccount.name == name))
    return found is not None and found != exclude


def create_account(session: Session, actor: Actor, body: AccountCreate) -> ChannelAccount:
    actor.require(Role.admin)
    plugin = _plugin(body.kind)
    config = _config(plugin, body.config)
    values, changed = _secrets(plugin, {}, body.secrets)
    name = body.name.strip()
    if _name_taken(session, actor, plugin.kind, name):
        raise Conflict(f"a {plugin.title} account named {name!r} exists already", code="duplicate",
                       fields=[{"field": "name", "message": "already used"}])
    account = ChannelAccount(workspace_id=actor.workspace_id, kind=plugin.kind, name=name, config=config,
                             secret=encrypt_secrets(values), webhook_token=new_webhook_token(), state={},
                             enabled=body.enabled)
    session.add(account)
    session.flush()
    plugin.on_saved(session, account)
    record_audit(session, actor, entity_type="channel", entity_id=account.id, action="created",
                 after={"kind": plugin.kind, "name": name, "config": config, "enabled": body.enabled,
                        "secrets_set": sorted(changed)})
    return account


def update_account(session: Session, actor: Actor, account_id: int, body: AccountUpdate) -> ChannelAccount:
    actor.require(Role.admin)
    account = get_account(session, actor, account_id)
    plugin = _plugin(account.kind)
    before = {"name": account.name, "config": dict(account.config or {}), "enabled": account.enabled}
    after: dict[str, Any] = {}
    if body.name is not None and body.name.strip() != account.name:
        name = body.name.strip()
        if _name_taken(session, actor, account.kind, name, exclude=account.id):
            raise Conflict(f"a {plugin.title} account named {name!r} exists already", code="duplicate",
                           fields=[{"field": "name", "message": "already used"}])
        account.name = after["name"] = name
    if body.config is not None:
        config = _config(plugin, {**dict(account.config or {}), **body.config})
        if config != account.config:
            account.config = after["config"] = config
    if body.secrets is not None:
        values, changed = _secrets(plugin, readable_secrets(account), body.secrets)
        if changed:
            account.secret = encrypt_secrets(values)
            after["secrets_changed"] = sorted(changed)
    if body.enabled is not None and body.enabled != account.enabled:
        account.enabled = after["enabled"] = body.enabled
    if after:
        plugin.on_saved(session, account)
        record_audit(session, actor, entity_type="channel", entity_id=account.id, action="updated",
                     before={k: before[k] for k in after if k in before}, after=after)
    session.flush()
    return account


def delete_account(session: Session, actor: Actor, account_id: int) -> None:
    actor.require(Role.admin)
    account = get_account(session, actor, account_id)
    record_audit(session, actor, entity_type="channel", entity_id=account.id, action="deleted",
                 before={"kind": account.kind, "name": account.name})
    session.delete(account)
    session.flush()


def public_base(request: Request, given: str | None) -> str:
    """The address vendors reach this server at: given, else OTKLIK_PUBLIC_URL, else this request's own."""
    from otklik.platform.config import get_settings

    base = (given or get_settings().public_url or str(request.base_url)).strip().rstrip("/")
    if not base.startswith(("https://", "http://")) or " " in base:
        raise field_error("base_url", "an http(s) address such as https://support.example.ru")
    return base


def _snapshot(actor: Actor, account_id: int) -> tuple[ChannelAccount, ChannelPlugin, dict[str, Any], dict[str, str]]:
    """The account read in a short session of its own: vendor calls never hold a database transaction."""
    actor.require(Role.admin)
    with session_scope(write=False) as session:
        account = get_account(session, actor, account_id)
        session.expunge(account)
    return account, _plugin(account.kind), dict(account.config or {}), readable_secrets(account)


def test_account(actor: Actor, account_id: int) -> ActionOut:
    account, plugin, config, values = _snapshot(actor, account_id)
    message = plugin.test_connection(account, config, values)
    with session_scope() as session:
        record_audit(session, actor, entity_type="channel", entity_id=account.id, action="tested", after={"ok": True})
    return ActionOut(ok=True, message=message)


def connect_account(actor: Actor, account_id: int, base: str) -> ActionOut:
    account, plugin, config, values = _snapshot(actor, account_id)
    if not plugin.can_connect_webhook or not account.webhook_token:
        raise Conflict(f"{plugin.title} has no webhook to register", code="not_supported")
    url = base + webhook_path(account.kind, account.webhook_token)
    message = plugin.connect_webhook(account, config, values, url)
    with session_scope() as session:
        stored = session.get(ChannelAccount, account.id)
        if stored is not None:
            stored.state = {**(stored.state or {}), "webhook_url": url}
        record_audit(session, actor, entity_type="channel", entity_id=account.id, action="webhook_connected",
                     after={"url": url})
    return ActionOut(ok=True, message=message, webhook_url=url)


# -- routes -------------------------------------------------------------------------------------------

@router.get("/channels/kinds", response_model=list[KindOut])
def list_kinds(actor: CurrentActor) -> list[KindOut]:
    actor.require(Role.admin)
    return [KindOut(kind=p.kind, title=p.title, description=p.description, icon=p.icon,
                    config_schema=p.Config.model_json_schema(), secret_fields=list(p.secret_fields),
                    secret_titles=dict(p.secret_titles), generated_secrets=list(p.generated_secrets),
                    has_webhook=p.has_webhook, can_test=p.can_test, can_connect_webhook=p.can_connect_webhook)
            for p in sorted(plugins().values(), key=lambda p: p.title)]


@router.get("/channels/accounts", response_model=list[AccountOut])
def list_channel_accounts(actor: CurrentActor, db: DB) -> list[AccountOut]:
    actor.require(Role.admin)
    return list_accounts(db, actor)


@router.post("/channels/accounts", response_model=AccountOut, status_code=201)
def create_channel_account(body: AccountCreate, actor: CurrentActor, db: DB) -> AccountOut:
    return account_out(create_account(db, actor, body))


@router.get("/channels/accounts/{account_id}", response_model=AccountOut)
def get_channel_account(account_id: int, actor: CurrentActor, db: DB) -> AccountOut:
    actor.require(Role.admin)
    account = get_account(db, actor, account_id)
    return account_out(account, _counts(db, [account.id]))


@router.patch("/channels/accounts/{account_id}", response_model=AccountOut)
def update_channel_account(account_id: int, body: AccountUpdate, actor: CurrentActor, db: DB) -> AccountOut:
    account = update_account(db, actor, account_id, body)
    return account_out(account, _counts(db, [account.id]))


@router.delete("/channels/accounts/{account_id}", status_code=204)
def delete_channel_account(account_id: int, actor: CurrentActor, db: DB) -> Response:
    delete_account(db, actor, account_id)
    return Response(status_code=204)


@router.post("/channels/accounts/{account_id}/test", response_model=ActionOut)
def test_channel_account(account_id: int, actor: ActorOnly) -> ActionOut:
    return test_account(actor, account_id)


@router.post("/channels/accounts/{account_id}/connect", response_model=ActionOut)
def connect_channel_account(account_id: int, actor: ActorOnly, request: Request,
                            body: ConnectIn | None = None) -> ActionOut:
    return connect_account(actor, account_id, public_base(request, body.base_url if body else None))



