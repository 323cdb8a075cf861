"""The assistant in the product: for each inbound customer message, after commit, decide and act.

`message.created` (inbound, from a customer) -> a Huey job `assistant_process(message_id)` -> `process_message`.
The job is idempotent: one `assistant_decisions` row per message (unique), written in the same transaction as
the assistant's reply, hand-off and signals; a periodic sweep re-enqueues customer messages that a crashed
worker left without a decision, so nothing is skipped after a restart.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import re
import threading
import zoneinfo
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from otklik.accounts.models import Team, Workspace
from otklik.accounts.service import Actor, record_audit
from otklik.assistant.embeddings import get_embedder
from otklik.assistant.models import AssistantDecision, AssistantSettings
from otklik.assistant.pipeline import OPENERS, Assistant, Decision, Settings, fixed_text, summary
from otklik.assistant.reasons import ReasonSet
from otklik.assistant.retrieval import KbDoc, KbIndex
from otklik.assistant.understanding import get_understander
from otklik.calendars.engine import CalendarRangeError
from otklik.calendars.service import calendar_for, engine_of
from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, Direction, Message, Status
from otklik.knowledge.models import Article, FaqEntry
from otklik.platform.db import utcnow
from otklik.platform.errors import DomainError, Forbidden, field_error

log = logging.getLogger(__name__)
TONES = ("formal", "friendly")
# The fixed texts the bot sends, in the customer's language; a language not listed gets English, never Russian.
DEFAULT_OUT_OF_HOURS = {
    "ru": "Сейчас операторы не на связи. Мы ответим {when}. Ваше сообщение сохранено — писать ещё раз не нужно.",
    "en": "Our team is away right now. We will answer {when}. Your message is saved — no need to write again.",
    "uk": "Зараз оператори не на зв'язку. Ми відповімо {when}. Ваше повідомлення збережено — писати ще раз не треба.",
    "de": "Unser Team ist gerade nicht erreichbar. Wir antworten {when}. Ihre Nachricht ist gespeichert.",
    "es": "Nuestro equipo no está disponible ahora. Responderemos {when}. Su mensaje está guardado.",
}
HANDOFF_ACK = {
    "ru": "Передаю ваш вопрос сотруднику — он ответит в этом чате. Всё, что вы написали, он увидит.",
    "en": "I'm passing your question to a member of our team, who will answer in this chat and will see "
          "everything you wrote.",
    "uk": "Передаю ваше питання співробітнику — він відповість у цьому чаті й побачить усе, що ви написали.",
    "de": "Ich leite Ihre Frage an einen Mitarbeiter weiter. Er antwortet in diesem Chat und sieht alles, was Sie "
          "geschrieben haben.",
    "es": "Paso su pregunta a una persona de nuestro equipo, que le responderá en este chat y verá todo lo que "
          "ha escrito.",
}
# The bot says what it is in its first message of a chat (the workspace's name for it, or these).
DEFAULT_BOT_NAME = {"ru": "ИИ-ассистент", "en": "AI assistant", "uk": "ШІ-асистент", "de": "KI-Assistent",
                    "es": "asistente de IA"}
BOT_INTRO = {"ru": "Я {name}, отвечаю по нашей справке.", "en": "I'm the {name}, answering from our help center.",
             "uk": "Я {name}, відповідаю за нашою довідкою.", "de": "Ich bin der {name} und antworte aus unserer "
             "Hilfe.", "es": "Soy el {name} y respondo con nuestra ayuda."}
_WHEN = {"ru": ("сегодня в {t}", "завтра в {t}", "{d} в {t}"), "en": ("today at {t}", "tomorrow at {t}", "{d} at {t}"),
         "uk": ("сьогодні о {t}", "завтра о {t}", "{d} о {t}"), "de": ("heute um {t}", "morgen um {t}", "am {d} um {t}"),
         "es": ("hoy a las {t}", "mañana a las {t}", "el {d} a las {t}")}


def customer_language(language: str | None) -> str:
    """The language of the bot's fixed texts for a customer who wrote in `language`."""
    return language if language in HANDOFF_ACK else "en"


