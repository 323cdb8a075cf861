"""Settings → «Фразы»: the phrase checker's rules for this workspace (the shipped ru + en list, switched off or
changed here, and the workspace's own phrases), and the report of the phrases agents used most. Supervisors and
admins; the rules' logic is the guardrails domain's (phrase_rules), this module only reads forms and renders."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.guardrails import phrase_rules, phrases
from otklik.platform.db import utcnow
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import SupervisorUser, UIUser, redirect, render, ui_router

router = ui_router()
PAGE_SIZE = 400


def _page(request: Request, db: Session, user: UIUser, *, language: str = "", q: str = "", status_code: int = 200,
          error: str | None = None, form: dict[str, Any] | None = None) -> Response:
    views = phrase_rules.rule_views(db, user.actor, language=language or None, q=q or None)
    return render(request, "settings/phrases.html", status_code=status_code, views=views[:PAGE_SIZE],
                  total=len(views), language=language, q=q, error=error, form=form or {},
                  languages=phrases.LANGUAGES, severities=phrases.SEVERITIES)


def _alternatives(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


@router.get("/settings/phrases")
def phrase_settings(request: Request, user: SupervisorUser, db: DB,
                    language: Annotated[str, Query(max_length=2)] = "",
                    q: Annotated[str, Query(max_length=200)] = "") -> Response:
    return _page(request, db, user, language=language if language in phrases.LANGUAGES else "", q=q)


@router.post("/settings/phrases")
def phrase_create(request: Request, user: SupervisorUser, db: DB,
                  language: Annotated[str, Form(max_length=2)] = "ru",
                  phrase: Annotated[str, Form(max_length=400)] = "",
                  severity: Annotated[str, Form(max_length=8)] = "never",
                  reason: Annotated[str, Form(max_length=1000)] = "",
                  alternatives: Annotated[str, Form(max_length=6000)] = "") -> Response:
    form = {"language": language, "phrase": phrase, "severity": severity, "reason": reason,
            "alternatives": alternatives}
    try:
        phrase_rules.create_rule(db, user.actor, {"language": language, "phrase": phrase, "severity": severity,
                                                  "reason": reason, "alternatives": _alternatives(alternatives)})
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _page(request, db, user, status_code=exc.status_code, error=detail, form=form)
    return redirect("/settings/phrases", request)


@router.post("/settings/phrases/{rule_id}")
def phrase_update(request: Request, rule_id: str, user: SupervisorUser, db: DB,
                  severity: Annotated[str, Form(max_length=8)] = "",
                  enabled: Annotated[str, Form(max_length=3)] = "",
                  alternatives: Annotated[str | None, Form(max_length=6000)] = None) -> Response:
    changes: dict[str, Any] = {"enabled": enabled == "on"}
    if severity:
        changes["severity"] = severity
    if alternatives is not None:
        changes["alternatives"] = _alternatives(alternatives)
    try:
        phrase_rules.update_rule(db, user.actor, rule_id[:80], changes)
    except DomainError as exc:
        db.rollback()
        detail = "; ".join(f"{f['field']}: {f['message']}" for f in exc.fields) or exc.message
        return _page(request, db, user, status_code=exc.status_code, error=f"{rule_id}: {detail}")
    return redirect("/settings/phrases", request)


@router.post("/settings/phrases/{rule_id}/delete")
def phrase_delete(request: Request, rule_id: str, user: SupervisorUser, db: DB) -> Response:
    phrase_rules.delete_rule(db, user.actor, rule_id[:80])
    return redirect("/settings/phrases", request)


@router.get("/reports/phrases")
def phrase_report(request: Request, user: SupervisorUser, db: DB,
                  days: Annotated[int, Query(ge=1, le=366)] = 30) -> Response:
    until = utcnow()
    report = phrase_rules.report(db, user.actor, since=until - dt.timedelta(days=days), until=until)
    return render(request, "settings/phrase_report.html", report=report, days=days)
