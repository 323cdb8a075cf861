"""My profile → «Уведомления на телефон» (issue 16): an agent gets a one-time code, sends it to the workspace's
Telegram bot (the real webhook, the Bot API stand-in answering), sees the link, chooses what reaches the phone,
and unlinks."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest

from tests.channels.conftest import BOT_TOKEN, TelegramBotAPI, fixture
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot

_ids = itertools.count(800_000_001)


@pytest.fixture
def telegram_api():
    api = TelegramBotAPI()
    yield api
    api.close()


def test_link_choose_and_unlink_telegram_from_the_profile(new_page, live_server, telegram_api):
    ws = make_workspace("e2enotify")
    account = httpx.post(f"{live_server}/api/v1/channels/accounts", headers=ws.admin, json={
        "kind": "telegram", "name": "default", "config": {"api_base_url": telegram_api.url},
        "secrets": {"bot_token": BOT_TOKEN}}).json()
    r = httpx.post(f"{live_server}/api/v1/channels/accounts/{account['id']}/connect", headers=ws.admin,
                   json={"base_url": "https://support.example.ru"}, timeout=30)
    assert r.status_code == 200, r.text
    secret = telegram_api.sent("setWebhook")[-1].fields["secret_token"]

    page = new_page()
    sign_in(page, ws.agent_email, next_path="/settings/profile")
    page.click("#telegram-get-code")
    code_text = page.locator("#telegram-code").inner_text()
    assert page.get_attribute("#telegram-start-link", "href") == \
        f"https://t.me/romashka_support_bot?start={code_text.split()[1]}"
    screenshot(page, "profile-01-telegram-code")
    assert code_text.startswith("/start ") and len(code_text.split()[1]) == 8
    assert "Отправьте это сообщение боту Telegram" in page.locator("#telegram-code-help").inner_text()

    update = fixture("telegram", "update_text")
    update["update_id"] = next(_ids)
    update["message"]["text"] = code_text
    update["message"]["chat"]["id"] = update["message"]["from"]["id"] = 444000111
    answer = httpx.post(f"{live_server}{account['webhook_path']}", content=json.dumps(update).encode(), headers={
        "X-Telegram-Bot-Api-Secret-Token": secret, "Content-Type": "application/json"})
    assert answer.json()["result"] == "linked", answer.text
    assert telegram_api.sent("sendMessage")[-1].fields["text"] == "Уведомления подключены"

    page.reload()
    linked = page.locator("#telegram-linked")
    linked.wait_for()
    assert "Telegram подключён" in linked.inner_text() and "@anna_smirnova" in linked.inner_text()
    screenshot(page, "profile-02-telegram-linked")

    # what reaches me: everything by default; turn off a customer's reply
    assert page.is_checked("#notify-customer_reply") and page.is_checked("#notify-approval")
    page.uncheck("#notify-customer_reply")
    page.click("#notification-preferences-save")
    page.wait_for_selector("#notifications-saved")
    state = httpx.get(f"{live_server}/api/v1/me/notifications", headers=ws.agent).json()
    assert state["preferences"]["customer_reply"] is False and state["preferences"]["mention"] is True
    page.reload()
    page.wait_for_selector("#notify-customer_reply")
    assert not page.is_checked("#notify-customer_reply")

    page.click("#telegram-unlink")
    page.wait_for_selector("#telegram-unlinked")
    assert page.locator("#telegram-get-code").is_visible()
    assert httpx.get(f"{live_server}/api/v1/me/notifications", headers=ws.agent).json()["telegram"] is None


def test_without_a_bot_the_profile_says_who_connects_one(new_page, live_server):
    ws = make_workspace("e2enobot")
    page = new_page(locale="en-US")
    sign_in(page, ws.agent_email, next_path="/settings/profile")
    note = page.locator("#telegram-no-bot")
    note.wait_for()
    assert "Settings → Channels" in note.inner_text() or "Настройки → Каналы" in note.inner_text()
    assert page.locator("#notification-preferences").is_visible()
