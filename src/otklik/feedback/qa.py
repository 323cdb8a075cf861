"""Automatic quality scoring of solved conversations (docs/qa.md): one scorecard, each item with its evidence.

Seed 002 asks a team lead to listen to 5–10 conversations a week for irritating words, re-asks and whether a
solution was offered; this reads every solved conversation the same way, so the lead's time goes to the sample
worth a look (the lowest scores, the low CSAT, a random few) and the manual review uses the same scorecard —
the agreement between the two says how far the automatic score can be trusted.

Scored by a job after commit when a conversation becomes solved (`jobs.on_conversation_updated`), again on each
later solve; stored per conversation (`qa_scores`, kind `auto`; a supervisor's review is kind `manual`). Reads
only the conversation's own rows (messages, SLA timers, surveys, compensations, the assistant's
understanding of the customer's messages): ≤ 20 ms a conversation (bench/qa.py).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.models import Role
from otklik.accounts.service import Actor
from otklik.assistant.models import AssistantDecision
from otklik.assistant.understanding import entities
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, Message
from otklik.conversations.sla import SlaTimer
from otklik.feedback.models import SurveyAnswer
from otklik.guardrails.compensation_models import Compensation
from otklik.guardrails.phrase_rules import engine_for
from otklik.platform.db import Base, UTCDateTime, utcnow
from otklik.platform.errors import field_error

# the scorecard: key → points (docs/qa.md)
ITEMS: dict[str, int] = {"first_response": 15, "resolution": 10, "greeting": 5, "closing": 5,
                         "forbidden_phrases": 15, "re_asks": 10, "solution": 20, "sentiment": 5, "transfers": 5,
                         "csat": 10}  # 100 in all
STATUSES = ("pass", "partial", "fail", "na")
CREDIT = {"pass": 1.0, "partial": 0.5, "fail": 0.0}
# seed 002's targets when no SLA policy set one: first response < 2 h in chats, < 24 h by e-mail; resolution
# within 3 days
FIRST_TARGET = {"email": dt.timedelta(hours=24)}
FIRST_DEFAULT = dt.timedelta(hours=2)
RESOLUTION_DEFAULT = dt.timedelta(days=3)

GREETING = re.compile(r"\b(здравствуйте|добр(?:ый|ое|ого)\s+(?:день|утро|вечер|дня|утра|вечера)|привет\w*|"
                      r"приветствую|hello|hi|good\s+(?:morning|afternoon|evening)|dear)\b", re.I)
CLOSING = re.compile(r"(чем\s+(?:ещ[её]\s+)?(?:могу|можем)\s+помочь|хорошего\s+(?:дня|вечера)|всего\s+доброго|"
                     r"обращайтесь|рад[аы]?\s+(?:был[аи]?\s+)?помочь|спасибо\s+за\s+обращение|до\s+свидания|"
                     r"have\s+a\s+(?:nice|great|good)\s+day|anything\s+else|glad\s+to\s+help|best\s+regards|"
                     r"thank\s+you\s+for\s+contacting)", re.I)
ASKS = {"order": re.compile(r"номер\w*\s+(?:ваш\w*\s+)?заказа|order\s+(?:number|no\.?|#|id)", re.I),
        "phone": re.compile(r"(?:номер\w*\s+)?телефон\w*|phone\s+number", re.I),
        "email": re.compile(r"e-?mail|электронн\w+\s+почт\w+|\bпочт[уы]\b", re.I)}
REQUEST = re.compile(r"\?|\b(укажите|напишите|подскажите|пришлите|сообщите|уточните|продиктуйте|оставьте|назовите|"
                     r"provide|send|share|tell\s+me|what\s+is|could\s+you|please\s+give)\b", re.I)
NEXT_STEP = re.compile(r"\b(оформи(?:л|ли|м)|отправи(?:л|ли|м)|верн[её]м|вернули|замени(?:м|ли)|перезвоним|"
                       r"передал[аи]?|исправи(?:л|ли|м)|начислил[аи]?|компенсац\w+|возврат\w*|скидк\w+|промокод\w*|"
                       r"инструкци\w+|ссылк\w+|will\s+(?:send|refund|replace|call|fix)|refund\w*|replac\w+|"
                       r"here\s+is|i\s+have\s+(?:sent|fixed|arranged)|voucher|discount)\b", re.I)
SENTIMENT_RANK = {"negative": 0, "neutral": 1, "positive": 2}


class QaScore(Base):
    """A conversation's scorecard: the automatic one (`auto`) or a supervisor's review (`manual`)."""

    __tablename__ = "qa_scores"
    __table_args__ = (UniqueConstraint("conversation_id", "kind"),
                      Index("ix_qa_ws_agent", "workspace_id", "kind", "agent_id", "computed_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(8))  # auto / manual
    agent_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    reviewer_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    score: Mapped[float | None] = mapped_column(Float)  # 0–100 over the items that apply
    items: Mapped[str] = mapped_column(Text, default="{}")  # JSON: key → {"status", "evidence", "note"}
    comment: Mapped[str] = mapped_column(Text, default="")
    computed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass
class Item:
    status: str  # pass / partial / fail / na
    note: str = ""
    evidence: tuple[int, ...] = ()  # message ids

    def as_dict(self) -> dict[str, Any]:
        return {"status": self.status, "note": self.note, "evidence": list(self.evidence)}


def total(items: dict[str, Item] | dict[str, dict[str, Any]]) -> float | None:
    """0–100: the points earned over the points of the items that apply; None when none applies."""
    earned = possible = 0.0
    for key, item in items.items():
        status = item.status if isinstance(item, Item) else item["status"]
        if status == "na" or key not in ITEMS:
            continue
        possible += ITEMS[key]
        earned += ITEMS[key] * CREDIT[status]
    return None if not possible else round(100 * earned / possible, 1)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


@dataclass
class Facts:
    """What the scorecard reads about one conversation besides its own row: its messages (oldest first, as
    `Said`), its SLA timers, whether a compensation was given, the customer's moods the assistant understood,
    the CSAT answer. Loaded for one conversation (`facts_of`) or for a batch at once (`facts_for`)."""

    messages: list[Said]
    timers: dict[str, Any]  # kind → (breached_at, target_minutes)
    compensated: bool = False
    moods: list[tuple[int | None, str]] = field(default_factory=list)
    csat: int | None = None


@dataclass
class Said:
    id: int
    author_kind: str
    is_internal: bool
    body_text: str
    meta: dict[str, Any]
    created_at: dt.datetime


def _said(row: Any) -> Said:
    return Said(row.id, row.author_kind, bool(row.is_internal), row.body_text or "", row.meta or {}, row.created_at)


MESSAGE_COLUMNS = (Message.id, Message.conversation_id, Message.author_kind, Message.is_internal, Message.body_text,
                   Message.meta, Message.created_at)


def facts_for(session: Session, conversation_ids: list[int]) -> dict[int, Facts]:
    """The facts of many conversations in one read of each table (the re-scoring's batches: ~6 queries for a
    batch instead of ~7 a conversation)."""
    out = {cid: Facts(messages=[], timers={}) for cid in conversation_ids}
    if not conversation_ids:
        return out
    ids = list(out)
    for row in session.execute(select(*MESSAGE_COLUMNS).where(Message.conversation_id.in_(ids))
                               .order_by(Message.conversation_id, Message.created_at, Message.id)):
        out[row.conversation_id].messages.append(_said(row))
    for cid, kind, breached_at, target in session.execute(
            select(SlaTimer.conversation_id, SlaTimer.kind, SlaTimer.breached_at, SlaTimer.target_minutes).where(
                SlaTimer.conversation_id.in_(ids), SlaTimer.kind.in_(("first_response", "resolution")))):
        out[cid].timers[kind] = (breached_at, target)
    for cid in session.scalars(select(Compensation.conversation_id).where(
            Compensation.conversation_id.in_(ids), Compensation.status != "rejected").distinct()):
        out[cid].compensated = True
    for cid, message_id, details in session.execute(
            select(AssistantDecision.conversation_id, AssistantDecision.message_id, AssistantDecision.details)
            .where(AssistantDecision.conversation_id.in_(ids)).order_by(AssistantDecision.id)):
        mood = ((details or {}).get("understanding") or {}).get("sentiment")
        if mood in SENTIMENT_RANK:
            out[cid].moods.append((message_id, str(mood)))
    for cid, value in session.execute(select(SurveyAnswer.conversation_id, SurveyAnswer.score).where(
            SurveyAnswer.conversation_id.in_(ids), SurveyAnswer.kind == "csat")):
        out[cid].csat = value
    return out


def score(session: Session, conversation: Conversation, facts: Facts | None = None,
          engine: Any = None) -> dict[str, Item]:
    """The scorecard of one conversation from its own rows (`facts`: already read, for a batch)."""
    if facts is None:
        facts = facts_for(session, [conversation.id])[conversation.id]
    public = [m for m in facts.messages if not m.is_internal]
    agent = [m for m in public if m.author_kind == AuthorKind.agent.value]
    timers = facts.timers
    items: dict[str, Item] = {}
    created = _aware(conversation.created_at)
    # 1. the first response against the SLA's target (else seed 002's: 2 h in chats, 24 h by e-mail)
    if not agent:
        items["first_response"] = Item("na", "no person replied")
    else:
        first = agent[0]
        timer = timers.get("first_response")
        if timer is not None:
            late = timer[0] is not None
            note = f"SLA target {timer[1]} min"
        else:
            target = FIRST_TARGET.get(conversation.channel, FIRST_DEFAULT)
            late = _aware(first.created_at) - created > target
            note = f"target {int(target.total_seconds() // 3600)} h"
        items["first_response"] = Item("fail" if late else "pass", note, (first.id,))
    # 2. resolution
    if conversation.solved_at is None:
        items["resolution"] = Item("na", "not solved")
    else:
        timer = timers.get("resolution")
        if timer is not None:
            late = timer[0] is not None
            note = f"SLA target {timer[1]} min"
        else:
            late = _aware(conversation.solved_at) - created > RESOLUTION_DEFAULT
            note = "target 3 days"
        items["resolution"] = Item("fail" if late else "pass", note, (public[-1].id,) if public else ())
    # 3–4. greeting in the first reply, closing in the last
    if agent:
        items["greeting"] = Item("pass" if GREETING.search(agent[0].body_text) else "fail", "", (agent[0].id,))
        items["closing"] = Item("pass" if CLOSING.search(agent[-1].body_text) else "fail", "", (agent[-1].id,))
    else:
        items["greeting"] = items["closing"] = Item("na", "no person replied")
    # 5. forbidden phrases (the phrase checker's rules): a «never» fails, an «avoid» halves
    if agent:
        engine = engine or engine_for(session, conversation.workspace_id)
        never: list[int] = []
        avoid: list[int] = []
        found: list[str] = []
        for m in agent:
            for match in engine.check(m.body_text):
                (never if match.severity == "never" else avoid).append(m.id)
                found.append(match.phrase)
        status = "fail" if never else "partial" if avoid else "pass"
        items["forbidden_phrases"] = Item(status, ", ".join(dict.fromkeys(found))[:200],
                                          tuple(dict.fromkeys(never + avoid)))
    else:
        items["forbidden_phrases"] = Item("na", "no person replied")
    # 6. re-asks: the agent asks for an order number / phone / e-mail the customer already wrote
    if agent:
        given: dict[str, int] = {}  # what → the customer's message that gave it
        re_asked: list[int] = []
        notes: list[str] = []
        for m in public:
            if m.author_kind == AuthorKind.customer.value:
                for what in entities(m.body_text):
                    if what in ASKS:
                        given.setdefault(what, m.id)
            elif given and m.author_kind == AuthorKind.agent.value and REQUEST.search(m.body_text):
                for what, pattern in ASKS.items():
                    if what in given and pattern.search(m.body_text):
                        re_asked += [given[what], m.id]
                        notes.append(what)
        items["re_asks"] = Item("fail" if re_asked else "pass", ", ".join(dict.fromkeys(notes)),
                                tuple(dict.fromkeys(re_asked)))
    else:
        items["re_asks"] = Item("na", "no person replied")
    # 7. a solution offered: an article link, a template, a compensation, a next step
    offered = [m.id for m in agent if "/help/" in m.body_text or m.meta.get("template_id")
               or NEXT_STEP.search(m.body_text)]
    if facts.compensated:
        items["solution"] = Item("pass", "compensation", tuple(offered[:3]))
    elif offered:
        items["solution"] = Item("pass", "", tuple(offered[:3]))
    else:
        items["solution"] = Item("fail" if agent else "na", "" if agent else "no person replied")
    # 8. the customer's mood at the start vs the end (the assistant's understanding of their messages)
    moods = facts.moods
    if len(moods) < 2:
        items["sentiment"] = Item("na", "one customer message understood or none")
    else:
        start, end = SENTIMENT_RANK[moods[0][1]], SENTIMENT_RANK[moods[-1][1]]
        items["sentiment"] = Item("pass" if end >= start else "fail", f"{moods[0][1]} → {moods[-1][1]}",
                                  tuple(m for m, _ in (moods[0], moods[-1]) if m is not None))
    # 9. transfers: one hand-over is routine, two or more is a customer passed around
    n = conversation.transfer_count or 0
    items["transfers"] = Item("pass" if n <= 1 else "fail", f"{n} transfer(s)")
    # 10. CSAT when the customer answered
    csat = facts.csat
    if csat is None:
        items["csat"] = Item("na", "no answer")
    else:
        items["csat"] = Item("pass" if csat >= 4 else "partial" if csat == 3 else "fail", f"CSAT {csat}")
    return items


def _store(row: QaScore | None, session: Session, conversation: Conversation, items: dict[str, Item],
           now: dt.datetime) -> QaScore:
    if row is None:
        row = QaScore(workspace_id=conversation.workspace_id, conversation_id=conversation.id, kind="auto")
        session.add(row)
    row.agent_id = conversation.assignee_id
    row.items = json.dumps({k: v.as_dict() for k, v in items.items()}, ensure_ascii=False)
    row.score = total(items)
    row.computed_at = now
    return row


def store_auto(session: Session, workspace_id: int, conversation_id: int) -> QaScore | None:
    """Score a solved conversation and store it (replacing its earlier automatic score)."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.workspace_id != workspace_id or conversation.solved_at is None:
        return None
    items = score(session, conversation)
    row = session.scalar(select(QaScore).where(QaScore.conversation_id == conversation_id, QaScore.kind == "auto"))
    row = _store(row, session, conversation, items, utcnow())
    session.flush()
    return row


