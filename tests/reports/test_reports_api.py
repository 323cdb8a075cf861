"""The summary contract (GET /api/v1/reports/summary): its keys, 422 naming the field, 401 without a sign-in,
403 for agents, another workspace never counted; the daily series and the streamed CSV export."""

from __future__ import annotations

import csv
import datetime as dt
import io

from otklik.platform.db import utcnow
from tests.conftest import inbound

KEYS = {"conversations", "first_response_median_s", "first_response_p90_s", "resolution_median_s", "sla_met_rate",
        "csat", "csat_responses", "nps", "ces_avg", "fcr_rate", "repeat_contact_rate", "bot_containment_rate",
        "transfers_per_conversation"}


def today() -> str:
    return utcnow().date().isoformat()


def around_today() -> dict[str, str]:
    """A month back to tomorrow: today's conversations whatever the workspace's time zone."""
    day = utcnow().date()
    return {"from": (day - dt.timedelta(days=30)).isoformat(), "to": (day + dt.timedelta(days=1)).isoformat()}


def test_summary_has_every_key_and_counts_only_this_workspace(client, ws, other_ws):
    inbound(client, ws, identity="mine@example.com")
    for i in range(3):
        inbound(client, other_ws, identity=f"theirs{i}@example.com")
    r = client.get("/api/v1/reports/summary", params=around_today(), headers=ws.admin)
    assert r.status_code == 200, r.text
    body = r.json()
    assert KEYS <= body.keys()
    r = client.get("/api/v1/reports/summary", params={"from": today(), "to": today()}, headers=ws.admin)
    assert r.json()["conversations"] in (1, 0)  # 0 only when Moscow's day differs from UTC's at this hour
    wide = client.get("/api/v1/reports/summary", params=around_today(), headers=ws.admin).json()
    assert wide["conversations"] == 1
    assert wide["csat"] is None and wide["csat_responses"] == 0


def test_bad_dates_name_the_field(client, ws):
    for params, field in (({"from": "2026-13-01", "to": "2026-12-01"}, "from"),
                          ({"from": "2026-01-01", "to": "yesterday"}, "to"),
                          ({"from": "2026-02-01", "to": "2026-01-01"}, "from"),
                          ({"to": "2026-01-01"}, "from"), ({"from": "2026-01-01"}, "to"),
                          ({"from": "2026-1-1", "to": "2026-01-02"}, "from"),
                          ({"from": "2020-01-01", "to": "2026-01-01"}, "to")):
        r = client.get("/api/v1/reports/summary", params=params, headers=ws.admin)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["fields"][0]["field"] == field, (params, r.text)
    r = client.get("/api/v1/reports/summary", params={"from": "2026-01-01", "to": "2026-01-02", "team_id": "x"},
                   headers=ws.admin)
    assert r.status_code == 422


def test_sign_in_and_role(client, ws):
    params = {"from": "2026-01-01", "to": "2026-01-31"}
    for path in ("/api/v1/reports/summary", "/api/v1/reports/daily", "/api/v1/reports/conversations.csv"):
        r = client.get(path, params=params)
        assert r.status_code == 401, (path, r.text)
        assert client.get(path, params=params, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert client.get(path, params=params, headers=ws.agent).status_code == 403


def test_daily_series(client, ws):
    inbound(client, ws, identity="d@example.com")
    r = client.get("/api/v1/reports/daily", params=around_today(), headers=ws.admin)
    assert r.status_code == 200
    days = r.json()["days"]
    assert len(days) == 32 and sum(d["conversations"] for d in days) == 1


def test_csv_export_streams_the_range_of_this_workspace(client, ws, other_ws):
    for i in range(5):
        inbound(client, ws, identity=f"c{i}@example.com", text=f"=HYPERLINK(\"x\") вопрос {i}")
    inbound(client, other_ws, identity="secret@example.com", text="чужое")
    r = client.get("/api/v1/reports/conversations.csv", params=around_today(), headers=ws.admin)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0][0] == "number" and len(rows) == 6
    assert all(row[6].startswith("'=") for row in rows[1:])  # never a formula in a spreadsheet
    assert "чужое" not in r.content.decode()


def test_csv_export_pages_past_a_batch(client, ws, monkeypatch):
    from otklik.reports import export

    monkeypatch.setattr(export, "BATCH", 2)
    for i in range(5):
        inbound(client, ws, identity=f"p{i}@example.com")
    r = client.get("/api/v1/reports/conversations.csv", params=around_today(), headers=ws.admin)
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert len(rows) == 6 and len({row[0] for row in rows[1:]}) == 5


def test_hostile_filters_are_422_naming_the_field_never_500(client, ws):
    inbound(client, ws)
    for params, field in (({"team_id": str(10**30)}, "team_id"), ({"agent_id": "-1"}, "agent_id"),
                          ({"channel": "x" * 5000}, "channel"), ({"from": "9999-12-31", "to": "9999-12-31"}, "from"),
                          ({"from": "0001-01-01", "to": "0001-01-01"}, "from"), ({"from": "2026-01-01\x00"}, "from")):
        query = {"from": "2026-01-01", "to": "2026-01-02", **params}
        for path in ("/api/v1/reports/summary", "/api/v1/reports/daily", "/api/v1/reports/conversations.csv"):
            r = client.get(path, params=query, headers=ws.admin)
            assert r.status_code == 422, (path, params, r.text)
            assert r.json()["error"]["fields"][0]["field"] == field, (path, params, r.text)
