"""Password reset: one-time tokens by email (or handed out by an admin when email is not set up).

A token is stored only as its SHA-256, lives one hour, works once, and using it signs the user out
everywhere. Whether an address is known is never revealed. Tokens are never logged.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import ForeignKey, String, delete, func, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role, User, Workspace
from otklik.accounts.security import MIN_PASSWORD_LENGTH, hash_password, new_token, token_digest
from otklik.accounts.service import Actor, end_credentials, get_user, record_audit
from otklik.platform.db import Base, UTCDateTime, affected, utcnow
from otklik.platform.errors import Conflict, InvalidInput, field_error

RESET_TTL = dt.timedelta(hours=1)
ADMIN_LINK_TTL = dt.timedelta(hours=24)
RESET_PATH = "/password/reset"  # the page that reads the token from the URL fragment (never sent to us)


class PasswordReset(Base):
    __tablename__ = "password_resets"

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    issued_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class InvalidToken(InvalidInput):
    code = "invalid_token"


@dataclass(frozen=True)
class IssuedReset:
    user_id: int
    email: str
    name: str
    language: str
    workspace_name: str
    token: str  # raw: goes into the link and nowhere else
    expires_at: dt.datetime


def reset_link(base_url: str, token: str) -> str:
    # In the fragment: browsers never send it, so it stays out of access logs and Referer headers.
    return base_url.rstrip("/") + RESET_PATH + "#token=" + token


def _issue(session: Session, user: User, *, ttl: dt.timedelta, issued_by: int | None) -> tuple[str, PasswordReset]:
    raw = new_token()
    row = PasswordReset(workspace_id=user.workspace_id, user_id=user.id, token_hash=token_digest(raw),
                        issued_by=issued_by, expires_at=utcnow() + ttl)
    session.add(row)
    # forget stale rows of this user so the table never grows without bound
    session.execute(delete(PasswordReset).where(PasswordReset.user_id == user.id,
                                                PasswordReset.expires_at < utcnow()))
    session.flush()
    return raw, row


def request_reset(session: Session, *, email: str, workspace_slug: str | None = None) -> list[IssuedReset]:
    """Tokens for the active users with this email (one per workspace); an empty list for unknown ones.

    The caller answers the same either way and sends the mail after the response, so neither the answer
    nor its timing tells whether the address exists.
    """
    query = (select(User, Workspace.name).join(Workspace, Workspace.id == User.workspace_id)
             .where(func.lower(User.email) == email.strip().lower(), User.is_active.is_(True)))
    if workspace_slug:
        query = query.where(Workspace.slug == workspace_slug)
    issued = []
    for user, workspace_name in session.execute(query.limit(20)).all():
        raw, row = _issue(session, user, ttl=RESET_TTL, issued_by=None)
        record_audit(session, Actor.system(user.workspace_id), entity_type="user", entity_id=user.id,
                     action="password_reset_requested")
        issued.append(IssuedReset(user_id=user.id, email=user.email, name=user.name, language=user.language,
                                  workspace_name=workspace_name, token=raw, expires_at=row.expires_at))
    return issued


def issue_reset_link(session: Session, actor: Actor, user_id: int) -> IssuedReset:
    """An admin hands a one-time link to a user (e.g. when the server cannot send email)."""
    actor.require(Role.admin)
    user = get_user(session, actor, user_id)
    if not user.is_active:
        raise Conflict("the user is deactivated; activate them first", code="inactive")
    raw, row = _issue(session, user, ttl=ADMIN_LINK_TTL, issued_by=actor.user_id)
    record_audit(session, actor, entity_type="user", entity_id=user.id, action="password_reset_link_issued")
    workspace = session.get(Workspace, user.workspace_id)
    return IssuedReset(user_id=user.id, email=user.email, name=user.name, language=user.language,
                       workspace_name=workspace.name if workspace else "", token=raw,
                       expires_at=row.expires_at)


def _valid_row(session: Session, raw: str) -> tuple[PasswordReset, User] | None:
    if not raw or len(raw) > 200:
        return None
    row = session.scalar(select(PasswordReset).where(PasswordReset.token_hash == token_digest(raw)))
    if row is None or row.used_at is not None or row.expires_at < utcnow():
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    return row, user


def user_for_token(session: Session, raw: str) -> User | None:
    found = _valid_row(session, raw)
    return found[1] if found else None


def complete_reset(session: Session, *, token: str, password: str) -> User:
    """Set the new password, spend the token (and every other of this user), end all their sessions."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise field_error("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > 1024:
        raise field_error("password", "must be at most 1024 characters")
    found = _valid_row(session, token)
    if found is None:
        raise InvalidToken("the reset link is invalid, expired or already used; ask for a new one",
                           fields=[{"field": "token", "message": "invalid, expired or used"}])
    row, user = found
    # Spend it with a guarded UPDATE: two simultaneous uses cannot both succeed.
    spent = session.execute(update(PasswordReset).where(PasswordReset.id == row.id,
                                                        PasswordReset.used_at.is_(None))
                            .values(used_at=utcnow()))
    if affected(spent) != 1:
        raise InvalidToken("the reset link was already used", fields=[{"field": "token", "message": "used"}])
    session.execute(update(PasswordReset).where(PasswordReset.user_id == user.id,
                                                PasswordReset.used_at.is_(None))
                    .values(used_at=utcnow()))
    user.password_hash = hash_password(password)
    end_credentials(session, user.id)  # sessions ended and API tokens revoked, as on any password change
    record_audit(session, Actor(workspace_id=user.workspace_id, user_id=user.id, role=Role(user.role)),
                 entity_type="user", entity_id=user.id, action="password_reset")
    session.flush()
    return user


def reset_mail(issued: IssuedReset, base_url: str) -> tuple[str, str]:
    """Subject and text of the reset email, in the user's language."""
    link = reset_link(base_url, issued.token)
    workspace = " ".join(issued.workspace_name.split())  # no line breaks into a mail header
    if issued.language == "en":
        return (f"Password reset — {workspace}",
                f"Hello, {issued.name}!\n\nSomeone (hopefully you) asked to reset your password in "
                f"{workspace}. Open this link within an hour to choose a new one:\n\n{link}\n\n"
                "If it was not you, ignore this message: your password stays as it is.\n")
    return (f"Сброс пароля — {workspace}",
            f"Здравствуйте, {issued.name}!\n\nКто-то (надеемся, вы) попросил сбросить пароль в "
            f"«{workspace}». Откройте ссылку в течение часа и задайте новый пароль:\n\n{link}\n\n"
            "Если это были не вы, просто проигнорируйте письмо: пароль останется прежним.\n")
