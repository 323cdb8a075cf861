"""The conversation side bar's «Сроки по закону» block: the consumer-law situation (from the contact reason, or
chosen), the dates and sums the agent confirms, and what the seller owes by when, with the penalty once late."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse

from otklik.accounts.deps import DB
from otklik.conversations.service import get_conversation
from otklik.guardrails import deadlines, service
from otklik.guardrails.law import SITUATIONS
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import CurrentUser, render, ui_router

router = ui_router()


def _render(request: Request, db: Any, user: Any, conversation_id: int, *, error: str | None = None,
            typed: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    conversation = get_conversation(db, user.actor, conversation_id)
    view = service.case_view(db, user.actor, conversation)
    if typed is not None:
        view["inputs"] = typed
    return render(request, "partials/legal_case.html", status_code=status_code, conversation=conversation,
                  case=view, situations=SITUATIONS, date_fields=deadlines.DATE_FIELDS[:-1],
                  money_fields=deadlines.MONEY_FIELDS, flag_fields=deadlines.FLAG_FIELDS, error=error)


@router.get("/ui/conversations/{conversation_id}/legal")
def legal_fragment(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _render(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/legal")
async def save_legal(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    values = {k: str(v).strip()[:40] for k, v in form.items() if isinstance(v, str)}
    inputs: dict[str, Any] = {}
    for name in (*deadlines.DATE_FIELDS[:-1], *deadlines.MONEY_FIELDS):
        if values.get(name):
            inputs[name] = values[name]
    for name in deadlines.FLAG_FIELDS:
        if values.get(name) in ("yes", "no"):
            inputs[name] = values[name] == "yes"
    try:
        service.save_case(db, user.actor, conversation_id, values.get("situation") or None, inputs)
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _render(request, db, user, conversation_id, error=detail, typed=inputs, status_code=422)
    return _render(request, db, user, conversation_id)
