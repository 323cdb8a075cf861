"""The admin API of channel accounts: config validated by the plugin, secrets write-only, admin only, audited."""

from __future__ import annotations

import logging

from sqlalchemy import select

from otklik.accounts.models import AuditEntry
from otklik.channels.models import ChannelAccount
from otklik.channels.secrets import decrypt_secrets
from otklik.platform.db import session_scope
from tests.channels.conftest import BOT_TOKEN

TG = {"kind": "telegram", "name": "Основной бот", "config": {"mode": "polling"}, "secrets": {"bot_token": BOT_TOKEN}}


def test_kinds_describe_each_plugins_form(client, ws):
    r = client.get("/api/v1/channels/kinds", headers=ws.admin)
    assert r.status_code == 200
    kinds = {k["kind"]: k for k in r.json()}
    assert {"telegram", "max"} <= set(kinds)
    tg = kinds["telegram"]
    assert tg["secret_fields"] == ["bot_token", "webhook_secret"] and tg["generated_secrets"] == ["webhook_secret"]
    assert set(tg["config_schema"]["properties"]) == {"mode", "api_base_url", "quick_replies"}
    assert tg["can_test"] and tg["can_connect_webhook"] and tg["has_webhook"]


def test_secrets_are_write_only_and_encrypted_at_rest(client, ws, caplog):
    caplog.set_level(logging.DEBUG)
    r = client.post("/api/v1/channels/accounts", json=TG, headers=ws.admin)
    assert r.status_code == 201, r.text
    account = r.json()
    assert account["secrets"] == {"bot_token": "set", "webhook_secret": "set"}
    assert BOT_TOKEN not in r.text
    assert account["webhook_path"].startswith("/api/v1/channels/telegram/webhook/")
    for url in ("/api/v1/channels/accounts", f"/api/v1/channels/accounts/{account['id']}"):
        assert BOT_TOKEN not in client.get(url, headers=ws.admin).text
    with session_scope(write=False) as s:
        row = s.get(ChannelAccount, account["id"])
        assert row.secret.startswith("fernet:") and BOT_TOKEN not in row.secret
        assert decrypt_secrets(row.secret)["bot_token"] == BOT_TOKEN
        audits = list(s.scalars(select(AuditEntry).where(AuditEntry.workspace_id == ws.id,
                                                         AuditEntry.entity_type == "channel")))
    assert audits and all(BOT_TOKEN not in str(a.after) + str(a.before) for a in audits)
    assert audits[0].after["secrets_set"] == ["bot_token", "webhook_secret"]
    assert BOT_TOKEN not in caplog.text


def test_update_keeps_omitted_secrets_and_changes_given_ones(client, ws):
    account = client.post("/api/v1/channels/accounts", json=TG, headers=ws.admin).json()
    with session_scope(write=False) as s:
        webhook_secret = decrypt_secrets(s.get(ChannelAccount, account["id"]).secret)["webhook_secret"]
    r = client.patch(f"/api/v1/channels/accounts/{account['id']}",
                     json={"config": {"quick_replies": ["Позвать оператора"]}, "secrets": {"bot_token": ""}},
                     headers=ws.admin)
    assert r.status_code == 200, r.text
    assert r.json()["config"]["quick_replies"] == ["Позвать оператора"] and r.json()["config"]["mode"] == "polling"
    new_token = "7012345678:BBHk3uZ7eFqS9m2dX0vB1cN4pQ8rT5yW6zU"
    client.patch(f"/api/v1/channels/accounts/{account['id']}", json={"secrets": {"bot_token": new_token}},
                 headers=ws.admin)
    with session_scope(write=False) as s:
        stored = decrypt_secrets(s.get(ChannelAccount, account["id"]).secret)
    assert stored == {"bot_token": new_token, "webhook_secret": webhook_secret}


def test_invalid_config_and_secrets_are_precise_422s(client, ws):
    cases = [
        ({**TG, "config": {"mode": "carrier-pigeon"}}, "config.mode"),
        ({**TG, "config": {"api_base_url": "ftp://x"}}, "config.api_base_url"),
        ({**TG, "config": {"unknown": 1}}, "config.unknown"),
        ({**TG, "config": {"quick_replies": ["Очень длинная кнопка с пояснением всего"]}}, "config.quick_replies"),
        ({**TG, "secrets": {"bot_token": "not a token"}}, "secrets.bot_token"),
        ({**TG, "secrets": {}}, "secrets.bot_token"),
        ({**TG, "secrets": {"bot_token": BOT_TOKEN, "password": "x"}}, "secrets.password"),
        ({**TG, "kind": "pigeon"}, "kind"),
    ]
    for body, field in cases:
        r = client.post("/api/v1/channels/accounts", json=body, headers=ws.admin)
        assert r.status_code == 422, (body, r.text)
        assert field in [f["field"] for f in r.json()["error"]["fields"]], (field, r.text)
    for bad in ([], "x", {"kind": 5}, {"kind": "telegram", "secrets": {"bot_token": 5}}):
        r = client.post("/api/v1/channels/accounts", json=bad, headers=ws.admin)
        assert r.status_code == 422, r.text


