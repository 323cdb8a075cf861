"""Rules of the accounts domain: who may do what, in which workspace; every change audited."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from email_validator import EmailNotValidError, validate_email
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import (
    ROLE_RANK,
    ApiToken,
    AuditEntry,
    LoginSession,
    Role,
    Team,
    TeamMember,
    User,
    Workspace,
)
from otklik.accounts.security import (
    API_TOKEN_PREFIX,
    MIN_PASSWORD_LENGTH,
    hash_password,
    new_token,
    token_digest,
    verify_password,
)
from otklik.platform.db import affected, aware, utcnow
from otklik.platform.errors import Conflict, Forbidden, NotFound, Unauthorized, field_error

log = logging.getLogger(__name__)
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,62}$")


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user, an API token's user, or the system itself (jobs, channels)."""

    workspace_id: int
    user_id: int | None
    role: Role
    kind: str = "user"  # user / system / assistant / customer

    @classmethod
    def system(cls, workspace_id: int, kind: str = "system") -> Actor:
        return cls(workspace_id=workspace_id, user_id=None, role=Role.admin, kind=kind)

    def require(self, role: Role) -> None:
        if ROLE_RANK[self.role] < ROLE_RANK[role]:
            raise Forbidden(f"this action needs the {role.value} role")


def record_audit(session: Session, actor: Actor, *, entity_type: str, entity_id: int, action: str,
                 before: dict[str, Any] | None = None, after: dict[str, Any] | None = None,
                 note: str | None = None) -> None:
    session.add(AuditEntry(workspace_id=actor.workspace_id, actor_user_id=actor.user_id, actor_kind=actor.kind,
                           entity_type=entity_type, entity_id=entity_id, action=action, before=before,
                           after=after, note=note))


def list_audit(session: Session, actor: Actor, *, entity_type: str | None = None, entity_id: int | None = None,
               before_id: int | None = None, limit: int = 50) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.workspace_id == actor.workspace_id)
    if entity_type:
        stmt = stmt.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        stmt = stmt.where(AuditEntry.entity_id == entity_id)
    if before_id is not None:
        stmt = stmt.where(AuditEntry.id < before_id)
    return list(session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))


# -- workspaces ---------------------------------------------------------------------------------------

def create_workspace(session: Session, *, slug: str, name: str, language: str = "ru",
                     timezone: str = "Europe/Moscow") -> Workspace:
    if not SLUG.match(slug):
        raise field_error("slug", "use 2-63 lowercase letters, digits and hyphens")
    if session.scalar(select(Workspace.id).where(Workspace.slug == slug)):
        raise Conflict(f"workspace {slug!r} already exists")
    workspace = Workspace(slug=slug, name=name, language=language, timezone=timezone)
    session.add(workspace)
    session.flush()
    return workspace


def get_workspace(session: Session, workspace_id: int) -> Workspace:
    workspace = session.get(Workspace, workspace_id)
    if workspace is None:
        raise NotFound("workspace not found")
    return workspace


def get_workspace_by_slug(session: Session, slug: str) -> Workspace | None:
    return session.scalar(select(Workspace).where(Workspace.slug == slug))


def next_conversation_number(session: Session, workspace_id: int) -> int:
    """Atomically take the next human-readable number (row-locked on PostgreSQL, serialised on SQLite)."""
    number = session.scalar(
        update(Workspace).where(Workspace.id == workspace_id)
        .values(conversation_seq=Workspace.conversation_seq + 1).returning(Workspace.conversation_seq)
    )
    if number is None:
        raise NotFound("workspace not found")
    return int(number)


# -- users --------------------------------------------------------------------------------------------

