"""Learning from agents (issue 12 §6): a customer's question the assistant could not answer, then answered by an
agent with an article, becomes a proposed question variant of that article; the KB editor accepts it with one
click, and the next customer who asks that way gets the answer from the bot.

Where the article comes from, in order:
- **link**: the agent's reply links a help-center article of this workspace (`/help/<workspace>/a/<slug>`:
  what the composer inserts from a suggestion, a template with a link, or a pasted address);
- **text**: the agent wrote their own words (or a template without a link): the reply is searched in the KB like
  a question, and an article is proposed only when the reply matches it confidently (`REPLY_MATCH`) *and* the
  customer's own question has that article among its first `QUESTION_TOP` hits — two independent readings that
  agree, so a reply about something else («передал коллегам») proposes nothing.

What is proposed: the customer's message that the assistant handed off or asked to clarify (not abuse, a request
for a person, a legal threat, an empty or courtesy message), the first agent reply after it, with e-mail
addresses, phone numbers and long numbers (orders, cards) masked — a variant is searchable text and can be shown
in the help center, so it must not carry a person's data. One proposal per article and wording.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role, Workspace
from otklik.accounts.service import Actor
from otklik.assistant.models import AssistantDecision
from otklik.conversations.models import AuthorKind, Conversation, Direction, Message
from otklik.knowledge import service as knowledge
from otklik.knowledge.models import Article, VariantProposal
from otklik.platform.db import utcnow
from otklik.platform.errors import Conflict, NotFound

log = logging.getLogger(__name__)

# The assistant's decisions whose question an agent's answer can teach: it did not answer, and the message is
# a question about the business (not abuse, not «позовите человека», not a threat, not «спасибо»).
LEARNABLE = frozenset({"not_covered", "low_confidence", "close_articles", "repeated_failure", "not_helped",
                       "language", "negative", "urgent", "public_comment", "no_written_reply"})
# The reply's own words must find the article at least this surely (the answer model's probability that the
# best hit is right, read on the reply as if it were a question) ...
REPLY_MATCH = 0.5
# ... and the customer's question must have it among its own first hits.
QUESTION_TOP = 5
MIN_CHARS, MAX_CHARS = 4, 400

_LINK = re.compile(r"/help/([A-Za-z0-9_-]+)/a/([A-Za-z0-9_.%-]+)")
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")
_PHONE = re.compile(r"(?<!\d)(?:\+?\d[\s()-]*){10,14}(?!\d)")
_NUMBER = re.compile(r"\d{4,}")
_FOLD = re.compile(r"[^\w]+")


def mask(text: str) -> str:
    """The customer's words without their data: e-mail, phone and long numbers (order, card) replaced."""
    text = _EMAIL.sub("e-mail", text)
    text = _PHONE.sub(" телефон ", text)
    text = _NUMBER.sub("N", text)
    return " ".join(text.split())


def fold(text: str) -> str:
    """One key per wording: case, punctuation and spacing do not make another proposal."""
    return _FOLD.sub(" ", text.lower().replace("ё", "е")).strip()[:500]


@dataclass
class Found:
    article: Article
    source: str
    confidence: float


def _question(session: Session, reply: Message) -> Message | None:
    """The customer's message the assistant did not answer, that this agent reply is the first agent answer to
    (an earlier agent reply after it answered it already, or something else)."""
    previous_agent = session.scalar(
        select(func.max(Message.id)).where(Message.conversation_id == reply.conversation_id,
                                           Message.id < reply.id,
                                           Message.author_kind == AuthorKind.agent.value,
                                           Message.direction == Direction.outbound.value,
                                           Message.is_internal.is_(False)))
    return session.scalar(
        select(Message)
        .join(AssistantDecision, AssistantDecision.message_id == Message.id)
        .where(Message.conversation_id == reply.conversation_id, Message.id < reply.id,
               Message.id > (previous_agent or 0),
               AssistantDecision.action.in_(("handoff", "clarify")),
               AssistantDecision.reason.in_(LEARNABLE))
        .order_by(Message.id.desc()).limit(1))


