"""Surveys: who gets one (docs/metrics.md «Surveys»), the signed one-click links, and recording an answer.

A survey is a row per conversation and kind, created when it is sent; an answer fills its score, and a second
answer replaces the first (so nothing counts twice). A link names the row and is signed with the server key
over the row's workspace, conversation and customer, and its expiry: it can answer that survey and no other.
A CSAT of 2 or less (NPS of 6 or less) opens a follow-up task for the conversation's team.
"""

from __future__ import annotations

import datetime as dt
import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, TeamMember, User
from otklik.accounts.service import Actor, record_audit
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, ConversationTag, Message, Status
from otklik.customers.models import Customer
from otklik.customers.tasks import create_task
from otklik.feedback.models import SurveyAnswer
from otklik.platform.config import get_settings
from otklik.platform.crypto import signature
from otklik.platform.db import utcnow
from otklik.platform.errors import NotFound, field_error
from otklik.platform.events import Event, after_commit

SCALES = {"csat": (1, 5), "ces": (1, 7), "nps": (0, 10)}
LOW = {"csat": 2, "nps": 6}  # issue 15: a low score opens a follow-up and shows red
LINK_TTL = dt.timedelta(days=30)
QUIET_PERIOD = dt.timedelta(days=7)  # one CSAT per customer a week at most: a survey per ticket tires people
TOO_LATE = dt.timedelta(days=1)
OPT_OUT_ATTRIBUTE = "no_surveys"  # a customer attribute: true means never ask
SKIP_TAGS = frozenset({"spam"})
MAX_COMMENT = 2000
PURPOSE = "survey-link"
QUESTION = {"csat": "Насколько вы довольны обслуживанием? Оцените от 1 до 5:",
            "ces": "Насколько легко было решить вопрос? (1–7)",
            "nps": "Порекомендуете ли вы нас друзьям? (0–10)"}


@dataclass(frozen=True)
class LinkTarget:
    answer_id: int
    score: int | None
    expires: int


def _signed(answer: SurveyAnswer, expires: int, score: int | None) -> str:
    message = f"{answer.id}.{answer.workspace_id}.{answer.conversation_id}.{answer.customer_id}.{expires}.{score}"
    return signature(message, purpose=PURPOSE)


def link_token(answer: SurveyAnswer, score: int | None = None, *, now: dt.datetime | None = None) -> str:
    """`<answer id>.<expiry, unix seconds>.<score or ->.<signature>`: one link per rating in an e-mail."""
    expires = int(((now or utcnow()) + LINK_TTL).timestamp())
    return f"{answer.id}.{expires}.{'-' if score is None else score}.{_signed(answer, expires, score)}"


def answer_for_token(session: Session, token: str, *, now: dt.datetime | None = None) -> tuple[SurveyAnswer,
                                                                                              int | None]:
    """The survey a link answers, and the score the link carries; NotFound for a forged or expired link."""
    parts = (token or "").split(".")
    if len(parts) != 4 or not parts[0].isdigit() or not parts[1].isdigit():
        raise NotFound("this survey link is not valid")
    score = None if parts[2] == "-" else int(parts[2]) if parts[2].isdigit() else -1
    answer = session.get(SurveyAnswer, int(parts[0]))
    if answer is None or score == -1 or not hmac.compare_digest(_signed(answer, int(parts[1]), score), parts[3]):
        raise NotFound("this survey link is not valid")
    if int(parts[1]) < (now or utcnow()).timestamp():
        raise NotFound("this survey link has expired")
    return answer, score


def survey_url(answer: SurveyAnswer, score: int | None = None) -> str:
    base = (get_settings().public_url or f"http://{get_settings().host}:{get_settings().port}").rstrip("/")
    return f"{base}/survey/{link_token(answer, score)}"


def why_not(session: Session, conversation: Conversation, *, now: dt.datetime) -> str | None:
    """The reason a solved conversation gets no CSAT survey, or None when it gets one."""
    if conversation.status not in (Status.solved.value, Status.closed.value):
        return "not solved"
    if conversation.merged_into_id is not None:
        return "merged"
    if conversation.mystery:
        return "mystery shopper"  # a supervisor's test run: no customer to ask (docs/qa.md «Mystery shopping»)
    if conversation.solved_at is not None and conversation.solved_at < now - TOO_LATE:
        return "solved long ago"  # an import or a replayed history: asking now about last month would confuse
    tags = set(session.scalars(select(ConversationTag.tag).where(
        ConversationTag.conversation_id == conversation.id)))
    if tags & SKIP_TAGS:
        return "spam"
    if session.scalar(select(SurveyAnswer.id).where(SurveyAnswer.conversation_id == conversation.id,
                                                    SurveyAnswer.kind == "csat")) is not None:
        return "already sent"
    customer = session.get(Customer, conversation.customer_id)
    if customer is None or (customer.attributes or {}).get(OPT_OUT_ATTRIBUTE) in (True, "true", "yes", 1):
        return "opted out"
    recent = session.scalar(select(SurveyAnswer.id).where(
        SurveyAnswer.workspace_id == conversation.workspace_id, SurveyAnswer.customer_id == conversation.customer_id,
        SurveyAnswer.sent_at > now - QUIET_PERIOD).limit(1))
    if recent is not None:
        return "quiet period"
    if not session.scalar(select(Message.id).where(
            Message.conversation_id == conversation.id,
            Message.author_kind.in_((AuthorKind.agent.value, AuthorKind.assistant.value)),
            Message.is_internal.is_(False)).limit(1)):
        return "never answered"  # nobody replied: asking how the service was would be a mockery
    return None


def survey_text(answer: SurveyAnswer) -> str:
    low, high = SCALES[answer.kind]
    links = "\n".join(f"{score} — {survey_url(answer, score)}" for score in range(high, low - 1, -1))
    return f"{QUESTION[answer.kind]}\n{links}"


