"""Two-factor sign-in (TOTP, RFC 6238, through pyotp): a person turns it on for themself with a code from
their authenticator app and gets ten recovery codes, shown once, each usable once. From then on signing in
needs a current code (or a recovery code) beside the password, on the API and the form alike.

The secret is stored encrypted (platform.crypto, its own purpose); recovery codes only as SHA-256 digests.
"""

from __future__ import annotations

import hashlib
import secrets

import pyotp
from sqlalchemy.orm import Session

from otklik.accounts.models import User
from otklik.accounts.security import verify_password
from otklik.accounts.service import Actor, get_user, record_audit
from otklik.platform import crypto
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, Forbidden, Unauthorized

PURPOSE = "totp-secret"
ISSUER = "Otklik"
RECOVERY_CODES = 10


class OtpRequired(Unauthorized):
    """The password was right; the account also needs a one-time code."""

    def __init__(self) -> None:
        super().__init__("this account signs in with a one-time code too: send otp (or a recovery code)",
                         code="otp_required")


def _digest(code: str) -> str:
    return hashlib.sha256(code.strip().replace("-", "").lower().encode()).hexdigest()


def _totp(user: User) -> pyotp.TOTP:
    assert user.totp_secret is not None
    return pyotp.TOTP(crypto.decrypt(user.totp_secret, purpose=PURPOSE))


def start_setup(session: Session, actor: Actor) -> tuple[str, str]:
    """A new secret for the actor (not yet in force): (secret, otpauth:// URI for the QR code)."""
    user = get_user(session, actor, actor.user_id or 0)
    if user.totp_enabled_at is not None:
        raise Conflict("two-factor sign-in is already on; turn it off first to change the device")
    secret = pyotp.random_base32()
    user.totp_secret = crypto.encrypt(secret, purpose=PURPOSE)
    return secret, pyotp.TOTP(secret).provisioning_uri(name=user.email, issuer_name=ISSUER)


def enable(session: Session, actor: Actor, code: str) -> list[str]:
    """Turns it on when `code` matches the secret from start_setup; returns the recovery codes (shown once)."""
    user = get_user(session, actor, actor.user_id or 0)
    if user.totp_secret is None or user.totp_enabled_at is not None:
        raise Conflict("start the setup first (POST /api/v1/auth/2fa/setup)")
    if not _totp(user).verify(code.strip(), valid_window=1):
        raise Forbidden("the code does not match: check the device's clock and try the next code",
                        code="otp_invalid")
    codes = [f"{secrets.token_hex(3)}-{secrets.token_hex(3)}" for _ in range(RECOVERY_CODES)]
    user.totp_recovery = [_digest(c) for c in codes]
    user.totp_enabled_at = utcnow()
    record_audit(session, actor, entity_type="user", entity_id=user.id, action="two_factor_enabled")
    return codes


def disable(session: Session, actor: Actor, password: str) -> None:
    user = get_user(session, actor, actor.user_id or 0)
    if not verify_password(user.password_hash, password):
        raise Forbidden("give your password to turn two-factor sign-in off", code="current_password_required")
    user.totp_secret = None
    user.totp_enabled_at = None
    user.totp_recovery = None
    record_audit(session, actor, entity_type="user", entity_id=user.id, action="two_factor_disabled")


def check_sign_in(session: Session, user: User, otp: str | None) -> None:
    """After the password: nothing to do without two-factor; else a current code or an unused recovery code
    (spent now). Raises OtpRequired (none given) or Unauthorized (a wrong one)."""
    if user.totp_enabled_at is None:
        return
    if not otp or not otp.strip():
        raise OtpRequired()
    if _totp(user).verify(otp.strip(), valid_window=1):
        return
    digest = _digest(otp)
    remaining = list(user.totp_recovery or [])
    if digest in remaining:
        remaining.remove(digest)
        user.totp_recovery = remaining
        record_audit(session, Actor.system(user.workspace_id), entity_type="user", entity_id=user.id,
                     action="recovery_code_used", after={"left": len(remaining)})
        return
    raise Unauthorized("the one-time code is wrong or expired", code="otp_invalid")
