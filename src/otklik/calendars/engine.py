"""Business time: a calendar's working intervals, and the two functions every clock in Otklik counts with.

    add(start, minutes)  -> the moment `minutes` working minutes after `start` (UTC)
    between(start, end)  -> working minutes from `start` to `end`

Definitions (docs/service-levels.md says the same for users):

- A calendar has an IANA time zone, weekly hours (several intervals a day, "24:00" as the end of a day) and
  which days are off: a country's public holidays with that year's transfers (the `holidays` package: for RU
  the production calendar, e.g. 9 January and 31 December 2026 off, 8 March 2026 moved to 9 March, Saturday
  20 February 2027 a working day), plus the workspace's own extra days off and extra working days.
- A day that is a working day although its weekday has no hours (a working Saturday) gets the hours of the
  first weekday that has them (Monday, as a rule): the day it stands in for.
- Time is counted to the second on a timeline of working intervals in UTC, expanded per local year and cached:
  `add` and `between` are a binary search and some arithmetic. `between` is the working seconds in
  [start, end] divided by 60, rounded down; `add(start, 0)` is `start` when it is working time, else the next
  opening; `add(start, m)` for m > 0 is the earliest moment with exactly m working minutes since `start`, so
  `between(s, add(s, m)) == m` and a due time is never outside working time (it may be the very end of an
  interval, e.g. 18:00).
- DST: each local interval is converted to UTC on its own date with the zone's rules (zoneinfo), so a day
  09:00–18:00 is 9 hours in summer and winter; a 24-hour day on a switch is 23 or 25 hours long. A local
  time that does not exist (the spring gap) is read with the offset before the switch (PEP 495, fold=0).
"""

from __future__ import annotations

import bisect
import datetime as dt
import functools
import itertools
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAY_MINUTES = 24 * 60
# Трудовой кодекс РФ, ст. 95 ч. 1: «Продолжительность рабочего дня или смены, непосредственно предшествующих
# нерабочему праздничному дню, уменьшается на один час» — the per-calendar option "shortened pre-holiday days".
PREHOLIDAY_SHORTENING_MINUTES = 60
FIRST_YEAR, LAST_YEAR = 1971, 2199  # the range a calendar is expanded over (the `holidays` data covers it)
MAX_YEARS_AHEAD = 10  # `add` looks this far for enough working time, then says the calendar has too little

Interval = tuple[int, int]  # minutes from local midnight, 0 <= start < end <= 1440


class CalendarRangeError(ValueError):
    """A moment outside the years a calendar can count, or a calendar with (almost) no working time."""


@dataclass(frozen=True)
class CalendarSpec:
    time_zone: str
    hours: tuple[tuple[Interval, ...], ...]  # 7 entries, Monday first
    holidays: str | None = None  # a country code of the `holidays` package, e.g. "RU"
    days_off: frozenset[dt.date] = frozenset()
    working_days: frozenset[dt.date] = frozenset()
    shortened_preholiday: bool = False

    @classmethod
    def from_mapping(cls, time_zone: str, hours: Mapping[str, Sequence[Sequence[str]]], holidays: str | None = None,
                     days_off: Iterable[str | dt.date] = (), working_days: Iterable[str | dt.date] = (),
                     shortened_preholiday: bool = False) -> CalendarSpec:
        """From the stored/API shape: hours {"mon": [["09:00", "18:00"]], ...}, dates as ISO strings.
        Assumes the input was validated (`parse_hours`)."""
        return cls(time_zone=time_zone, hours=parse_hours(hours), holidays=holidays,
                   days_off=frozenset(_date(d) for d in days_off),
                   working_days=frozenset(_date(d) for d in working_days),
                   shortened_preholiday=shortened_preholiday)


def _date(value: str | dt.date) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