RESCORE_BATCH = 200


def store_auto_many(session: Session, workspace_id: int, conversation_ids: list[int]) -> int:
    """Score and store a batch of the workspace's solved conversations with one read of each table (the same
    scorecards as `store_auto` one by one); returns how many were scored."""
    conversations = [c for c in session.scalars(select(Conversation).where(
        Conversation.id.in_(conversation_ids), Conversation.workspace_id == workspace_id,
        Conversation.solved_at.is_not(None)))]
    if not conversations:
        return 0
    ids = [c.id for c in conversations]
    facts = facts_for(session, ids)
    rows = {r.conversation_id: r for r in session.scalars(select(QaScore).where(
        QaScore.conversation_id.in_(ids), QaScore.kind == "auto"))}
    engine = engine_for(session, workspace_id)
    now = utcnow()
    for conversation in conversations:
        _store(rows.get(conversation.id), session, conversation,
               score(session, conversation, facts[conversation.id], engine), now)
    session.flush()
    return len(conversations)


def solved_ids_after(session: Session, workspace_id: int, after: int, limit: int = RESCORE_BATCH) -> list[int]:
    """The next batch of the workspace's solved conversations by id (the re-scoring's keyset)."""
    return list(session.scalars(select(Conversation.id).where(
        Conversation.workspace_id == workspace_id, Conversation.id > after, Conversation.solved_at.is_not(None))
        .order_by(Conversation.id).limit(limit)))