def bot_intro(row: AssistantSettings, language: str) -> str:
    name = (getattr(row, "bot_name", "") or "").strip() or DEFAULT_BOT_NAME.get(language, DEFAULT_BOT_NAME["en"])
    return BOT_INTRO.get(language, BOT_INTRO["en"]).replace("{name}", name)


# -- the pipeline, shared by the process ------------------------------------------------------------------

_lock = threading.Lock()
_assistant: Assistant | None = None
_indexes: dict[int, tuple[tuple[Any, ...], KbIndex]] = {}


def get_assistant() -> Assistant:
    global _assistant
    with _lock:
        if _assistant is None:
            embedder = get_embedder()
            _assistant = Assistant(embedder, get_understander(embedder))
        return _assistant


def _fingerprint(session: Session, workspace_id: int) -> tuple[Any, ...]:
    a = session.execute(select(func.count(Article.id), func.max(Article.updated_at)).where(
        Article.workspace_id == workspace_id, Article.published.is_(True))).one()
    f = session.execute(select(func.count(FaqEntry.id), func.max(FaqEntry.updated_at)).where(
        FaqEntry.workspace_id == workspace_id, FaqEntry.published.is_(True))).one()
    return (a[0], str(a[1]), f[0], str(f[1]))


def kb_docs(session: Session, workspace_id: int) -> list[KbDoc]:
    """The workspace's published articles and FAQ entries as retrieval documents."""
    docs = []
    for art in session.scalars(select(Article).where(Article.workspace_id == workspace_id,
                                                     Article.published.is_(True)).order_by(Article.id)):
        group = f"a{art.translation_of_id}" if art.translation_of_id else None
        docs.append(KbDoc(id=f"a{art.id}", title=art.title, body=art.body, language=art.language or "ru",
                          questions=list(art.questions or []), category=art.category, group=group, slug=art.slug))
    for faq in session.scalars(select(FaqEntry).where(FaqEntry.workspace_id == workspace_id,
                                                      FaqEntry.published.is_(True)).order_by(FaqEntry.id)):
        docs.append(KbDoc(id=f"faq{faq.id}", title=faq.question, body=faq.answer, language=faq.language or "ru",
                          questions=list(faq.variants or []), category=faq.category))
    return docs


def kb_index(session: Session, workspace_id: int) -> KbIndex:
    """The workspace's index, cached per process and rebuilt when an article or FAQ entry changes (count or
    last update differ), so every web process and worker sees an edit on its next message."""
    fp = _fingerprint(session, workspace_id)
    with _lock:
        cached = _indexes.get(workspace_id)
    if cached is not None and cached[0] == fp:
        return cached[1]
    index = KbIndex(kb_docs(session, workspace_id), get_assistant().embedder)
    with _lock:
        _indexes[workspace_id] = (fp, index)
    return index


def warm_indexes(session: Session) -> int:
    """Build (or rebuild, after a KB edit) the index of every workspace whose assistant is on, so the first
    customer message after a start or an edit does not wait for it: the demo KB's index, with its article
    classifier, takes about 5 s on one core (BENCHMARKS.md, section 10). Called by the worker's periodic
    sweep; an unchanged KB costs two COUNT queries."""
    ids = session.scalars(select(AssistantSettings.workspace_id).where(AssistantSettings.enabled.is_(True))).all()
    for workspace_id in ids:
        kb_index(session, workspace_id)
    return len(ids)


def cached_index(workspace_id: int) -> KbIndex | None:
    with _lock:
        cached = _indexes.get(workspace_id)
    return cached[1] if cached else None


def clear_cache() -> None:
    with _lock:
        _indexes.clear()


# -- settings ------------------------------------------------------------------------------------------

def get_settings_row(session: Session, workspace_id: int) -> AssistantSettings:
    row = session.get(AssistantSettings, workspace_id)
    if row is None:
        row = AssistantSettings(workspace_id=workspace_id, enabled=False, channels=[], answer_threshold=Settings.answer_threshold,
                                negativity_threshold=0.95, urgency_threshold=0.95, tone="formal", greeting="",
                                bot_name="", reasons=None, out_of_hours_message="", handoff_team_id=None)
    return row


