"""NPS on its own schedule (docs/metrics.md «NPS»): «Порекомендуете ли вы нас друзьям?» 0–10 + «почему?», asked
`delay_days` (30 by default) after a customer's contact or a delivered order, at most once a quarter per customer,
never to one who opted out, in the customer's own channel through the CSAT's path (a system reply with one signed
link per rating). The worker's sweep finds who is due; this module decides and sends. Never counts anything:
the answers are read by the reports like any survey answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from otklik.accounts.models import Role
from otklik.accounts.service import Actor, record_audit
from otklik.conversations import service as conversations
from otklik.conversations.models import AuthorKind, Conversation, ConversationTag, Status
from otklik.customers.models import Customer
from otklik.feedback import service
from otklik.feedback.models import NpsSettings, SurveyAnswer
from otklik.orders.models import Order, OrderEvent
from otklik.platform.db import utcnow
from otklik.platform.errors import field_error

DELAY_DEFAULT = 30  # days after the contact or the delivery (issue 15: «e.g. 30 days after a purchase/contact»)
DELAY_RANGE = (1, 365)
# «never more than once per quarter per customer»: 92 days is the longest calendar quarter (Jul–Sep, Oct–Dec), so
# two surveys at least 92 days apart never fall in one quarter, however the quarters are counted
QUARTER = dt.timedelta(days=92)
# a due moment older than this is let go: turning NPS on (or a worker down for a while) must not ask every
# customer of the past year at once; a survey held back by the quiet period is still sent within it
LATE_LIMIT = dt.timedelta(days=7)
LANGUAGES = ("ru", "en")
MAX_QUESTION, MAX_WHY = 500, 300
DEFAULT_TEXTS = {
    "ru": {"question": "Порекомендуете ли вы нас друзьям? Оцените от 0 до 10:",
           "why": "Почему вы поставили такую оценку?"},
    "en": {"question": "How likely are you to recommend us to a friend? Rate from 0 to 10:",
           "why": "Why did you give this score?"},
}
NO_CHANNEL_TAGS = service.SKIP_TAGS


@dataclass(frozen=True)
class Due:
    """A customer due an NPS survey: what made them due (a contact or a delivered order) and when."""

    customer_id: int
    trigger: str  # contact / order
    trigger_at: dt.datetime
    conversation_id: int | None  # the contact's conversation
    order_number: str | None = None


def settings_of(session: Session, workspace_id: int) -> NpsSettings:
    """The workspace's NPS settings (defaults, not stored, until an admin saves them)."""
    row = session.get(NpsSettings, workspace_id)
    return row if row is not None else NpsSettings(workspace_id=workspace_id, enabled=False,
                                                   delay_days=DELAY_DEFAULT, texts={})


def settings_data(row: NpsSettings) -> dict[str, Any]:
    return {"enabled": bool(row.enabled), "delay_days": row.delay_days or DELAY_DEFAULT,
            "texts": {lang: texts_for(row, lang) for lang in LANGUAGES},
            "custom_texts": {lang: dict((row.texts or {}).get(lang) or {}) for lang in LANGUAGES}}


def texts_for(row: NpsSettings, language: str | None) -> dict[str, str]:
    """The question and «почему?» in the customer's language (Russian when it is neither), the workspace's own
    wording where it set one."""
    lang = language if language in LANGUAGES else "ru"
    own = (row.texts or {}).get(lang) or {}
    return {key: (own.get(key) or "").strip() or DEFAULT_TEXTS[lang][key] for key in ("question", "why")}


