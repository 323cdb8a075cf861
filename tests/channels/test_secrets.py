"""Channel secrets at rest: Fernet with a key derived from OTKLIK_SECRET_KEY; old plain rows still read."""

from __future__ import annotations

import pytest

from otklik.channels import secrets as channel_secrets
from otklik.platform.config import get_settings


def test_round_trip_and_no_plaintext():
    stored = channel_secrets.encrypt_secrets({"bot_token": "123:secret-value", "webhook_secret": "ключ"})
    assert stored.startswith("fernet:") and "secret-value" not in stored and "ключ" not in stored
    assert channel_secrets.decrypt_secrets(stored) == {"bot_token": "123:secret-value", "webhook_secret": "ключ"}


def test_each_encryption_differs():
    assert channel_secrets.encrypt_secrets({"a": "b"}) != channel_secrets.encrypt_secrets({"a": "b"})


def test_plain_legacy_value_reads_as_secret():
    assert channel_secrets.decrypt_secrets("plain-old") == {"secret": "plain-old"}
    assert channel_secrets.decrypt_secrets(None) == {} and channel_secrets.decrypt_secrets("") == {}


def test_a_changed_server_key_is_a_clear_error(monkeypatch):
    stored = channel_secrets.encrypt_secrets({"a": "b"})
    from pydantic import SecretStr

    monkeypatch.setattr(get_settings(), "secret_key", SecretStr("another-key"))
    with pytest.raises(ValueError, match="OTKLIK_SECRET_KEY"):
        channel_secrets.decrypt_secrets(stored)


def test_tampered_token_is_refused():
    stored = channel_secrets.encrypt_secrets({"a": "b"})
    with pytest.raises(ValueError):
        channel_secrets.decrypt_secrets(stored[:-4] + "AAAA")


def test_api_channel_secret_is_stored_encrypted(client, ws):
    from sqlalchemy import select

    from otklik.channels.models import ChannelAccount
    from otklik.platform.db import session_scope

    r = client.put("/api/v1/channels/api", json={"webhook_url": "https://crm.example.ru/hook"}, headers=ws.admin)
    shown = r.json()["secret"]
    with session_scope(write=False) as s:
        row = s.scalar(select(ChannelAccount).where(ChannelAccount.workspace_id == ws.id, ChannelAccount.kind == "api"))
        assert row.secret.startswith("fernet:") and shown not in row.secret
        assert channel_secrets.decrypt_secrets(row.secret) == {"secret": shown}