def settings_dict(row: AssistantSettings) -> dict[str, Any]:
    return {"enabled": row.enabled, "channels": list(row.channels or []), "answer_threshold": row.answer_threshold,
            "negativity_threshold": row.negativity_threshold, "urgency_threshold": row.urgency_threshold,
            "tone": row.tone, "greeting": row.greeting, "bot_name": row.bot_name or "",
            "reasons": list(row.reasons or []),
            "out_of_hours_message": row.out_of_hours_message, "handoff_team_id": row.handoff_team_id}


def _check_reasons(value: Any) -> list[dict[str, Any]]:
    """A workspace's contact reasons: up to 60 of {"name": snake_case, "description": one line, "examples"?: up
    to 20 messages}; names unique."""
    if value in (None, []):
        return []
    if not isinstance(value, list) or len(value) > 60:
        raise field_error("reasons", "a list of at most 60 reasons")
    out, seen = [], set()
    for i, r in enumerate(value):
        if not isinstance(r, dict) or set(r) - {"name", "description", "examples"}:
            raise field_error(f"reasons.{i}", 'an object {"name", "description", "examples"?}')
        name = r.get("name")
        if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,39}", name):
            raise field_error(f"reasons.{i}.name", "latin letters, digits and _, starting with a letter, at most 40")
        if name in seen:
            raise field_error(f"reasons.{i}.name", f"{name!r} is listed twice")
        seen.add(name)
        description = r.get("description", "")
        if not isinstance(description, str) or len(description) > 300:
            raise field_error(f"reasons.{i}.description", "text of at most 300 characters")
        examples = r.get("examples") or []
        if (not isinstance(examples, list) or len(examples) > 20
                or not all(isinstance(e, str) and 0 < len(e) <= 500 for e in examples)):
            raise field_error(f"reasons.{i}.examples", "at most 20 messages of up to 500 characters")
        out.append({"name": name, "description": description.strip(), "examples": [e.strip() for e in examples]})
    return out


_reason_sets: dict[int, tuple[str, ReasonSet]] = {}


def reason_set(row: AssistantSettings) -> ReasonSet | None:
    """The workspace's reasons as a classifier, cached per workspace until the list changes."""
    if not row.reasons:
        return None
    key = json.dumps(row.reasons, sort_keys=True, ensure_ascii=False)
    with _lock:
        cached = _reason_sets.get(row.workspace_id)
    if cached is not None and cached[0] == key:
        return cached[1]
    built = ReasonSet.from_rows(row.reasons, get_assistant().embedder)
    with _lock:
        _reason_sets[row.workspace_id] = (key, built)
    return built


def update_settings(session: Session, actor: Actor, changes: dict[str, Any]) -> AssistantSettings:
    from otklik.accounts.models import Role

    actor.require(Role.supervisor)
    row = get_settings_row(session, actor.workspace_id)
    before = settings_dict(row)
    for key, value in changes.items():
        if key == "enabled":
            row.enabled = bool(value)
        elif key == "channels":
            if not isinstance(value, list) or not all(isinstance(c, str) and c in conversations.CHANNELS for c in value):
                raise field_error("channels", f"a list of channel names: {', '.join(conversations.CHANNELS)}")
            row.channels = sorted(set(value))
        elif key in {"answer_threshold", "negativity_threshold", "urgency_threshold"}:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= float(value) <= 1:
                raise field_error(key, "a number from 0 to 1")
            setattr(row, key, float(value))
        elif key == "tone":
            if value not in TONES:
                raise field_error("tone", f"one of: {', '.join(TONES)}")
            row.tone = value
        elif key in {"greeting", "out_of_hours_message"}:
            if not isinstance(value, str) or len(value) > 1000:
                raise field_error(key, "text of at most 1000 characters")
            setattr(row, key, value.strip())
        elif key == "reasons":
            row.reasons = _check_reasons(value)
        elif key == "bot_name":
            if not isinstance(value, str) or len(value.strip()) > 80:
                raise field_error(key, "a name of at most 80 characters (empty: «ИИ-ассистент»)")
            row.bot_name = value.strip()
        elif key == "handoff_team_id":
            if value is not None:
                team = session.get(Team, value) if isinstance(value, int) and not isinstance(value, bool) else None
                if team is None or team.workspace_id != actor.workspace_id:
                    raise field_error("handoff_team_id", f"team {value} not found")
            row.handoff_team_id = value
        else:
            raise field_error(key, "unknown setting")
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    record_audit(session, actor, entity_type="assistant_settings", entity_id=actor.workspace_id, action="updated",
                 before=before, after=settings_dict(row))
    return row