def send_csat(session: Session, workspace_id: int, conversation_id: int, *, now: dt.datetime | None = None
              ) -> SurveyAnswer | None:
    """Send the CSAT survey of a solved conversation in its channel (idempotent); None when the rules say no."""
    now = now or utcnow()
    conversation = session.scalar(select(Conversation).where(
        Conversation.id == conversation_id, Conversation.workspace_id == workspace_id).with_for_update())
    if conversation is None or why_not(session, conversation, now=now) is not None:
        return None
    answer = SurveyAnswer(workspace_id=workspace_id, conversation_id=conversation.id,
                          customer_id=conversation.customer_id, kind="csat", channel=conversation.channel,
                          sent_at=now, comment="")
    session.add(answer)
    session.flush()
    conversations.reply(session, Actor.system(workspace_id, kind="survey"), conversation.id,
                        text=survey_text(answer), author=AuthorKind.system, path="survey",
                        meta={"survey": {"id": answer.id, "kind": "csat", "token": link_token(answer, now=now),
                                         "scale": list(SCALES["csat"])}})
    return answer  # a reply leaves a solved conversation solved (conversations.status_after_public_reply)


def record_answer(session: Session, answer: SurveyAnswer, *, score: int | None = None, comment: str | None = None,
                  now: dt.datetime | None = None) -> SurveyAnswer:
    """Store a score and/or a comment; a second answer replaces the first. A low score opens a follow-up."""
    low, high = SCALES[answer.kind]
    if score is not None:
        if isinstance(score, bool) or not isinstance(score, int) or not low <= score <= high:
            raise field_error("score", f"a whole number from {low} to {high}")
        answer.score = score
    if comment is not None:
        comment = comment.strip()
        if len(comment) > MAX_COMMENT:
            raise field_error("comment", f"at most {MAX_COMMENT} characters")
        answer.comment = comment
    if answer.score is None:
        raise field_error("score", "choose a rating first")
    answer.answered_at = now or utcnow()
    actor = Actor.system(answer.workspace_id, kind="customer")
    record_audit(session, actor, entity_type="survey", entity_id=answer.id, action="answered",
                 after={"kind": answer.kind, "score": answer.score, "conversation_id": answer.conversation_id})
    if answer.kind in LOW and answer.score <= LOW[answer.kind] and answer.follow_up_task_id is None:
        answer.follow_up_task_id = _follow_up(session, answer).id
    after_commit(session, Event("survey.answered", answer.workspace_id, answer_data(answer)))
    return answer


def _follow_up(session: Session, answer: SurveyAnswer) -> Any:
    conversation = session.get(Conversation, answer.conversation_id)
    lead = None
    if conversation is not None and conversation.team_id is not None:
        lead = session.scalar(select(User.id).join(TeamMember, TeamMember.user_id == User.id).where(
            TeamMember.team_id == conversation.team_id, User.workspace_id == answer.workspace_id,
            User.role.in_((Role.supervisor.value, Role.admin.value))).order_by(User.id).limit(1))
    number = conversation.number if conversation is not None else answer.conversation_id
    return create_task(session, answer.workspace_id, customer_id=answer.customer_id,
                       conversation_id=answer.conversation_id, assignee_id=lead,
                       title=f"Низкая оценка {answer.kind.upper()} {answer.score} по обращению #{number}: "
                             "связаться с клиентом",
                       note=answer.comment[:1000], due_at=utcnow() + dt.timedelta(days=1))


def answer_data(answer: SurveyAnswer) -> dict[str, Any]:
    return {"id": answer.id, "conversation_id": answer.conversation_id, "customer_id": answer.customer_id,
            "kind": answer.kind, "score": answer.score, "comment": answer.comment,
            "answered_at": answer.answered_at.isoformat() if answer.answered_at else None,
            "sent_at": answer.sent_at.isoformat(), "channel": answer.channel,
            "low": answer.score is not None and answer.kind in LOW and answer.score <= LOW[answer.kind],
            "follow_up_task_id": answer.follow_up_task_id}


def answers_of(session: Session, actor: Actor, conversation_id: int) -> Sequence[SurveyAnswer]:
    conversations.get_conversation(session, actor, conversation_id)  # 404 across workspaces
    return session.scalars(select(SurveyAnswer).where(SurveyAnswer.workspace_id == actor.workspace_id,
                                                      SurveyAnswer.conversation_id == conversation_id)
                           .order_by(SurveyAnswer.id)).all()


def answer_as_widget_visitor(session: Session, workspace_id: int, customer_id: int, answer_id: int, *,
                             score: int | None, comment: str | None) -> SurveyAnswer:
    """The widget's inline answer: only the visitor's own survey in this workspace."""
    answer = session.get(SurveyAnswer, answer_id)
    if answer is None or answer.workspace_id != workspace_id or answer.customer_id != customer_id:
        raise NotFound(f"survey {answer_id} not found")
    return record_answer(session, answer, score=score, comment=comment)


def record_ces(session: Session, csat: SurveyAnswer, score: int) -> SurveyAnswer:
    """The CES question asked beside a CSAT answer: its own row for the same conversation (replaced on change)."""
    ces = session.scalar(select(SurveyAnswer).where(SurveyAnswer.conversation_id == csat.conversation_id,
                                                    SurveyAnswer.kind == "ces"))
    if ces is None:
        ces = SurveyAnswer(workspace_id=csat.workspace_id, conversation_id=csat.conversation_id,
                           customer_id=csat.customer_id, kind="ces", channel=csat.channel, sent_at=csat.sent_at,
                           comment="")
        session.add(ces)
        session.flush()
    return record_answer(session, ces, score=score)
