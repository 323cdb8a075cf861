"""HTTP surface of the accounts domain: sign-in, users, teams, API tokens, the audit log."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from sqlalchemy.orm import Session

from otklik.accounts import service, signin, two_factor
from otklik.accounts.deps import DB, SESSION_COOKIE, CurrentActor, authenticate
from otklik.accounts.models import Role, Team
from otklik.accounts.schemas import (
    AuditOut,
    LoginIn,
    LoginSessionOut,
    PasswordIn,
    SessionOut,
    TeamCreate,
    TeamMembers,
    TeamOut,
    TokenCreate,
    TokenCreated,
    TokenOut,
    TwoFactorCode,
    TwoFactorEnabled,
    TwoFactorSetupOut,
    UserCreate,
    UserOut,
    UserUpdate,
    WorkspaceOut,
)
from otklik.accounts.security import token_digest
from otklik.accounts.service import Actor
from otklik.platform.config import get_settings
from otklik.platform.jsonbody import SafeJSONRoute

router = APIRouter(route_class=SafeJSONRoute)  # /auth/login is public: bodies get the shared JSON limits


@router.post("/auth/login", response_model=SessionOut, tags=["auth"])
def login(body: LoginIn, request: Request, response: Response, db: DB) -> SessionOut:
    settings = get_settings()
    raw, login_session, user = signin.sign_in(db, request, email=body.email, password=body.password,
                                              workspace=body.workspace, via="api",
                                              ttl_hours=settings.session_ttl_hours, otp=body.otp)
    response.set_cookie(SESSION_COOKIE, raw, httponly=True, samesite="lax", secure=settings.cookie_secure,
                        max_age=settings.session_ttl_hours * 3600, path="/")
    return SessionOut(user=UserOut.model_validate(user), csrf_token=login_session.csrf_token,
                      expires_at=login_session.expires_at)


@router.post("/auth/logout", status_code=204, tags=["auth"])
def logout(request: Request, response: Response, db: DB) -> Response:
    authenticate(request, db)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        service.logout(db, cookie)
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.post("/auth/2fa/setup", response_model=TwoFactorSetupOut, tags=["auth"])
def two_factor_setup(actor: CurrentActor, db: DB) -> TwoFactorSetupOut:
    """A new TOTP secret for your authenticator app (a QR code of `otpauth_uri`); on after /auth/2fa/enable."""
    secret, uri = two_factor.start_setup(db, actor)
    return TwoFactorSetupOut(secret=secret, otpauth_uri=uri)


@router.post("/auth/2fa/enable", response_model=TwoFactorEnabled, tags=["auth"])
def two_factor_enable(body: TwoFactorCode, actor: CurrentActor, db: DB) -> TwoFactorEnabled:
    return TwoFactorEnabled(recovery_codes=two_factor.enable(db, actor, body.code))


@router.post("/auth/2fa/disable", status_code=204, tags=["auth"])
def two_factor_disable(body: PasswordIn, actor: CurrentActor, db: DB) -> Response:
    two_factor.disable(db, actor, body.password)
    return Response(status_code=204)


@router.get("/auth/sessions", response_model=list[LoginSessionOut], tags=["auth"])
def list_sessions(request: Request, actor: CurrentActor, db: DB) -> list[LoginSessionOut]:
    """Where you are signed in: when, from which address and browser; `current` is this request's own."""
    cookie = request.cookies.get(SESSION_COOKIE)
    mine = token_digest(cookie) if cookie else None
    return [LoginSessionOut.model_validate(s).model_copy(update={"current": s.token_hash == mine})
            for s in service.list_sessions(db, actor)]


@router.delete("/auth/sessions/{session_id}", status_code=204, tags=["auth"])
def revoke_session(session_id: Annotated[int, Path(ge=1, le=2**62)], actor: CurrentActor, db: DB) -> Response:
    service.revoke_session(db, actor, session_id)
    return Response(status_code=204)


@router.get("/auth/me", response_model=UserOut, tags=["auth"])
def me(actor: CurrentActor, db: DB) -> UserOut:
    assert actor.user_id is not None
    return UserOut.model_validate(service.get_user(db, actor, actor.user_id))


