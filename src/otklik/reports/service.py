"""The summary figures of docs/metrics.md for one workspace and a range of its calendar days.

Every definition lives in docs/metrics.md; this module is its executable form. One indexed scan of the range's
conversations (plus the seven days after it, for repeat contacts) and a few indexed look-ups by conversation id;
the statistics are computed here, the same way on SQLite and PostgreSQL. Never counts another workspace's rows.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.functions import FunctionElement

from otklik.accounts.models import AuditEntry, Workspace
from otklik.assistant.models import AssistantDecision
from otklik.calendars.service import default_calendar
from otklik.conversations.models import Conversation, Status
from otklik.conversations.sla import SlaTimer
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import utcnow
from otklik.platform.errors import field_error

REPEAT_WINDOW = dt.timedelta(days=7)  # seed 002: a repeat contact is the same customer again within a week
SILENCE = dt.timedelta(minutes=30)  # as ASSISTANT_SILENCE_SECONDS: the customer went quiet after the answer
MAX_RANGE_DAYS = 366
FIRST_DAY, LAST_DAY = dt.date(2000, 1, 1), dt.date(2100, 12, 31)
MAX_ID = 2**63 - 1
MAX_CHANNEL = 16
SOLVED = (Status.solved.value, Status.closed.value)
SLA_KINDS = ("first_response", "next_response", "resolution")


@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    channel: str | None = None
    team_id: int | None = None
    agent_id: int | None = None


def parse_day(value: str | None, field: str) -> dt.date:
    if not value:
        raise field_error(field, "required, as YYYY-MM-DD")
    try:
        day = dt.date.fromisoformat(value) if len(value) == 10 else _bad(field)
    except ValueError:
        raise field_error(field, "not a date: use YYYY-MM-DD") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise field_error(field, f"a day from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return day


def _bad(field: str) -> dt.date:
    raise field_error(field, "not a date: use YYYY-MM-DD")


def make_filters(start: str | None, end: str | None, *, channel: str | None = None, team_id: int | None = None,
                 agent_id: int | None = None) -> Filters:
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first > last:
        raise field_error("from", "after 'to'")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise field_error("to", f"at most {MAX_RANGE_DAYS} days after 'from'")
    for name, value in (("team_id", team_id), ("agent_id", agent_id)):
        if value is not None and not 1 <= value <= MAX_ID:
            raise field_error(name, "not an id")
    if channel is not None and len(channel) > MAX_CHANNEL:
        raise field_error("channel", "not a channel")
    return Filters(first, last, channel or None, team_id, agent_id)


def workspace_zone(session: Session, workspace_id: int) -> ZoneInfo:
    """The workspace's calendar days: its default calendar's time zone, else the workspace's own."""
    calendar = default_calendar(session, workspace_id)
    name = calendar.time_zone if calendar is not None else session.scalar(
        select(Workspace.timezone).where(Workspace.id == workspace_id))
    try:
        return ZoneInfo(name or "Europe/Moscow")
    except (KeyError, ValueError):
        return ZoneInfo("Europe/Moscow")