def pipeline_settings(row: AssistantSettings) -> Settings:
    return Settings(answer_threshold=row.answer_threshold, negativity_threshold=row.negativity_threshold,
                    urgency_threshold=row.urgency_threshold, tone=row.tone, greeting=row.greeting)


# -- working hours -------------------------------------------------------------------------------------

def next_opening(session: Session, workspace_id: int, team_id: int | None,
                 now: dt.datetime | None = None) -> dt.datetime | None:
    """None while the team's business calendar is open (or no calendar is set); else when it next opens, in the
    calendar's local time. The team's own calendar, else the workspace's default one (Settings → Calendars):
    holidays and transfers included, so 31 December at 20:00 promises 11 January, not 1 January."""
    row = calendar_for(session, workspace_id, team_id)
    if row is None:
        return None
    moment = now or utcnow()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        opening = engine_of(row).next_open(moment)
    except (CalendarRangeError, ValueError):
        return None
    return None if opening is None else opening.astimezone(zoneinfo.ZoneInfo(row.time_zone))


def _when(opening: dt.datetime, language: str, now: dt.datetime) -> str:
    local_now = now.astimezone(opening.tzinfo)
    today, tomorrow, other = _WHEN.get(language, _WHEN["en"])
    hhmm = opening.strftime("%H:%M")
    if opening.date() == local_now.date():
        return today.replace("{t}", hhmm)
    if opening.date() == local_now.date() + dt.timedelta(days=1):
        return tomorrow.replace("{t}", hhmm)
    return other.replace("{d}", opening.strftime("%d.%m")).replace("{t}", hhmm)


# -- the decision for one message -------------------------------------------------------------------------

@dataclass
class Outcome:
    status: str  # decided | duplicate | skipped
    decision: AssistantDecision | None = None


PUBLIC_KINDS = frozenset({"wall_comment", "review", "comment"})
NO_WRITTEN_REPLY = "no_written_reply"  # the channel's reply check refuses a written reply (phone)


def _pending_options(session: Session, conversation_id: int) -> list[str]:
    """The articles the bot's last decision in this conversation offered to choose from, if it asked."""
    last = session.scalar(select(AssistantDecision).where(AssistantDecision.conversation_id == conversation_id)
                          .order_by(AssistantDecision.id.desc()).limit(1))
    if last is None or last.action != "clarify":
        return []
    return [str(o) for o in (last.details or {}).get("options") or []]


def _assistant_spoke(session: Session, conversation_id: int) -> bool:
    return session.scalar(select(Message.id).where(
        Message.conversation_id == conversation_id, Message.author_kind == AuthorKind.assistant.value,
        Message.is_internal.is_(False)).limit(1)) is not None


def _link_for(workspace: Workspace | None, channel: str) -> Any:
    """A link to an article in the public help center: absolute with OTKLIK_PUBLIC_URL set; without it only
    the site widget (served from the same host) gets one, a relative one."""
    if workspace is None:
        return None
    from otklik.platform.config import get_settings

    base = (get_settings().public_url or "").rstrip("/")
    if not base and channel != "widget":
        return None

    def link(doc: KbDoc) -> str | None:
        return f"{base}/help/{workspace.slug}/a/{doc.slug}" if doc.slug else None

    return link


def _consecutive_failures(session: Session, conversation_id: int) -> int:
    rows = session.scalars(select(AssistantDecision.failed).where(
        AssistantDecision.conversation_id == conversation_id).order_by(AssistantDecision.id.desc()).limit(5))
    n = 0
    for failed in rows:
        if not failed:
            break
        n += 1
    return n


def _agent_took_over(session: Session, conversation: Conversation) -> bool:
    if conversation.assignee_id is not None:
        return True
    handed = session.scalar(select(AssistantDecision.id).where(
        AssistantDecision.conversation_id == conversation.id, AssistantDecision.action == "handoff").limit(1))
    if handed is not None:
        return True
    agent_reply = session.scalar(select(Message.id).where(
        Message.conversation_id == conversation.id, Message.author_kind == AuthorKind.agent.value,
        Message.is_internal.is_(False)).limit(1))
    return agent_reply is not None


