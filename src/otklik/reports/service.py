"""The summary figures of docs/metrics.md for one workspace and a range of its calendar days.

Every definition lives in docs/metrics.md; this module is its executable form. One indexed scan of the range's
conversations (plus the seven days after it, for repeat contacts) and a few indexed look-ups by conversation id;
the statistics are computed here, the same way on SQLite and PostgreSQL. Never counts another workspace's rows.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

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
        return dt.date.fromisoformat(value) if len(value) == 10 else _bad(field)
    except ValueError:
        raise field_error(field, "not a date: use YYYY-MM-DD") from None


def _bad(field: str) -> dt.date:
    raise field_error(field, "not a date: use YYYY-MM-DD")


def make_filters(start: str | None, end: str | None, *, channel: str | None = None, team_id: int | None = None,
                 agent_id: int | None = None) -> Filters:
    first, last = parse_day(start, "from"), parse_day(end, "to")
    if first > last:
        raise field_error("from", "after 'to'")
    if (last - first).days >= MAX_RANGE_DAYS:
        raise field_error("to", f"at most {MAX_RANGE_DAYS} days after 'from'")
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


# A row of _COLUMNS (SQLAlchemy's Row: attribute access by column name, no object per row to build).
Row = Any


_COLUMNS = (Conversation.id, Conversation.customer_id, Conversation.channel, Conversation.team_id,
            Conversation.assignee_id, Conversation.status, Conversation.created_at, Conversation.first_response_at,
            Conversation.solved_at, Conversation.transfer_count, Conversation.assistant_answered_at,
            Conversation.last_customer_message_at, Conversation.category)


def conversations_between(session: Session, workspace_id: int, lo: dt.datetime, hi: dt.datetime) -> list[Row]:
    """Conversations started in [lo, hi), merged ones left out (they live on in the one they were merged into)."""
    rows = session.execute(select(*_COLUMNS).where(
        Conversation.workspace_id == workspace_id, Conversation.created_at >= lo, Conversation.created_at < hi,
        Conversation.merged_into_id.is_(None)))
    return list(rows)


def matches(row: Row, filters: Filters) -> bool:
    return ((filters.channel is None or row.channel == filters.channel)
            and (filters.team_id is None or row.team_id == filters.team_id)
            and (filters.agent_id is None or row.assignee_id == filters.agent_id))


def _id_range(ids: Iterable[int]) -> tuple[int, int]:
    ids = list(ids)
    return min(ids), max(ids)


def reopened_ids(session: Session, workspace_id: int, ids: set[int]) -> set[int]:
    """Conversations that went from solved back to open or new (the customer wrote again, or a person re-opened)."""
    if not ids:
        return set()
    lo, hi = _id_range(ids)
    found: set[int] = set()
    for entity_id, before in session.execute(select(AuditEntry.entity_id, AuditEntry.before).where(
            AuditEntry.workspace_id == workspace_id, AuditEntry.entity_type == "conversation",
            AuditEntry.entity_id >= lo, AuditEntry.entity_id <= hi, AuditEntry.action == "status_changed")):
        if entity_id in ids and (before or {}).get("status") == Status.solved.value:
            found.add(entity_id)
    return found


def sla_outcomes(session: Session, workspace_id: int, ids: set[int]) -> dict[int, bool]:
    """Conversation id -> True when none of its SLA targets was breached (only conversations with a target)."""
    if not ids:
        return {}
    lo, hi = _id_range(ids)
    met: dict[int, bool] = {}
    for conversation_id, breached_at in session.execute(select(SlaTimer.conversation_id, SlaTimer.breached_at).where(
            SlaTimer.conversation_id >= lo, SlaTimer.conversation_id <= hi, SlaTimer.workspace_id == workspace_id,
            SlaTimer.kind.in_(SLA_KINDS))):
        if conversation_id in ids:
            met[conversation_id] = met.get(conversation_id, True) and breached_at is None
    return met


def assistant_actions(session: Session, workspace_id: int, ids: set[int]
                      ) -> tuple[set[int], set[int], dict[str, int]]:
    """(answered by the assistant, handed off by it, hand-off reasons -> count) among `ids`."""
    answered: set[int] = set()
    handed: set[int] = set()
    reasons: dict[str, int] = defaultdict(int)
    if not ids:
        return answered, handed, {}
    lo, hi = _id_range(ids)
    for conversation_id, action, reason, failed in session.execute(
            select(AssistantDecision.conversation_id, AssistantDecision.action, AssistantDecision.reason,
                   AssistantDecision.failed).where(
                AssistantDecision.conversation_id >= lo, AssistantDecision.conversation_id <= hi,
                AssistantDecision.workspace_id == workspace_id,
                AssistantDecision.action.in_(("answer", "handoff")))):
        if conversation_id not in ids:
            continue
        if action == "answer" and not failed:
            answered.add(conversation_id)
        elif action == "handoff":
            if conversation_id not in handed:
                reasons[reason] += 1
            handed.add(conversation_id)
    return answered, handed, dict(reasons)


def survey_scores(session: Session, workspace_id: int, ids: set[int]) -> dict[str, list[int]]:
    """Kind (csat / ces / nps) -> the answered scores of the conversations `ids` (one answer per conversation)."""
    scores: dict[str, list[int]] = {"csat": [], "ces": [], "nps": []}
    if not ids:
        return scores
    lo, hi = _id_range(ids)
    for conversation_id, kind, score in session.execute(
            select(SurveyAnswer.conversation_id, SurveyAnswer.kind, SurveyAnswer.score).where(
                SurveyAnswer.workspace_id == workspace_id, SurveyAnswer.conversation_id >= lo,
                SurveyAnswer.conversation_id <= hi, SurveyAnswer.score.is_not(None))):
        if conversation_id in ids and kind in scores and score is not None:
            scores[kind].append(int(score))
    return scores


def repeated_ids(rows: Sequence[Row], window: Sequence[Row]) -> set[int]:
    """Conversations of `rows` whose customer started another conversation of `window` (every conversation of
    the range and the 7 days after it, whatever its channel, team or agent) within 7 days after."""
    starts: dict[int, list[tuple[dt.datetime, int]]] = defaultdict(list)
    for row in window:
        starts[row.customer_id].append((row.created_at, row.id))
    for values in starts.values():
        values.sort()
    repeated: set[int] = set()
    for row in rows:
        values = starts[row.customer_id]
        if len(values) < 2:
            continue
        for created_at, other_id in values:
            if other_id != row.id and row.created_at < created_at <= row.created_at + REPEAT_WINDOW:
                repeated.add(row.id)
                break
            if created_at > row.created_at + REPEAT_WINDOW:
                break
    return repeated


def contained(row: Row, answered: set[int], handed: set[int], now: dt.datetime) -> bool:
    """The assistant answered, no person ever replied, no hand-off, and it was solved or the customer went quiet."""
    if row.id not in answered or row.id in handed or row.first_response_at is not None:
        return False
    if row.status in SOLVED:
        return True
    at = row.assistant_answered_at
    return at is not None and at >= row.last_customer_message_at and now - at >= SILENCE


def summary(session: Session, workspace_id: int, filters: Filters, *, now: dt.datetime | None = None
            ) -> dict[str, Any]:
    """The figures of docs/metrics.md for the conversations started in the range that pass the filters."""
    now = now or utcnow()
    zone = workspace_zone(session, workspace_id)
    lo, hi = day_bounds(zone, filters.start, filters.end)
    window = conversations_between(session, workspace_id, lo, hi + REPEAT_WINDOW)
    inside = [r for r in window if r.created_at < hi]
    rows = [r for r in inside if matches(r, filters)]
    ids = {r.id for r in rows}
    first = [(r.first_response_at - r.created_at).total_seconds() for r in rows if r.first_response_at is not None]
    solved = [r for r in rows if r.status in SOLVED and r.solved_at is not None]
    resolution = [(r.solved_at - r.created_at).total_seconds() for r in solved if r.solved_at is not None]
    reopened = reopened_ids(session, workspace_id, {r.id for r in solved})
    fcr = [r for r in solved if r.id not in reopened and (r.transfer_count or 0) == 0]
    sla_met = sla_outcomes(session, workspace_id, ids)
    answered, handed, reasons = assistant_actions(session, workspace_id, ids)
    bot_rows = [r for r in rows if r.id in answered]
    scores = survey_scores(session, workspace_id, ids)
    csat, ces, nps = scores["csat"], scores["ces"], scores["nps"]
    nps_value = None if not nps else round(100 * (sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)) / len(nps),
                                           1)
    return {
        "from": filters.start.isoformat(), "to": filters.end.isoformat(), "time_zone": str(zone.key),
        "channel": filters.channel, "team_id": filters.team_id, "agent_id": filters.agent_id,
        "conversations": len(rows),
        "first_responses": len(first),
        "first_response_median_s": _seconds(median(first)),
        "first_response_p90_s": _seconds(percentile(first, 0.9)),
        "solved": len(solved),
        "resolution_median_s": _seconds(median(resolution)),
        "resolution_p90_s": _seconds(percentile(resolution, 0.9)),
        "sla_met_rate": rate(sum(sla_met.values()), len(sla_met)),
        "sla_conversations": len(sla_met),
        "csat": rate(sum(s >= 4 for s in csat), len(csat)),
        "csat_responses": len(csat),
        "csat_low": sum(s <= 2 for s in csat),
        "nps": nps_value,
        "nps_responses": len(nps),
        "ces_avg": None if not ces else round(sum(ces) / len(ces), 2),
        "ces_responses": len(ces),
        "fcr_rate": rate(len(fcr), len(solved)),
        "reopened": len(reopened),
        "repeat_contact_rate": rate(len(repeated_ids(rows, window)), len(rows)),
        "bot_conversations": len(bot_rows),
        "bot_containment_rate": rate(sum(contained(r, answered, handed, now) for r in bot_rows), len(bot_rows)),
        "handoffs": len(handed),
        "handoff_reasons": dict(sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))),
        "transfers_per_conversation": None if not rows else round(sum(r.transfer_count or 0 for r in rows)
                                                                   / len(rows), 3),
    }


def _seconds(value: float | None) -> int | None:
    return None if value is None else round(value)


def daily(session: Session, workspace_id: int, filters: Filters) -> dict[str, Any]:
    """Per calendar day of the range: conversations started by channel, and the first-response median."""
    zone = workspace_zone(session, workspace_id)
    lo, hi = day_bounds(zone, filters.start, filters.end)
    rows = [r for r in conversations_between(session, workspace_id, lo, hi) if matches(r, filters)]
    days = [filters.start + dt.timedelta(days=i) for i in range((filters.end - filters.start).days + 1)]
    volume: dict[dt.date, dict[str, int]] = {d: defaultdict(int) for d in days}
    waits: dict[dt.date, list[float]] = {d: [] for d in days}
    for r in rows:
        day = r.created_at.astimezone(zone).date()
        if day in volume:
            volume[day][r.channel] += 1
            if r.first_response_at is not None:
                waits[day].append((r.first_response_at - r.created_at).total_seconds())
    channels = sorted({c for v in volume.values() for c in v})
    return {"from": filters.start.isoformat(), "to": filters.end.isoformat(), "channels": channels,
            "days": [{"day": d.isoformat(), "conversations": sum(volume[d].values()),
                      "by_channel": {c: volume[d].get(c, 0) for c in channels},
                      "first_response_median_s": _seconds(median(waits[d]))} for d in days]}
