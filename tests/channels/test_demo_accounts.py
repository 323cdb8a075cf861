"""`make demo` shows Viber and Instagram in Settings → Channels: present, switched off, example settings filled,
no secrets (issue 18)."""

from __future__ import annotations

from otklik.channels.demo_accounts import add_demo_accounts
from otklik.platform.db import session_scope


def test_demo_accounts_are_disconnected_examples(client, ws):
    for _ in range(2):  # seeding twice adds nothing more
        with session_scope() as session:
            add_demo_accounts(session, ws.id)
    accounts = client.get("/api/v1/channels/accounts", headers=ws.admin).json()
    assert sorted(a["kind"] for a in accounts) == ["instagram", "viber"]
    for account in accounts:
        assert account["enabled"] is False and set(account["secrets"].values()) == {"missing"}
        assert account["webhook_path"].startswith(f"/api/v1/channels/{account['kind']}/webhook/")
    viber = next(a for a in accounts if a["kind"] == "viber")
    assert viber["config"]["quick_replies"] == ["Где мой заказ?", "Позвать оператора"]
    instagram = next(a for a in accounts if a["kind"] == "instagram")
    assert instagram["config"]["account_id"] and instagram["config"]["human_agent_tag"] is True