def process_message(session: Session, message_id: int, *, now: dt.datetime | None = None) -> Outcome:
    message = session.get(Message, message_id)
    if (message is None or message.direction != Direction.inbound.value
            or message.author_kind != AuthorKind.customer.value or message.is_internal):
        return Outcome("skipped")
    if session.scalar(select(AssistantDecision.id).where(AssistantDecision.message_id == message_id)) is not None:
        return Outcome("duplicate")
    conversation = session.get(Conversation, message.conversation_id)
    if conversation is None or conversation.merged_into_id is not None or conversation.status == Status.closed.value:
        return Outcome("skipped")
    ws_id = message.workspace_id
    row = session.get(AssistantSettings, ws_id)
    if row is None:  # the assistant was never set up in this workspace: stay out of the way entirely
        return Outcome("skipped")
    assistant = get_assistant()
    actor = Actor.system(ws_id, kind="assistant")
    quiet = (not row.enabled or (row.channels and conversation.channel not in row.channels)
             or _agent_took_over(session, conversation))
    index = None if quiet else kb_index(session, ws_id)
    spoke = _assistant_spoke(session, conversation.id)
    workspace = session.get(Workspace, ws_id)
    decision = assistant.decide(message.body_text or "", index, pipeline_settings(row),
                                previous_failures=_consecutive_failures(session, conversation.id),
                                link_for=_link_for(workspace, conversation.channel), greet=False,
                                options=_pending_options(session, conversation.id), reasons=reason_set(row))
    u = decision.understanding
    _set_signals(session, conversation, u.sentiment, u.urgent)
    decision = _legal_check(session, conversation, message, decision)
    order_info: dict[str, Any] | None = None
    if not quiet:
        decision, order_info = _order_check(session, conversation, message, decision)
        if decision.reason != ORDER_ANSWER:
            decision = _booking_check(session, conversation, message, decision)
    details: dict[str, Any] = decision.as_dict()
    if order_info is not None:
        details["order"] = order_info
    record = AssistantDecision(workspace_id=ws_id, conversation_id=conversation.id, message_id=message.id,
                               action=decision.action, reason=decision.reason, article_id=decision.article_id,
                               confidence=decision.confidence, failed=decision.failed, details=details)
    if quiet:
        record.action, record.reason, record.failed = "silent", "off" if not row.enabled else "agent_owns", False
        if conversation.category is None:
            conversation.category = u.reason
        return _save(session, record)
    reply_language = customer_language(u.language)
    # the bot's first message of a chat greets once and says it is the AI assistant; later ones go straight on
    hello = row.greeting if row.greeting and reply_language == "ru" else fixed_text(OPENERS, reply_language)
    first = "" if spoke else f"{hello} {bot_intro(row, reply_language)}"
    if (message.meta or {}).get("kind") in PUBLIC_KINDS:
        # a public comment (a VK wall, a review) never gets a chat-style text from the bot: a person answers
        record.action, record.reason = "handoff", "public_comment"
        decision = dataclasses.replace(decision, action="handoff", reason="public_comment")
    elif reply_checks.explain(session, conversation) is not None:
        # a channel that takes no written reply now (a phone call, a callback request): the bot cannot write
        # there, so a person gets the conversation with the summary, and nothing is sent to the customer
        record.action, record.reason = "handoff", NO_WRITTEN_REPLY
        decision = dataclasses.replace(decision, action="handoff", reason=NO_WRITTEN_REPLY)
    meta = {"assistant": {"decision": decision.action, "reason": decision.reason,
                          "confidence": round(decision.confidence, 4), "article_id": decision.article_id,
                          "article_title": decision.article_title, "language": u.language}}
    if decision.action in {"answer", "clarify"}:
        text = decision.reply
        if decision.action == "answer" and decision.reason not in (ORDER_ANSWER, BOOKING_ANSWER):
            text = _maybe_llm(message.body_text or "", decision, index, u.language) or text
            record.details = decision.as_dict()
        if first and decision.reason == "courtesy":  # it greets already: only say what it is
            text = f"{text} {bot_intro(row, reply_language)}"
        elif first:
            text = f"{first}\n\n{text}"
        late = (order_info or {}).get("late") if decision.reason == ORDER_ANSWER else u.reason == "late_delivery"
        if decision.action == "answer" and late:
            # a late order: free delivery within the assistant's own limit, where the workspace allows it (§2)
            from otklik.guardrails.compensations import offer_for_late_delivery

            offer = offer_for_late_delivery(session, ws_id, conversation.id, reply_language)
            text = f"{text}\n\n{offer}" if offer else text
        reply = conversations.reply(session, actor, conversation.id, text=text, author=AuthorKind.assistant)
        reply.meta = meta
        if decision.options:  # what a channel with buttons can offer (the text lists them for any channel)
            reply.meta = {**meta, "buttons": [f"{n}. {t}" for n, t in enumerate(
                [a["title"] for a in decision.alternatives if a["id"] in decision.options], 1)]}
        record.reply_message_id = reply.id
        if decision.action == "answer" and conversation.category is None:
            conversation.category = u.reason
        return _save(session, record)
    # hand-off: priority, category, team, a summary for the agent, and a word to the customer
    _hand_off(session, actor, conversation, decision, row)
    history = _history(session, conversation.id)
    texts = [m.body_text for m in history if m.author_kind == AuthorKind.customer.value][-3:]
    said = [m.body_text for m in history if m.author_kind == AuthorKind.assistant.value and not m.is_internal]
    decisions = [decision]
    note = summary(texts, decisions, said)
    if order_info is not None and order_info.get("note"):
        note += f"\n{order_info['note']}"  # the order, attached for the agent
    opening = next_opening(session, conversation.workspace_id, conversation.team_id or row.handoff_team_id, now)
    if opening is not None:
        note += f"\nВне рабочего времени: клиенту сказано, что ответим {_when(opening, 'ru', now or utcnow())}."
    noted = conversations.reply(session, actor, conversation.id, text=note, is_internal=True,
                                author=AuthorKind.assistant)
    noted.meta = {**meta, "assistant": {**meta["assistant"], "summary": True}}
    if decision.reason not in {"abuse", "public_comment", NO_WRITTEN_REPLY}:
        if opening is not None:
            # the workspace's own out-of-hours text is in its language: a customer writing in another gets ours
            own = row.out_of_hours_message if reply_language == "ru" else ""
            template = own or DEFAULT_OUT_OF_HOURS[reply_language]
            text = template.replace("{when}", _when(opening, reply_language, now or utcnow()))
        else:
            text = HANDOFF_ACK[reply_language]
        if first:
            text = f"{first} {text}"
        ack = conversations.reply(session, actor, conversation.id, text=text, author=AuthorKind.assistant)
        ack.meta = meta
        record.reply_message_id = ack.id
    details["summary"] = note
    return _save(session, record)