def _linked(session: Session, workspace: Workspace, text: str) -> Article | None:
    for ws_slug, slug in _LINK.findall(text):
        if ws_slug != workspace.slug:
            continue
        article = knowledge.get_article_by_slug(session, workspace.id, slug)
        if article is not None:
            return article
    return None


def _matched(session: Session, workspace_id: int, question: str, reply: str) -> tuple[Article, float] | None:
    from otklik.assistant.language import detect_language
    from otklik.assistant.pipeline import calibrated
    from otklik.assistant.service import kb_index

    index = kb_index(session, workspace_id)
    if not len(index):
        return None
    hits, signals = index.search_signals(reply, language=detect_language(reply), limit=3)
    if not hits or not hits[0].doc.id.startswith("a"):
        return None
    confidence = calibrated(hits, signals, detect_language(reply))
    if confidence < REPLY_MATCH:
        return None
    group = hits[0].doc.group or hits[0].doc.id
    asked = index.search(question, language=detect_language(question), limit=QUESTION_TOP)
    if not any((h.doc.group or h.doc.id) == group for h in asked):
        return None
    article = session.get(Article, int(hits[0].doc.id[1:]))
    return (article, confidence) if article is not None else None


def _in_language(session: Session, article: Article, language: str) -> Article:
    """The article's version in the customer's language, where the KB has one (a variant is searched with it)."""
    if article.language == language:
        return article
    original_id = article.translation_of_id or article.id
    same = session.scalar(select(Article).where(
        Article.workspace_id == article.workspace_id, Article.language == language,
        (Article.id == original_id) | (Article.translation_of_id == original_id)).limit(1))
    return same or article


@dataclass
class Plan:
    """What an agent reply teaches, read without writing (the KB search may build the workspace's index)."""

    workspace_id: int
    article_id: int
    text: str
    key: str
    source: str
    confidence: float
    conversation_id: int
    question_message_id: int
    reply_message_id: int
    agent_id: int | None


def plan_from_reply(session: Session, reply_id: int) -> Plan | None:
    """The proposal this agent reply teaches, or None; reads only."""
    reply = session.get(Message, reply_id)
    if (reply is None or reply.author_kind != AuthorKind.agent.value or reply.is_internal
            or reply.direction != Direction.outbound.value or not (reply.body_text or "").strip()):
        return None
    question = _question(session, reply)
    if question is None:
        return None
    text = mask(question.body_text or "")
    if not MIN_CHARS <= len(text) <= MAX_CHARS:
        return None
    workspace = session.get(Workspace, reply.workspace_id)
    if workspace is None:
        return None
    found: Found | None = None
    article = _linked(session, workspace, reply.body_text or "")
    if article is not None:
        found = Found(article, "link", 1.0)
    else:
        matched = _matched(session, workspace.id, question.body_text or "", reply.body_text or "")
        if matched is not None:
            found = Found(matched[0], "text", matched[1])
    if found is None:
        return None
    from otklik.assistant.language import detect_language

    article = _in_language(session, found.article, detect_language(text))
    key = fold(text)
    if not key or key in {fold(q) for q in (article.questions or [])}:
        return None
    return Plan(workspace.id, article.id, text, key, found.source, round(found.confidence, 4),
                reply.conversation_id, question.id, reply.id, reply.author_user_id)


def store(session: Session, plan: Plan) -> VariantProposal | None:
    """Stores the plan as a pending proposal, unless the same wording is proposed for the article already."""
    if session.scalar(select(VariantProposal.id).where(VariantProposal.workspace_id == plan.workspace_id,
                                                       VariantProposal.article_id == plan.article_id,
                                                       VariantProposal.key == plan.key)) is not None:
        return None
    proposal = VariantProposal(workspace_id=plan.workspace_id, article_id=plan.article_id, text=plan.text,
                               key=plan.key, source=plan.source, confidence=plan.confidence,
                               conversation_id=plan.conversation_id, question_message_id=plan.question_message_id,
                               reply_message_id=plan.reply_message_id, agent_id=plan.agent_id, status="pending")
    session.add(proposal)
    session.flush()
    return proposal


