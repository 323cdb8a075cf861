"""Business-time arithmetic: hand-computed timelines (weekends, Russian holidays and transfers, lunch breaks,
24/7, DST in Berlin, pre-holiday days) and properties that hold for any calendar and start."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otklik.calendars.engine import BusinessCalendar, CalendarSpec, DayKind, parse_hours

MSK = ZoneInfo("Europe/Moscow")
BERLIN = ZoneInfo("Europe/Berlin")
WEEKDAYS_9_18 = {d: [["09:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
LUNCH = {d: [["09:00", "13:00"], ["14:00", "18:00"]] for d in ("mon", "tue", "wed", "thu", "fri")}
ALWAYS = {d: [["00:00", "24:00"]] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}


def cal(hours=WEEKDAYS_9_18, zone="Europe/Moscow", holidays="RU", **kw) -> BusinessCalendar:
    return BusinessCalendar(CalendarSpec.from_mapping(zone, hours, holidays, **kw))


def msk(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=MSK)


def test_within_a_day_and_over_a_night():
    c = cal()
    assert c.add(msk(2026, 3, 4, 10, 0), 30) == msk(2026, 3, 4, 10, 30)
    # 17:30 + 60 working minutes: 30 today, 30 tomorrow from 09:00
    assert c.add(msk(2026, 3, 4, 17, 30), 60) == msk(2026, 3, 5, 9, 30)
    assert c.between(msk(2026, 3, 4, 17, 30), msk(2026, 3, 5, 9, 15)) == 45  # «написал в 17:30, ответ в 9:15»


def test_weekend_and_the_march_8_transfer_2026():
    c = cal()
    # Friday 6 March 17:30 + 60: Sat 7, Sun 8 (holiday), Mon 9 March off (8 March moved), so Tuesday 10th 09:30
    assert c.add(msk(2026, 3, 6, 17, 30), 60) == msk(2026, 3, 10, 9, 30)
    assert c.day(dt.date(2026, 3, 9))[0] == DayKind.HOLIDAY


def test_new_year_holidays_and_31_december_2026_and_9_january():
    c = cal()
    # 20:00 on 30 December (Wednesday): 31 December 2026 is a day off, 1–11 January 2027 off → 11 January 2027
    # is a Monday and the first working day (1–8 Jan holidays, 9–10 the weekend)
    assert c.add(msk(2026, 12, 30, 20, 0), 0) == msk(2027, 1, 11, 9, 0)
    assert c.day(dt.date(2026, 12, 31))[0] == DayKind.HOLIDAY
    assert c.day(dt.date(2026, 1, 9))[0] == DayKind.HOLIDAY  # Friday 9 January 2026: a transferred day off
    assert c.add(msk(2025, 12, 30, 12, 0), 0) == msk(2025, 12, 30, 12, 0)  # a working Tuesday
    # 31 December 2025 was a day off too; 9 January 2026 a transferred one: 12 January is the first working day
    assert c.add(msk(2025, 12, 31, 12, 0), 0) == msk(2026, 1, 12, 9, 0)
    assert c.add(msk(2026, 1, 1, 12, 0), 1) == msk(2026, 1, 12, 9, 1)


def test_working_saturday_from_the_production_calendar_2027():
    c = cal()
    # Saturday 20 February 2027 is a working day (its day off moved to Monday 22 February)
    assert c.day(dt.date(2027, 2, 20)) == (DayKind.EXTRA_WORKING, ((540, 1080),))
    assert c.day(dt.date(2027, 2, 22))[0] == DayKind.HOLIDAY
    assert c.add(msk(2027, 2, 19, 17, 0), 120) == msk(2027, 2, 20, 10, 0)


def test_a_year_of_the_production_calendar_2026():
    # 247 working days in 2026 (Russian production calendar); four shortened pre-holiday days
    # (30 April, 8 May, 11 June, 3 November) one hour shorter when the option is on.
    c = cal(hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")})
    year = (msk(2026, 1, 1), msk(2027, 1, 1))
    assert c.between(*year) == 247 * 8 * 60
    short = cal(hours={d: [["09:00", "17:00"]] for d in ("mon", "tue", "wed", "thu", "fri")},
                shortened_preholiday=True)
    assert short.between(*year) == (247 * 8 - 4) * 60  # 1972 hours: the 40-hour week's norm for 2026
    kinds = {d: short.day(d)[0] for d in (dt.date(2026, 4, 30), dt.date(2026, 5, 8), dt.date(2026, 6, 11),
                                         dt.date(2026, 11, 3), dt.date(2026, 12, 30), dt.date(2026, 2, 20))}
    assert [k for k in kinds.values()] == [DayKind.SHORTENED] * 4 + [DayKind.WORKING] * 2


def test_lunch_break_and_several_intervals():
    c = cal(hours=LUNCH)
    assert c.add(msk(2026, 3, 4, 12, 30), 60) == msk(2026, 3, 4, 14, 30)
    assert c.between(msk(2026, 3, 4, 12, 0), msk(2026, 3, 4, 15, 0)) == 120
    assert c.add(msk(2026, 3, 4, 13, 20), 0) == msk(2026, 3, 4, 14, 0)
    assert not c.is_open(msk(2026, 3, 4, 13, 20)) and c.is_open(msk(2026, 3, 4, 14, 0))


def test_own_days_off_and_working_days_override_the_country():
    c = cal(days_off=["2026-03-04"], working_days=["2026-03-07", "2026-01-05"])
    assert c.add(msk(2026, 3, 3, 17, 0), 120) == msk(2026, 3, 5, 10, 0)
    assert c.add(msk(2026, 3, 6, 17, 0), 120) == msk(2026, 3, 7, 10, 0)  # a Saturday made working
    assert c.day(dt.date(2026, 1, 5))[0] == DayKind.EXTRA_WORKING  # working during the New Year holidays


def test_24_7_calendar_and_no_country():
    c = cal(hours=ALWAYS, holidays=None)
    start = msk(2026, 12, 31, 23, 30)
    assert c.add(start, 90) == msk(2027, 1, 1, 1, 0)
    assert c.between(msk(2026, 1, 1), msk(2027, 1, 1)) == 365 * 24 * 60


def test_dst_in_berlin_march_and_october():
    c = cal(hours=ALWAYS, zone="Europe/Berlin", holidays=None)
    # 29 March 2026: clocks go 02:00 → 03:00; the local day has 23 hours
    day = (dt.datetime(2026, 3, 29, tzinfo=BERLIN), dt.datetime(2026, 3, 30, tzinfo=BERLIN))
    assert c.between(*day) == 23 * 60
    # 25 October 2026: 03:00 → 02:00; 25 hours
    assert c.between(dt.datetime(2026, 10, 25, tzinfo=BERLIN), dt.datetime(2026, 10, 26, tzinfo=BERLIN)) == 25 * 60
    office = cal(hours=WEEKDAYS_9_18, zone="Europe/Berlin", holidays="DE")
    # Friday 27 March 17:00 CET (16:00 UTC) + 120 → Monday 30 March 10:00 CEST (08:00 UTC): nine hours a day
    # in both offsets
    due = office.add(dt.datetime(2026, 3, 27, 17, 0, tzinfo=BERLIN), 120)
    assert due == dt.datetime(2026, 3, 30, 8, 0, tzinfo=dt.UTC)
    assert office.between(dt.datetime(2026, 10, 23, 9, tzinfo=BERLIN), dt.datetime(2026, 10, 26, 18, tzinfo=BERLIN)) \
        == 18 * 60


def test_offsets_in_the_input_do_not_matter():
    c = cal()
    same = dt.datetime(2026, 3, 4, 7, 0, tzinfo=dt.UTC)  # 10:00 in Moscow
    assert c.add(same, 30) == c.add(msk(2026, 3, 4, 10, 0), 30) == dt.datetime(2026, 3, 4, 7, 30, tzinfo=dt.UTC)
    vladivostok = dt.datetime(2026, 3, 4, 17, 0, tzinfo=ZoneInfo("Asia/Vladivostok"))
    assert c.add(vladivostok, 0) == msk(2026, 3, 4, 10, 0)


def test_bad_input():
    c = cal()
    with pytest.raises(ValueError, match="offset"):
        c.add(dt.datetime(2026, 3, 4, 10), 5)
    with pytest.raises(ValueError, match="negative"):
        c.add(msk(2026, 3, 4, 10), -1)
    with pytest.raises(ValueError, match="before"):
        c.between(msk(2026, 3, 4, 10), msk(2026, 3, 4, 9))
    for hours, reason in (({"mon": [["25:00", "26:00"]]}, "time"), ({"mon": [["09:00", "13:00"], ["12:00", "18:00"]]},
                          "overlap"), ({"mon": [["18:00", "09:00"]]}, "before"), ({"xyz": []}, "not a day"),
                          ({"mon": [["24:00", "24:00"]]}, "time"), ({"mon": [["9:00", "18:00"]]}, "HH:MM")):
        with pytest.raises(ValueError, match=reason):
            parse_hours(hours)


def test_a_calendar_with_no_working_time_says_so():
    from otklik.calendars.engine import CalendarRangeError

    c = cal(hours={}, holidays=None)
    with pytest.raises(CalendarRangeError):
        c.add(msk(2026, 3, 4, 10), 5)


HOURS = st.sampled_from([WEEKDAYS_9_18, LUNCH, ALWAYS, {"sat": [["10:00", "14:00"]], "wed": [["22:00", "24:00"]],
                                                        "thu": [["00:00", "02:00"]]}])
ZONES = st.sampled_from(["Europe/Moscow", "Europe/Berlin", "Asia/Vladivostok", "America/New_York"])
STARTS = st.datetimes(min_value=dt.datetime(2025, 1, 1), max_value=dt.datetime(2028, 12, 31),
                      timezones=st.just(dt.UTC))


@settings(max_examples=300, deadline=None)
@given(hours=HOURS, zone=ZONES, start=STARTS, minutes=st.integers(0, 60 * 24 * 40),
       country=st.sampled_from([None, "RU", "DE"]))
def test_properties(hours, zone, start, minutes, country):
    c = cal(hours=hours, zone=zone, holidays=country)
    due = c.add(start, minutes)
    assert due >= start.replace(microsecond=0)
    assert c.between(start, due) == minutes
    # a due time is never outside working time: inside an interval or at its very end
    assert c.is_open(due) if minutes == 0 else c.is_open(due - dt.timedelta(seconds=1))
    # monotonic: more minutes never land earlier; a later start never lands earlier
    assert c.add(start, minutes + 1) > due
    assert c.add(start + dt.timedelta(minutes=37), minutes) >= due
