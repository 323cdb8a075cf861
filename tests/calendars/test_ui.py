"""Settings → Calendars pages: list, create, edit with several intervals a day, teams, the drawn week, the
year's days off; Russian and English; 422 with the field on bad hours; agents read but cannot change."""

from __future__ import annotations

from tests.web._ui import Browser


def test_create_edit_and_read_a_calendar(app, client, ws):
    b = Browser(app, ws.admin_email)
    assert "Календари" in b.get("/settings").text
    page = b.get("/settings/calendars")
    assert page.status_code == 200 and "Календарей пока нет" in page.text
    r = b.post("/settings/calendars", {"name": "Москва <b>", "time_zone": "Europe/Moscow", "holidays": "RU",
                                       "preset": "9-18"}, htmx=False)
    assert r.status_code == 303
    cal_id = int(r.headers["location"].rsplit("/", 1)[1])
    team = client.post("/api/v1/teams", json={"name": "Доставка", "member_ids": []}, headers=ws.admin).json()
    page = b.get(f"/settings/calendars/{cal_id}?year=2026")
    assert page.status_code == 200 and "Москва &lt;b&gt;" in page.text and "<b>" not in page.text.split("<h1>")[1][:80]
    assert 'data-date="2026-03-09"' in page.text and "Праздник или перенесённый выходной" in page.text
    assert 'data-date="2026-12-31"' in page.text and page.text.count('class="week-bar"') == 5
    form = {"name": "Москва", "time_zone": "Europe/Moscow", "holidays": "RU",
            "hours_mon": "09:00–13:00, 14:00–18:00", "hours_tue": "9:00-18:00", "hours_wed": "09:00–18:00",
            "hours_thu": "09:00–18:00", "hours_fri": "09:00–17:00", "hours_sat": "", "hours_sun": "",
            "days_off": "2026-03-04\n2026-03-05", "working_days": "2026-03-07", "shortened_preholiday": "on",
            "team_ids": [str(team["id"])]}
    r = b.post(f"/settings/calendars/{cal_id}", form, htmx=False)
    assert r.status_code == 303, r.text
    got = client.get(f"/api/v1/calendars/{cal_id}", headers=ws.agent).json()
    assert got["hours"]["mon"] == [["09:00", "13:00"], ["14:00", "18:00"]] and got["hours"]["tue"] == [["09:00", "18:00"]]
    assert got["days_off"] == ["2026-03-04", "2026-03-05"] and got["working_days"] == ["2026-03-07"]
    assert got["shortened_preholiday"] and got["teams"] == ["Доставка"] and got["is_default"]
    page = b.get(f"/settings/calendars/{cal_id}?year=2026")
    assert page.text.count('class="week-bar"') == 6 and "Сокращённый предпраздничный день" in page.text
    assert 'data-date="2026-03-07"' in page.text and "Свой выходной" in page.text
    # bad hours: a 422 that names the day, the typed text kept
    bad = b.post(f"/settings/calendars/{cal_id}", {**form, "hours_wed": "10:00–25:00"}, htmx=False)
    assert bad.status_code == 422 and "hours.wed" in bad.text and "10:00–25:00" in bad.text
    overlap = b.post(f"/settings/calendars/{cal_id}", {**form, "hours_mon": "09:00–13:00, 12:00–18:00"}, htmx=False)
    assert overlap.status_code == 422 and "overlap" in overlap.text
    # unchecking the team frees it
    b.post(f"/settings/calendars/{cal_id}", {**form, "team_ids": []}, htmx=False)
    assert client.get(f"/api/v1/calendars/{cal_id}", headers=ws.agent).json()["teams"] == []


def test_english_agent_reads_and_cannot_change(app, client, ws):
    c = client.post("/api/v1/calendars", json={"name": "Berlin", "time_zone": "Europe/Berlin", "holidays": "DE"},
                    headers=ws.admin).json()
    client.patch(f"/api/v1/users/{ws.agent_id}", json={"language": "en"}, headers=ws.admin)
    agent = Browser(app, ws.agent_email)
    page = agent.get(f"/settings/calendars/{c['id']}?year=2026")
    assert page.status_code == 200 and "Days off and changed days in 2026" in page.text
    assert 'id="calendar-save"' not in page.text
    r = agent.post(f"/settings/calendars/{c['id']}", {"name": "x"}, htmx=False)
    assert r.status_code in (302, 303, 403)
    assert client.get(f"/api/v1/calendars/{c['id']}", headers=ws.agent).json()["name"] == "Berlin"