def day_bounds(zone: ZoneInfo, start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[00:00 of `start`, 00:00 of the day after `end`) in the zone, as UTC instants."""
    lo = dt.datetime.combine(start, dt.time(), zone).astimezone(dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return lo, hi


def median(values: Sequence[float]) -> float | None:
    """The middle value; the mean of the two middle ones for an even count; None for none."""
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return float(ordered[mid]) if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest rank: the smallest value with at least `share` of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def rate(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


class epoch(FunctionElement[float]):
    """Seconds since 1970 of a UTC timestamp column, as a float computed by the database: reading 100,000 rows
    of four timestamps as Python datetimes cost more than the whole query."""

    type = Float()
    inherit_cache = True


@compiles(epoch)
def _epoch_default(element: epoch, compiler: Any, **kw: Any) -> str:
    return f"EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)})"


@compiles(epoch, "sqlite")
def _epoch_sqlite(element: epoch, compiler: Any, **kw: Any) -> str:  # stored as naive UTC text
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


def in_range(workspace_id: int, lo: dt.datetime, hi: dt.datetime, filters: Filters | None = None,
             c: Any = Conversation) -> list[Any]:
    """The WHERE of the set: this workspace, started in [lo, hi), not merged away, not a mystery-shopper run (a
    supervisor's test, docs/qa.md), and the filters."""
    where = [c.workspace_id == workspace_id, c.created_at >= lo, c.created_at < hi, c.merged_into_id.is_(None),
             c.mystery.is_(False)]
    if filters is not None:
        if filters.channel is not None:
            where.append(c.channel == filters.channel)
        if filters.team_id is not None:
            where.append(c.team_id == filters.team_id)
        if filters.agent_id is not None:
            where.append(c.assignee_id == filters.agent_id)
    return where


ID_CHUNK = 500


def _id_filters(column: Any, ids: Sequence[int]) -> list[Any]:
    """WHERE clauses that find the rows of the sorted `ids`: one id range when the ids are dense (they grow with
    time, so a range of days is mostly one run of ids), else chunks of `IN (…)` (an import's old conversations
    scattered among new ids would make the range cover the whole table)."""
    if ids[-1] - ids[0] < 4 * len(ids):
        return [and_(column >= ids[0], column <= ids[-1])]
    return [column.in_(ids[i:i + ID_CHUNK]) for i in range(0, len(ids), ID_CHUNK)]


def _rows(db: Any, statements: Sequence[Any]) -> Iterator[Any]:
    for statement in statements:
        yield from db.execute(statement)


@dataclass
class Partial:
    """The figures of a set of conversations before they are divided: counts, score counts and the durations in
    milliseconds. Two disjoint sets' partials add up to the partial of their union, so the summary of a range is
    the sum of its days' rolled-up partials (`reports.rollup`) plus those computed live; medians and p90 come
    from the merged durations, exactly as from one scan."""

    conversations: int = 0
    transfers: int = 0
    first: list[int] = field(default_factory=list)  # ms from start to the first person's reply
    resolution: list[int] = field(default_factory=list)  # ms from start to solved, solved or closed ones
    solved: int = 0
    fcr: int = 0  # solved, never transferred, never re-opened
    reopened: int = 0
    sla: int = 0
    sla_breached: int = 0
    csat: dict[int, int] = field(default_factory=dict)
    ces: dict[int, int] = field(default_factory=dict)
    nps: dict[int, int] = field(default_factory=dict)
    repeated: int = 0
    bot: int = 0
    bot_kept: int = 0
    handoffs: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, other: Partial) -> None:
        for name in ("conversations", "transfers", "solved", "fcr", "reopened", "sla", "sla_breached", "repeated",
                     "bot", "bot_kept", "handoffs"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.first.extend(other.first)
        self.resolution.extend(other.resolution)
        for mine, theirs in ((self.csat, other.csat), (self.ces, other.ces), (self.nps, other.nps)):
            for score, n in theirs.items():
                mine[score] = mine.get(score, 0) + n
        for reason, n in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + n

    def to_json(self) -> str:
        data = {k: v for k, v in self.__dict__.items() if v}
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> Partial:
        data = json.loads(raw)
        for kind in ("csat", "ces", "nps"):
            if kind in data:
                data[kind] = {int(k): v for k, v in data[kind].items()}
        return cls(**data)


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _fetch(db: Any, workspace_id: int, lo: dt.datetime, hi: dt.datetime, filters: Filters | None) -> list[Any]:
    c = Conversation
    return list(db.execute(select(
        c.id, c.customer_id, epoch(c.created_at), epoch(c.first_response_at), epoch(c.solved_at), c.status,
        c.transfer_count, epoch(c.assistant_answered_at), epoch(c.last_customer_message_at), c.channel, c.team_id,
        c.assignee_id).where(*in_range(workspace_id, lo, hi, filters))).all())


def collect(session: Session, workspace_id: int, lo: dt.datetime, hi: dt.datetime, filters: Filters | None,
            now: dt.datetime, key: Callable[[Any], Hashable] = lambda row: None,
            ) -> tuple[dict[Hashable, Partial], dict[Hashable, float]]:
    """The partials of the conversations started in [lo, hi) that pass the filters, one per `key(row)` (the
    rollup groups by day × channel × team × agent; the summary has one key), and per key the latest instant a
    time-dependent figure (containment waiting for its 30 quiet minutes) changes, as epoch seconds.

    One scan of the range (Core rows, times as epoch floats computed by the database: 100,000 rows of Python
    datetimes cost more than the query), then the SLA, survey, assistant and audit rows of that id range through
    their conversation-id indexes, matched to the set in Python; the same work on SQLite and PostgreSQL."""
    db = session.connection()
    rows = _fetch(db, workspace_id, lo, hi, filters)
    ids = sorted(r[0] for r in rows)
    members = set(ids)
    solved_ids: set[int] = set()
    for row in rows:
        if row[5] in SOLVED and row[4] is not None:
            solved_ids.add(row[0])
    reopened: set[int] = set()
    sla: dict[int, bool] = {}
    scores: dict[int, list[tuple[str, int]]] = defaultdict(list)
    answered: set[int] = set()
    handed: dict[int, set[str]] = defaultdict(set)
    if ids:
        if solved_ids:
            for entity_id, before, after in _rows(db, [
                    select(AuditEntry.entity_id, AuditEntry.before, AuditEntry.after).where(
                        AuditEntry.workspace_id == workspace_id, AuditEntry.entity_type == "conversation",
                        clause, AuditEntry.action == "status_changed")
                    for clause in _id_filters(AuditEntry.entity_id, ids)]):
                # solved → open / new / pending; solved → closed is no re-open
                if (entity_id in solved_ids and (before or {}).get("status") == Status.solved.value
                        and (after or {}).get("status") not in SOLVED):
                    reopened.add(entity_id)
        for cid, breached in _rows(db, [
                select(SlaTimer.conversation_id, SlaTimer.breached_at.is_not(None)).where(
                    clause, SlaTimer.kind.in_(SLA_KINDS), SlaTimer.workspace_id == workspace_id)
                for clause in _id_filters(SlaTimer.conversation_id, ids)]):
            if cid in members:
                sla[cid] = sla.get(cid, False) or bool(breached)
        for cid, kind, score in _rows(db, [
                select(SurveyAnswer.conversation_id, SurveyAnswer.kind, SurveyAnswer.score).where(
                    SurveyAnswer.workspace_id == workspace_id, clause, SurveyAnswer.score.is_not(None))
                for clause in _id_filters(SurveyAnswer.conversation_id, ids)]):
            if cid in members and kind in ("csat", "ces", "nps") and score is not None:
                scores[cid].append((kind, score))
        d = AssistantDecision
        for cid, action, reason, failed in _rows(db, [
                select(d.conversation_id, d.action, d.reason, d.failed).where(
                    clause, d.workspace_id == workspace_id, d.action.in_(("answer", "handoff")))
                for clause in _id_filters(d.conversation_id, ids)]):
            if cid not in members:
                continue
            if action == "handoff":
                handed[cid].add(reason)
            elif not failed:
                answered.add(cid)
    repeated = repeated_ids(session, workspace_id, filters, rows, lo, hi)
    quiet = now.timestamp() - SILENCE.total_seconds()
    pending: dict[Hashable, float] = {}
    out: dict[Hashable, Partial] = {}
    for row in rows:
        cid, _, created, first_at, solved_at, status, transfer_count, assistant_at, customer_at = row[:9]
        p = out.get(k := key(row))
        if p is None:
            p = out[k] = Partial()
        p.conversations += 1
        p.transfers += transfer_count or 0
        if first_at is not None:
            p.first.append(_ms(first_at - created))
        if cid in solved_ids:
            p.resolution.append(_ms(solved_at - created))
            p.solved += 1
            if cid in reopened:
                p.reopened += 1
            elif not transfer_count:
                p.fcr += 1
        if cid in sla:
            p.sla += 1
            p.sla_breached += sla[cid]
        for kind, score in scores.get(cid, ()):
            counts = getattr(p, kind)
            counts[score] = counts.get(score, 0) + 1
        p.repeated += cid in repeated
        if cid in handed:
            p.handoffs += 1
            for reason in handed[cid]:
                p.reasons[reason] = p.reasons.get(reason, 0) + 1
        if cid in answered:
            p.bot += 1
            if cid not in handed and first_at is None:
                if status in SOLVED:
                    p.bot_kept += 1
                elif assistant_at is not None and assistant_at >= customer_at:
                    if assistant_at <= quiet:
                        p.bot_kept += 1
                    else:  # contained in 30 minutes unless the customer writes (which marks it again)
                        pending[k] = max(pending.get(k, 0.0), assistant_at + SILENCE.total_seconds())
    return out, pending


def summary(session: Session, workspace_id: int, filters: Filters, *, now: dt.datetime | None = None,
            rollup: bool = True) -> dict[str, Any]:
    """The figures of docs/metrics.md for the conversations started in the range that pass the filters: the
    range's rolled-up days read from `report_rollup` (`reports.rollup`), the other days computed live (`collect`);
    `rollup=False` computes every day live (the tests compare both)."""
    now = now or utcnow()
    zone = workspace_zone(session, workspace_id)
    total = Partial()
    runs: list[tuple[dt.date, dt.date]] = [(filters.start, filters.end)]
    if rollup:
        from otklik.reports import rollup as rolled

        runs = rolled.add_rolled(session, workspace_id, zone, filters, now, total)
    for start, end in runs:
        lo, hi = day_bounds(zone, start, end)
        for part in collect(session, workspace_id, lo, hi, filters, now)[0].values():
            total.add(part)
    return finish(total, filters, zone)


def finish(p: Partial, filters: Filters, zone: ZoneInfo) -> dict[str, Any]:
    """The summary's JSON from the partial of the whole set."""
    first, resolution = sorted(p.first), sorted(p.resolution)
    n_csat, n_ces, n_nps = sum(p.csat.values()), sum(p.ces.values()), sum(p.nps.values())
    promoters = sum(n for score, n in p.nps.items() if score >= 9)
    detractors = sum(n for score, n in p.nps.items() if score <= 6)
    return {
        "from": filters.start.isoformat(), "to": filters.end.isoformat(), "time_zone": str(zone.key),
        "channel": filters.channel, "team_id": filters.team_id, "agent_id": filters.agent_id,
        "conversations": p.conversations,
        "first_responses": len(first),
        "first_response_median_s": _from_ms(median(first)),
        "first_response_p90_s": _from_ms(percentile(first, 0.9)),
        "solved": p.solved,
        "resolution_median_s": _from_ms(median(resolution)),
        "resolution_p90_s": _from_ms(percentile(resolution, 0.9)),
        "sla_met_rate": rate(p.sla - p.sla_breached, p.sla),
        "sla_conversations": p.sla,
        "csat": rate(sum(n for score, n in p.csat.items() if score >= 4), n_csat),
        "csat_responses": n_csat,
        "csat_low": sum(n for score, n in p.csat.items() if score <= 2),
        "nps": None if not n_nps else round(100 * (promoters - detractors) / n_nps, 1),
        "nps_responses": n_nps,
        "ces_avg": None if not n_ces else round(sum(score * n for score, n in p.ces.items()) / n_ces, 2),
        "ces_responses": n_ces,
        "fcr_rate": rate(p.fcr, p.solved),
        "reopened": p.reopened,
        "repeat_contact_rate": rate(p.repeated, p.conversations),
        "bot_conversations": p.bot,
        "bot_containment_rate": rate(p.bot_kept, p.bot),
        "handoffs": p.handoffs,
        "handoff_reasons": dict(sorted(p.reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "transfers_per_conversation": None if not p.conversations else round(p.transfers / p.conversations, 3),
    }


def _from_ms(value: float | None) -> int | None:
    return None if value is None else round(value / 1000)


def repeated_ids(session: Session, workspace_id: int, filters: Filters | None, rows: Sequence[Any],
                 lo: dt.datetime, hi: dt.datetime) -> set[int]:
    """Which of the set have the same customer start another conversation within 7 days after (any channel,
    team or agent, even past the range's end; merged ones are no repeats)."""
    if not rows:
        return set()
    starts: dict[int, list[float]] = defaultdict(list)
    unfiltered = filters is None or (filters.channel is None and filters.team_id is None
                                     and filters.agent_id is None)
    if unfiltered:  # the set is the whole range: only the 7 days after it are left to read
        for row in rows:
            starts[row[1]].append(row[2])
    window_lo = hi if unfiltered else lo
    for customer_id, created in session.connection().execute(
            select(Conversation.customer_id, epoch(Conversation.created_at)).where(
                *in_range(workspace_id, window_lo, hi + REPEAT_WINDOW))):
        starts[customer_id].append(created)
    for values in starts.values():
        values.sort()
    limit = REPEAT_WINDOW.total_seconds()
    repeated: set[int] = set()
    for row in rows:
        values = starts[row[1]]
        if len(values) < 2:
            continue
        after = bisect_right(values, row[2])  # the first one strictly later
        if after < len(values) and values[after] <= row[2] + limit:
            repeated.add(row[0])
    return repeated


def daily(session: Session, workspace_id: int, filters: Filters, *, now: dt.datetime | None = None,
          rollup: bool = True) -> dict[str, Any]:
    """Per calendar day of the range: conversations started by channel, and the first-response median (the
    rolled-up days from the rollup, the others live, as the summary)."""
    zone = workspace_zone(session, workspace_id)
    days = [filters.start + dt.timedelta(days=i) for i in range((filters.end - filters.start).days + 1)]
    volume: dict[dt.date, dict[str, int]] = {d: defaultdict(int) for d in days}
    waits: dict[dt.date, list[int]] = {d: [] for d in days}
    runs: list[tuple[dt.date, dt.date]] = [(filters.start, filters.end)]
    if rollup:
        from otklik.reports import rollup as rolled

        usable = rolled.usable_days(session, workspace_id, zone, filters, now or utcnow())
        for day, channel, part in rolled.rolled_rows(session, workspace_id, filters, usable):
            volume[day][channel] += part.conversations
            waits[day].extend(part.first)
        runs = rolled.live_runs(filters, usable)
    # each day's first instant (daylight-saving days are 23 or 25 hours long: no fixed 86,400 s)
    edges = [day_bounds(zone, d, d)[0].timestamp() for d in days]
    c = Conversation
    for start, end in runs:
        lo, hi = day_bounds(zone, start, end)
        for channel, created, first in session.connection().execute(
                select(c.channel, epoch(c.created_at), epoch(c.first_response_at) - epoch(c.created_at))
                .where(*in_range(workspace_id, lo, hi, filters))):
            i = bisect_right(edges, created) - 1
            if 0 <= i < len(days):
                volume[days[i]][channel] += 1
                if first is not None:
                    waits[days[i]].append(_ms(first))
    channels = sorted({ch for v in volume.values() for ch in v})
    return {"from": filters.start.isoformat(), "to": filters.end.isoformat(), "channels": channels,
            "days": [{"day": d.isoformat(), "conversations": sum(volume[d].values()),
                      "by_channel": {ch: volume[d].get(ch, 0) for ch in channels},
                      "first_response_median_s": _from_ms(median(waits[d]))} for d in days]}
