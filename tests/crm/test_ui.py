"""Settings → Integrations (server-rendered, admin only, CSRF) and the CRM section of the customer's orders tab."""

from __future__ import annotations

import re

from otklik.crm import service
from tests.crm.conftest import connect, solved_conversation
from tests.web._ui import Browser


def test_admin_adds_tests_and_sees_the_status_line(app, client, ws, retail):
    agent = Browser(app, ws.agent_email)
    assert agent.get("/settings/integrations", follow_redirects=False).status_code == 403
    admin = Browser(app, ws.admin_email)
    page = admin.get("/settings/integrations")
    assert page.status_code == 200 and 'id="crm-new-retailcrm"' in page.text and 'id="crm-new-bitrix24"' in page.text
    assert "Адрес портала Битрикс24" in page.text and "https://myshop.amocrm.ru" in page.text  # example settings
    no_csrf = admin.post("/settings/integrations", {"kind": "retailcrm"}, csrf=False, htmx=False)
    assert no_csrf.status_code == 403
    made = admin.post("/settings/integrations", {"kind": "retailcrm", "name": "Магазин", "cfg.base_url": retail.base,
                                                 "cfg.site": "shop", "cfg.note_on_solve": "on",
                                                 "secret.api_key": "retail-key"}, htmx=False)
    assert made.status_code == 201 and "retail-key" not in made.text
    cid = int(re.search(r'id="crm-connection-(\d+)"', made.text).group(1))
    assert "Ещё не подключено" in made.text
    bad = admin.post(f"/settings/integrations/{cid}", {"cfg.base_url": "not a url", "enabled": "on"}, htmx=False)
    assert bad.status_code == 422 and 'id="integrations-error"' in bad.text
    tested = admin.post(f"/settings/integrations/{cid}/test", htmx=False)
    assert "Подключение работает" in tested.text and 'class="crm-status ok"' in tested.text
    retail.inject.append((403, {"success": False, "errorMsg": 'Wrong "apiKey" value.'}, {}))
    failed = admin.post(f"/settings/integrations/{cid}/test", htmx=False)
    assert 'class="crm-status error"' in failed.text and "apiKey" in failed.text
    from otklik.accounts.models import User
    from otklik.platform.db import session_scope

    with session_scope() as session:
        session.get(User, ws.admin_id).language = "en"
    shown = admin.get("/settings/integrations").text
    assert "RetailCRM address" in shown and "Bitrix24 portal address" in shown and "Адрес" not in shown
    assert admin.get("/settings").text.count('id="settings-link-integrations"') == 1


def test_customer_orders_tab_shows_the_crm_deals(app, client, ws, retail):
    contact = retail.add_customer(first="Анна", phone="+79161234567")
    retail.add_order(contact, "A-77", "complete", 990)
    conn = connect(client, ws, "retailcrm", {"base_url": retail.base}, {"api_key": "retail-key"})
    _, customer_id = solved_conversation(client, ws)
    agent = Browser(app, ws.agent_email)
    refreshed = agent.post(f"/ui/customers/{customer_id}/crm/refresh", htmx=False)
    assert refreshed.status_code == 303
    tab = agent.get(f"/customers/{customer_id}?tab=orders").text
    assert f'id="customer-crm-{conn["id"]}"' in tab and "Заказ A-77" in tab and "Выполнен" in tab
    assert service.customer_crm  # the tab reads the cache only
