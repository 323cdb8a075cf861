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
from otklik.web.ui.deps import AdminUser, CurrentUser, redirect, render, ui_router

router = ui_router()


def legal_context(db: Any, user: Any, conversation: Any) -> dict[str, Any]:
    """What the «Сроки по закону» block needs; the conversation page renders it inline."""
    return {"case": service.case_view(db, user.actor, conversation), "situations": SITUATIONS,
            "date_fields": deadlines.DATE_FIELDS[:-1], "money_fields": deadlines.MONEY_FIELDS,
            "flag_fields": deadlines.FLAG_FIELDS}


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


# -- Settings → «Сроки по закону»: the workspace's reasons mapped to situations, its own terms ---------------------


def _reasons(db: Any, workspace_id: int, mapped: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The reasons to map: the workspace's own list (Settings → AI assistant) or the shipped store list, and any
    reason mapped already; with their labels."""
    from otklik.assistant.models import AssistantSettings
    from otklik.assistant.pipeline import REASON_WORDS

    row = db.get(AssistantSettings, workspace_id)
    own = [str(r.get("name")) for r in (row.reasons or []) if r.get("name")] if row is not None else []
    names = own or [r for r in REASON_WORDS if r != "other"]
    labels = {**REASON_WORDS, **{str(r.get("name")): str(r.get("description") or r.get("name"))
                                 for r in ((row.reasons or []) if row is not None else []) if r.get("name")}}
    return list(dict.fromkeys([*names, *mapped])), labels


def _settings_page(request: Request, db: Any, user: Any, *, error: str | None = None, saved: bool = False,
                   status_code: int = 200) -> HTMLResponse:
    view = service.settings_view(db, user.actor.workspace_id)
    reasons, labels = _reasons(db, user.actor.workspace_id, view["reason_situations"])
    rows = [*view["terms"], *({} for _ in range(3))]
    return render(request, "settings/legal.html", status_code=status_code, view=view, reasons=reasons,
                  reason_labels=labels, term_rows=rows, error=error, saved=saved)


@router.get("/settings/legal")
def legal_settings(request: Request, user: AdminUser, db: DB) -> HTMLResponse:
    return _settings_page(request, db, user, saved=request.query_params.get("saved") == "1")


@router.post("/settings/legal", response_model=None)
async def save_legal_settings(request: Request, user: AdminUser, db: DB) -> HTMLResponse | Any:
    form = await request.form()
    mapping = {k[4:][:64]: str(v)[:40] for k, v in form.multi_items() if k.startswith("map:") and isinstance(v, str)}
    obligations = [str(v)[:80] for v in form.getlist("term_obligation")][:60]
    amounts = [str(v).strip()[:6] for v in form.getlist("term_amount")][:60]
    units = [str(v)[:8] for v in form.getlist("term_unit")][:60]
    titles = [str(v).strip()[:200] for v in form.getlist("term_title")][:60]
    terms: list[dict[str, Any]] = []
    try:
        for i, pick in enumerate(obligations):
            if not pick:
                continue
            situation, _, key = pick.partition(":")
            amount = amounts[i] if i < len(amounts) else ""
            if not amount.isdigit():
                raise DomainError(f"term {i + 1}: a whole number of days or months", code="invalid")
            unit = "months" if (units[i] if i < len(units) else "") == "months" else "days"
            terms.append({"situation": situation, "key": key, unit: int(amount),
                          "title": titles[i] if i < len(titles) else ""})
        warn = str(form.get("warn_days") or "2").strip()
        if not warn.isdigit() or len(warn) > 3:
            raise DomainError("warn_days: whole days from 0 to 30", code="invalid")
        service.update_settings(db, user.actor, {"reason_situations": mapping, "terms": terms,
                                                 "warn_days": int(warn)})
    except DomainError as exc:
        if exc.status_code not in (400, 422):
            raise
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _settings_page(request, db, user, error=detail, status_code=422)
    return redirect("/settings/legal?saved=1", request)