def parse_time(value: str, *, end: bool = False) -> int:
    """'HH:MM' -> minutes from midnight; '24:00' only as an end. ValueError with a readable reason."""
    if not isinstance(value, str) or len(value) != 5 or value[2] != ":" or not (value[:2] + value[3:]).isdigit():
        raise ValueError(f"{value!r} is not a time HH:MM")
    h, m = int(value[:2]), int(value[3:])
    if m > 59 or h > 24 or (h == 24 and (m or not end)):
        raise ValueError(f"{value!r} is not a time of day (00:00–23:59{', or 24:00 as an end' if end else ''})")
    return h * 60 + m


def parse_hours(hours: Mapping[str, Sequence[Sequence[str]]]) -> tuple[tuple[Interval, ...], ...]:
    """Validate weekly hours; ValueError("<day>: reason") on a bad day key, time, order or overlap."""
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise ValueError(f"{sorted(unknown)[0]}: not a day; use {', '.join(WEEKDAYS)}")
    week: list[tuple[Interval, ...]] = []
    for day in WEEKDAYS:
        raw = hours.get(day) or []
        if not isinstance(raw, list | tuple):
            raise ValueError(f"{day}: a list of [start, end] pairs")
        intervals: list[Interval] = []
        for pair in raw:
            if not isinstance(pair, list | tuple) or len(pair) != 2:
                raise ValueError(f"{day}: each interval is a pair [\"HH:MM\", \"HH:MM\"]")
            try:
                start, end = parse_time(pair[0]), parse_time(pair[1], end=True)
            except ValueError as exc:
                raise ValueError(f"{day}: {exc}") from None
            if end <= start:
                raise ValueError(f"{day}: {pair[0]}–{pair[1]} ends before it starts")
            intervals.append((start, end))
        intervals.sort()
        for (_, a_end), (b_start, _) in itertools.pairwise(intervals):
            if b_start < a_end:
                raise ValueError(f"{day}: intervals overlap")
        week.append(tuple(intervals))
    return tuple(week)


