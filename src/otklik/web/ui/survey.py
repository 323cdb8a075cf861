"""The customer's survey page (/survey/<key>): the one-click link of a survey message records its rating at once,
then asks for a comment and how easy it was (CES). No sign-in: the signed key names one survey of one customer
and expires; a second answer replaces the first. The rules are the feedback domain's."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.deps import DB
from otklik.feedback import nps
from otklik.feedback import service as feedback
from otklik.feedback.models import SurveyAnswer
from otklik.platform.db import run_transaction
from otklik.platform.errors import DomainError, NotFound
from otklik.web.ui.deps import environment, request_language

router = APIRouter(include_in_schema=False)
HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self'; script-src 'none'; "
                                      "frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
           "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"}


def _page(request: Request, status_code: int = 200, **context: object) -> Response:
    html = environment(request_language(request)).get_template("survey.html").render(**context)
    return HTMLResponse(html, status_code=status_code, headers=HEADERS)


def _ces(db: Session, answer: SurveyAnswer) -> SurveyAnswer | None:
    return db.scalar(select(SurveyAnswer).where(SurveyAnswer.conversation_id == answer.conversation_id,
                                                SurveyAnswer.kind == "ces"))


def _texts(db: Session, answer: SurveyAnswer) -> dict[str, str] | None:
    """An NPS survey's question and «почему?» as the workspace wrote them (Settings → Surveys)."""
    return nps.question_texts(db, answer) if answer.kind == "nps" else None


@router.get("/survey/{token}")
def survey_page(request: Request, token: str) -> Response:
    def visit(session: Session) -> tuple[SimpleNamespace, int | None]:
        answer, score = feedback.answer_for_token(session, token[:200])
        if score is not None:
            feedback.record_answer(session, answer, score=score)  # the click is the answer
        ces = _ces(session, answer)
        return (SimpleNamespace(kind=answer.kind, score=answer.score, comment=answer.comment,
                                texts=_texts(session, answer)), ces.score if ces else None)

    try:  # a GET's request session only reads: the click is written in a unit of work of its own
        answer, ces = run_transaction(visit)
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    return _page(request, answer=answer, token=token, scale=range(feedback.SCALES[answer.kind][1],
                                                                feedback.SCALES[answer.kind][0] - 1, -1),
                 ces=ces, saved=False, error=None, texts=answer.texts)


@router.post("/survey/{token}")
def survey_submit(request: Request, token: str, db: DB, score: Annotated[str, Form(max_length=3)] = "",
                  ces: Annotated[str, Form(max_length=3)] = "",
                  comment: Annotated[str, Form(max_length=feedback.MAX_COMMENT)] = "") -> Response:
    try:
        answer, _ = feedback.answer_for_token(db, token[:200])
    except NotFound as exc:
        return _page(request, 404, missing=exc.message)
    scale = range(feedback.SCALES[answer.kind][1], feedback.SCALES[answer.kind][0] - 1, -1)
    try:
        feedback.record_answer(db, answer, score=int(score) if score.isdigit() else None, comment=comment)
        if ces.isdigit():
            feedback.record_ces(db, answer, int(ces))
    except DomainError as exc:
        return _page(request, 422, answer=answer, token=token, scale=scale, ces=None, saved=False,
                     error=exc.fields[0]["field"] if exc.fields else "score", texts=_texts(db, answer))
    return _page(request, answer=answer, token=token, scale=scale, ces=int(ces) if ces.isdigit() else None,
                 saved=True, error=None, texts=_texts(db, answer))