def scores_of(session: Session, actor: Actor, conversation_id: int) -> dict[str, Any]:
    conversations.get_conversation(session, actor, conversation_id)  # 404 across workspaces
    out: dict[str, Any] = {"auto": None, "manual": None, "items": list(ITEMS)}
    for row in session.scalars(select(QaScore).where(QaScore.conversation_id == conversation_id)):
        out[row.kind] = score_data(row)
    if out["auto"] and out["manual"]:
        out["agreement"] = agreement_of(out["auto"]["items"], out["manual"]["items"])
    return out


def score_data(row: QaScore) -> dict[str, Any]:
    return {"kind": row.kind, "score": row.score, "items": json.loads(row.items or "{}"), "agent_id": row.agent_id,
            "reviewer_id": row.reviewer_id, "comment": row.comment, "computed_at": row.computed_at.isoformat()}


def agreement_of(auto: dict[str, Any], manual: dict[str, Any]) -> float | None:
    """The share of items both scored (not n/a in either) with the same status."""
    both = [k for k in ITEMS if auto.get(k, {}).get("status", "na") != "na"
            and manual.get(k, {}).get("status", "na") != "na"]
    if not both:
        return None
    return round(sum(auto[k]["status"] == manual[k]["status"] for k in both) / len(both), 4)


