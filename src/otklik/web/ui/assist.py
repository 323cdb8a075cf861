"""Agent assist and the assistant's settings page.

- `/ui/conversations/{id}/suggestions?q=`: the fragment above the reply box (loaded by the conversation view
  on load and whenever the agent pauses typing): suggested replies from the knowledge base and from the team's
  past replies to similar messages, what the assistant already did in this conversation (article, confidence,
  reason), and a button for the summary on demand;
- `/ui/conversations/{id}/summary`: the summary fragment;
- `/settings/assistant`: on/off per channel, thresholds, tone, greeting, out-of-hours message (the hours
  themselves come from the business calendar: `/settings/calendars`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response

from otklik.accounts import service as accounts
from otklik.accounts.deps import DB
from otklik.assistant import assist, service
from otklik.assistant.pipeline import DEFAULT_ANSWER_THRESHOLD
from otklik.calendars.service import calendar_for
from otklik.conversations.service import CHANNELS
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import CurrentUser, SupervisorUser, redirect, render, ui_router

router = ui_router()


@router.get("/ui/conversations/{conversation_id}/suggestions")
def suggestions(request: Request, conversation_id: int, user: CurrentUser, db: DB,
                q: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    items = assist.suggestions(db, user.actor, conversation_id, q=q)
    decided = service.decisions_for(db, user.actor, conversation_id)
    return render(request, "partials/suggestions.html", conversation_id=conversation_id,
                  kb=[s for s in items if s.source == "kb"], team=[s for s in items if s.source == "team"],
                  decisions=decided[-3:])


@router.get("/ui/conversations/{conversation_id}/summary")
def summary(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> Response:
    text = service.conversation_summary(db, user.actor, conversation_id)
    return render(request, "partials/suggestions.html", conversation_id=conversation_id, summary=text,
                  only_summary=True)


def reasons_from_text(text: str) -> list[dict[str, Any]]:
    """The settings form's reasons: one a line, «name | description»."""
    out = []
    for line in text.splitlines():
        if not line.strip():
            continue
        name, _, description = line.partition("|")
        out.append({"name": name.strip(), "description": description.strip()})
    return out


def reasons_to_text(reasons: list[dict[str, Any]]) -> str:
    return "\n".join(f"{r['name']} | {r.get('description', '')}" for r in reasons)


def percent(fraction: float) -> str:
    """0.731 -> "73.1", 0.95 -> "95": a threshold as a person reads it."""
    return f"{fraction * 100:.1f}".removesuffix(".0")


def _page(request: Request, user: Any, db: Any, *, error: str | None = None, saved: bool = False) -> Response:
    row = service.get_settings_row(db, user.actor.workspace_id)
    return render(request, "settings/assistant.html", settings=service.settings_dict(row), channels=CHANNELS,
                  reasons_text=reasons_to_text(list(row.reasons or [])),
                  teams=accounts.list_teams(db, user.actor), error=error, saved=saved,
                  calendar=calendar_for(db, user.actor.workspace_id, row.handoff_team_id), percent=percent,
                  status_code=422 if error else 200)


@router.get("/settings/assistant")
def settings_page(request: Request, user: SupervisorUser, db: DB, saved: bool = False) -> Response:
    return _page(request, user, db, saved=saved)


@router.post("/settings/assistant")
def save_settings(request: Request, user: SupervisorUser, db: DB,
                  enabled: Annotated[bool, Form()] = False,
                  channels: Annotated[list[str] | None, Form()] = None,
                  answer_threshold: Annotated[float, Form(ge=0, le=1)] = DEFAULT_ANSWER_THRESHOLD,
                  negativity_threshold: Annotated[float, Form(ge=0, le=1)] = 0.95,
                  urgency_threshold: Annotated[float, Form(ge=0, le=1)] = 0.95,
                  answer_threshold_percent: Annotated[float | None, Form(ge=0, le=100)] = None,
                  negativity_threshold_percent: Annotated[float | None, Form(ge=0, le=100)] = None,
                  urgency_threshold_percent: Annotated[float | None, Form(ge=0, le=100)] = None,
                  tone: Annotated[str, Form(max_length=16)] = "formal",
                  greeting: Annotated[str, Form(max_length=1000)] = "",
                  bot_name: Annotated[str, Form(max_length=80)] = "",
                  reasons: Annotated[str, Form(max_length=30_000)] = "",
                  out_of_hours_message: Annotated[str, Form(max_length=1000)] = "",
                  handoff_team_id: Annotated[str, Form(max_length=12)] = "") -> Response:
    # the page shows the thresholds as percentages (73 %, not 0.731); the fractions are still accepted
    if answer_threshold_percent is not None:
        answer_threshold = round(answer_threshold_percent / 100, 4)
    if negativity_threshold_percent is not None:
        negativity_threshold = round(negativity_threshold_percent / 100, 4)
    if urgency_threshold_percent is not None:
        urgency_threshold = round(urgency_threshold_percent / 100, 4)
    changes: dict[str, Any] = {
        "enabled": enabled, "channels": channels or [], "answer_threshold": answer_threshold,
        "negativity_threshold": negativity_threshold, "urgency_threshold": urgency_threshold, "tone": tone,
        "greeting": greeting, "bot_name": bot_name, "reasons": reasons_from_text(reasons), "out_of_hours_message": out_of_hours_message,
        "handoff_team_id": int(handoff_team_id) if handoff_team_id.isdigit() else None,
    }
    try:
        service.update_settings(db, user.actor, changes)
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _page(request, user, db, error=detail)
    return redirect("/settings/assistant?saved=1", request)
