"""FastAPI dependencies: the request's database session (committed before the response) and its actor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from otklik.accounts import service
from otklik.accounts.security import same
from otklik.accounts.service import Actor
from otklik.platform.db import session_scope
from otklik.platform.errors import Forbidden, Unauthorized

SESSION_COOKIE = "otklik_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def _db(request: Request) -> Iterator[Session]:
    with session_scope(write=request.method not in SAFE_METHODS) as session:
        yield session


DB = Annotated[Session, Depends(_db, scope="function")]


def authenticate(request: Request, db: Session, *, writable: bool | None = None) -> Actor:
    """The request's actor. `writable`: `db` is a write transaction (the default for unsafe methods), in
    which a token's use is noted; otherwise the note takes a short transaction of its own."""
    auth = request.headers.get("authorization", "")
    if auth:
        scheme, _, raw = auth.partition(" ")
        if scheme.lower() != "bearer" or not raw.strip():
            raise Unauthorized("use 'Authorization: Bearer <API token>'")
        found = service.resolve_api_token(db, raw.strip())
        if found is None:
            raise Unauthorized("the API token is unknown or revoked")
        token, user = found
        in_request = request.method not in SAFE_METHODS if writable is None else writable
        service.note_token_use(token, db if in_request else None)
        request.state.auth = "token"
        request.state.actor = actor = service.actor_for(user)  # who was here (routing's idle tracking)
        return actor
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        raise Unauthorized("sign in or send an API token")
    resolved = service.resolve_session(db, cookie)
    if resolved is None:
        raise Unauthorized("your session has expired; sign in again")
    login_session, user = resolved
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not same(sent, login_session.csrf_token):
            raise Forbidden("missing or wrong CSRF token (send the X-CSRF-Token header)", code="csrf")
    request.state.auth = "session"
    request.state.actor = actor = service.actor_for(user)
    return actor


def _current_actor(request: Request, db: DB) -> Actor:
    return authenticate(request, db)


CurrentActor = Annotated[Actor, Depends(_current_actor)]


def _actor_only(request: Request) -> Actor:
    with session_scope(write=False) as db:
        return authenticate(request, db, writable=False)


# For endpoints that run their own (retried) transactions: authentication reads in a session of its own.
ActorOnly = Annotated[Actor, Depends(_actor_only)]

