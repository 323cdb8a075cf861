"""The calendars API (contract: POST /calendars, GET /calendars/{id}/add, /between), its 422s, roles and
workspace isolation, the team's calendar, and the assistant's out-of-hours promise counted on it."""

from __future__ import annotations

import datetime as dt

import pytest

MOSCOW = {"name": "Москва", "time_zone": "Europe/Moscow",
          "hours": {"mon": [["09:00", "18:00"]], "tue": [["09:00", "18:00"]], "wed": [["09:00", "18:00"]],
                    "thu": [["09:00", "18:00"]], "fri": [["09:00", "18:00"]], "sat": [], "sun": []},
          "holidays": "RU", "days_off": [], "working_days": []}


def create(client, ws, **over):
    r = client.post("/api/v1/calendars", json={**MOSCOW, **over}, headers=ws.admin)
    assert r.status_code == 201, r.text
    return r.json()


def test_contract_add_and_between(client, ws):
    c = create(client, ws)
    assert c["is_default"] is True  # the first calendar is the workspace's default
    r = client.get(f"/api/v1/calendars/{c['id']}/add", params={"start": "2026-03-06T17:30:00+03:00", "minutes": 60},
                   headers=ws.agent)
    assert r.status_code == 200 and r.json() == {"due": "2026-03-10T06:30:00Z"}
    r = client.get(f"/api/v1/calendars/{c['id']}/between",
                   params={"start": "2026-03-06T17:30:00+03:00", "end": "2026-03-10T09:15:00+03:00"},
                   headers=ws.agent)
    assert r.json() == {"minutes": 45}
    # a '+' left unencoded in a query string arrives as a space: still read as the offset
    raw = client.get(f"/api/v1/calendars/{c['id']}/add?start=2026-12-30T20:00:00+03:00&minutes=0", headers=ws.agent)
    assert raw.json() == {"due": "2027-01-11T06:00:00Z"}
    z = client.get(f"/api/v1/calendars/{c['id']}/add", params={"start": "2026-03-04T07:00:00Z", "minutes": 0},
                   headers=ws.agent)
    assert z.json() == {"due": "2026-03-04T07:00:00Z"}


@pytest.mark.parametrize(("body", "field"), [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"hours": {"mon": [["25:00", "26:00"]]}}, "hours.mon"),
    ({"hours": {"tue": [["09:00", "13:00"], ["12:00", "18:00"]]}}, "hours.tue"),
    ({"hours": {"mon": [["18:00", "09:00"]]}}, "hours.mon"),
    ({"hours": {"funday": []}}, "hours"),
    ({"holidays": "XX"}, "holidays"),
    ({"days_off": ["2026-02-30"]}, "days_off.0"),
    ({"working_days": ["tomorrow"]}, "working_days.0"),
    ({"name": ""}, "name"),
])
def test_bad_calendar_is_a_422_naming_the_field(client, ws, body, field):
    r = client.post("/api/v1/calendars", json={**MOSCOW, **body}, headers=ws.admin)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()


@pytest.mark.parametrize(("path", "params", "field"), [
    ("add", {"start": "2026-03-06T17:30:00+03:00", "minutes": -5}, "minutes"),
    ("add", {"start": "2026-03-06T17:30:00", "minutes": 5}, "start"),
    ("add", {"start": "not a date", "minutes": 5}, "start"),
    ("add", {"start": "2026-03-06T17:30:00+03:00", "minutes": "ten"}, "minutes"),
    ("add", {"minutes": 5}, "start"),
    ("between", {"start": "2026-03-06T17:30:00+03:00", "end": "2026-03-06T10:00"}, "end"),
    ("between", {"start": "2026-03-06T17:30:00+03:00", "end": "2026-03-05T10:00:00+03:00"}, "end"),
    ("add", {"start": "9999-12-31T23:59:59+00:00", "minutes": 5}, "start"),
])
def test_bad_arithmetic_input_is_a_422_naming_the_field(client, ws, path, params, field):
    c = create(client, ws)
    r = client.get(f"/api/v1/calendars/{c['id']}/{path}", params=params, headers=ws.agent)
    assert r.status_code == 422, r.text
    assert field in [f["field"] for f in r.json()["error"]["fields"]], r.json()


def test_roles_isolation_and_unauthenticated(client, ws, other_ws):
    c = create(client, ws)
    assert client.post("/api/v1/calendars", json=MOSCOW, headers=ws.agent).status_code == 403
    assert client.get(f"/api/v1/calendars/{c['id']}", headers=other_ws.admin).status_code == 404
    assert client.get(f"/api/v1/calendars/{c['id']}/add", params={"start": "2026-03-06T17:30:00+03:00",
                                                                  "minutes": 1}, headers=other_ws.admin).status_code == 404
    assert client.get("/api/v1/calendars", headers=other_ws.admin).json() == []
    assert client.get(f"/api/v1/calendars/{c['id']}/add", params={"start": "2026-03-06T17:30:00+03:00",
                                                                  "minutes": 1}).status_code == 401
    assert client.post("/api/v1/calendars", json=MOSCOW).status_code == 401


