"""The customer panel in a real browser: the whole history across email, Telegram and phone beside the
conversation, notes and tasks inline, merging two customers, hostile names and notes shown as text; search."""

from __future__ import annotations

from otklik.customers.tasks import create_task
from otklik.platform.db import session_scope
from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot
from tests.web.a2_support import receive

XSS = "<img src=x onerror=\"window.__xss=1;alert(1)\">"


def _seed_cake_customer(ws):
    first, customer_id = receive(ws.id, "email", "email", "olga@example.com",
                                 "Хочу заказать торт «Наполеон» на субботу, заказ № 51234", name="Ольга Кондитерова")
    from otklik.accounts.service import Actor
    from otklik.customers import service as customers

    with session_scope() as session:
        actor = Actor.system(ws.id)
        customers.add_identity(session, actor, customer_id, customers.IdentityInput("telegram", "777001"))
        customers.add_identity(session, actor, customer_id, customers.IdentityInput("phone", "+79161112233"))
        customers.add_note(session, actor, customer_id, "Аллергия на орехи — уже говорила в письме")
        customers.update_customer(session, actor, customer_id, changes={"attributes": {"city": "Казань",
                                                                                       "loyalty": "gold"}})
    second, _ = receive(ws.id, "telegram", "telegram", "777001", "Можно надпись «С днём рождения, мама»?")
    third, _ = receive(ws.id, "phone", "phone", "+79161112233", "Звонок: во сколько привезут торт?")
    with session_scope() as session:
        create_task(session, ws.id, customer_id=customer_id, title="Перезвонить до 18:00", conversation_id=third)
    return customer_id, [first, second, third]


def test_panel_history_across_three_channels_notes_tasks(new_page, live_server):
    ws = make_workspace("e2epanel")
    customer_id, (_first, _second, third) = _seed_cake_customer(ws)
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{third}")
    panel = page.locator("#cpanel")
    panel.wait_for()
    history = panel.locator("#cpanel-history .history-item")
    assert history.count() == 3
    assert sorted(history.nth(i).get_attribute("data-channel") for i in range(3)) == ["email", "phone", "telegram"]
    assert panel.locator(f'.history-item.current[data-conversation-id="{third}"]').count() == 1
    assert "Наполеон" in panel.locator("#cpanel-history").inner_text()
    assert "Аллергия на орехи" in panel.locator("#cpanel-notes").inner_text()
    assert "Казань" in panel.locator("#cpanel-attributes").inner_text()
    page.locator("#cpanel-notes").scroll_into_view_if_needed()
    screenshot(page, "customer-panel")

    page.fill("#cpanel-note-body", "Предпочитает звонки после 17:00")
    page.click("#cpanel-note-submit")
    page.wait_for_selector("#cpanel-notes >> text=Предпочитает звонки после 17:00")
    task = page.locator("#cpanel-tasks .task").first
    task_id = task.get_attribute("data-task-id")
    page.click(f"#task-complete-{task_id}")
    page.wait_for_selector(f'#cpanel-tasks .task[data-task-id="{task_id}"]', state="detached")

    # the customer's own page (issue 19): the name once, tabs; every conversation; the orders they wrote about;
    # the profile tab carries the panel; usable at phone width
    phone = new_page(viewport=(390, 844))
    sign_in(phone, ws.agent_email, next_path=f"/customers/{customer_id}")
    assert phone.locator("#customer-conversations tbody tr[data-conversation-id]").count() == 3
    assert phone.get_by_text(phone.locator("#customer-title").inner_text(), exact=True).count() == 1
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "customer-page-phone")
    page.goto(f"/customers/{customer_id}?tab=profile")
    assert page.locator("#cpanel-history .history-item").count() == 3
    page.click("#customer-tab-tasks")
    page.wait_for_selector("#customer-tasks")
    assert page.locator(f'#customer-tasks tr[data-task-id="{task_id}"]').count() == 1  # done tasks stay listed
    screenshot(page, "customer-page-tasks")


def test_merge_two_customers_in_the_panel(new_page, live_server):
    ws = make_workspace("e2emerge")
    conv, target = receive(ws.id, "email", "email", "irina@example.com", "Здравствуйте, по заказу 7788",
                           name="Ирина Петрова")
    _, source = receive(ws.id, "telegram", "telegram", "555123", "Это снова я, Ирина", name="Ирина Телеграм")
    page = new_page()
    sign_in(page, ws.agent_email, next_path=f"/conversations/{conv}")
    page.locator("#cpanel").wait_for()
    page.fill("#cpanel-merge-q", "Ирина")
    page.wait_for_selector(f'.merge-candidate[data-customer-id="{source}"]')
    assert page.locator(f'.merge-candidate[data-customer-id="{target}"]').count() == 0
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.accept()))
    page.click(f"#merge-pick-{source}")
    page.wait_for_selector('#cpanel-identities .identity[data-kind="telegram"]')
    assert dialogs and "Ирина Телеграм" in dialogs[0]
    assert page.locator("#cpanel-history .history-item").count() == 2
    assert page.locator("#cpanel-message").count() == 1


def test_hostile_name_and_notes_are_text_in_the_panel(new_page, live_server):
    ws = make_workspace("e2epxss")
    conv, customer_id = receive(ws.id, "email", "email", "xss@example.com", XSS, name=XSS)
    with session_scope() as session:
        from otklik.accounts.service import Actor
        from otklik.customers import service as customers

        customers.add_note(session, Actor.system(ws.id), customer_id, XSS)
        customers.update_customer(session, Actor.system(ws.id), customer_id, changes={"attributes": {"site": XSS}})
        create_task(session, ws.id, customer_id=customer_id, title=XSS)
    page = new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    sign_in(page, ws.agent_email, next_path=f"/conversations/{conv}")
    panel = page.locator("#cpanel")
    panel.wait_for()
    assert XSS in panel.locator("#cpanel-name").inner_text()
    assert XSS in panel.locator("#cpanel-notes").inner_text()
    assert XSS in panel.locator("#cpanel-tasks").inner_text()
    assert XSS in panel.locator("#cpanel-attributes").inner_text()
    page.fill("#cpanel-note-body", XSS)
    page.click("#cpanel-note-submit")
    page.wait_for_function("document.querySelectorAll('#cpanel-notes .note').length === 2")
    assert panel.locator("img").count() == 0
    page.goto(f"/customers/{customer_id}")
    assert XSS in page.locator("#customer-title").inner_text()
    assert page.locator("#cpanel img").count() == 0
    page.goto("/search?q=xss")
    assert XSS in page.locator("#search-customers").inner_text()
    assert page.evaluate("window.__xss") is None
    assert dialogs == []


def test_search_page(new_page, live_server):
    ws = make_workspace("e2esearch")
    receive(ws.id, "email", "email", "olga@example.com", "Хочу заказать торт «Наполеон» на субботу", name="Ольга")
    receive(ws.id, "telegram", "telegram", "42", "А торты без сахара бывают?", name="Сергей Тортов")
    page = new_page()
    sign_in(page, ws.agent_email, next_path="/search")
    page.fill("#search-q", "торт")
    page.click("#search-submit")
    page.wait_for_selector("#search-results")
    assert page.locator("#search-messages .search-message").count() == 2
    assert page.locator("#search-messages mark").count() >= 2
    assert page.locator("#search-customers .search-customer").count() == 1
    screenshot(page, "search")
