"""Settings in a real browser: an admin writes a reply template and sees it filled in the live preview."""

from __future__ import annotations

from otklik.conversations.models import Conversation
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.web.a2_support import receive


def test_admin_creates_a_template_with_preview(new_page, live_server):
    ws = make_workspace("e2etpl")
    conv, _ = receive(ws.id, "email", "email", "anna@example.com", "Где мой заказ №458213?", name="Анна Смирнова")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings")
    page.click("#settings-link-templates")
    page.wait_for_url("**/settings/templates")
    page.fill("#template-name", "Где заказ")
    page.fill("#template-shortcut", "where")
    page.fill("#template-body", "Здравствуйте, {{customer.first_name}}! Заказ {{order_number}} уже в пути. "
                                "Доставим {{delivery_date}}. {{agent.name}}")
    page.wait_for_selector("#template-preview-unresolved")
    preview = page.locator("#template-preview-text").inner_text()
    assert "Здравствуйте, Анна!" in preview and "{{delivery_date}}" in preview
    assert page.locator("#template-preview-text mark.unfilled").count() == 1
    with session_scope(write=False) as session:
        number = session.get(Conversation, conv).number
    assert "458213" not in preview  # the sample customer's order, not Anna's
    page.fill("#template-preview-conversation", str(number))
    page.wait_for_selector(f"#template-preview-source >> text=№{number}")
    assert "Здравствуйте, Анна! Заказ 458213 уже в пути" in page.locator("#template-preview-text").inner_text()
    screenshot(page, "settings-templates")
    page.click("#template-save")
    page.wait_for_selector('#templates-table .template-row')
    assert "/where" in page.locator("#templates-table").inner_text()


def test_settings_at_phone_width_and_agent_is_refused(new_page, live_server):
    ws = make_workspace("e2eset")
    phone = new_page(viewport=(390, 844))
    sign_in(phone, ws.admin_email, next_path="/settings/users")
    assert phone.locator("#users-table .user-row").count() == 2
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "settings-users-phone")
    agent = new_page()
    sign_in(agent, ws.agent_email, next_path="/settings/profile")
    response = agent.goto("/settings/users")
    assert response.status == 403
    assert agent.locator("#error-message").is_visible()
