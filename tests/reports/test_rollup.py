"""The daily rollup (docs/metrics.md, «The daily rollup»): the summary read from it equals the one computed live
from the facts, on the hand-written timeline of test_metrics and after every kind of change, at once (a marked
day is computed live until its refresh) and after the refresh job has folded the marks."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from otklik.conversations.models import Conversation
from otklik.customers.models import Customer
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import session_scope
from otklik.reports import jobs, rollup
from otklik.reports import service as reports
from otklik.reports.models import RollupDay, RollupMark, RollupRow
from tests.reports.test_metrics import NOW, add_conversation, at, figures, timeline  # noqa: F401

FIRST, LAST = dt.date(2026, 2, 20), dt.date(2026, 3, 12)
FILTERS = ({}, {"channel": "widget"}, {"channel": "email"}, {"channel": "vk"})


def live(ws_id: int, start: str = "2026-03-02", end: str = "2026-03-03", **filters) -> dict:
    with session_scope(write=False) as s:
        return reports.summary(s, ws_id, reports.make_filters(start, end, **filters), now=NOW, rollup=False)


def rolled(ws_id: int, start: str = "2026-03-02", end: str = "2026-03-03", **filters) -> dict:
    with session_scope(write=False) as s:
        return reports.summary(s, ws_id, reports.make_filters(start, end, **filters), now=NOW)


def live_runs(ws_id: int, start: str, end: str) -> list:
    with session_scope(write=False) as s:
        zone = reports.workspace_zone(s, ws_id)
        return rollup.add_rolled(s, ws_id, zone, reports.make_filters(start, end), NOW, reports.Partial())


def count(model, ws_id: int) -> int:
    with session_scope(write=False) as s:
        return s.scalar(select(func.count()).select_from(model).where(model.workspace_id == ws_id)) or 0


@pytest.fixture
def built(timeline):  # noqa: F811
    rollup.rebuild(timeline.id, FIRST, LAST)
    return timeline


def test_rollup_equals_live_on_the_hand_written_timeline(built):
    assert count(RollupDay, built.id) == (LAST - FIRST).days + 1
    assert count(RollupRow, built.id) >= 5  # the 2nd and 3rd by channel, the days around
    assert live_runs(built.id, "2026-03-01", "2026-03-04") == []  # every day read from the rollup
    for filters in FILTERS:
        assert rolled(built.id, **filters) == live(built.id, **filters), filters
    # the hand-computed figures of test_metrics, now read from the rollup
    got = rolled(built.id)
    assert (got["conversations"], got["first_response_median_s"], got["first_response_p90_s"]) == (6, 1200, 7200)
    assert (got["resolution_median_s"], got["fcr_rate"], got["repeat_contact_rate"]) == (25200, 0.5,
                                                                                         round(2 / 6, 4))
    assert (got["csat"], got["nps"], got["ces_avg"]) == (round(2 / 3, 4), 0.0, 3.0)
    assert (got["bot_containment_rate"], got["handoff_reasons"]) == (round(2 / 3, 4), {"negative": 1})
    assert figures(built.id) == got


def test_a_range_partly_rolled_up_adds_the_live_days(built):
    with session_scope() as s:  # forget the 3rd: it is computed live, the 2nd still read from the rollup
        s.execute(RollupDay.__table__.delete().where(RollupDay.workspace_id == built.id,
                                                     RollupDay.day == dt.date(2026, 3, 3)))
    assert live_runs(built.id, "2026-03-02", "2026-03-03") == [(dt.date(2026, 3, 3), dt.date(2026, 3, 3))]
    for filters in FILTERS:
        assert rolled(built.id, **filters) == live(built.id, **filters), filters


def test_a_change_is_exact_at_once_and_folded_by_the_job(built, monkeypatch):
    monkeypatch.setattr(rollup, "_nudge", lambda workspace_id: None)  # no job: the marks stay
    with session_scope() as s:
        c2 = s.scalars(select(Conversation).where(Conversation.workspace_id == built.id,
                                                  Conversation.channel == "email")
                       .order_by(Conversation.id)).first()
        answer = s.scalars(select(SurveyAnswer).where(SurveyAnswer.conversation_id == c2.id,
                                                      SurveyAnswer.kind == "csat")).one()
        answer.score = 5  # CSAT 2 → 5: 3 of 3 are 4–5
    assert count(RollupMark, built.id) == 1
    assert live_runs(built.id, "2026-03-02", "2026-03-03") == [(dt.date(2026, 3, 2), dt.date(2026, 3, 2))]
    assert rolled(built.id)["csat"] == 1.0 == live(built.id)["csat"]
    assert jobs.refresh_rollup.call_local(built.id) == 1
    assert count(RollupMark, built.id) == 0
    assert live_runs(built.id, "2026-03-02", "2026-03-03") == []
    assert rolled(built.id) == live(built.id)
    assert rolled(built.id)["csat"] == 1.0


def test_the_job_after_commit_keeps_it_current(built):
    with session_scope() as s:  # a new conversation for A makes c4 (A, on the 3rd) a repeat contact
        a = s.scalars(select(Customer).where(Customer.workspace_id == built.id, Customer.name == "A")).one()
        add_conversation(s, built.id, a, "vk", at(6, 9))
        c5 = s.scalars(select(Conversation).where(Conversation.workspace_id == built.id,
                                                  Conversation.transfer_count == 2)).one()
        c5.transfer_count = 3
    assert count(RollupMark, built.id) == 0  # folded by the job after commit (the tests' queue runs it at once)
    assert live_runs(built.id, "2026-03-01", "2026-03-07") == []
    got = rolled(built.id)
    assert got == live(built.id)
    assert got["repeat_contact_rate"] == round(3 / 6, 4)  # c1, c3 and now c4
    assert got["transfers_per_conversation"] == round(4 / 6, 3)
    assert rolled(built.id, "2026-02-20", "2026-03-12") == live(built.id, "2026-02-20", "2026-03-12")


def test_containment_waiting_for_quiet_is_not_frozen(built):
    # rolled up at 13:10 on the 3rd: c6's answer (13:01) is 9 minutes old, containment still open
    with session_scope() as s:
        zone = reports.workspace_zone(s, built.id)
        rollup.store(s, built.id, zone, dt.date(2026, 3, 3), dt.date(2026, 3, 3), now=at(3, 13, 10))
    with session_scope(write=False) as s:
        stale = s.scalar(select(RollupDay.stale_after).where(RollupDay.workspace_id == built.id,
                                                             RollupDay.day == dt.date(2026, 3, 3)))
    assert stale is not None and stale.replace(tzinfo=dt.UTC) == at(3, 13, 31)
    # read at NOW (the 5th): the day is stale, computed live: c6 contained
    assert live_runs(built.id, "2026-03-03", "2026-03-03") == [(dt.date(2026, 3, 3), dt.date(2026, 3, 3))]
    assert rolled(built.id)["bot_containment_rate"] == round(2 / 3, 4)


def test_another_time_zone_is_not_used(built):
    with session_scope() as s:
        s.execute(RollupDay.__table__.update().where(RollupDay.workspace_id == built.id).values(zone="Asia/Tokyo"))
    assert live_runs(built.id, "2026-03-02", "2026-03-03") == [(dt.date(2026, 3, 2), dt.date(2026, 3, 3))]
    assert rolled(built.id) == live(built.id)


def test_rebuild_history_and_fill_missing(timeline):  # noqa: F811
    lines = list(rollup.rebuild_history(None, "2026-03-01", "2026-03-05"))
    assert any("6 conversations" in line or "conversations rolled up" in line for line in lines)
    with session_scope() as s:
        s.execute(RollupDay.__table__.delete().where(RollupDay.workspace_id == timeline.id))
    assert rollup.fill_missing(timeline.id, limit=400) >= 4
    assert live_runs(timeline.id, "2026-03-01", "2026-03-04") == []
    assert rolled(timeline.id) == live(timeline.id)


def test_partial_json_round_trip():
    p = reports.Partial(conversations=2, first=[1500, 2], csat={5: 1, 2: 1}, reasons={"negative": 1})
    assert reports.Partial.from_json(p.to_json()) == p
    q = reports.Partial(conversations=1, first=[7], csat={5: 2})
    p.add(q)
    assert (p.conversations, sorted(p.first), p.csat) == (3, [2, 7, 1500], {5: 3, 2: 1})


def test_runs_of():
    d = dt.date(2026, 1, 1)
    days = [d, d + dt.timedelta(days=1), d + dt.timedelta(days=3)]
    assert rollup.runs_of(days) == [(d, d + dt.timedelta(days=1)), (d + dt.timedelta(days=3),) * 2]


def test_daily_series_from_the_rollup_equals_live(built):
    with session_scope() as s:  # the 3rd marked: computed live, the other days from the rollup
        c5 = s.scalars(select(Conversation).where(Conversation.workspace_id == built.id,
                                                  Conversation.transfer_count == 2)).one()
        c5.first_response_at = at(3, 12, 40)
    for filters in FILTERS:
        f = reports.make_filters("2026-02-27", "2026-03-06", **filters)
        with session_scope(write=False) as s:
            assert reports.daily(s, built.id, f, now=NOW) == reports.daily(s, built.id, f, rollup=False), filters
    with session_scope(write=False) as s:
        got = reports.daily(s, built.id, reports.make_filters("2026-03-03", "2026-03-03"), now=NOW)
    # the 3rd (Moscow): c2's… no — c4 (none), c5 (40 min = 2400 s), c6 (none) and C's e-mail at 00:30 on the 4th
    # is the 4th; people's first answers that day: c5 only
    assert got["days"][0]["conversations"] == 3 and got["days"][0]["first_response_median_s"] == 2400


def test_a_burst_of_commits_enqueues_one_refresh(monkeypatch):
    import types

    from otklik.platform import config

    calls: list[int] = []
    monkeypatch.setattr(config, "get_settings", lambda: types.SimpleNamespace(queue_backend="redis"))
    monkeypatch.setattr(jobs, "refresh_rollup", lambda workspace_id: calls.append(workspace_id))
    monkeypatch.setattr(rollup, "_last_nudge", {})
    for _ in range(5):
        rollup._nudge(7)
    rollup._nudge(8)
    assert calls == [7, 8]
    monkeypatch.setattr(rollup, "_last_nudge", {7: -1e9})
    rollup._nudge(7)
    assert calls == [7, 8, 7]