def format_minutes(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@functools.lru_cache(maxsize=256)
def _country(code: str, year: int) -> tuple[frozenset[dt.date], frozenset[dt.date], frozenset[dt.date]]:
    """(days off, weekend working days, public holidays proper) of one country and year.

    Days off include transfers ("Day off (substituted …)", "(observed)"); holidays proper are the holidays
    themselves, without transfers: the ones ст. 95 ТК РФ shortens the day before."""
    import holidays  # imported on first use: ~50 ms, and only calendars with a country need it

    table = holidays.country_holidays(code, years=year, language="en_US")
    proper = holidays.country_holidays(code, years=year, language="en_US", observed=False)
    off = frozenset(table)
    real = frozenset(d for d, name in proper.items() if "substituted" not in name.lower())
    return off, frozenset(getattr(table, "weekend_workdays", ()) or ()), real


class DayKind:
    WORKING = "working"
    WEEKEND = "weekend"
    HOLIDAY = "holiday"
    DAY_OFF = "day_off"  # the workspace's own
    EXTRA_WORKING = "extra_working"  # the workspace's own, or a country's working weekend day
    SHORTENED = "shortened"


@dataclass(frozen=True)
class _Timeline:
    """Working intervals of local years lo..hi as UTC epoch seconds, with running totals: immutable, so a
    request holding one never sees it change while another thread extends the calendar."""

    lo_year: int
    hi_year: int
    lo_ts: int
    hi_ts: int
    starts: list[int]
    ends: list[int]
    cum_before: list[int]  # working seconds before interval i, counted from the start of lo_year
    cum_end: list[int]

    def covers(self, ts: int) -> bool:
        return self.lo_ts <= ts < self.hi_ts

    def worked(self, ts: int) -> int:
        """Working seconds from the start of lo_year to `ts` (inside the range)."""
        i = bisect.bisect_right(self.starts, ts) - 1
        if i < 0:
            return 0
        return self.cum_before[i] + min(ts, self.ends[i]) - self.starts[i]


class BusinessCalendar:
    """A calendar expanded into UTC working intervals, year by year on demand. Thread-safe; cheap to query."""

    def __init__(self, spec: CalendarSpec):
        self.spec = spec
        self.zone = ZoneInfo(spec.time_zone)
        self._standin = next((h for h in spec.hours if h), ())
        self._lock = threading.Lock()
        self._years: dict[int, list[tuple[int, int]]] = {}
        self._tl: _Timeline | None = None

    # -- what a day is ------------------------------------------------------------------------------------------

    def day(self, date: dt.date) -> tuple[str, tuple[Interval, ...]]:
        """(kind, local intervals) of one date."""
        spec = self.spec
        weekly = spec.hours[date.weekday()]
        if date in spec.working_days:
            return DayKind.EXTRA_WORKING, weekly or self._standin
        if date in spec.days_off:
            return DayKind.DAY_OFF, ()
        if spec.holidays:
            off, weekend_work, _ = _country(spec.holidays, date.year)
            if date in off:
                return DayKind.HOLIDAY, ()
            if date in weekend_work:
                return DayKind.EXTRA_WORKING, weekly or self._standin
        if not weekly:
            return DayKind.WEEKEND, ()
        if spec.shortened_preholiday and spec.holidays:
            tomorrow = date + dt.timedelta(days=1)
            if tomorrow in _country(spec.holidays, tomorrow.year)[2] and not self.day(tomorrow)[1]:
                return DayKind.SHORTENED, _shorten(weekly)
        return DayKind.WORKING, weekly

    # -- expansion ----------------------------------------------------------------------------------------------

    def _epoch(self, date: dt.date, minute: int) -> int:
        if minute >= DAY_MINUTES:
            date, minute = date + dt.timedelta(days=1), minute - DAY_MINUTES
        return int(dt.datetime(date.year, date.month, date.day, minute // 60, minute % 60,
                               tzinfo=self.zone).timestamp())

    def _year_intervals(self, year: int) -> list[tuple[int, int]]:
        cached = self._years.get(year)
        if cached is not None:
            return cached
        out: list[tuple[int, int]] = []
        date = dt.date(year, 1, 1)
        one = dt.timedelta(days=1)
        while date.year == year:
            for start, end in self.day(date)[1]:
                s, e = self._epoch(date, start), self._epoch(date, end)
                if e <= s:
                    continue  # an interval swallowed by a DST gap
                if out and out[-1][1] >= s:  # touching intervals (23:00–24:00 + 00:00–01:00) become one
                    out[-1] = (out[-1][0], max(out[-1][1], e))
                else:
                    out.append((s, e))
            date += one
        self._years[year] = out
        return out

    def _build(self, lo: int, hi: int) -> _Timeline:
        lo, hi = max(lo, FIRST_YEAR), min(hi, LAST_YEAR)
        starts: list[int] = []
        ends: list[int] = []
        for year in range(lo, hi + 1):
            for s, e in self._year_intervals(year):
                if ends and ends[-1] >= s:  # 31 Dec 24:00 == 1 Jan 00:00
                    ends[-1] = max(ends[-1], e)
                else:
                    starts.append(s)
                    ends.append(e)
        cum_before, cum_end, total = [], [], 0
        for s, e in zip(starts, ends, strict=True):
            cum_before.append(total)
            total += e - s
            cum_end.append(total)
        return _Timeline(lo, hi, int(dt.datetime(lo, 1, 1, tzinfo=self.zone).timestamp()),
                         int(dt.datetime(hi + 1, 1, 1, tzinfo=self.zone).timestamp()),
                         starts, ends, cum_before, cum_end)

    def _timeline(self, *moments: int, more_after: bool = False) -> _Timeline:
        """A timeline that covers every moment given (and one more year after the last, with `more_after`)."""
        tl = self._tl
        if tl is not None and not more_after and all(tl.covers(ts) for ts in moments):
            return tl
        years = [dt.datetime.fromtimestamp(ts, self.zone).year for ts in moments]
        if any(not FIRST_YEAR <= y <= LAST_YEAR for y in years):
            raise CalendarRangeError(f"a calendar counts the years {FIRST_YEAR}–{LAST_YEAR}")
        with self._lock:
            tl = self._tl
            lo, hi = min(years) - 1, max(years) + 1
            if tl is not None:
                lo, hi = min(lo, tl.lo_year), max(hi, tl.hi_year + (1 if more_after else 0))
                if (lo, hi) == (tl.lo_year, tl.hi_year):
                    return tl
            tl = self._tl = self._build(lo, hi)
            return tl

    # -- the two functions --------------------------------------------------------------------------------------

    def add(self, start: dt.datetime, minutes: int) -> dt.datetime:
        if start.tzinfo is None:
            raise ValueError("start needs a UTC offset")
        if minutes < 0:
            raise ValueError("minutes must not be negative")
        ts = int(start.timestamp())
        tl = self._tl
        if tl is None or not tl.lo_ts <= ts < tl.hi_ts:  # the common case is one comparison, no call
            tl = self._timeline(ts)
        for _ in range(MAX_YEARS_AHEAD + 1):
            if minutes == 0:
                i = bisect.bisect_right(tl.starts, ts) - 1
                if i >= 0 and ts < tl.ends[i]:
                    return _utc(ts)
                if i + 1 < len(tl.starts):
                    return _utc(tl.starts[i + 1])
            else:
                target = tl.worked(ts) + minutes * 60
                if tl.cum_end and target <= tl.cum_end[-1]:
                    i = bisect.bisect_left(tl.cum_end, target)
                    return _utc(tl.starts[i] + target - tl.cum_before[i])
            if tl.hi_year >= LAST_YEAR:
                break
            tl = self._timeline(ts, more_after=True)
        raise CalendarRangeError(f"{minutes} working minutes do not fit in the years after start on this "
                                 "calendar" if minutes else "no working time in the years after start on this "
                                 "calendar")

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("start and end need a UTC offset")
        s, e = int(start.timestamp()), int(end.timestamp())
        if e < s:
            raise ValueError("end is before start")
        tl = self._tl
        if tl is None or not (tl.lo_ts <= s and e < tl.hi_ts):
            tl = self._timeline(s, e)
        return (tl.worked(e) - tl.worked(s)) // 60

    def is_open(self, at: dt.datetime) -> bool:
        ts = int(at.timestamp())
        tl = self._timeline(ts)
        i = bisect.bisect_right(tl.starts, ts) - 1
        return i >= 0 and ts < tl.ends[i]

    def next_open(self, at: dt.datetime) -> dt.datetime | None:
        """None when `at` is working time, else the next opening (UTC)."""
        return None if self.is_open(at) else self.add(at, 0)

    def intervals(self, start: int, end: int) -> list[tuple[int, int]]:
        """The working intervals overlapping [start, end) as UTC epoch seconds, clipped to it (bookings' free
        slots are cut from these). Touching intervals are one, as everywhere on the timeline."""
        tl = self._tl
        if tl is None or not (tl.lo_ts <= start and end < tl.hi_ts):
            tl = self._timeline(start, end)
        i = max(bisect.bisect_right(tl.starts, start) - 1, 0)
        out: list[tuple[int, int]] = []
        while i < len(tl.starts) and tl.starts[i] < end:
            s, e = max(tl.starts[i], start), min(tl.ends[i], end)
            if s < e:
                out.append((s, e))
            i += 1
        return out


def _shorten(intervals: tuple[Interval, ...]) -> tuple[Interval, ...]:
    cut = PREHOLIDAY_SHORTENING_MINUTES
    out = list(intervals)
    while cut and out:
        s, e = out[-1]
        if e - s > cut:
            out[-1] = (s, e - cut)
            cut = 0
        else:
            cut -= e - s
            out.pop()
    return tuple(out)


def _utc(ts: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, dt.UTC)


@functools.lru_cache(maxsize=512)
def compiled(spec: CalendarSpec) -> BusinessCalendar:
    """One expanded calendar per distinct spec, shared by every request and job in the process."""
    return BusinessCalendar(spec)
