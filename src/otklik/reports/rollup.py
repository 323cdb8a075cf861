"""The daily rollup: the summary's partial figures per workspace × day × channel × team × agent, kept current.

Why: a year's summary read 100,000 conversations and their side rows on every request (1.4 s). The rollup holds
each day's `Partial` (exact: counts, score counts and the durations to the millisecond), so a year is ~365 × the
day's groups rows, merged in Python.

How it stays current (docs/metrics.md, «The daily rollup»):
- every flush that changes a fact a figure reads — a conversation's times, status, channel, team, agent,
  customer or merge; an SLA timer; a survey answer; an assistant decision; a status change in the audit log —
  appends a mark (`report_rollup_marks`, insert-only: no row shared between concurrent writers) in the same
  transaction, so a committed change is never missed and a rolled-back one leaves nothing;
- after commit a job (`refresh`) folds the workspace's marks: it recomputes the marked days — the conversation's
  own and its customer's week before (a new conversation makes an earlier one a repeat contact) — and replaces
  their rows; the worker's sweep does the same for anything a lost job left;
- a read uses a day's rows only when the day is rolled up in the workspace's current time zone, carries no mark
  and no time-dependent figure has moved since (`stale_after`: the assistant's containment waits 30 quiet
  minutes); every other day of the range is computed live from the facts, so the figures are the same as
  without the rollup at every moment;
- `otklik reports-rollup` (re)builds a range of days (history, or after a time-zone change); the sweep also
  fills a few missing past days per run.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import math
import time
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, event, func, insert, inspect, select, text
from sqlalchemy.orm import Session

from otklik.accounts.models import AuditEntry
from otklik.assistant.models import AssistantDecision
from otklik.conversations.models import Conversation
from otklik.conversations.sla import SlaTimer
from otklik.customers import service as customers_service
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import run_transaction, session_scope, utcnow
from otklik.platform.events import after_commit
from otklik.reports import service
from otklik.reports.models import RollupDay, RollupMark, RollupRow
from otklik.reports.service import Filters, Partial

log = logging.getLogger(__name__)
MARK_BATCH = 5000  # marks folded per transaction
FILL_DAYS = 62  # missing past days the sweep computes per workspace and run
LOCK_NAMESPACE = 15  # pg_advisory_xact_lock(15, workspace): one refresher per workspace at a time

# the conversation columns a figure reads: a change to any other (a subject, a tag, last_message_at) marks nothing
TRACKED = ("created_at", "first_response_at", "solved_at", "status", "transfer_count", "assistant_answered_at",
           "channel", "team_id", "assignee_id", "merged_into_id", "customer_id")
WATCHED: dict[type, tuple[str, ...]] = {SlaTimer: ("kind", "breached_at"), SurveyAnswer: ("kind", "score"),
                                        AssistantDecision: ("action", "reason", "failed")}


# -- marks: written in the transaction that changes the facts ---------------------------------------------------

def _changed(obj: Any, names: Iterable[str]) -> bool:
    attrs = inspect(obj).attrs
    return any(attrs[name].history.has_changes() for name in names)


def _marks_of(session: Session) -> list[dict[str, Any]]:
    marks: list[dict[str, Any]] = []
    for obj in (*session.new, *session.dirty, *session.deleted):
        if isinstance(obj, Conversation):
            if obj in session.dirty and not (
                    _changed(obj, TRACKED)
                    # the customer wrote after the assistant's answer: containment waits again
                    or (obj.assistant_answered_at is not None and _changed(obj, ("last_customer_message_at",)))):
                continue
            marks.append({"workspace_id": obj.workspace_id, "conversation_id": obj.id,
                          "customer_id": obj.customer_id, "created_at": obj.created_at})
        elif isinstance(obj, SlaTimer | SurveyAnswer | AssistantDecision):
            if obj in session.dirty and not _changed(obj, WATCHED[type(obj)]):
                continue
            marks.append({"workspace_id": obj.workspace_id, "conversation_id": obj.conversation_id,
                          "customer_id": None, "created_at": None})
        elif (isinstance(obj, AuditEntry) and obj in session.new and obj.entity_type == "conversation"
              and obj.action == "status_changed" and obj.entity_id is not None):
            marks.append({"workspace_id": obj.workspace_id, "conversation_id": obj.entity_id,
                          "customer_id": None, "created_at": None})
    return marks


def _after_flush(session: Session, _context: Any) -> None:
    marks = _marks_of(session)
    if not marks:
        return
    session.connection().execute(insert(RollupMark), marks)
    pending: set[int] = session.info.setdefault("rollup_workspaces", set())
    for workspace_id in {m["workspace_id"] for m in marks} - pending:
        pending.add(workspace_id)
        after_commit(session, functools.partial(_nudge, workspace_id))


event.listen(Session, "after_flush", _after_flush)


def mark_customers(session: Session, workspace_id: int, customer_ids: Sequence[int]) -> None:
    """Mark every conversation of these customers (a customer merge moves conversations by one UPDATE, which no
    flush sees)."""
    rows = session.execute(select(Conversation.id, Conversation.customer_id, Conversation.created_at).where(
        Conversation.workspace_id == workspace_id, Conversation.customer_id.in_(list(customer_ids)))).all()
    if rows:
        session.execute(insert(RollupMark), [
            {"workspace_id": workspace_id, "conversation_id": cid, "customer_id": customer, "created_at": created}
            for cid, customer, created in rows])
        after_commit(session, lambda: _nudge(workspace_id))


_last_nudge: dict[int, float] = {}
NUDGE_EVERY = 2.0  # seconds: a burst of commits enqueues one refresh; what it missed, the next one or the sweep folds


def _nudge(workspace_id: int) -> None:
    """Enqueue the workspace's refresh (idempotent: a job that finds no marks does nothing), at most one per
    NUDGE_EVERY seconds per workspace and process (every commit with a change would otherwise add a write
    transaction); marks left meanwhile are folded by the next refresh or the worker's minute sweep, and until
    then their days are computed live, so no figure is ever stale. The tests' in-process queue refreshes on
    every commit."""
    from otklik.platform.config import get_settings
    from otklik.reports import jobs

    now = time.monotonic()
    if get_settings().queue_backend != "memory" and now - _last_nudge.get(workspace_id, -1e9) < NUDGE_EVERY:
        return
    _last_nudge[workspace_id] = now
    jobs.refresh_rollup(workspace_id)


def _merge_mover(session: Session, workspace_id: int, source_id: int, target_id: int) -> int:
    mark_customers(session, workspace_id, [source_id, target_id])
    return 0


customers_service.register_merge_mover("report_rollup", _merge_mover)


# -- computing days ------------------------------------------------------------------------------------------

def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def runs_of(days: Iterable[dt.date]) -> list[tuple[dt.date, dt.date]]:
    """Sorted days as runs of consecutive days: [(first, last), …]."""
    out: list[tuple[dt.date, dt.date]] = []
    for day in sorted(set(days)):
        if out and out[-1][1] + dt.timedelta(days=1) == day:
            out[-1] = (out[-1][0], day)
        else:
            out.append((day, day))
    return out


def compute(session: Session, workspace_id: int, zone: ZoneInfo, start: dt.date, end: dt.date,
            now: dt.datetime) -> tuple[dict[tuple[dt.date, str, int | None, int | None], Partial],
                                       dict[dt.date, float]]:
    """Each day's partials of [start, end] by channel × team × agent (no filters: every conversation), and per
    day the instant its containment figure moves (epoch seconds)."""
    days = _days(start, end)
    edges = [service.day_bounds(zone, d, d)[0].timestamp() for d in days]  # 23- and 25-hour days too
    lo, hi = service.day_bounds(zone, start, end)

    def key(row: Any) -> tuple[dt.date, str, int | None, int | None]:
        return days[max(bisect_right(edges, row[2]) - 1, 0)], row[9], row[10], row[11]

    parts, pending = service.collect(session, workspace_id, lo, hi, None, now, key)
    by_day: dict[dt.date, float] = {}
    for k, until in pending.items():
        day = k[0]  # type: ignore[index]
        by_day[day] = max(by_day.get(day, 0.0), until)
    return parts, by_day  # type: ignore[return-value]


def _lock(session: Session, workspace_id: int) -> None:
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:ns, :ws)"), {"ns": LOCK_NAMESPACE, "ws": workspace_id})


def store(session: Session, workspace_id: int, zone: ZoneInfo, start: dt.date, end: dt.date,
          now: dt.datetime | None = None) -> int:
    """Recompute the days [start, end] and replace their rows (the caller holds the workspace's lock). Returns
    the number of conversations rolled up."""
    now = now or utcnow()
    parts, pending = compute(session, workspace_id, zone, start, end, now)
    session.execute(delete(RollupRow).where(RollupRow.workspace_id == workspace_id, RollupRow.day >= start,
                                            RollupRow.day <= end))
    session.execute(delete(RollupDay).where(RollupDay.workspace_id == workspace_id, RollupDay.day >= start,
                                            RollupDay.day <= end))
    if parts:
        session.execute(insert(RollupRow), [
            {"workspace_id": workspace_id, "day": day, "channel": channel, "team_id": team, "agent_id": agent,
             "conversations": p.conversations, "figures": p.to_json()}
            for (day, channel, team, agent), p in parts.items()])
    session.execute(insert(RollupDay), [
        {"workspace_id": workspace_id, "day": day, "zone": zone.key, "computed_at": now,
         # rounded up to the second: the database's epoch arithmetic is a few microseconds off
         "stale_after": (dt.datetime.fromtimestamp(math.ceil(pending[day] - 0.001), dt.UTC)
                         if day in pending else None)}
        for day in _days(start, end)])
    return sum(p.conversations for p in parts.values())


def marked_days(session: Session, workspace_id: int, zone: ZoneInfo, marks: Sequence[Any]) -> set[dt.date]:
    """The days the marked conversations start in, and those of their customers' conversations of the 7 days
    before each (whose repeat-contact flag a new conversation may change)."""
    db = session.connection()
    ids = sorted({m[0] for m in marks})
    known: dict[int, tuple[int | None, float]] = {}
    for i in range(0, len(ids), 1000):
        for cid, customer_id, created_at in db.execute(
                select(Conversation.id, Conversation.customer_id, service.epoch(Conversation.created_at)).where(
                    Conversation.workspace_id == workspace_id, Conversation.id.in_(ids[i:i + 1000]))):
            known[cid] = (customer_id, created_at)
    starts: dict[int, list[float]] = defaultdict(list)  # customer → the marked conversations' starts
    instants: list[float] = []
    for cid, mark_customer, mark_created in marks:
        customer: int | None
        when: float | None
        if cid in known:
            customer, when = known[cid]
        else:  # deleted since: the mark's own copy
            customer, when = mark_customer, (mark_created.timestamp() if mark_created is not None else None)
        if when is None:
            continue
        instants.append(when)
        if customer is not None:
            starts[customer].append(when)
    week = service.REPEAT_WINDOW.total_seconds()
    customers = sorted(starts)
    for i in range(0, len(customers), 500):
        chunk = customers[i:i + 500]
        lo = min(min(starts[c]) for c in chunk) - week
        hi = max(max(starts[c]) for c in chunk)
        for customer_id, created in db.execute(
                select(Conversation.customer_id, service.epoch(Conversation.created_at)).where(
                    Conversation.workspace_id == workspace_id, Conversation.customer_id.in_(chunk),
                    Conversation.created_at >= dt.datetime.fromtimestamp(lo, dt.UTC),
                    Conversation.created_at < dt.datetime.fromtimestamp(hi, dt.UTC))):
            if any(created < s <= created + week for s in starts[customer_id]):
                instants.append(created)
    return {dt.datetime.fromtimestamp(t, dt.UTC).astimezone(zone).date() for t in instants}


def refresh(session: Session, workspace_id: int, now: dt.datetime | None = None) -> int:
    """Fold up to MARK_BATCH of the workspace's marks: recompute the days they touch (only days already rolled up
    — the others are computed live until a rebuild or the sweep fills them) and delete exactly the marks read
    (a mark committed meanwhile stays for the next run). Returns how many marks were folded."""
    _lock(session, workspace_id)
    marks = session.execute(select(RollupMark.id, RollupMark.conversation_id, RollupMark.customer_id,
                                   RollupMark.created_at).where(RollupMark.workspace_id == workspace_id)
                            .order_by(RollupMark.id).limit(MARK_BATCH)).all()
    if not marks:
        return 0
    zone = service.workspace_zone(session, workspace_id)
    days = marked_days(session, workspace_id, zone, [m[1:] for m in marks])
    rolled = set(session.scalars(select(RollupDay.day).where(
        RollupDay.workspace_id == workspace_id, RollupDay.day.in_(sorted(days))))) if days else set()
    today = utcnow().astimezone(zone).date()
    for start, end in runs_of(d for d in days if d in rolled or d <= today):
        store(session, workspace_id, zone, start, end, now)
    ids = [m[0] for m in marks]
    for i in range(0, len(ids), 1000):
        session.execute(delete(RollupMark).where(RollupMark.id.in_(ids[i:i + 1000])))
    return len(marks)


def rebuild(workspace_id: int, start: dt.date, end: dt.date, *, chunk_days: int = 31) -> int:
    """(Re)compute every day of [start, end], a month per transaction. Returns conversations rolled up."""
    total = 0
    day = start
    while day <= end:
        last = min(day + dt.timedelta(days=chunk_days - 1), end)

        def work(session: Session, first: dt.date = day, last: dt.date = last) -> int:
            _lock(session, workspace_id)
            return store(session, workspace_id, service.workspace_zone(session, workspace_id), first, last)

        total += run_transaction(work)
        day = last + dt.timedelta(days=1)
    return total


def history_bounds(session: Session, workspace_id: int) -> tuple[dt.date, dt.date] | None:
    """The first and last calendar day with a conversation (the workspace's zone), or None."""
    zone = service.workspace_zone(session, workspace_id)
    first, last = session.execute(select(func.min(Conversation.created_at), func.max(Conversation.created_at))
                                  .where(Conversation.workspace_id == workspace_id)).one()
    if first is None:
        return None
    return first.astimezone(zone).date(), last.astimezone(zone).date()


def fill_missing(workspace_id: int, limit: int = FILL_DAYS) -> int:
    """Compute up to `limit` past days of the workspace's history not rolled up yet (newest first). Returns how
    many days were computed."""
    with session_scope(write=False) as session:
        bounds = history_bounds(session, workspace_id)
        if bounds is None:
            return 0
        zone = service.workspace_zone(session, workspace_id)
        yesterday = utcnow().astimezone(zone).date() - dt.timedelta(days=1)
        first, last = bounds[0], min(bounds[1], yesterday)
        if first > last:
            return 0
        have = set(session.scalars(select(RollupDay.day).where(
            RollupDay.workspace_id == workspace_id, RollupDay.day >= first, RollupDay.day <= last,
            RollupDay.zone == zone.key)))
    missing = [d for d in reversed(_days(first, last)) if d not in have][:limit]
    for start, end in runs_of(missing):
        rebuild(workspace_id, start, end)
    return len(missing)


def rebuild_history(slug: str | None, start: str | None, end: str | None) -> Iterable[str]:
    """`otklik reports-rollup`: rebuild the days of one workspace (or all) and say what was done."""
    from otklik.accounts.models import Workspace

    with session_scope(write=False) as session:
        query = select(Workspace.id, Workspace.slug).order_by(Workspace.id)
        targets = list(session.execute(query.where(Workspace.slug == slug) if slug else query))
        if slug and not targets:
            raise SystemExit(f"no workspace {slug!r}")
        plans = []
        for workspace_id, name in targets:
            bounds = history_bounds(session, workspace_id)
            zone = service.workspace_zone(session, workspace_id)
            first = service.parse_day(start, "from") if start else (bounds[0] if bounds else None)
            last = service.parse_day(end, "to") if end else utcnow().astimezone(zone).date()
            plans.append((workspace_id, name, first, last))
    for workspace_id, name, first, last in plans:
        if first is None or first > last:
            yield f"{name}: nothing to roll up"
            continue
        began = time.perf_counter()
        n = rebuild(workspace_id, first, last)
        yield (f"{name}: {first.isoformat()}..{last.isoformat()}, {n} conversations rolled up in "
               f"{time.perf_counter() - began:.1f} s")


# -- reading ----------------------------------------------------------------------------------------------------

def usable_days(session: Session, workspace_id: int, zone: ZoneInfo, filters: Filters,
                now: dt.datetime) -> set[dt.date]:
    """The range's days whose rolled-up rows hold: this time zone, no mark, nothing time-dependent moved since."""
    usable = {day for day, day_zone, stale in session.execute(
        select(RollupDay.day, RollupDay.zone, RollupDay.stale_after).where(
            RollupDay.workspace_id == workspace_id, RollupDay.day >= filters.start, RollupDay.day <= filters.end))
        if day_zone == zone.key and (stale is None or stale > now)}
    if usable:
        marks = session.execute(select(RollupMark.conversation_id, RollupMark.customer_id, RollupMark.created_at)
                                .where(RollupMark.workspace_id == workspace_id).limit(MARK_BATCH + 1)).all()
        if len(marks) > MARK_BATCH:  # a backlog (a bulk change not folded yet): everything live
            return set()
        if marks:
            usable -= marked_days(session, workspace_id, zone, marks)
    return usable


def rolled_rows(session: Session, workspace_id: int, filters: Filters, usable: set[dt.date]
                ) -> Iterable[tuple[dt.date, str, Partial]]:
    """(day, channel, partial) of the usable days' rows that pass the filters."""
    if not usable:
        return
    where = [RollupRow.workspace_id == workspace_id, RollupRow.day >= min(usable), RollupRow.day <= max(usable)]
    if filters.channel is not None:
        where.append(RollupRow.channel == filters.channel)
    if filters.team_id is not None:
        where.append(RollupRow.team_id == filters.team_id)
    if filters.agent_id is not None:
        where.append(RollupRow.agent_id == filters.agent_id)
    for day, channel, figures in session.execute(
            select(RollupRow.day, RollupRow.channel, RollupRow.figures).where(and_(*where))):
        if day in usable:
            yield day, channel, Partial.from_json(figures)


def live_runs(filters: Filters, usable: set[dt.date]) -> list[tuple[dt.date, dt.date]]:
    return runs_of(d for d in _days(filters.start, filters.end) if d not in usable)


def add_rolled(session: Session, workspace_id: int, zone: ZoneInfo, filters: Filters, now: dt.datetime,
               total: Partial) -> list[tuple[dt.date, dt.date]]:
    """Add the range's usable rolled-up days to `total`; return the runs of days left to compute live."""
    usable = usable_days(session, workspace_id, zone, filters, now)
    for _, _, part in rolled_rows(session, workspace_id, filters, usable):
        total.add(part)
    return live_runs(filters, usable)