def test_update_default_days_teams_and_delete(client, ws):
    moscow = create(client, ws)
    nsk = create(client, ws, name="Новосибирск", time_zone="Asia/Novosibirsk", days_off=["2026-03-04"],
                 working_days=["2026-03-07"], shortened_preholiday=True)
    assert nsk["is_default"] is False and nsk["hours"]["sat"] == []
    assert create_dup(client, ws).status_code == 422
    team = client.post("/api/v1/teams", json={"name": "Сибирь", "member_ids": []}, headers=ws.admin).json()
    r = client.put(f"/api/v1/teams/{team['id']}/calendar", json={"calendar_id": nsk["id"]}, headers=ws.admin)
    assert r.status_code == 200 and r.json() == {"team_id": team["id"], "calendar_id": nsk["id"]}
    assert client.get(f"/api/v1/calendars/{nsk['id']}", headers=ws.agent).json()["teams"] == ["Сибирь"]
    days = client.get(f"/api/v1/calendars/{nsk['id']}/days", params={"year": 2026}, headers=ws.agent).json()
    by_date = {d["date"]: d for d in days}
    assert by_date["2026-03-04"]["kind"] == "day_off" and by_date["2026-03-07"]["kind"] == "extra_working"
    assert by_date["2026-03-09"]["kind"] == "holiday" and by_date["2026-04-30"]["kind"] == "shortened"
    assert by_date["2026-04-30"]["hours"] == [["09:00", "17:00"]] and by_date["2026-01-07"]["name"]
    assert client.delete(f"/api/v1/calendars/{moscow['id']}", headers=ws.admin).status_code == 409  # the default
    r = client.patch(f"/api/v1/calendars/{nsk['id']}", json={"is_default": True, "holidays": None},
                     headers=ws.admin)
    assert r.status_code == 200 and r.json()["is_default"] and r.json()["holidays"] is None
    assert client.get(f"/api/v1/calendars/{moscow['id']}", headers=ws.agent).json()["is_default"] is False
    assert client.delete(f"/api/v1/calendars/{nsk['id']}", headers=ws.admin).status_code == 409
    assert client.delete(f"/api/v1/calendars/{moscow['id']}", headers=ws.admin).status_code == 204
    audit = client.get("/api/v1/audit", params={"entity_type": "calendar"}, headers=ws.admin)
    assert audit.status_code == 200 and {"created", "updated", "deleted"} <= {e["action"] for e in audit.json()}


def create_dup(client, ws):
    return client.post("/api/v1/calendars", json=MOSCOW, headers=ws.admin)


def test_assistant_out_of_hours_counts_on_the_calendar_with_holidays(client, ws):
    """At 20:00 on 31 December the assistant promised 1 January at 09:00; the calendar says 11 January."""
    from otklik.assistant import service
    from otklik.platform.db import session_scope

    create(client, ws)
    with session_scope(write=False) as db:
        opening = service.next_opening(db, ws.id, None, dt.datetime(2026, 12, 31, 17, 0, tzinfo=dt.UTC))
        assert opening is not None and opening.isoformat() == "2027-01-11T09:00:00+03:00"
        assert service.next_opening(db, ws.id, None, dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC)) is None


def test_the_widget_is_online_by_the_business_calendar(client, ws):
    """Settings → Website widget «By the business calendar»: online while the calendar is open, the offline form
    on a holiday (9 March 2026) and at night; the calendar named, else the workspace default."""
    import datetime as dt

    from otklik.platform.db import session_scope
    from otklik.web.widget import service as widget

    create(client, ws)  # Moscow, Mon–Fri 09–18, RU: the default
    config = {"hours": {"mode": "calendar", "calendar_id": None}}
    with session_scope(write=False) as db:
        def online(at: dt.datetime) -> bool:
            return widget.is_online(config, at, session=db, workspace_id=ws.id)

        assert online(dt.datetime(2026, 3, 4, 8, 0, tzinfo=dt.UTC))  # Wednesday 11:00 in Moscow
        assert not online(dt.datetime(2026, 3, 9, 8, 0, tzinfo=dt.UTC))  # the 8 March day off, moved to Monday
        assert not online(dt.datetime(2026, 3, 4, 19, 0, tzinfo=dt.UTC))  # 22:00
    key = client.get("/api/v1/widget/settings", headers=ws.admin).json()["public_key"]
    r = client.put("/api/v1/widget/settings", json={"config": {"hours": {"mode": "calendar"}}}, headers=ws.admin)
    assert r.status_code == 200, r.text
    online_now = client.get("/api/v1/widget/config", params={"key": key}).json()["online"]
    with session_scope(write=False) as db:
        from otklik.calendars.service import default_calendar, engine_of

        expected = engine_of(default_calendar(db, ws.id)).is_open(dt.datetime.now(dt.UTC))
    assert online_now is expected
