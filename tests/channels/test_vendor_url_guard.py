"""SSRF (issue 17 §5): an admin could point a vendor API base (or the API channel's webhook) at the server's own
network and have the server call it. Refused unless OTKLIK_ALLOW_PRIVATE_VENDOR_URLS is on — which the test
suite turns on for its local stand-ins, and this file turns off."""

from __future__ import annotations

import pytest

from otklik.platform.config import get_settings
from otklik.platform.netguard import check_public_url
from tests.channels.conftest import BOT_TOKEN

TG = {"kind": "telegram", "name": "bot", "config": {"mode": "polling"}, "secrets": {"bot_token": BOT_TOKEN}}
INTERNAL = ["http://127.0.0.1:6379", "http://localhost:8000/admin", "http://169.254.169.254/latest/meta-data",
            "http://10.0.0.5", "http://192.168.1.1:8080", "http://[::1]:9000", "http://[::ffff:127.0.0.1]/",
            "http://0.0.0.0:80", "http://printer.local/", "http://db.internal:5432", "http://2130706433/"]


@pytest.fixture
def guarded(monkeypatch):
    monkeypatch.setattr(get_settings(), "allow_private_vendor_urls", False)


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(guarded, url):
    with pytest.raises(ValueError, match="does not call those"):
        check_public_url(url)


def test_public_and_unresolvable_addresses_pass(guarded):
    check_public_url("https://8.8.8.8/bot")
    check_public_url("https://api.telegram.org")  # resolves to a public address, or not at all offline


def test_channel_settings_refuse_an_internal_api_base(client, ws, guarded):
    for url in ("http://127.0.0.1:9", "http://169.254.169.254", "http://localhost:6379"):
        r = client.post("/api/v1/channels/accounts", json={**TG, "config": {"api_base_url": url}}, headers=ws.admin)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["fields"][0]["field"] == "config.api_base_url"
    r = client.post("/api/v1/channels/accounts", json={**TG, "config": {"api_base_url": "https://8.8.8.8"}},
                    headers=ws.admin)
    assert r.status_code == 201, r.text
    r = client.patch(f"/api/v1/channels/accounts/{r.json()['id']}", json={"config": {"api_base_url": "http://10.1.2.3"}},
                     headers=ws.admin)
    assert r.status_code == 422
    r = client.put("/api/v1/channels/api", json={"webhook_url": "http://127.0.0.1:6379/"}, headers=ws.admin)
    assert r.status_code == 422 and r.json()["error"]["fields"][0]["field"] == "webhook_url"


def test_the_setting_allows_a_local_vendor(client, ws):
    assert get_settings().allow_private_vendor_urls  # the suite's own setting (tests/conftest.py)
    r = client.post("/api/v1/channels/accounts", json={**TG, "config": {"api_base_url": "http://127.0.0.1:9"}},
                    headers=ws.admin)
    assert r.status_code == 201
