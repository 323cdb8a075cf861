"""HTTP surface of reports: the summary figures (docs/metrics.md), the conversations of a range as CSV/XLSX and
the weekly report by e-mail (its addresses, my subscription, a preview). Supervisors and admins only; every query
is bound to the caller's workspace."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import Field

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.feedback import qa, reviews
from otklik.platform.config import get_settings
from otklik.platform.db import utcnow
from otklik.reports import export, service, weekly, xlsx
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


class WeeklySettingsIn(Strict):
    addresses: str = Field(max_length=20000, description="extra addresses, one a line (or separated by commas)")


class WeeklySubscriptionIn(Strict):
    subscribed: bool


@router.get("/reports/weekly")
def weekly_settings(actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The weekly report by e-mail: the workspace's addresses, whether I get it, who gets it, the last deliveries."""
    actor.require(Role.supervisor)
    return {**weekly.settings_data(db, actor), "deliveries": weekly.deliveries(db, actor)}


@router.put("/reports/weekly")
def put_weekly_settings(body: WeeklySettingsIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The workspace's own list of addresses for the weekly report (admins)."""
    weekly.update_settings(db, actor, addresses=body.addresses)
    return weekly.settings_data(db, actor)


@router.put("/reports/weekly/subscription")
def put_weekly_subscription(body: WeeklySubscriptionIn, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """Get (or stop getting) the weekly report at my own address (supervisors and admins)."""
    weekly.subscribe(db, actor, body.subscribed)
    return weekly.settings_data(db, actor)


@router.get("/reports/weekly/preview")
def weekly_preview(actor: CurrentActor, db: DB, week: Annotated[Day, Query(
        description="any day of the week (Monday–Sunday) to report; the last complete week when left out")] = None,
                   ) -> dict[str, Any]:
    """The figures and the text of a week's report, as it would be sent (nothing is sent)."""
    actor.require(Role.supervisor)
    zone = service.workspace_zone(db, actor.workspace_id)
    if week is None:
        start = weekly.week_due(utcnow().astimezone(zone))
    else:
        day = service.parse_day(week, "week")
        start = day - dt.timedelta(days=day.weekday())
    data = weekly.figures(db, actor.workspace_id, start)
    settings = get_settings()
    subject, text = weekly.compose(accounts.get_workspace(db, actor.workspace_id).name, data,
                                   actor_language(db, actor), settings.public_url or "")
    return {**data, "subject": subject, "text": text}


def actor_language(db: Any, actor: Any) -> str:
    from otklik.accounts.models import User

    user = db.get(User, actor.user_id) if actor.user_id else None
    return user.language if user is not None else "ru"
