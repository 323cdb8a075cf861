"""CSV export of a range's conversations: rows are read in batches by keyset and written as they come, so the
memory stays the same at 100 rows or 1,000,000. The workspace id is part of every query."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

from sqlalchemy import DateTime, SmallInteger, select, type_coerce

from otklik.conversations.models import PRIORITY_RANK, Conversation
from otklik.platform.db import session_scope
from otklik.reports.service import Filters, day_bounds, workspace_zone

BATCH = 2000
HEADER = ("number", "created_at", "channel", "status", "priority", "category", "subject", "customer_id",
          "team_id", "assignee_id", "first_response_at", "first_response_s", "solved_at", "resolution_s",
          "transfer_count", "sla_breached")
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    """A cell a spreadsheet shows as text: a subject starting with = + - @ is not run as a formula."""
    if value is None:
        return ""
    text = value.isoformat() if hasattr(value, "isoformat") else str(value)
    return "'" + text if isinstance(value, str) and text.startswith(_FORMULA) else text


def _utc_text(value: dt.datetime | None) -> str:
    """ISO 8601 in UTC, as `UTCDateTime` would give it, without its per-value conversion (SQLite returns naive
    UTC values, PostgreSQL aware ones)."""
    if value is None:
        return ""
    if value.tzinfo is None:
        return value.isoformat() + "+00:00"
    return value.astimezone(dt.UTC).isoformat()


def _seconds(later: dt.datetime | None, earlier: dt.datetime) -> int | str:
    return "" if later is None else round((later - earlier).total_seconds())


def _text(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA) else value


_COLUMNS = (Conversation.number, type_coerce(Conversation.created_at, DateTime(timezone=True)), Conversation.channel,
            Conversation.status, type_coerce(Conversation.priority, SmallInteger()), Conversation.category,
            Conversation.subject, Conversation.customer_id, Conversation.team_id, Conversation.assignee_id,
            type_coerce(Conversation.first_response_at, DateTime(timezone=True)),
            type_coerce(Conversation.solved_at, DateTime(timezone=True)), Conversation.transfer_count,
            Conversation.sla_breached, Conversation.id)


def row_batches(workspace_id: int, filters: Filters) -> Iterator[list[tuple[object, ...]]]:
    """The range's conversations in batches of BATCH rows (keyset by start and id), each row the HEADER's cells:
    numbers as int, the rest as text (a formula-looking text gets a leading «'»). Core rows with the times and
    the priority read without their column types' per-value conversions: 100,000 rows of them cost more CPU
    than the queries (BENCHMARKS §15b)."""
    with session_scope(write=False) as session:
        zone = workspace_zone(session, workspace_id)
    lo, hi = day_bounds(zone, filters.start, filters.end)
    after: tuple[dt.datetime, int] = (lo, 0)
    priority = {rank: p.value for p, rank in PRIORITY_RANK.items()}
    c = Conversation
    while True:
        with session_scope(write=False) as session:
            stmt = select(*_COLUMNS).where(
                c.workspace_id == workspace_id, c.created_at < hi, c.merged_into_id.is_(None), c.mystery.is_(False),
                (c.created_at > after[0]) | ((c.created_at == after[0]) & (c.id > after[1])))
            if filters.channel:
                stmt = stmt.where(c.channel == filters.channel)
            if filters.team_id is not None:
                stmt = stmt.where(c.team_id == filters.team_id)
            if filters.agent_id is not None:
                stmt = stmt.where(c.assignee_id == filters.agent_id)
            batch = session.connection().execute(stmt.order_by(c.created_at, c.id).limit(BATCH)).all()
        yield [(number, _utc_text(created), channel, status, priority[rank], _text(category), _text(subject),
                customer_id, "" if team_id is None else str(team_id), "" if assignee_id is None else str(assignee_id),
                _utc_text(first), _seconds(first, created), _utc_text(solved), _seconds(solved, created),
                transfers or 0, "yes" if breached else "no")
               for (number, created, channel, status, rank, category, subject, customer_id, team_id,
                    assignee_id, first, solved, transfers, breached, _) in batch]
        if len(batch) < BATCH:
            return
        last = batch[-1]
        # the keyset's bound as the column stores it: aware UTC (the bind of a UTC column)
        created = last[1] if last[1].tzinfo is not None else last[1].replace(tzinfo=dt.UTC)
        after = (created, last.id)


def conversation_rows(workspace_id: int, filters: Filters) -> Iterator[bytes]:
    """Yields the CSV (UTF-8 with a BOM, so Excel reads Cyrillic) in chunks of BATCH rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    buffer.write("\ufeff")
    writer.writerow(HEADER)
    for rows in row_batches(workspace_id, filters):
        writer.writerows(rows)
        yield buffer.getvalue().encode()
        buffer.seek(0)
        buffer.truncate()
