"""«Отчёты» (/reports, supervisors and admins): the summary figures of docs/metrics.md for a range of the
workspace's days with channel / team / agent filters, three server-rendered SVG charts (no script, no CDN) and
the CSV export link. The figures are the reports domain's; this module turns them into chart geometry."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Query, Request
from fastapi.responses import Response

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.feedback import qa, reviews
from otklik.feedback import service as feedback
from otklik.platform.db import utcnow
from otklik.platform.errors import DomainError
from otklik.reports import service as reports
from otklik.web.ui import feedback_pages
from otklik.web.ui.deps import CurrentUser, SupervisorUser, render, ui_router

router = ui_router()
router.include_router(feedback_pages.router)  # Settings → Surveys and reports, the mystery shopper's page
CHANNELS = ("widget", "email", "telegram", "vk", "whatsapp", "max", "phone", "form", "api", "review", "viber",
            "instagram")
COLOURS = ("#2563eb", "#16a34a", "#0891b2", "#9333ea", "#ea580c", "#db2777", "#65a30d", "#475569", "#a16207",
           "#dc2626")
WIDTH, HEIGHT, PAD = 640, 200, 34


def _nice_max(value: float) -> float:
    """A round top for an axis: 1, 2, 5 × 10^n at or above the value."""
    if value <= 0:
        return 1
    step = 1.0
    while step * 10 <= value:
        step *= 10
    for factor in (1, 2, 5, 10):
        if factor * step >= value:
            return factor * step
    return 10 * step


def volume_chart(daily: dict[str, Any]) -> dict[str, Any]:
    """Stacked bars: conversations started per day, one colour per channel."""
    days = daily["days"]
    top = _nice_max(max((d["conversations"] for d in days), default=0))
    slot = (WIDTH - PAD) / max(len(days), 1)
    colours = {c: COLOURS[i % len(COLOURS)] for i, c in enumerate(daily["channels"])}
    bars = []
    for i, day in enumerate(days):
        y = HEIGHT - PAD
        for channel, count in day["by_channel"].items():
            if not count:
                continue
            h = (HEIGHT - 2 * PAD) * count / top
            y -= h
            bars.append({"x": round(PAD + i * slot + slot * 0.1, 1), "y": round(y, 1), "w": round(slot * 0.8, 1),
                         "h": round(h, 1), "colour": colours[channel], "channel": channel, "day": day["day"],
                         "count": count})
    return {"bars": bars, "top": int(top), "colours": colours, "labels": _labels(days, slot)}


def wait_chart(daily: dict[str, Any]) -> dict[str, Any]:
    """A line: the first-response median per day, in minutes (days without a first response leave a gap)."""
    days = daily["days"]
    minutes = [None if d["first_response_median_s"] is None else d["first_response_median_s"] / 60 for d in days]
    top = _nice_max(max((m for m in minutes if m is not None), default=0))
    slot = (WIDTH - PAD) / max(len(days), 1)
    points = [{"x": round(PAD + (i + 0.5) * slot, 1), "y": round(HEIGHT - PAD - (HEIGHT - 2 * PAD) * m / top, 1),
               "day": days[i]["day"], "minutes": round(m)} for i, m in enumerate(minutes) if m is not None]
    return {"points": points, "path": " ".join(f"{p['x']},{p['y']}" for p in points), "top": round(top),
            "labels": _labels(days, slot)}


def reasons_chart(reasons: dict[str, int]) -> dict[str, Any]:
    """Horizontal bars: the assistant's hand-off reasons, most frequent first."""
    top = max(reasons.values(), default=0) or 1
    return {"bars": [{"reason": r, "count": n, "y": 8 + i * 26, "w": round((WIDTH - 260) * n / top, 1)}
                     for i, (r, n) in enumerate(list(reasons.items())[:8])],
            "height": 16 + 26 * max(1, min(len(reasons), 8))}


def _labels(days: list[dict[str, Any]], slot: float) -> list[dict[str, Any]]:
    every = max(1, len(days) // 8)
    return [{"x": round(PAD + (i + 0.5) * slot, 1), "text": d["day"][5:]} for i, d in enumerate(days)
            if i % every == 0]


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


@router.get("/reports")
def reports_page(request: Request, user: SupervisorUser, db: DB,
                 start: Annotated[str, Query(alias="from", max_length=20)] = "",
                 end: Annotated[str, Query(alias="to", max_length=20)] = "",
                 channel: Annotated[str, Query(max_length=16)] = "",
                 team_id: Annotated[str, Query(max_length=12)] = "",
                 agent_id: Annotated[str, Query(max_length=12)] = "") -> Response:
    workspace_id = user.actor.workspace_id
    today = utcnow().astimezone(reports.workspace_zone(db, workspace_id)).date()
    start = start or (today - dt.timedelta(days=29)).isoformat()
    end = end or today.isoformat()
    form = {"from": start, "to": end, "channel": channel if channel in CHANNELS else "", "team_id": team_id,
            "agent_id": agent_id}
    context: dict[str, Any] = {"form": form, "channels": CHANNELS, "teams": accounts.list_teams(db, user.actor),
                               "agents": accounts.list_users(db, user.actor), "error": None, "summary": None}
    try:
        filters = reports.make_filters(start, end, channel=form["channel"] or None, team_id=_int(team_id),
                                       agent_id=_int(agent_id))
    except DomainError as exc:
        context["error"] = exc.fields[0] if exc.fields else {"field": "", "message": exc.message}
        return render(request, "reports/dashboard.html", status_code=422, **context)
    summary = reports.summary(db, workspace_id, filters)
    daily = reports.daily(db, workspace_id, filters)
    lo, hi = reports.day_bounds(reports.workspace_zone(db, workspace_id), filters.start, filters.end)
    context["review_stats"] = reviews.by_platform(db, workspace_id, lo, hi)
    context["qa_stats"] = qa.per_agent(db, workspace_id, lo, hi)
    query = urlencode({k: v for k, v in form.items() if v})
    return render(request, "reports/dashboard.html", summary=summary, volume=volume_chart(daily),
                  waits=wait_chart(daily), reasons=reasons_chart(summary["handoff_reasons"]), export_query=query,
                  width=WIDTH, height=HEIGHT, pad=PAD, **{k: v for k, v in context.items() if k != "summary"})


@router.get("/ui/conversations/{conversation_id}/surveys")
def conversation_surveys(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> Response:
    """The side bar's «Опросы» block: the conversation's survey answers, a low one in red."""
    answers = feedback.answers_of(db, user.actor, conversation_id)  # 404 for another workspace's conversation
    return render(request, "partials/conversation_surveys.html", answers=[feedback.answer_data(a) for a in answers])
