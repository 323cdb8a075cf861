"""HTTP surface of one's own notifications: choices, the Telegram link code, unlinking, the recent ones.

Everything here is the caller's own (`/me/...`): no endpoint reads or changes another agent's settings.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.notifications import service

router = APIRouter(tags=["notifications"])


class Preferences(BaseModel):
    new_in_team: bool
    customer_reply: bool
    mention: bool
    sla: bool
    approval: bool


class PreferencesUpdate(Strict):
    new_in_team: bool | None = None
    customer_reply: bool | None = None
    mention: bool | None = None
    sla: bool | None = None
    approval: bool | None = None


class TelegramLinkOut(BaseModel):
    linked_at: dt.datetime
    username: str | None


class NotificationsOut(BaseModel):
    preferences: Preferences
    telegram: TelegramLinkOut | None
    telegram_bot_connected: bool


class LinkCodeOut(BaseModel):
    code: str
    expires_at: dt.datetime
    send_to_bot: str
    bot_username: str | None
    link: str | None  # https://t.me/<bot>?start=<code>: one tap on the phone


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    conversation_id: int | None
    text: str
    status: str
    created_at: dt.datetime
    sent_at: dt.datetime | None


def _state(db: DB, actor: CurrentActor) -> NotificationsOut:
    link = service.link_of(db, actor.user_id)
    return NotificationsOut(
        preferences=Preferences(**service.preferences(db, actor)),
        telegram=TelegramLinkOut(linked_at=link.linked_at, username=link.username) if link is not None else None,
        telegram_bot_connected=bool(service.telegram_bots(db, actor.workspace_id)))


@router.get("/me/notifications", response_model=NotificationsOut)
def get_notifications(actor: CurrentActor, db: DB) -> NotificationsOut:
    return _state(db, actor)


@router.patch("/me/notifications/preferences", response_model=Preferences)
def update_preferences(body: PreferencesUpdate, actor: CurrentActor, db: DB) -> Preferences:
    return Preferences(**service.update_preferences(db, actor, body.model_dump(exclude_none=True)))


@router.post("/me/notifications/telegram/code", response_model=LinkCodeOut, status_code=201)
def new_link_code(actor: CurrentActor, db: DB) -> LinkCodeOut:
    """A one-time code (ten minutes): send `/start CODE` to the workspace's Telegram bot."""
    code, expires_at = service.issue_link_code(db, actor)
    username = service.bot_username(db, actor.workspace_id)
    return LinkCodeOut(code=code, expires_at=expires_at, send_to_bot=f"/start {code}", bot_username=username,
                       link=service.start_link(username, code))


@router.delete("/me/notifications/telegram", status_code=204)
def unlink_telegram(actor: CurrentActor, db: DB) -> Response:
    service.unlink(db, actor)
    return Response(status_code=204)


@router.get("/me/notifications/recent", response_model=list[NotificationOut])
def recent_notifications(actor: CurrentActor, db: DB) -> list[NotificationOut]:
    return [NotificationOut.model_validate(n) for n in service.recent(db, actor)]