def _maybe_llm(question: str, decision: Decision, index: KbIndex | None, language: str) -> str | None:
    """With an LLM configured, a generated answer grounded in the retrieved articles (with citations);
    None (keep the article's own text) when there is none, it refuses or fails."""
    try:
        from otklik.assistant.llm import provider_from_settings
    except ImportError:  # pragma: no cover
        return None
    provider = provider_from_settings()
    if provider is None or index is None:
        return None
    by_id = {d.id: d for d in index.docs}
    refs = [(a["id"], by_id[a["id"]].title, by_id[a["id"]].body) for a in decision.alternatives if a["id"] in by_id]
    try:
        answer = provider.answer(question, refs[:3], language)
    finally:
        provider.close()
    if answer.refused or not answer.text:
        decision.note = (decision.note + f" LLM refused: {answer.reason}").strip()
        return None
    decision.note = (decision.note + f" answer generated by the LLM, citing {', '.join(map(str, answer.citations))}").strip()
    return answer.text


def _set_signals(session: Session, conversation: Conversation, sentiment: str, urgent: bool) -> None:
    from otklik.conversations.signals import set_signals

    set_signals(session, conversation, sentiment=sentiment, urgent=urgent)


def _legal_check(session: Session, conversation: Conversation, message: Message, decision: Decision) -> Decision:
    """The customer's own account puts a consumer-law term past its end («гарантийный ремонт уже 50 дней»,
    45 allowed): no automatic answer — a person gets it at once, urgent, with the obligation and its article in
    the summary; the implied demand date goes on the case for the agent to confirm (guardrails)."""
    from otklik.guardrails import service as legal

    try:
        found = legal.assess_message(session, conversation, message.body_text or "", decision.understanding.reason)
    except DomainError:
        return decision
    if found is None:
        return decision
    if found["overdue"]:  # outranks any other reason to hand off: the note keeps the other one
        also = f"также: {decision.reason}" if decision.action == "handoff" else ""
        return dataclasses.replace(decision, action="handoff", reason="legal_deadline", priority="urgent",
                                   note="; ".join(n for n in (found["note"], also, decision.note) if n),
                                   failed=False, reply="")
    if decision.action == "handoff":
        return dataclasses.replace(decision, note="; ".join(n for n in (decision.note, found["note"]) if n))
    return decision


