"""The workspace's own profile (name, default language, timezone): the settings page and `PATCH /workspace`.
Admins only; every change audited.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role, Workspace
from otklik.accounts.schemas import Strict, WorkspaceOut
from otklik.accounts.service import Actor, get_workspace, record_audit
from otklik.platform.errors import field_error

LANGUAGES = ("ru", "en")


def valid_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if not name or len(name) > 64 or ".." in name or name.startswith("/"):
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def update_workspace(session: Session, actor: Actor, *, name: str | None = None, language: str | None = None,
                     timezone: str | None = None) -> Workspace:
    actor.require(Role.admin)
    workspace = get_workspace(session, actor.workspace_id)
    before = {"name": workspace.name, "language": workspace.language, "timezone": workspace.timezone}
    if name is not None:
        if not name.strip():
            raise field_error("name", "must not be empty")
        if len(name.strip()) > 200:
            raise field_error("name", "at most 200 characters")
        if any(ord(ch) < 32 for ch in name):
            raise field_error("name", "one line of text, without control characters")
        workspace.name = name.strip()
    if language is not None:
        if language not in LANGUAGES:
            raise field_error("language", f"one of: {', '.join(LANGUAGES)}")
        workspace.language = language
    if timezone is not None:
        if not valid_timezone(timezone):
            raise field_error("timezone", "an IANA timezone such as Europe/Moscow")
        workspace.timezone = timezone
    after = {"name": workspace.name, "language": workspace.language, "timezone": workspace.timezone}
    record_audit(session, actor, entity_type="workspace", entity_id=workspace.id, action="updated",
                 before=before, after=after)
    return workspace


router = APIRouter(tags=["workspace"])


class WorkspaceUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    timezone: str | None = Field(default=None, min_length=1, max_length=64)


@router.patch("/workspace", response_model=WorkspaceOut)
def patch_workspace(body: WorkspaceUpdate, actor: CurrentActor, db: DB) -> WorkspaceOut:
    return WorkspaceOut.model_validate(update_workspace(db, actor, **body.model_dump(exclude_unset=True)))
