"""The conversation page's «Отзыв» block (a review: its site, stars, author, link, the assistant's reading; the
draft reply to edit and copy, «Ответ опубликован», the follow-up task) and «Качество» block (the automatic QA
scorecard with each item's evidence, and the supervisor's review form with the same items)."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.accounts.models import Role
from otklik.feedback import qa, reviews
from otklik.platform.errors import DomainError
from otklik.web.ui.deps import CurrentUser, UIUser, render, ui_router

router = ui_router()


def _error_text(exc: DomainError) -> str:
    return exc.fields[0]["message"] if exc.fields and exc.code != "phrase" else exc.message


def _review(request: Request, db: Session, user: UIUser, conversation_id: int, *, error: str | None = None,
            typed: str | None = None, status_code: int = 200) -> HTMLResponse:
    review = reviews.review_of(db, user.actor, conversation_id)
    data = reviews.review_data(review)
    draft = reviews.draft(review)
    return render(request, "partials/review_panel.html", status_code=status_code, review=data, draft=draft,
                  replied_at=review.replied_at,
                  text=typed if typed is not None else (data["reply_text"] or draft["text"]), error=error)


@router.get("/ui/conversations/{conversation_id}/review")
def review_block(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _review(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/review/publish")
async def review_publish(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    text = str(form.get("text") or "")[:reviews.MAX_TEXT + 1]
    acknowledge = [str(a)[:64] for a in form.getlist("acknowledge")][:20]
    try:
        reviews.publish(db, user.actor, conversation_id, text, acknowledge)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _review(request, db, user, conversation_id, error=_error_text(exc), typed=text, status_code=422)
    return _review(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/review/task")
def review_task(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    reviews.follow_up(db, user.actor, conversation_id)
    return _review(request, db, user, conversation_id)


def _qa(request: Request, db: Session, user: UIUser, conversation_id: int, *, error: str | None = None,
        status_code: int = 200) -> HTMLResponse:
    data: dict[str, Any] = qa.scores_of(db, user.actor, conversation_id)
    return render(request, "partials/qa_panel.html", status_code=status_code, qa=data, items=qa.ITEMS,
                  statuses=qa.STATUSES, can_review=user.actor.role in (Role.supervisor, Role.admin),
                  conversation_id=conversation_id, error=error)


@router.get("/ui/conversations/{conversation_id}/qa")
def qa_block(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    return _qa(request, db, user, conversation_id)


@router.post("/ui/conversations/{conversation_id}/qa/review")
async def qa_review(request: Request, conversation_id: int, user: CurrentUser, db: DB) -> HTMLResponse:
    form = await request.form()
    statuses = {k: str(form.get(f"item-{k}") or "na")[:8] for k in qa.ITEMS}
    try:
        qa.review(db, user.actor, conversation_id, statuses, str(form.get("comment") or "")[:4001])
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        db.rollback()
        return _qa(request, db, user, conversation_id, error=_error_text(exc), status_code=422)
    return _qa(request, db, user, conversation_id)