def review(session: Session, actor: Actor, conversation_id: int, statuses: dict[str, str],
           comment: str = "") -> QaScore:
    """A supervisor's scorecard of the conversation (the same items; replaces their earlier review)."""
    actor.require(Role.supervisor)
    conversation = conversations.get_conversation(session, actor, conversation_id)
    unknown = sorted(set(statuses) - set(ITEMS))
    if unknown:
        raise field_error(f"items.{unknown[0]}", f"not a scorecard item: one of {', '.join(ITEMS)}")
    for key, status in statuses.items():
        if status not in STATUSES:
            raise field_error(f"items.{key}", f"one of {', '.join(STATUSES)}")
    if len(comment) > 4000:
        raise field_error("comment", "at most 4000 characters")
    auto = session.scalar(select(QaScore).where(QaScore.conversation_id == conversation_id, QaScore.kind == "auto"))
    evidence = json.loads(auto.items) if auto is not None else {}
    items = {k: {"status": statuses.get(k, "na"), "note": "",
                 "evidence": (evidence.get(k) or {}).get("evidence", [])} for k in ITEMS}
    row = session.scalar(select(QaScore).where(QaScore.conversation_id == conversation_id,
                                               QaScore.kind == "manual"))
    if row is None:
        row = QaScore(workspace_id=actor.workspace_id, conversation_id=conversation_id, kind="manual")
        session.add(row)
    row.agent_id = conversation.assignee_id
    row.reviewer_id = actor.user_id
    row.items = json.dumps(items, ensure_ascii=False)
    row.score = total(items)
    row.comment = comment.strip()
    row.computed_at = utcnow()
    session.flush()
    return row