def test_duplicate_names_conflict_and_disable_delete_work(client, ws):
    first = client.post("/api/v1/channels/accounts", json=TG, headers=ws.admin).json()
    r = client.post("/api/v1/channels/accounts", json=TG, headers=ws.admin)
    assert r.status_code == 409
    r = client.patch(f"/api/v1/channels/accounts/{first['id']}", json={"enabled": False}, headers=ws.admin)
    assert r.status_code == 200 and r.json()["enabled"] is False
    assert client.delete(f"/api/v1/channels/accounts/{first['id']}", headers=ws.admin).status_code == 204
    assert client.get(f"/api/v1/channels/accounts/{first['id']}", headers=ws.admin).status_code == 404
    with session_scope(write=False) as s:
        actions = [a.action for a in s.scalars(select(AuditEntry).where(
            AuditEntry.workspace_id == ws.id, AuditEntry.entity_type == "channel").order_by(AuditEntry.id))]
    assert actions == ["created", "updated", "deleted"]


def test_only_admins_manage_channels(client, ws):
    account = client.post("/api/v1/channels/accounts", json=TG, headers=ws.admin).json()
    for method, url, body in [("GET", "/api/v1/channels/accounts", None), ("GET", "/api/v1/channels/kinds", None),
                              ("POST", "/api/v1/channels/accounts", TG),
                              ("PATCH", f"/api/v1/channels/accounts/{account['id']}", {"enabled": False}),
                              ("DELETE", f"/api/v1/channels/accounts/{account['id']}", None),
                              ("POST", f"/api/v1/channels/accounts/{account['id']}/test", None),
                              ("POST", f"/api/v1/channels/accounts/{account['id']}/connect", None)]:
        r = client.request(method, url, json=body, headers=ws.agent)
        assert r.status_code == 403, (method, url, r.status_code)


def test_other_workspaces_accounts_are_invisible(client, ws, other_ws):
    theirs = client.post("/api/v1/channels/accounts", json=TG, headers=other_ws.admin).json()
    assert client.get("/api/v1/channels/accounts", headers=ws.admin).json() == []
    for method in ("GET", "PATCH", "DELETE"):
        r = client.request(method, f"/api/v1/channels/accounts/{theirs['id']}", json={"name": "x"} if method == "PATCH"
                           else None, headers=ws.admin)
        assert r.status_code == 404


def test_connect_without_a_reachable_vendor_is_a_502_with_a_reason(client, ws):
    body = {**TG, "config": {"api_base_url": "http://127.0.0.1:9"}}
    account = client.post("/api/v1/channels/accounts", json=body, headers=ws.admin).json()
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/test", headers=ws.admin)
    assert r.status_code == 502 and r.json()["error"]["code"] == "vendor_error"
    r = client.post(f"/api/v1/channels/accounts/{account['id']}/connect", json={"base_url": "not a url"},
                    headers=ws.admin)
    assert r.status_code == 422


def test_unreadable_secrets_are_reported_not_crashed_on(client, ws):
    from sqlalchemy import update

    account = client.post("/api/v1/channels/accounts", json={**TG, "config": {"mode": "webhook"}},
                          headers=ws.admin).json()
    with session_scope() as s:  # as if OTKLIK_SECRET_KEY had changed since they were saved
        s.execute(update(ChannelAccount).where(ChannelAccount.id == account["id"]).values(secret="fernet:gAAAAAbroken"))
    got = client.get(f"/api/v1/channels/accounts/{account['id']}", headers=ws.admin).json()
    assert got["secrets"] == {"bot_token": "missing", "webhook_secret": "missing"}
    r = client.post(account["webhook_path"], json={"update_id": 1}, headers={"X-Telegram-Bot-Api-Secret-Token": "x"})
    assert r.status_code == 503 and r.json()["error"]["code"] == "secrets_unreadable"
    r = client.patch(f"/api/v1/channels/accounts/{account['id']}", json={"secrets": {"bot_token": BOT_TOKEN}},
                     headers=ws.admin)
    assert r.status_code == 200 and r.json()["secrets"] == {"bot_token": "set", "webhook_secret": "set"}
