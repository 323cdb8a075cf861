"""Outbound half of the API channel: replies are POSTed to the integrator's webhook URL.

The signing secret is stored encrypted (`secrets.encrypt_secrets({"secret": ...})`) and shown only once.

Each request is signed (`X-Otklik-Signature: sha256=<HMAC of the body>`) and carries an `Idempotency-Key`
that stays the same across retries, so a receiver that honours it applies a reply exactly once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Annotated

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field, HttpUrl
from sqlalchemy import select

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.service import record_audit
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets, encrypt_secrets
from otklik.conversations.outbox import DeliveryError, OutboundMessage, register_sender
from otklik.platform.db import session_scope
from otklik.platform.errors import field_error
from otklik.platform.netguard import check_public_url

KIND = "api"
TIMEOUT = httpx.Timeout(10.0, connect=5.0)
router = APIRouter(tags=["channels"])


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiChannelSender:
    def __init__(self, url: str, secret: str):
        self.url = url
        self.secret = secret

    def send(self, message: OutboundMessage) -> str | None:
        body = json.dumps({
            "event": "message.outbound", "conversation_id": message.conversation_id,
            "conversation_number": message.conversation_number, "message_id": message.message_id,
            "text": message.text, "html": message.html,
            "recipients": [{"kind": k, "id": v} for k, v in message.recipients],
            "attachments": [{"filename": f, "content_type": t, "size": s} for f, t, s in message.attachments],
        }, ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json", "Idempotency-Key": message.idempotency_key,
                   "X-Otklik-Signature": sign(self.secret, body), "X-Otklik-Attempt": str(message.attempt)}
        try:
            response = httpx.post(self.url, content=body, headers=headers, timeout=TIMEOUT)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"webhook unreachable: {type(exc).__name__}") from None
        if response.status_code == 429:
            retry_after = response.headers.get("retry-after", "")
            raise DeliveryError("webhook asked to slow down (429)",
                                retry_after=float(retry_after) if retry_after.isdigit() else None)
        if 400 <= response.status_code < 500:
            raise DeliveryError(f"webhook refused the message: HTTP {response.status_code}", permanent=True)
        if response.status_code >= 300:
            raise DeliveryError(f"webhook failed: HTTP {response.status_code}")
        try:
            remote_id = response.json().get("id") if response.content else None
        except ValueError:
            remote_id = None
        return str(remote_id) if remote_id is not None else None


def sender_for(workspace_id: int) -> ApiChannelSender | None:
    with session_scope(write=False) as session:
        account = session.scalar(select(ChannelAccount).where(
            ChannelAccount.workspace_id == workspace_id, ChannelAccount.kind == KIND,
            ChannelAccount.enabled.is_(True)).order_by(ChannelAccount.id).limit(1))
        secret = decrypt_secrets(account.secret).get("secret") if account is not None else None
        if account is None or not account.config.get("webhook_url") or not secret:
            return None
        return ApiChannelSender(account.config["webhook_url"], secret)


def register() -> None:
    register_sender(KIND, sender_for)


class ApiChannelConfig(BaseModel):
    webhook_url: Annotated[HttpUrl, Field(description="Where replies are POSTed")]
    rotate_secret: bool = False


class ApiChannelOut(BaseModel):
    webhook_url: str
    secret: str | None = Field(default=None, description="Shown only when created or rotated")
    enabled: bool


@router.put("/channels/api", response_model=ApiChannelOut)
def configure(body: ApiChannelConfig, actor: CurrentActor, db: DB) -> ApiChannelOut:
    actor.require(Role.admin)
    try:
        check_public_url(str(body.webhook_url))  # replies are POSTed there: never the server's own network
    except ValueError as exc:
        raise field_error("webhook_url", str(exc)) from None
    account = db.scalar(select(ChannelAccount).where(ChannelAccount.workspace_id == actor.workspace_id,
                                                     ChannelAccount.kind == KIND))
    new_secret = None
    if account is None:
        new_secret = secrets.token_urlsafe(32)
        account = ChannelAccount(workspace_id=actor.workspace_id, kind=KIND, name="default", config={},
                                 secret=encrypt_secrets({"secret": new_secret}), state={})
        db.add(account)
    elif body.rotate_secret or not decrypt_secrets(account.secret).get("secret"):
        new_secret = secrets.token_urlsafe(32)
        account.secret = encrypt_secrets({"secret": new_secret})
    account.config = {**account.config, "webhook_url": str(body.webhook_url)}
    account.enabled = True
    db.flush()
    record_audit(db, actor, entity_type="channel", entity_id=account.id, action="configured",
                 after={"kind": KIND, "webhook_url": str(body.webhook_url), "secret_rotated": new_secret is not None})
    return ApiChannelOut(webhook_url=str(body.webhook_url), secret=new_secret, enabled=True)


@router.get("/channels/api", response_model=ApiChannelOut)
def show(actor: CurrentActor, db: DB) -> ApiChannelOut:
    actor.require(Role.admin)
    account = db.scalar(select(ChannelAccount).where(ChannelAccount.workspace_id == actor.workspace_id,
                                                     ChannelAccount.kind == KIND))
    if account is None:
        from otklik.platform.errors import NotFound

        raise NotFound("the API channel is not configured")
    return ApiChannelOut(webhook_url=account.config.get("webhook_url", ""), enabled=account.enabled)
