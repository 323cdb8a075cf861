"""CSV export of a range's conversations: rows are read in batches by keyset and written as they come, so the
memory stays the same at 100 rows or 1,000,000. The workspace id is part of every query."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator

from sqlalchemy import select

from otklik.conversations.models import Conversation
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


def row_batches(workspace_id: int, filters: Filters) -> Iterator[list[tuple[object, ...]]]:
    """The range's conversations in batches of BATCH rows (keyset by start and id), each row the HEADER's cells:
    numbers as int, the rest as text (a formula-looking text gets a leading «'»)."""
    with session_scope(write=False) as session:
        zone = workspace_zone(session, workspace_id)
    lo, hi = day_bounds(zone, filters.start, filters.end)
    after: tuple[dt.datetime, int] = (lo, 0)
    while True:
        with session_scope(write=False) as session:
            stmt = select(Conversation.number, Conversation.created_at, Conversation.channel, Conversation.status,
                          Conversation.priority, Conversation.category, Conversation.subject,
                          Conversation.customer_id, Conversation.team_id, Conversation.assignee_id,
                          Conversation.first_response_at, Conversation.solved_at, Conversation.transfer_count,
                          Conversation.sla_breached, Conversation.id).where(
                Conversation.workspace_id == workspace_id, Conversation.created_at < hi,
                Conversation.merged_into_id.is_(None), Conversation.mystery.is_(False),
                (Conversation.created_at > after[0])
                | ((Conversation.created_at == after[0]) & (Conversation.id > after[1])))
            if filters.channel:
                stmt = stmt.where(Conversation.channel == filters.channel)
            if filters.team_id is not None:
                stmt = stmt.where(Conversation.team_id == filters.team_id)
            if filters.agent_id is not None:
                stmt = stmt.where(Conversation.assignee_id == filters.agent_id)
            batch = session.execute(stmt.order_by(Conversation.created_at, Conversation.id).limit(BATCH)).all()
        yield [(number, _cell(created), channel, status, priority.value, _cell(category), _cell(subject),
                customer_id, _cell(team_id), _cell(assignee_id), _cell(first),
                "" if first is None else round((first - created).total_seconds()), _cell(solved),
                "" if solved is None else round((solved - created).total_seconds()), transfers or 0,
                "yes" if breached else "no")
               for (number, created, channel, status, priority, category, subject, customer_id, team_id,
                    assignee_id, first, solved, transfers, breached, _) in batch]
        if len(batch) < BATCH:
            return
        after = (batch[-1].created_at, batch[-1].id)


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
