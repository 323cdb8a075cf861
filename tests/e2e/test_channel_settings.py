"""Settings → Channels in a real browser: connect a Telegram bot against the Bot API stand-in, test it,
register its webhook, receive an update through it, and retry a dead letter."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.channels.conftest import BOT_TOKEN, TelegramBotAPI, fixture
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot


@pytest.fixture
def telegram_api():
    api = TelegramBotAPI()
    yield api
    api.close()


def test_admin_connects_a_telegram_bot_and_retries_a_dead_letter(new_page, live_server, telegram_api):
    ws = make_workspace("channels-ui")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings/channels")
    page.wait_for_selector("#add-telegram")
    assert page.locator("[data-kind=max] .channel-icon").inner_text() == "MX"

    page.click("#add-telegram")
    page.fill("#channel-field-name", "Бот <b>магазина</b>")
    page.select_option("#channel-field-mode", "webhook")
    page.fill("#channel-field-api_base_url", telegram_api.url)
    page.fill("#channel-field-quick_replies", "Позвать оператора\nСтатус заказа")
    page.fill("#channel-secret-bot_token", "not-a-token")
    page.click("#channel-save")
    page.wait_for_selector("#channel-form-result.bad")
    assert "bot_token" in page.inner_text("#channel-form-result")
    page.fill("#channel-secret-bot_token", BOT_TOKEN)
    page.click("#channel-save")
    card = page.locator(".channel-account[data-kind=telegram]")
    card.wait_for()
    assert card.locator("h3").inner_text() == "Telegram · Бот <b>магазина</b>"  # shown as text, not markup
    assert BOT_TOKEN not in page.content()
    webhook_url = card.locator(".webhook-url").inner_text()
    assert webhook_url.startswith(live_server + "/api/v1/channels/telegram/webhook/")

    account_id = card.get_attribute("data-account-id")
    page.click(f"#test-{account_id}")
    page.wait_for_function("document.querySelector('.channel-account .channel-result').textContent.includes('@')")
    assert "@romashka_support_bot" in card.locator(".channel-result").inner_text()
    page.click(f"#connect-{account_id}")
    page.wait_for_function("document.querySelector('.channel-account .channel-result').textContent.includes('/webhook/')")
    secret = telegram_api.sent("setWebhook")[-1].fields["secret_token"]
    assert telegram_api.sent("setWebhook")[-1].fields["url"] == webhook_url
    screenshot(page, "channel-settings")

    # Telegram delivers an update to the address the page showed
    r = httpx.post(webhook_url, json=fixture("telegram", "update_text"),
                   headers={"X-Telegram-Bot-Api-Secret-Token": secret}, timeout=10)
    assert r.status_code == 200 and r.json()["result"] == "stored"
    conversations = httpx.get(live_server + "/api/v1/conversations", headers=ws.agent, timeout=10).json()["items"]
    [conversation] = [c for c in conversations if c["channel"] == "telegram"]

    # the customer blocked the bot: the reply becomes a dead letter, shown with a retry button
    telegram_api.fail_next["sendMessage"] = ["response_403_blocked"]
    r = httpx.post(f"{live_server}/api/v1/conversations/{conversation['id']}/messages", json={"text": "Добрый день!"},
                   headers=ws.agent, timeout=10)
    assert r.status_code == 201
    page.reload()
    row = page.locator("#dead-letters tr[data-outbox-id]")
    row.wait_for()
    assert "blocked" in row.inner_text()
    outbox_id = row.get_attribute("data-outbox-id")
    page.click(f"#retry-{outbox_id}")
    page.wait_for_function(f"document.querySelector('tr[data-outbox-id=\"{outbox_id}\"]') === null "
                           "|| document.querySelector('tr[data-outbox-id=\"{outbox_id}\"]').textContent.includes('✓')"
                           .replace("{outbox_id}", outbox_id))
    sent = [json.loads(json.dumps(c.fields)) for c in telegram_api.sent("sendMessage")]
    assert sent[-1]["text"] == "Добрый день!"
    screenshot(page, "channel-settings-dead-letter")


def test_agents_do_not_get_the_channel_settings(new_page):
    ws = make_workspace("channels-ui-agent")
    page = new_page()
    sign_in(page, ws.agent_email, next_path="/settings/channels")
    assert page.locator("#channel-kinds").count() == 0
