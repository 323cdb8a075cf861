"""Agent assist: suggested replies while an agent types — from the knowledge base (the same retrieval as the
assistant) and from the team's own past replies to similar customer messages (sentence-embedding similarity
over (customer message -> the agent's next reply) pairs, cached per workspace and extended incrementally).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from otklik.accounts.service import Actor
from otklik.assistant.language import detect_language
from otklik.assistant.pipeline import Settings, article_answer, calibrated
from otklik.assistant.retrieval import plain
from otklik.assistant.service import get_assistant, kb_index
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Message

MAX_PAIRS = 5000


@dataclass
class Suggestion:
    source: str
    title: str
    text: str
    score: float
    article_id: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "title": self.title, "text": self.text, "score": round(self.score, 4),
                "article_id": self.article_id}


@dataclass
class _Pairs:
    last_reply_id: int
    questions: list[str]
    replies: list[str]
    vecs: np.ndarray


_lock = threading.Lock()
_pairs: dict[int, _Pairs] = {}


def _team_pairs(session: Session, workspace_id: int) -> _Pairs:
    with _lock:
        cached = _pairs.get(workspace_id)
    last = cached.last_reply_id if cached else 0
    reply = aliased(Message)
    prev_id = (select(func.max(Message.id)).where(
        Message.conversation_id == reply.conversation_id, Message.id < reply.id,
        Message.author_kind == AuthorKind.customer.value).correlate(reply).scalar_subquery())
    rows = session.execute(
        select(reply.id, reply.body_text, Message.body_text)
        .join(Message, and_(Message.id == prev_id))
        .where(reply.workspace_id == workspace_id, reply.author_kind == AuthorKind.agent.value,
               reply.is_internal.is_(False), reply.id > last)
        .order_by(reply.id.desc()).limit(MAX_PAIRS)).all()[::-1]
    if cached is not None and not rows:
        return cached
    questions = [r[2] or "" for r in rows]
    replies = [r[1] or "" for r in rows]
    embedder = get_assistant().embedder
    vecs = embedder.encode([q[:1000] for q in questions]) if questions else np.zeros((0, 512), dtype=np.float32)
    if cached is not None:
        questions = (cached.questions + questions)[-MAX_PAIRS:]
        replies = (cached.replies + replies)[-MAX_PAIRS:]
        vecs = np.vstack([cached.vecs, vecs])[-MAX_PAIRS:]
    fresh = _Pairs(max([r[0] for r in rows], default=last), questions, replies, vecs)
    with _lock:
        _pairs[workspace_id] = fresh
    return fresh


def suggestions(session: Session, actor: Actor, conversation_id: int, *, q: str | None = None,
                limit: int = 3) -> list[Suggestion]:
    conversation = conversations.get_conversation(session, actor, conversation_id)
    query = (q or "").strip()
    if not query:
        last = session.scalar(select(Message.body_text).where(
            Message.conversation_id == conversation.id, Message.author_kind == AuthorKind.customer.value)
            .order_by(Message.id.desc()).limit(1))
        query = (last or "").strip()
    if not query:
        return []
    assistant = get_assistant()
    vec = assistant.embedder.encode([query[:2000]])[0]
    language = detect_language(query)
    out: list[Suggestion] = []
    index = kb_index(session, actor.workspace_id)
    hits, signals = index.search_signals(query, language=language, limit=limit, query_vec=vec)
    u = assistant.understander.understand(query, language, vec=vec)
    for i, hit in enumerate(hits):
        conf = calibrated(hits, signals, language) if i == 0 else max(0.0, min(1.0, hit.dense))
        out.append(Suggestion("kb", hit.doc.title, article_answer(hit, u, Settings(greeting=" ")).strip(),
                              conf, hit.doc.id))
    pairs = _team_pairs(session, actor.workspace_id)
    if len(pairs.questions):
        sims = pairs.vecs @ vec
        seen: set[str] = set()
        for j in np.argsort(-sims)[: limit * 3]:
            text = plain(pairs.replies[int(j)]).strip()
            if float(sims[j]) < 0.5 or not text or text in seen:
                continue
            seen.add(text)
            out.append(Suggestion("team", pairs.questions[int(j)][:120], text, float(sims[j])))
            if len(seen) >= limit:
                break
    return out


def clear_cache() -> None:
    with _lock:
        _pairs.clear()
