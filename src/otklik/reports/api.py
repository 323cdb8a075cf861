"""HTTP surface of reports: the summary figures (docs/metrics.md) and the conversations of a range as CSV.
Supervisors and admins only; every query is bound to the caller's workspace."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.feedback import qa, reviews
from otklik.reports import export, service, xlsx
from otklik.reports import rollup as rollup  # its listener marks the changed facts on every flush

router = APIRouter(tags=["reports"])
Day = Annotated[str | None, Query(description="a calendar day of the workspace's time zone, YYYY-MM-DD")]


def _filters(start: str | None, end: str | None, channel: str | None, team_id: int | None,
             agent_id: int | None) -> service.Filters:
    return service.make_filters(start, end, channel=channel, team_id=team_id, agent_id=agent_id)


@router.get("/reports/summary")
def summary(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
            end: Annotated[Day, Query(alias="to")] = None, channel: str | None = None, team_id: int | None = None,
            agent_id: int | None = None) -> dict[str, Any]:
    """The figures of docs/metrics.md for the conversations started between `from` and `to` (both included)."""
    actor.require(Role.supervisor)
    return service.summary(db, actor.workspace_id, _filters(start, end, channel, team_id, agent_id))


@router.get("/reports/daily")
def daily(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
          end: Annotated[Day, Query(alias="to")] = None, channel: str | None = None, team_id: int | None = None,
          agent_id: int | None = None) -> dict[str, Any]:
    """Per calendar day: conversations by channel and the first-response median (the dashboard's charts)."""
    actor.require(Role.supervisor)
    return service.daily(db, actor.workspace_id, _filters(start, end, channel, team_id, agent_id))


@router.get("/reports/conversations.xlsx")
def conversations_xlsx(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
                       end: Annotated[Day, Query(alias="to")] = None, channel: str | None = None,
                       team_id: int | None = None, agent_id: int | None = None) -> StreamingResponse:
    """The same table as the CSV, as an Excel workbook, streamed (constant memory at any size)."""
    actor.require(Role.supervisor)
    filters = _filters(start, end, channel, team_id, agent_id)
    chunks = xlsx.stream("conversations", export.HEADER, export.row_batches(actor.workspace_id, filters))
    name = f"conversations-{filters.start.isoformat()}-{filters.end.isoformat()}.xlsx"
    return StreamingResponse(chunks, media_type=xlsx.MEDIA_TYPE,
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/reports/reviews")
def reviews_by_platform(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
                        end: Annotated[Day, Query(alias="to")] = None) -> dict[str, Any]:
    """Reviews received in the range per platform: how many, per rating 1–5, the mean, negative (1–3), answered."""
    actor.require(Role.supervisor)
    filters = _filters(start, end, None, None, None)
    lo, hi = service.day_bounds(service.workspace_zone(db, actor.workspace_id), filters.start, filters.end)
    return {"from": filters.start.isoformat(), "to": filters.end.isoformat(),
            **reviews.by_platform(db, actor.workspace_id, lo, hi)}


@router.get("/reports/qa")
def qa_by_agent(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
                end: Annotated[Day, Query(alias="to")] = None) -> dict[str, Any]:
    """QA scores (docs/qa.md) of the conversations started in the range, per agent, and the agreement of the
    automatic and the manual scorecards."""
    actor.require(Role.supervisor)
    filters = _filters(start, end, None, None, None)
    lo, hi = service.day_bounds(service.workspace_zone(db, actor.workspace_id), filters.start, filters.end)
    return {"from": filters.start.isoformat(), "to": filters.end.isoformat(),
            **qa.per_agent(db, actor.workspace_id, lo, hi)}


@router.get("/reports/conversations.csv")
def conversations_csv(actor: CurrentActor, db: DB, start: Annotated[Day, Query(alias="from")] = None,
                      end: Annotated[Day, Query(alias="to")] = None, channel: str | None = None,
                      team_id: int | None = None, agent_id: int | None = None) -> StreamingResponse:
    """The conversations started in the range, one row each, streamed (constant memory at any size)."""
    actor.require(Role.supervisor)
    filters = _filters(start, end, channel, team_id, agent_id)
    rows = export.conversation_rows(actor.workspace_id, filters)  # its own read session: the request's closes
    name = f"conversations-{filters.start.isoformat()}-{filters.end.isoformat()}.csv"
    return StreamingResponse(rows, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})
