"""Settings → Channels in a real browser for Viber and Instagram (issue 18): both listed with their forms
generated from the plugins' settings, an account of each saved through the form, the Viber bot tested and its
webhook set against the Viber Bot API stand-in; the English page shows their texts in English."""

from __future__ import annotations

import json

from tests.channels.viber_stand_in import VIBER_TOKEN, ViberBotAPI
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot


def test_admin_adds_a_viber_bot_and_an_instagram_account(new_page, live_server):
    viber = ViberBotAPI()
    try:
        ws = make_workspace("channels-vi")
        page = new_page()
        sign_in(page, ws.admin_email, next_path="/settings/channels")
        page.wait_for_selector("#add-viber")
        assert page.locator("[data-kind=instagram] .channel-icon").inner_text() == "IG"

        page.click("#add-viber")
        page.fill("#channel-field-api_base_url", viber.url)
        page.fill("#channel-field-sender_name", "Ромашка")
        page.fill("#channel-field-quick_replies", "Статус заказа\nПозвать оператора")
        page.fill("#channel-secret-auth_token", VIBER_TOKEN)
        page.click("#channel-save")
        card = page.locator(".channel-account[data-kind=viber]")
        card.wait_for()
        assert VIBER_TOKEN not in page.content()
        account_id = card.get_attribute("data-account-id")
        page.click(f"#test-{account_id}")
        page.wait_for_function("[...document.querySelectorAll('.channel-account .channel-result')]"
                               ".some(e => e.textContent.includes('Ромашка: поддержка'))")
        page.click(f"#connect-{account_id}")
        page.wait_for_function("[...document.querySelectorAll('.channel-account .channel-result')]"
                               ".some(e => e.textContent.includes('/webhook/'))")
        [hook] = viber.server.calls("/set_webhook")
        assert json.loads(hook.body)["url"].startswith(live_server + "/api/v1/channels/viber/webhook/")

        page.click("#add-instagram")
        page.fill("#channel-field-account_id", "17841405822304914")
        page.check("#channel-field-human_agent_tag")
        page.fill("#channel-secret-access_token", "IGAAT-token")
        page.fill("#channel-secret-app_secret", "app-secret")
        page.fill("#channel-secret-verify_token", "verify-me")
        page.click("#channel-save")
        page.locator(".channel-account[data-kind=instagram]").wait_for()
        screenshot(page, "channel-settings-viber-instagram")
    finally:
        viber.close()


def test_the_english_page_names_them_in_english(new_page, live_server):
    from otklik.accounts import service as accounts
    from otklik.accounts.models import Role
    from otklik.platform.db import session_scope
    from tests.conftest import PASSWORD

    ws = make_workspace("channels-vi-en")
    with session_scope() as session:
        admin = accounts.actor_for(session.get(accounts.User, ws.admin_id))
        user = accounts.create_user(session, admin, email=f"en-{ws.slug}@example.com", name="Emma", role=Role.admin,
                                    password=PASSWORD, language="en")
        email = user.email
    page = new_page(locale="en-US")
    sign_in(page, email, next_path="/settings/channels")
    page.wait_for_selector("#add-instagram")
    text = page.inner_text("#channel-kinds")
    assert "Direct messages and comments on posts" in text and "Viber bot: messages" in text
    page.click("#add-instagram")
    form = page.inner_text("#channel-form")
    assert "Instagram account ID" in form and "HUMAN_AGENT tag" in form