def per_agent(session: Session, workspace_id: int, lo: dt.datetime, hi: dt.datetime) -> dict[str, Any]:
    """Per agent, the automatic scores of conversations started in [lo, hi): how many, the mean, the lowest; the
    manual reviews and the agreement of the two on the conversations both scored."""
    from otklik.accounts.models import User

    rows = session.execute(select(QaScore.kind, QaScore.agent_id, QaScore.conversation_id, QaScore.score,
                                  QaScore.items).join(Conversation, Conversation.id == QaScore.conversation_id)
                           .where(QaScore.workspace_id == workspace_id, Conversation.workspace_id == workspace_id,
                                  Conversation.created_at >= lo, Conversation.created_at < hi,
                                  Conversation.mystery.is_(False))).all()  # mystery runs: on their own page
    names = dict(session.execute(select(User.id, User.name).where(User.workspace_id == workspace_id)).all())
    agents: dict[int | None, dict[str, Any]] = {}
    by_conv: dict[int, dict[str, Any]] = {}
    for kind, agent_id, cid, value, items in rows:
        a = agents.setdefault(agent_id, {"agent_id": agent_id, "name": names.get(agent_id or 0, "—"), "scored": 0,
                                         "sum": 0.0, "lowest": None, "reviewed": 0, "manual_sum": 0.0})
        if value is None:
            continue
        if kind == "auto":
            a["scored"] += 1
            a["sum"] += value
            a["lowest"] = value if a["lowest"] is None else min(a["lowest"], value)
        else:
            a["reviewed"] += 1
            a["manual_sum"] += value
        by_conv.setdefault(cid, {})[kind] = (value, json.loads(items or "{}"))
    out = []
    for a in agents.values():
        out.append({"agent_id": a["agent_id"], "name": a["name"], "scored": a["scored"],
                    "score_avg": round(a["sum"] / a["scored"], 1) if a["scored"] else None, "lowest": a["lowest"],
                    "reviewed": a["reviewed"],
                    "manual_avg": round(a["manual_sum"] / a["reviewed"], 1) if a["reviewed"] else None})
    pairs = [v for v in by_conv.values() if "auto" in v and "manual" in v]
    shares = [s for s in (agreement_of(v["auto"][1], v["manual"][1]) for v in pairs) if s is not None]
    return {"agents": sorted(out, key=lambda a: (a["score_avg"] is None, a["score_avg"] or 0)),
            "reviewed": len(pairs),
            "item_agreement": round(sum(shares) / len(shares), 4) if shares else None,
            "score_difference_avg": round(sum(abs(v["auto"][0] - v["manual"][0]) for v in pairs) / len(pairs), 1)
            if pairs else None}