def normalise_email(email: str, field: str = "email") -> str:
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise field_error(field, str(exc)) from None


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise field_error("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise field_error("password", "must be at most 1024 characters")


def create_user(session: Session, actor: Actor, *, email: str, name: str, role: Role = Role.agent,
                password: str | None = None, language: str = "ru") -> User:
    actor.require(Role.admin)
    email = normalise_email(email)
    if password is not None:
        _check_password(password)
    if session.scalar(select(User.id).where(User.workspace_id == actor.workspace_id, User.email == email)):
        raise Conflict(f"a user with email {email} already exists", code="duplicate")
    user = User(workspace_id=actor.workspace_id, email=email, name=name.strip() or email, role=role.value,
                password_hash=hash_password(password) if password else None, language=language)
    session.add(user)
    session.flush()
    record_audit(session, actor, entity_type="user", entity_id=user.id, action="created",
                 after={"email": email, "role": role.value})
    return user


def get_user(session: Session, actor: Actor, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None or user.workspace_id != actor.workspace_id:
        raise NotFound(f"user {user_id} not found")
    return user


def list_users(session: Session, actor: Actor) -> list[User]:
    return list(session.scalars(select(User).where(User.workspace_id == actor.workspace_id).order_by(User.id)))


def update_user(session: Session, actor: Actor, user_id: int, *, name: str | None = None,
                role: Role | None = None, is_active: bool | None = None, language: str | None = None,
                password: str | None = None, notify_team_new: bool | None = None,
                current_password: str | None = None) -> User:
    """A person changing their own password gives the current one (a stolen session or token alone must not
    take the account over); an admin setting another user's needs none. Either way the user's API tokens are
    revoked and their sessions ended: whoever held the old password may hold those too."""
    user = get_user(session, actor, user_id)
    is_self = actor.user_id == user.id
    if not is_self or role is not None or is_active is not None:
        actor.require(Role.admin)
    before = {"name": user.name, "role": user.role, "is_active": user.is_active, "language": user.language}
    if name is not None:
        user.name = name
    if language is not None:
        user.language = language
    if notify_team_new is not None:
        if not is_self:
            raise Forbidden("only the person themself chooses their notifications")
        user.notify_team_new = notify_team_new
    if role is not None:
        if is_self and role != Role.admin and user.role == Role.admin.value:
            raise Conflict("an admin cannot demote themself; ask another admin")
        user.role = role.value
    if is_active is not None:
        if is_self and not is_active:
            raise Conflict("you cannot deactivate yourself")
        user.is_active = is_active
        if not is_active:
            session.execute(delete(LoginSession).where(LoginSession.user_id == user.id))
    if password is not None:
        if is_self and not verify_password(user.password_hash, current_password or ""):
            raise Forbidden("give your current password (current_password) to change it",
                            code="current_password_required")
        _check_password(password)
        user.password_hash = hash_password(password)
        end_credentials(session, user.id)
    after = {"name": user.name, "role": user.role, "is_active": user.is_active, "language": user.language}
    record_audit(session, actor, entity_type="user", entity_id=user.id, action="updated", before=before,
                 after=after, note="password changed" if password else None)
    return user


def end_credentials(session: Session, user_id: int) -> int:
    """After a password change or reset: every session ended, every API token revoked. Returns the tokens."""
    session.execute(delete(LoginSession).where(LoginSession.user_id == user_id))
    revoked = session.execute(update(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
                              .values(revoked_at=utcnow()))
    return affected(revoked)


# -- teams --------------------------------------------------------------------------------------------

def create_team(session: Session, actor: Actor, *, name: str, member_ids: list[int] | None = None) -> Team:
    actor.require(Role.supervisor)
    name = name.strip()
    if not name:
        raise field_error("name", "must not be empty")
    if session.scalar(select(Team.id).where(Team.workspace_id == actor.workspace_id, Team.name == name)):
        raise Conflict(f"team {name!r} already exists", code="duplicate")
    team = Team(workspace_id=actor.workspace_id, name=name)
    session.add(team)
    session.flush()
    if member_ids:
        set_team_members(session, actor, team.id, member_ids)
    record_audit(session, actor, entity_type="team", entity_id=team.id, action="created", after={"name": name})
    return team


def get_team(session: Session, actor: Actor, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if team is None or team.workspace_id != actor.workspace_id:
        raise NotFound(f"team {team_id} not found")
    return team


def list_teams(session: Session, actor: Actor) -> list[Team]:
    return list(session.scalars(select(Team).where(Team.workspace_id == actor.workspace_id).order_by(Team.id)))


def team_member_ids(session: Session, actor: Actor, team_ids: list[int]) -> dict[int, list[int]]:
    rows = session.execute(select(TeamMember.team_id, TeamMember.user_id).where(
        TeamMember.workspace_id == actor.workspace_id, TeamMember.team_id.in_(team_ids)))
    result: dict[int, list[int]] = {t: [] for t in team_ids}
    for team_id, user_id in rows:
        result[team_id].append(user_id)
    return result


def set_team_members(session: Session, actor: Actor, team_id: int, member_ids: list[int]) -> None:
    actor.require(Role.supervisor)
    get_team(session, actor, team_id)
    wanted = sorted(set(member_ids))
    found = set(session.scalars(select(User.id).where(User.workspace_id == actor.workspace_id,
                                                       User.id.in_(wanted))))
    missing = [m for m in wanted if m not in found]
    if missing:
        raise field_error("member_ids", f"unknown users: {missing}")
    before = team_member_ids(session, actor, [team_id])[team_id]
    session.execute(delete(TeamMember).where(TeamMember.team_id == team_id))
    session.add_all(TeamMember(team_id=team_id, user_id=u, workspace_id=actor.workspace_id) for u in wanted)
    record_audit(session, actor, entity_type="team", entity_id=team_id, action="members_changed",
                 before={"member_ids": sorted(before)}, after={"member_ids": wanted})


def delete_team(session: Session, actor: Actor, team_id: int) -> None:
    actor.require(Role.admin)
    team = get_team(session, actor, team_id)
    record_audit(session, actor, entity_type="team", entity_id=team.id, action="deleted",
                 before={"name": team.name})
    session.delete(team)


# -- sessions and tokens ------------------------------------------------------------------------------

class LoginFailed(Unauthorized):
    """A refused sign-in; `users` are the accounts the e-mail named (for their audit log), never shown."""

    def __init__(self, message: str, users: list[User]):
        super().__init__(message)
        self.users = users


MAX_WORKSPACES_PER_EMAIL = 5  # password checks one sign-in may cost (argon2 each) when no workspace is given


def login(session: Session, *, workspace_slug: str | None, email: str, password: str,
          ttl_hours: int, ip: str | None = None, user_agent: str | None = None) -> tuple[str, LoginSession, User]:
    """Check the password; on success return (raw session token, session row, user).

    An e-mail in several workspaces without a workspace given: the password picks the account, so the answer
    to a wrong password is the same «wrong email or password» whether the e-mail exists once, several times or
    not at all (it used to say «in several workspaces»). Only someone who knows the password of two of them is
    asked for the workspace."""
    query = select(User).join(Workspace, Workspace.id == User.workspace_id).where(
        func.lower(User.email) == email.strip().lower())
    if workspace_slug:
        query = query.where(Workspace.slug == workspace_slug)
    users = list(session.scalars(query.order_by(User.id).limit(MAX_WORKSPACES_PER_EMAIL)))
    matched = [u for u in users if verify_password(u.password_hash, password)] if users else []
    if not users:
        verify_password(None, password)  # the same time for an unknown e-mail
    if not matched:
        raise LoginFailed("wrong email or password", users)
    if len(matched) > 1:
        raise LoginFailed("this email and password open several workspaces: give the workspace too", [])
    user = matched[0]
    if not user.is_active:
        raise LoginFailed("this account is deactivated", [user])
    raw = new_token()
    row = LoginSession(token_hash=token_digest(raw), csrf_token=new_token(), workspace_id=user.workspace_id,
                       user_id=user.id, expires_at=utcnow() + dt.timedelta(hours=ttl_hours),
                       ip=(ip or None) and ip[:64], user_agent=(user_agent or None) and user_agent[:200])
    session.add(row)
    session.execute(delete(LoginSession).where(LoginSession.user_id == user.id,
                                               LoginSession.expires_at < utcnow()))
    session.flush()
    return raw, row, user


def resolve_session(session: Session, raw: str) -> tuple[LoginSession, User] | None:
    row = session.scalar(select(LoginSession).where(LoginSession.token_hash == token_digest(raw)))
    if row is None or row.expires_at < utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return row, user


def logout(session: Session, raw: str) -> None:
    session.execute(delete(LoginSession).where(LoginSession.token_hash == token_digest(raw)))


def list_sessions(session: Session, actor: Actor) -> list[LoginSession]:
    """The actor's own signed-in sessions that have not expired, newest first."""
    return list(session.scalars(select(LoginSession).where(
        LoginSession.user_id == actor.user_id, LoginSession.workspace_id == actor.workspace_id,
        LoginSession.expires_at > utcnow()).order_by(LoginSession.id.desc())))


def revoke_session(session: Session, actor: Actor, session_id: int) -> None:
    """Ends one of the actor's own sessions («signed in from a browser I don't recognise»)."""
    row = session.get(LoginSession, session_id)
    if row is None or row.user_id != actor.user_id or row.workspace_id != actor.workspace_id:
        raise NotFound(f"session {session_id} not found")
    session.delete(row)
    record_audit(session, actor, entity_type="user", entity_id=row.user_id, action="session_revoked",
                 after={"session_id": session_id, "ip": row.ip})


def create_api_token(session: Session, actor: Actor, *, name: str, user_id: int | None = None,
                     expires_at: dt.datetime | None = None) -> tuple[str, ApiToken]:
    owner_id = user_id if user_id is not None else actor.user_id
    if owner_id is None:
        raise field_error("user_id", "a token belongs to a user")
    if owner_id != actor.user_id:
        actor.require(Role.admin)
    get_user(session, actor, owner_id)
    raw = new_token(API_TOKEN_PREFIX)
    if expires_at is not None and expires_at <= utcnow():
        raise field_error("expires_at", "must be in the future")
    token = ApiToken(workspace_id=actor.workspace_id, user_id=owner_id, name=name.strip() or "token",
                     prefix=raw[:10], token_hash=token_digest(raw), expires_at=expires_at)
    session.add(token)
    session.flush()
    record_audit(session, actor, entity_type="api_token", entity_id=token.id, action="created",
                 after={"name": token.name, "user_id": owner_id, "prefix": token.prefix,
                        "expires_at": expires_at.isoformat() if expires_at else None})
    return raw, token


def list_api_tokens(session: Session, actor: Actor) -> list[ApiToken]:
    stmt = select(ApiToken).where(ApiToken.workspace_id == actor.workspace_id, ApiToken.revoked_at.is_(None))
    if ROLE_RANK[actor.role] < ROLE_RANK[Role.admin]:
        stmt = stmt.where(ApiToken.user_id == actor.user_id)
    return list(session.scalars(stmt.order_by(ApiToken.id)))


def revoke_api_token(session: Session, actor: Actor, token_id: int) -> None:
    token = session.get(ApiToken, token_id)
    if token is None or token.workspace_id != actor.workspace_id or token.revoked_at is not None:
        raise NotFound(f"API token {token_id} not found")
    if token.user_id != actor.user_id:
        actor.require(Role.admin)
    token.revoked_at = utcnow()
    record_audit(session, actor, entity_type="api_token", entity_id=token.id, action="revoked")


def resolve_api_token(session: Session, raw: str) -> tuple[ApiToken, User] | None:
    if not raw.startswith(API_TOKEN_PREFIX):
        return None
    row = session.execute(select(ApiToken, User).join(User, User.id == ApiToken.user_id)
                          .where(ApiToken.token_hash == token_digest(raw))).first()
    if row is None:
        return None
    token, user = row
    if token.revoked_at is not None or not user.is_active:
        return None
    if token.expires_at is not None and aware(token.expires_at) <= utcnow():
        return None
    return token, user


TOKEN_USE_PRECISION = dt.timedelta(minutes=1)


def note_token_use(token: ApiToken, session: Session | None = None) -> None:
    """Writes `last_used_at`, at most once a minute a token (a guarded UPDATE): an integration polling every
    second costs one write a minute. In `session` when the request writes anyway (a second write transaction
    would wait for the request's own), else in a short one of its own; a busy database never fails the call."""
    now = utcnow()
    if token.last_used_at is not None and now - aware(token.last_used_at) < TOKEN_USE_PRECISION:
        return
    stmt = update(ApiToken).where(
        ApiToken.id == token.id,
        (ApiToken.last_used_at.is_(None)) | (ApiToken.last_used_at < now - TOKEN_USE_PRECISION)
    ).values(last_used_at=now).execution_options(synchronize_session=False)
    if session is not None:
        session.execute(stmt)
        return
    from otklik.platform.db import session_scope

    try:
        with session_scope() as own:
            own.execute(stmt)
    except Exception as exc:  # the request itself must not fail for a bookkeeping write
        log.warning("last_used_at of API token %s not written: %s", token.id, type(exc).__name__)


def actor_for(user: User) -> Actor:
    return Actor(workspace_id=user.workspace_id, user_id=user.id, role=Role(user.role))


def bootstrap_workspace(session: Session, *, slug: str, name: str, admin_email: str, admin_password: str,
                        admin_name: str = "Administrator") -> tuple[Workspace, User]:
    """A new workspace with its first admin (CLI and demo)."""
    workspace = create_workspace(session, slug=slug, name=name)
    system = Actor.system(workspace.id)
    try:
        admin = create_user(session, system, email=admin_email, name=admin_name, role=Role.admin,
                            password=admin_password)
    except IntegrityError as exc:  # pragma: no cover - guarded above
        raise Conflict("admin already exists") from exc
    return workspace, admin
