"""Small secrets at rest (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from OTKLIK_SECRET_KEY.

Each use passes its own purpose string, so a value encrypted for one purpose never decrypts for another.
Never log what goes in or comes out.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from otklik.platform.config import get_settings
from otklik.platform.errors import field_error

PREFIX = "fernet:"


def _fernet(purpose: str) -> Fernet:
    key = get_settings().secret_key.get_secret_value().encode()
    derived = hashlib.sha256(purpose.encode() + b"\x00" + key).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt(value: str, *, purpose: str) -> str:
    return PREFIX + _fernet(purpose).encrypt(value.encode()).decode()


def decrypt(stored: str, *, purpose: str) -> str:
    if not stored.startswith(PREFIX):
        raise ValueError("not an encrypted value")
    try:
        return _fernet(purpose).decrypt(stored.removeprefix(PREFIX).encode()).decode()
    except InvalidToken:
        raise ValueError("the value cannot be decrypted: was OTKLIK_SECRET_KEY changed?") from None


def signature(message: str, *, purpose: str) -> str:
    """A URL-safe HMAC of `message` under the server key (e.g. links that grant one file to a visitor)."""
    import hmac

    key = hashlib.sha256(purpose.encode() + b"\x01" + get_settings().secret_key.get_secret_value().encode())
    return base64.urlsafe_b64encode(hmac.new(key.digest(), message.encode(), hashlib.sha256).digest()[:18]).decode()


SECRET_MAX = 4000  # characters in one write-only secret field (a token, an API key, a private key in PEM)


def merge_write_only(kind: str, allowed: tuple[str, ...], stored: dict[str, str],
                     given: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The secrets an admin entered merged over the stored ones (an integration's API key, a bot token).

    Write-only fields: an empty or omitted value keeps the stored one, an unknown name or a non-string is a 422
    naming `secrets.<name>`. Returns the merged values and the names that changed (for the audit log, never
    the values)."""
    merged = dict(stored)
    changed = []
    for name, value in given.items():
        if name not in allowed:
            raise field_error(f"secrets.{name}", f"not a secret of {kind}; one of: {', '.join(allowed)}")
        if not isinstance(value, str) or len(value) > SECRET_MAX:
            raise field_error(f"secrets.{name}", f"a string of at most {SECRET_MAX} characters")
        value = value.strip()
        if value and value != merged.get(name):
            merged[name] = value
            changed.append(name)
    return merged, changed
