"""Settings → Calendars in a real browser: an admin creates the Novosibirsk calendar, types a lunch break and
an own day off, saves, and sees the drawn week and the year's days off (RU transfers included); at phone width
the page does not scroll sideways. Screenshots: docs/screenshots/settings-calendar*.png."""

from __future__ import annotations

from tests.conftest import make_workspace
from tests.e2e._ui import sign_in
from tests.e2e.conftest import screenshot


def test_admin_sets_up_a_calendar_with_lunch_and_sees_the_year(new_page, live_server):
    ws = make_workspace("e2ecal")
    page = new_page()
    sign_in(page, ws.admin_email, next_path="/settings")
    page.click("#settings-link-calendars")
    page.wait_for_url("**/settings/calendars")
    page.fill("#calendar-name", "Новосибирск")
    page.select_option("#calendar-zone", "Asia/Novosibirsk")
    page.click("#calendar-create-submit")
    page.wait_for_selector("#calendar-form")
    assert page.locator("#calendar-week .week-bar").count() == 5
    page.fill("#hours-mon", "09:00–13:00, 14:00–18:00")
    page.fill("#hours-sat", "10:00–15:00")
    page.fill("#cal-days-off", "2026-06-15")
    page.check("#cal-short")
    page.click("#calendar-save")
    page.wait_for_selector("#calendar-saved")
    assert page.locator("#calendar-week .week-bar").count() == 7
    monday = page.locator('#calendar-week [data-day="mon"] .week-bar')
    assert monday.count() == 2 and monday.nth(1).get_attribute("title") == "14:00–18:00"
    page.goto(page.url.split("?")[0] + "?year=2026")
    rows = page.locator("#year-days")
    assert "2026-03-09" in rows.inner_text() and "2026-12-31" in rows.inner_text()
    assert "Свой выходной" in page.locator('#year-days [data-date="2026-06-15"]').inner_text()
    assert "Сокращённый" in page.locator('#year-days [data-date="2026-06-11"]').inner_text()
    screenshot(page, "settings-calendar")
    # a bad interval is refused with the day named, nothing saved
    page.fill("#hours-tue", "09:00–25:00")
    page.click("#calendar-save")
    page.wait_for_selector("#calendar-error")
    assert "hours.tue" in page.locator("#calendar-error").inner_text()
    phone = new_page(viewport=(390, 844))
    sign_in(phone, ws.admin_email, next_path="/settings/calendars")
    phone.click("#calendar-list a")
    phone.wait_for_selector("#calendar-week")
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(phone, "settings-calendar-phone")
