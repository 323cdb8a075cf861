"""Channel secrets encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256) with a key derived from OTKLIK_SECRET_KEY.

`ChannelAccount.secret` holds `fernet:<token>` of a JSON object {field: value}. Rows written before encryption
(plain text) still read, as {"secret": value}, and are re-encrypted on the next save.
"""

from __future__ import annotations

import base64
import hashlib
import json

from cryptography.fernet import Fernet, InvalidToken

from otklik.platform.config import get_settings

PREFIX = "fernet:"


def _fernet() -> Fernet:
    key = get_settings().secret_key.get_secret_value().encode()
    derived = hashlib.sha256(b"otklik channel secrets\x00" + key).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def encrypt_secrets(values: dict[str, str]) -> str:
    return PREFIX + _fernet().encrypt(json.dumps(values, ensure_ascii=False).encode()).decode()


def decrypt_secrets(stored: str | None) -> dict[str, str]:
    if not stored:
        return {}
    if not stored.startswith(PREFIX):
        return {"secret": stored}
    try:
        data = json.loads(_fernet().decrypt(stored.removeprefix(PREFIX).encode()))
    except InvalidToken:
        raise ValueError("channel secrets cannot be decrypted: was OTKLIK_SECRET_KEY changed?") from None
    return {str(k): str(v) for k, v in data.items()}
