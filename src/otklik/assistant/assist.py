"""Agent assist: suggested replies while an agent types — from the knowledge base (the same retrieval as the
assistant) and from the team's own past replies to similar customer messages (sentence-embedding similarity
over (customer message -> the agent's next reply) pairs, cached per workspace and extended incrementally).
"""

from __future__ import annotations

import dataclasses
import re
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
from otklik.conversations.models import AuthorKind, Conversation, Message

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
    customer_ids: list[int] = dataclasses.field(default_factory=list)  # whose conversation each reply was in


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
        select(reply.id, reply.body_text, Message.body_text, Conversation.customer_id)
        .join(Message, and_(Message.id == prev_id))
        .join(Conversation, Conversation.id == reply.conversation_id)
        .where(reply.workspace_id == workspace_id, reply.author_kind == AuthorKind.agent.value,
               reply.is_internal.is_(False), reply.id > last)
        .order_by(reply.id.desc()).limit(MAX_PAIRS)).all()[::-1]
    if cached is not None and not rows:
        return cached
    questions = [r[2] or "" for r in rows]
    replies = [r[1] or "" for r in rows]
    customer_ids = [int(r[3]) for r in rows]
    embedder = get_assistant().embedder
    vecs = embedder.encode([q[:1000] for q in questions]) if questions else np.zeros((0, 512), dtype=np.float32)
    if cached is not None:
        questions = (cached.questions + questions)[-MAX_PAIRS:]
        replies = (cached.replies + replies)[-MAX_PAIRS:]
        vecs = np.vstack([cached.vecs, vecs])[-MAX_PAIRS:]
        customer_ids = (cached.customer_ids + customer_ids)[-MAX_PAIRS:]
    fresh = _Pairs(max([r[0] for r in rows], default=last), questions, replies, vecs, customer_ids)
    with _lock:
        _pairs[workspace_id] = fresh
    return fresh


_PERSONAL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\+?\d[\d\s()-]{5,}\d|\d{4,}")


def _name_words(name: str) -> set[str]:
    return {w.lower() for w in re.findall(r"\w{3,}", name or "")}


def carries_someone_elses_data(text: str, *, other_name: str, own_name: str, own_texts: str) -> bool:
    """Whether a past reply to another customer names that customer or carries an address, a phone or a number
    (an order, a sum) that this conversation never mentioned: such a reply is never offered in one click."""
    words = {w.lower() for w in re.findall(r"\w+", text)}
    stems = {w[:-1] for w in words if len(w) >= 4}
    for name in _name_words(other_name) - _name_words(own_name):
        if name in words or (len(name) >= 4 and name[:-1] in stems):
            return True
    return any(m.group(0) not in own_texts for m in _PERSONAL.finditer(text))


def suggestions(session: Session, actor: Actor, conversation_id: int, *, q: str | None = None,
                limit: int = 3) -> list[Suggestion]:
    """Suggested replies for what the agent types (or, with nothing typed, the customer's last message): articles
    in the conversation's language, best first, then the team's past replies that carry no other customer's data."""
    conversation = conversations.get_conversation(session, actor, conversation_id)
    customer_texts = list(session.scalars(select(Message.body_text).where(
        Message.conversation_id == conversation.id, Message.author_kind == AuthorKind.customer.value)
        .order_by(Message.id.desc()).limit(20)))
    last = (customer_texts[0] if customer_texts else "") or ""
    query = (q or "").strip() or last.strip()
    if not query:
        return []
    # the conversation's language, not the agent's few typed words (a Latin order code flipped it to English)
    language = conversation.language or detect_language(last.strip() or query)
    assistant = get_assistant()
    vec = assistant.embedder.encode([query[:2000]])[0]
    out: list[Suggestion] = []
    index = kb_index(session, actor.workspace_id)
    hits, signals = index.search_signals(query, language=language, limit=limit * 2, query_vec=vec)
    if any(d.language == language for d in index.docs):
        versions = {(d.group or d.id, d.language): d for d in index.docs}
        local = []
        for hit in hits:
            if hit.doc.language != language:  # its translation, if the KB has one, else not offered
                translated = versions.get((hit.doc.group or hit.doc.id, language))
                if translated is None:
                    continue
                hit = dataclasses.replace(hit, doc=translated)
            local.append(hit)
        hits = local
    hits = hits[:limit]
    u = assistant.understander.understand(query, language, vec=vec)
    kb: list[Suggestion] = []
    for i, hit in enumerate(hits):
        conf = calibrated(hits, signals, language) if i == 0 else max(0.0, min(1.0, hit.dense))
        kb.append(Suggestion("kb", hit.doc.title, article_answer(hit, u, Settings(greeting=" ")).strip(),
                             conf, hit.doc.id))
    out += sorted(kb, key=lambda s: -s.score)
    pairs = _team_pairs(session, actor.workspace_id)
    if len(pairs.questions):
        names = conversations.customer_names(session, list({*pairs.customer_ids, conversation.customer_id}))
        own_name = names.get(conversation.customer_id, "")
        own_texts = " ".join(t or "" for t in customer_texts) + " " + (q or "")
        sims = pairs.vecs @ vec
        seen: set[str] = set()
        for j in np.argsort(-sims)[: limit * 6]:
            k = int(j)
            text = plain(pairs.replies[k]).strip()
            if float(sims[j]) < 0.5 or not text or text in seen:
                continue
            other = pairs.customer_ids[k] if k < len(pairs.customer_ids) else None
            if other != conversation.customer_id and carries_someone_elses_data(
                    text, other_name=names.get(other or 0, ""), own_name=own_name, own_texts=own_texts):
                continue
            seen.add(text)
            out.append(Suggestion("team", pairs.questions[k][:120], text, float(sims[j])))
            if len(seen) >= limit:
                break
    return out


def clear_cache() -> None:
    with _lock:
        _pairs.clear()
