"""Signing in, as both doors (POST /api/v1/auth/login and the /login form) do it: one throttle for both,
shared by every process through Redis when configured, and every attempt on a known account in its audit log
with the source address.

The address is the connection's (`request.client`): X-Forwarded-For is believed only where the server was told
to trust the proxy (OTKLIK_TRUSTED_PROXIES, handed to uvicorn), so a client cannot pick a new address per guess.
Failures are what count: an office behind one address signing in every morning is never throttled.
"""

from __future__ import annotations

import logging

from fastapi import Request
from sqlalchemy.orm import Session

from otklik.accounts import service, two_factor
from otklik.accounts.models import LoginSession, User
from otklik.platform.errors import Unauthorized
from otklik.platform.ratelimit import SharedWindow

log = logging.getLogger(__name__)
# one account: 10 wrong passwords in 15 minutes, from anywhere (guessing one password from many addresses)
per_account = SharedWindow("login-account", limit=10, seconds=900)
# one address: 30 failed sign-ins in 10 minutes, whatever the accounts (spraying one password over many)
per_address = SharedWindow("login-address", limit=30, seconds=600)


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _account_key(email: str) -> str:
    return email.strip().lower()[:254]


def sign_in(db: Session, request: Request, *, email: str, password: str, workspace: str | None, via: str,
            ttl_hours: int, otp: str | None = None) -> tuple[str, LoginSession, User]:
    """Throttle, check (the password, then the one-time code when two-factor is on), audit. Raises
    RateLimited (429), service.LoginFailed or two_factor.OtpRequired / a wrong code (401)."""
    address = client_address(request)
    per_account.check(_account_key(email))
    per_address.check(address)
    try:
        raw, row, user = service.login(db, workspace_slug=workspace, email=email, password=password,
                                       ttl_hours=ttl_hours, ip=address,
                                       user_agent=request.headers.get("user-agent"))
    except service.LoginFailed as exc:
        per_account.add(_account_key(email))
        per_address.add(address)
        _audit_failure(db, exc.users, address, via, exc.message)
        raise
    try:
        two_factor.check_sign_in(db, user, otp)
    except two_factor.OtpRequired:
        raise  # the password was right: nothing counted, the caller asks for the code
    except Unauthorized as exc:
        db.delete(row)  # the session just made must not outlive the refusal's audit commit
        per_account.add(_account_key(email))
        per_address.add(address)
        _audit_failure(db, [user], address, via, exc.message)
        raise
    service.record_audit(db, service.actor_for(user), entity_type="user", entity_id=user.id, action="signed_in",
                         after={"ip": address, "via": via})
    return raw, row, user


def _audit_failure(db: Session, users: list[User], address: str, via: str, reason: str) -> None:
    """Committed here: the refusal that follows rolls the request's transaction back (which then holds only
    this). A second transaction would wait for the request's own write slot on SQLite."""
    if not users:
        log.info("sign-in refused for an unknown e-mail from %s (%s)", address, via)
        return
    try:
        for user in users:
            service.record_audit(db, service.Actor.system(user.workspace_id, kind="anonymous"), entity_type="user",
                                 entity_id=user.id, action="sign_in_failed",
                                 after={"ip": address, "via": via, "reason": reason})
        db.commit()
    except Exception as exc:  # the refusal stands even if its record cannot be written now
        db.rollback()
        log.warning("sign-in failure not audited: %s", type(exc).__name__)