def update_settings(session: Session, actor: Actor, *, enabled: bool | None = None, delay_days: int | None = None,
                    texts: dict[str, dict[str, str]] | None = None) -> NpsSettings:
    """Admins: turn the schedule on or off, the delay, the texts per language (an empty text: the built-in)."""
    actor.require(Role.admin)
    row = session.get(NpsSettings, actor.workspace_id)
    if row is None:
        row = NpsSettings(workspace_id=actor.workspace_id, enabled=False, delay_days=DELAY_DEFAULT, texts={})
        session.add(row)
    if delay_days is not None:
        if isinstance(delay_days, bool) or not DELAY_RANGE[0] <= delay_days <= DELAY_RANGE[1]:
            raise field_error("delay_days", f"a whole number of days from {DELAY_RANGE[0]} to {DELAY_RANGE[1]}")
        row.delay_days = delay_days
    if texts is not None:
        clean: dict[str, dict[str, str]] = {}
        for lang, values in texts.items():
            if lang not in LANGUAGES:
                raise field_error(f"texts.{lang}", f"a language: one of {', '.join(LANGUAGES)}")
            for key, value in (values or {}).items():
                limit = {"question": MAX_QUESTION, "why": MAX_WHY}.get(key)
                if limit is None:
                    raise field_error(f"texts.{lang}.{key}", "question or why")
                if not isinstance(value, str) or len(value) > limit:
                    raise field_error(f"texts.{lang}.{key}", f"text of at most {limit} characters")
                clean.setdefault(lang, {})[key] = value.strip()
        row.texts = {**(row.texts or {}), **clean}
    if enabled is not None:
        row.enabled = bool(enabled)
    row.updated_at = utcnow()
    record_audit(session, actor, entity_type="nps_settings", entity_id=actor.workspace_id, action="updated",
                 after={"enabled": row.enabled, "delay_days": row.delay_days})
    session.flush()
    return row


def due(session: Session, workspace_id: int, *, now: dt.datetime, delay_days: int) -> list[Due]:
    """Customers whose contact (a conversation started) or delivered order is `delay_days` old — due at the
    trigger + the delay, at most LATE_LIMIT ago — one entry per customer, the earliest trigger first. Merged,
    mystery-shopper and review conversations are no contact (a review's author is not reachable in it)."""
    delay = dt.timedelta(days=delay_days)
    lo, hi = now - delay - LATE_LIMIT, now - delay
    found: dict[int, Due] = {}
    c = Conversation
    for cid, customer_id, created in session.execute(
            select(c.id, c.customer_id, c.created_at).where(
                c.workspace_id == workspace_id, c.created_at > lo, c.created_at <= hi, c.merged_into_id.is_(None),
                c.mystery.is_(False), c.channel != "review").order_by(c.created_at, c.id)):
        found.setdefault(customer_id, Due(customer_id, "contact", created, cid))
    for buyer, number, at in session.execute(
            select(Order.customer_id, Order.number, OrderEvent.at).join(Order, Order.id == OrderEvent.order_id)
            .where(OrderEvent.workspace_id == workspace_id, Order.workspace_id == workspace_id,
                   OrderEvent.status == "delivered", OrderEvent.at > lo, OrderEvent.at <= hi,
                   Order.customer_id.is_not(None)).order_by(OrderEvent.at, OrderEvent.id)):
        if buyer is None:
            continue
        earlier = found.get(buyer)
        if earlier is None or _aware(at) < _aware(earlier.trigger_at):
            found[buyer] = Due(buyer, "order", at, None, number)
    return sorted(found.values(), key=lambda d: (_aware(d.trigger_at), d.customer_id))


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def why_not(session: Session, workspace_id: int, customer: Customer | None, *, now: dt.datetime) -> str | None:
    """The reason a due customer gets no NPS survey now, or None."""
    if customer is None or customer.workspace_id != workspace_id or customer.merged_into_id is not None:
        return "no customer"
    if (customer.attributes or {}).get(service.OPT_OUT_ATTRIBUTE) in (True, "true", "yes", 1):
        return "opted out"
    s = SurveyAnswer
    if session.scalar(select(s.id).where(s.workspace_id == workspace_id, s.customer_id == customer.id,
                                         s.kind == "nps", s.sent_at > now - QUARTER).limit(1)) is not None:
        return "asked this quarter"
    if session.scalar(select(s.id).where(s.workspace_id == workspace_id, s.customer_id == customer.id,
                                         s.sent_at > now - service.QUIET_PERIOD).limit(1)) is not None:
        return "quiet period"  # a CSAT in the last 7 days: the NPS waits (the next sweeps try again)
    return None