ORDER_ANSWER = "order"  # the reason of an answer from the shop's order data (assistant.orders)


def _order_check(session: Session, conversation: Conversation, message: Message,
                 decision: Decision) -> tuple[Decision, dict[str, Any] | None]:
    """An order question is answered from the order's data, and only to its owner (assistant.orders); a
    hand-off about an order carries the order in its note. Returns the decision and what to keep of the order
    in the decision's details (the next turn reads it back: the order asked about, what is awaited)."""
    from otklik.assistant import orders as order_answers

    last = session.scalar(select(AssistantDecision.details).where(
        AssistantDecision.conversation_id == conversation.id).order_by(AssistantDecision.id.desc()).limit(1))
    pending = (last or {}).get("order") if isinstance(last, dict) else None
    pending = pending if isinstance(pending, dict) and pending.get("awaiting") else None
    u = decision.understanding
    try:
        found = order_answers.handle(session, conversation, message.body_text or "", u, pending,
                                     language=customer_language(u.language), current_action=decision.action,
                                     current_reason=decision.reason)
    except DomainError as exc:  # never lose the message over the order data: the decision stands
        log.warning("order check failed for conversation %s: %s", conversation.id, exc.message)
        return decision, None
    if found is None:
        return decision, None
    info = {**found.info, "note": found.note}
    if found.action == "handoff":
        reason = decision.reason if found.reason in ("keep", decision.reason) else found.reason
        note = decision.note if decision.action == "handoff" else ""  # the order's own line follows in the summary
        return dataclasses.replace(decision, action="handoff", reason=reason, reply="", note=note,
                                   failed=False), info
    return dataclasses.replace(decision, action=found.action, reason=found.reason, reply=found.reply,
                               confidence=1.0, failed=False, article_id=None, article_title=None,
                               alternatives=[], options=[], note=""), info


BOOKING_ANSWER = "booking"  # the reason of a reply offering visit slots (assistant.bookings)


def _booking_check(session: Session, conversation: Conversation, message: Message, decision: Decision) -> Decision:
    """«Когда можете собрать шкаф?»: three free slots of the service and the link to pick one (assistant.bookings)
    replace the decision; a hard hand-off (abuse, a legal threat or deadline, a person asked for) stands."""
    from otklik.assistant import bookings as booking_offers
    from otklik.assistant.orders import KEEP_HANDOFF

    if decision.action == "handoff" and decision.reason in KEEP_HANDOFF:
        return decision
    try:
        reply = booking_offers.offer_reply(session, conversation, message.body_text or "",
                                           customer_language(decision.understanding.language))
    except DomainError as exc:  # never lose the message over the booking data: the decision stands
        log.warning("booking offer failed for conversation %s: %s", conversation.id, exc.message)
        return decision
    if reply is None:
        return decision
    return dataclasses.replace(decision, action="answer", reason=BOOKING_ANSWER, reply=reply, confidence=1.0,
                               failed=False, article_id=None, article_title=None, alternatives=[], options=[],
                               note="")