def sample(session: Session, actor: Actor, n: int = 10) -> list[dict[str, Any]]:
    """Conversations worth a manual review, not reviewed yet: a third the lowest automatic scores, a third the
    low CSAT (1–2), the rest at random."""
    import random

    actor.require(Role.supervisor)
    if not 1 <= n <= 100:
        raise field_error("n", "from 1 to 100")
    reviewed = select(QaScore.conversation_id).where(QaScore.workspace_id == actor.workspace_id,
                                                     QaScore.kind == "manual")
    base = select(QaScore.conversation_id, QaScore.score).where(
        QaScore.workspace_id == actor.workspace_id, QaScore.kind == "auto", QaScore.conversation_id.not_in(reviewed))
    picked: dict[int, str] = {}
    for cid, _ in session.execute(base.order_by(QaScore.score, QaScore.id).limit(max(1, n // 3))):
        picked.setdefault(cid, "lowest")
    low = select(SurveyAnswer.conversation_id).where(SurveyAnswer.workspace_id == actor.workspace_id,
                                                     SurveyAnswer.kind == "csat", SurveyAnswer.score <= 2)
    for cid, _ in session.execute(base.where(QaScore.conversation_id.in_(low)).order_by(QaScore.id.desc())
                                  .limit(max(1, n // 3))):
        picked.setdefault(cid, "low_csat")
    pool = [cid for cid, _ in session.execute(base.order_by(QaScore.id.desc()).limit(500)) if cid not in picked]
    for cid in random.sample(pool, min(len(pool), n - len(picked))) if len(picked) < n else []:
        picked[cid] = "random"
    return [{"conversation_id": cid, "why": why} for cid, why in list(picked.items())[:n]]
