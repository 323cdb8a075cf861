"""Settings → Integrations in a real browser: an admin opens the RetailCRM form generated from its settings
model, fills it in (the API key in a password box), adds the connection, tests it against the RetailCRM
stand-in and reads the status line; the key is never shown back."""

from __future__ import annotations

from tests.conftest import make_workspace
from tests.crm.stand_ins import RetailCrmStandIn
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot


def test_admin_adds_and_tests_a_retailcrm_connection(new_page, live_server):
    ws = make_workspace("e2ecrm")
    retail = RetailCrmStandIn(api_key="e2e-retail-key")
    try:
        page = new_page()
        sign_in(page, ws.admin_email, next_path="/settings")
        page.click("#settings-link-integrations")
        page.wait_for_url("**/settings/integrations")
        page.click("#crm-add-retailcrm summary")
        page.fill("#new-retailcrm-base_url", retail.base)
        page.fill("#new-retailcrm-site", "shop")
        assert page.locator("#new-retailcrm-note_on_solve").is_checked()
        assert page.get_attribute("#new-retailcrm-secret-api_key", "type") == "password"
        page.fill("#new-retailcrm-secret-api_key", "e2e-retail-key")
        page.click("#crm-add-retailcrm-save")
        card = page.locator("section.crm-card[data-kind=retailcrm]")
        card.wait_for()
        assert "Ещё не подключено" in card.inner_text()
        assert "e2e-retail-key" not in page.content()
        card.locator("button[id^=crm-test-]").click()
        page.wait_for_selector("section.crm-card[data-kind=retailcrm] .crm-status.ok")
        assert "Подключение работает" in page.locator("#integrations-message").inner_text()
        assert "/api/v1/integrations/crm/webhook/" in card.locator("code").inner_text()
        screenshot(page, "settings-integrations")
        assert retail.calls("/api/v5/credentials") == 1
    finally:
        retail.close()