@router.get("/workspace", response_model=WorkspaceOut, tags=["workspace"])
def workspace(actor: CurrentActor, db: DB) -> WorkspaceOut:
    return WorkspaceOut.model_validate(service.get_workspace(db, actor.workspace_id))


@router.get("/users", response_model=list[UserOut], tags=["users"])
def list_users(actor: CurrentActor, db: DB) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in service.list_users(db, actor)]


@router.post("/users", response_model=UserOut, status_code=201, tags=["users"])
def create_user(body: UserCreate, actor: CurrentActor, db: DB) -> UserOut:
    user = service.create_user(db, actor, email=body.email, name=body.name, role=body.role,
                               password=body.password, language=body.language)
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["users"])
def get_user(user_id: int, actor: CurrentActor, db: DB) -> UserOut:
    return UserOut.model_validate(service.get_user(db, actor, user_id))


@router.patch("/users/{user_id}", response_model=UserOut, tags=["users"])
def update_user(user_id: int, body: UserUpdate, actor: CurrentActor, db: DB) -> UserOut:
    user = service.update_user(db, actor, user_id, **body.model_dump(exclude_unset=True))
    return UserOut.model_validate(user)


def _team_out(db: Session, actor: Actor, teams: Sequence[Team]) -> list[TeamOut]:
    members = service.team_member_ids(db, actor, [t.id for t in teams])
    return [TeamOut(id=t.id, name=t.name, member_ids=sorted(members[t.id]), created_at=t.created_at)
            for t in teams]


@router.get("/teams", response_model=list[TeamOut], tags=["teams"])
def list_teams(actor: CurrentActor, db: DB) -> list[TeamOut]:
    return _team_out(db, actor, service.list_teams(db, actor))


@router.post("/teams", response_model=TeamOut, status_code=201, tags=["teams"])
def create_team(body: TeamCreate, actor: CurrentActor, db: DB) -> TeamOut:
    team = service.create_team(db, actor, name=body.name, member_ids=body.member_ids)
    return _team_out(db, actor, [team])[0]


@router.get("/teams/{team_id}", response_model=TeamOut, tags=["teams"])
def get_team(team_id: int, actor: CurrentActor, db: DB) -> TeamOut:
    return _team_out(db, actor, [service.get_team(db, actor, team_id)])[0]


@router.put("/teams/{team_id}/members", response_model=TeamOut, tags=["teams"])
def set_members(team_id: int, body: TeamMembers, actor: CurrentActor, db: DB) -> TeamOut:
    service.set_team_members(db, actor, team_id, body.member_ids)
    return _team_out(db, actor, [service.get_team(db, actor, team_id)])[0]


@router.delete("/teams/{team_id}", status_code=204, tags=["teams"])
def delete_team(team_id: int, actor: CurrentActor, db: DB) -> Response:
    service.delete_team(db, actor, team_id)
    return Response(status_code=204)


@router.get("/api-tokens", response_model=list[TokenOut], tags=["api tokens"])
def list_tokens(actor: CurrentActor, db: DB) -> list[TokenOut]:
    return [TokenOut.model_validate(t) for t in service.list_api_tokens(db, actor)]


@router.post("/api-tokens", response_model=TokenCreated, status_code=201, tags=["api tokens"])
def create_token(body: TokenCreate, actor: CurrentActor, db: DB) -> TokenCreated:
    raw, token = service.create_api_token(db, actor, name=body.name, user_id=body.user_id,
                                          expires_at=body.expires_at)
    return TokenCreated(token=raw, **TokenOut.model_validate(token).model_dump())


@router.delete("/api-tokens/{token_id}", status_code=204, tags=["api tokens"])
def revoke_token(token_id: int, actor: CurrentActor, db: DB) -> Response:
    service.revoke_api_token(db, actor, token_id)
    return Response(status_code=204)


@router.get("/audit", response_model=list[AuditOut], tags=["audit"])
def audit(actor: CurrentActor, db: DB, entity_type: str | None = Query(default=None, max_length=32),
          entity_id: int | None = None, before_id: int | None = None,
          limit: Annotated[int, Query(ge=1, le=200)] = 50) -> list[AuditOut]:
    actor.require(Role.supervisor)
    rows = service.list_audit(db, actor, entity_type=entity_type, entity_id=entity_id, before_id=before_id,
                              limit=limit)
    return [AuditOut.model_validate(r) for r in rows]