def propose_from_reply(session: Session, reply_id: int) -> VariantProposal | None:
    """The proposal this agent reply teaches, stored pending; None when it teaches nothing."""
    plan = plan_from_reply(session, reply_id)
    return store(session, plan) if plan is not None else None


# -- the KB editor's review queue ------------------------------------------------------------------------

def list_proposals(session: Session, actor: Actor, *, status: str = "pending", limit: int = 50,
                   before_id: int | None = None) -> list[tuple[VariantProposal, Article]]:
    stmt = (select(VariantProposal, Article).join(Article, Article.id == VariantProposal.article_id)
            .where(VariantProposal.workspace_id == actor.workspace_id, VariantProposal.status == status)
            .order_by(VariantProposal.id.desc()).limit(limit))
    if before_id is not None:
        stmt = stmt.where(VariantProposal.id < before_id)
    return [(p, a) for p, a in session.execute(stmt).all()]


def pending_count(session: Session, workspace_id: int) -> int:
    return int(session.scalar(select(func.count(VariantProposal.id)).where(
        VariantProposal.workspace_id == workspace_id, VariantProposal.status == "pending")) or 0)


def _get(session: Session, actor: Actor, proposal_id: int) -> VariantProposal:
    proposal = session.get(VariantProposal, proposal_id)
    if proposal is None or proposal.workspace_id != actor.workspace_id:
        raise NotFound("no such proposal in this workspace")
    if proposal.status != "pending":
        raise Conflict(f"this proposal is already {proposal.status}")
    return proposal


def accept(session: Session, actor: Actor, proposal_id: int, *, text: str | None = None,
           article_id: int | None = None) -> VariantProposal:
    """Add the (optionally edited) wording to the article's questions (a new article version, so it can be
    undone), or to another article the editor picked."""
    actor.require(Role.supervisor)
    proposal = _get(session, actor, proposal_id)
    target = proposal.article_id if article_id is None else article_id
    article = knowledge.get_article(session, actor, target)
    wording = " ".join((text if text is not None else proposal.text).split())
    if not MIN_CHARS <= len(wording) <= MAX_CHARS:
        from otklik.platform.errors import field_error

        raise field_error("text", f"must be {MIN_CHARS}–{MAX_CHARS} characters")
    questions = list(article.questions or [])
    if fold(wording) not in {fold(q) for q in questions}:
        knowledge.update_article(session, actor, article.id, {"questions": [*questions, wording]},
                                 note="вариант вопроса из ответа оператора")
    proposal.article_id, proposal.text = article.id, wording
    proposal.status, proposal.decided_by_id, proposal.decided_at = "accepted", actor.user_id, utcnow()
    return proposal


def reject(session: Session, actor: Actor, proposal_id: int) -> VariantProposal:
    actor.require(Role.supervisor)
    proposal = _get(session, actor, proposal_id)
    proposal.status, proposal.decided_by_id, proposal.decided_at = "rejected", actor.user_id, utcnow()
    return proposal


def as_dict(proposal: VariantProposal, article: Article | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": proposal.id, "text": proposal.text, "article_id": proposal.article_id, "source": proposal.source,
        "confidence": proposal.confidence, "status": proposal.status, "conversation_id": proposal.conversation_id,
        "agent_id": proposal.agent_id, "created_at": _iso(proposal.created_at),
        "decided_at": _iso(proposal.decided_at)}
    if article is not None:
        out["article_title"] = article.title
        out["article_slug"] = article.slug
    return out


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def conversation_of(session: Session, proposal: VariantProposal) -> Conversation | None:
    return session.get(Conversation, proposal.conversation_id) if proposal.conversation_id else None