def carrier(session: Session, workspace_id: int, customer_id: int, preferred: int | None) -> Conversation | None:
    """The conversation the survey is asked in (the customer's channel): the contact's own, else the customer's
    latest one that still takes a reply — not closed, merged, spam, a mystery run or a review — and has no NPS."""
    c = Conversation
    asked = select(SurveyAnswer.conversation_id).where(SurveyAnswer.workspace_id == workspace_id,
                                                       SurveyAnswer.customer_id == customer_id,
                                                       SurveyAnswer.kind == "nps")
    spam = select(ConversationTag.conversation_id).where(ConversationTag.workspace_id == workspace_id,
                                                         ConversationTag.tag.in_(NO_CHANNEL_TAGS))
    base = select(c).where(c.workspace_id == workspace_id, c.customer_id == customer_id,
                           c.merged_into_id.is_(None), c.mystery.is_(False), c.channel != "review",
                           c.status != Status.closed.value, c.id.not_in(asked), c.id.not_in(spam))
    if preferred is not None:
        own = session.scalar(base.where(c.id == preferred))
        if own is not None:
            return own
    return session.scalar(base.order_by(c.last_message_at.desc(), c.id.desc()).limit(1))


def survey_text(answer: SurveyAnswer, question: str) -> str:
    links = "\n".join(f"{score} — {service.survey_url(answer, score)}" for score in range(10, -1, -1))
    return f"{question}\n{links}"


def send(session: Session, workspace_id: int, item: Due, *, now: dt.datetime | None = None
         ) -> tuple[SurveyAnswer | None, str | None]:
    """Ask one due customer (idempotent: the quarter rule, checked under the customer's row lock, makes a second
    try a no-op). Returns the survey, or None and the reason."""
    now = now or utcnow()
    settings = settings_of(session, workspace_id)
    if not settings.enabled:
        return None, "off"
    customer = session.scalar(select(Customer).where(Customer.id == item.customer_id,
                                                     Customer.workspace_id == workspace_id).with_for_update())
    reason = why_not(session, workspace_id, customer, now=now)
    if reason is not None:
        return None, reason
    conversation = carrier(session, workspace_id, item.customer_id, item.conversation_id)
    if conversation is None:
        return None, "no conversation to ask in"
    texts = texts_for(settings, conversation.language or (customer.language if customer else None))
    answer = SurveyAnswer(workspace_id=workspace_id, conversation_id=conversation.id,
                          customer_id=item.customer_id, kind="nps", channel=conversation.channel, sent_at=now,
                          comment="")
    session.add(answer)
    session.flush()
    trigger: dict[str, Any] = {"kind": item.trigger, "at": _aware(item.trigger_at).isoformat()}
    if item.order_number:
        trigger["order"] = item.order_number
    conversations.reply(session, Actor.system(workspace_id, kind="survey"), conversation.id,
                        text=survey_text(answer, texts["question"]), author=AuthorKind.system, path="survey",
                        meta={"survey": {"id": answer.id, "kind": "nps", "token": service.link_token(answer, now=now),
                                         "scale": [0, 10], "why": texts["why"], "trigger": trigger}})
    return answer, None


def question_texts(session: Session, answer: SurveyAnswer) -> dict[str, str]:
    """The question and «почему?» of an NPS survey's landing page, in its conversation's language."""
    conversation = session.get(Conversation, answer.conversation_id)
    return texts_for(settings_of(session, answer.workspace_id), conversation.language if conversation else None)


def enabled_workspaces(session: Session) -> Sequence[tuple[int, int]]:
    return session.execute(select(NpsSettings.workspace_id, NpsSettings.delay_days)
                           .where(NpsSettings.enabled.is_(True))).all()