def _hand_off(session: Session, actor: Actor, conversation: Conversation, decision: Decision,
              row: AssistantSettings) -> None:
    changes: dict[str, Any] = {}
    from otklik.conversations.models import PRIORITY_RANK, Priority

    wanted = Priority(decision.priority)
    if PRIORITY_RANK[wanted] > PRIORITY_RANK[conversation.priority]:
        changes["priority"] = wanted.value
    if not conversation.category:
        changes["category"] = decision.understanding.reason
    if row.handoff_team_id is not None and conversation.team_id is None:
        changes["team_id"] = row.handoff_team_id
    if conversation.status == Status.pending.value:
        changes["status"] = Status.open.value
    if changes:
        try:
            conversations.update_conversation(session, actor, conversation.id, changes)
        except (DomainError, Forbidden):
            log.warning("hand-off could not update conversation %s", conversation.id)
    from otklik.platform.events import Event, after_commit

    # after commit, for whoever reacts to a hand-off (automation rules), without the assistant knowing them
    after_commit(session, Event("assistant.handoff", conversation.workspace_id, {
        "conversation_id": conversation.id, "number": conversation.number, "reason": decision.reason,
        "priority": conversation.priority.value, "team_id": conversation.team_id}))


def _history(session: Session, conversation_id: int) -> list[Message]:
    return list(session.scalars(select(Message).where(Message.conversation_id == conversation_id)
                                .order_by(Message.id.desc()).limit(20)))[::-1]


def _save(session: Session, record: AssistantDecision) -> Outcome:
    session.add(record)
    try:
        session.flush()
    except IntegrityError:  # another worker decided this message first: its transaction wins
        raise
    return Outcome("decided", record)


def record_failure(session: Session, message_id: int, error: DomainError) -> bool:
    """The message's job failed in a way no retry can mend: store that as its decision (so the sweep does not
    bring it back) and tell the agent in an internal note, once. False when there is nothing to record."""
    message = session.get(Message, message_id)
    if message is None or session.scalar(select(AssistantDecision.id).where(
            AssistantDecision.message_id == message_id)) is not None:
        return False
    record = AssistantDecision(workspace_id=message.workspace_id, conversation_id=message.conversation_id,
                               message_id=message.id, action="handoff", reason="error", failed=True,
                               details={"error": {"code": error.code, "message": error.message}})
    try:
        noted = conversations.reply(
            session, Actor.system(message.workspace_id, kind="assistant"), message.conversation_id,
            text=f"ИИ-ассистент не смог обработать это сообщение и передаёт его вам: {error.message}",
            is_internal=True, author=AuthorKind.assistant)
        record.reply_message_id = noted.id
    except DomainError:  # a merged conversation takes no note: the decision alone stops the retries
        pass
    _save(session, record)
    return True


def conversation_summary(session: Session, actor: Actor, conversation_id: int) -> str:
    """The summary on demand (agent assist): the same note the hand-off writes, for any conversation."""
    conversation = conversations.get_conversation(session, actor, conversation_id)
    history = _history(session, conversation.id)
    texts = [m.body_text for m in history if m.author_kind == AuthorKind.customer.value]
    said = [m.body_text for m in history if m.author_kind == AuthorKind.assistant.value and not m.is_internal]
    if not texts:
        return "Клиент ещё ничего не написал."
    assistant = get_assistant()
    d = assistant.decide(" ".join(texts[-3:]), None, Settings())
    return summary(texts[-3:], [d], said)


def decisions_for(session: Session, actor: Actor, conversation_id: int) -> list[AssistantDecision]:
    conversations.get_conversation(session, actor, conversation_id)
    return list(session.scalars(select(AssistantDecision).where(
        AssistantDecision.workspace_id == actor.workspace_id,
        AssistantDecision.conversation_id == conversation_id).order_by(AssistantDecision.id)))


def pending_message_ids(session: Session, *, since: dt.datetime, limit: int = 200) -> list[int]:
    """Customer messages since `since` with no decision yet (a worker died mid-way): the sweep's input. Only
    workspaces with the assistant on, and only messages that arrived after its settings last changed (turning
    it on does not answer the backlog)."""
    decided = select(AssistantDecision.message_id)
    return list(session.scalars(select(Message.id).join(
        AssistantSettings, AssistantSettings.workspace_id == Message.workspace_id).where(
        Message.direction == Direction.inbound.value, Message.author_kind == AuthorKind.customer.value,
        AssistantSettings.enabled.is_(True), Message.created_at >= AssistantSettings.updated_at,
        Message.created_at >= since, Message.id.not_in(decided)).order_by(Message.id).limit(limit)))
