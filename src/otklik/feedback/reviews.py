"""Reviews on Yandex Maps, 2GIS, Flamp, Otzovik… (seed 002: the main reputation tool) as conversations.

One inbound shape (`ReviewIn`) whichever way a review arrives — the API, a CSV import, a review site's
notification e-mail (`review_mail`) — becomes a conversation of channel `review` with the review's text as the
customer's message (meta `kind: review`, so the assistant never answers it with chat-style text: a person
does, `assistant.service.PUBLIC_KINDS`), linked to the customer its phone or e-mail names, with the sentiment and
reason of the assistant's understanding. The SLA of the conversation's policy runs like on any conversation,
from when the review arrived (not when it was posted: an imported year-old review is not a year late).

The answer is published on the review's own site by a person: Otklik drafts it (four steps for a negative one —
thank, apologise, the solution, the follow-up; a thank-you for a positive one; Russian or English as the
review), the agent edits it, copies it, posts it there and marks it published: that records the reply in the
conversation as the first response (the phrase checker reads it first) and stops the SLA's clock. A normal reply
in a review conversation is refused (there is no way to deliver it).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
)
from sqlalchemy.orm import Mapped, Session, mapped_column

from otklik.accounts.service import Actor
from otklik.conversations import reply_checks
from otklik.conversations import service as conversations
from otklik.conversations.models import Conversation
from otklik.customers.tasks import create_task
from otklik.platform.db import Base, UTCDateTime, utcnow
from otklik.platform.errors import DomainError, NotFound, field_error

PLATFORMS = {"yandex_maps": "Яндекс Карты", "2gis": "2ГИС", "flamp": "Flamp", "otzovik": "Otzovik",
             "google_maps": "Google Maps", "other": "—"}
MAX_TEXT = 10_000
MAX_CSV_ROWS = 10_000
REVIEW_REPLY = "review_reply"
REFUSAL = ("A review is answered on its site: copy the reply from the «Review» block, post it there and mark it "
           "published.")  # a msgid of the UI catalogs: the composer shows it translated


class Review(Base):
    """One review from a review site and its conversation; the public reply once it is published."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("workspace_id", "platform", "external_id"),
        Index("ix_reviews_ws_created", "workspace_id", "created_at"),
        Index("ix_reviews_conversation", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    platform: Mapped[str] = mapped_column(String(24))
    external_id: Mapped[str] = mapped_column(String(200))
    rating: Mapped[int | None] = mapped_column(SmallInteger)  # 1–5
    text: Mapped[str] = mapped_column(Text, default="")
    author: Mapped[str] = mapped_column(String(200), default="")
    link: Mapped[str] = mapped_column(String(1000), default="")
    posted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    language: Mapped[str] = mapped_column(String(8), default="ru")
    sentiment: Mapped[str | None] = mapped_column(String(8))
    reason: Mapped[str | None] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="api")  # api / csv / email
    reply_text: Mapped[str | None] = mapped_column(Text)
    replied_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    replied_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    follow_up_task_id: Mapped[int | None] = mapped_column(ForeignKey("customer_tasks.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


@dataclass(frozen=True)
class ReviewIn:
    """The one inbound shape of a review, however it came."""

    platform: str
    text: str
    rating: int | None = None
    author: str = ""
    link: str = ""
    posted_at: dt.datetime | None = None
    external_id: str = ""
    phone: str = ""
    email: str = ""
    source: str = "api"


def check(data: ReviewIn) -> ReviewIn:
    """422 naming the field for a review no one could answer; the external id made up when the site gave none
    (a hash of platform, author, date and text: the same review sent twice is still one)."""
    if data.platform not in PLATFORMS:
        raise field_error("platform", f"one of {', '.join(PLATFORMS)}")
    if data.rating is not None and not 1 <= data.rating <= 5:
        raise field_error("rating", "from 1 to 5")
    text = (data.text or "").strip()
    if not text and data.rating is None:
        raise field_error("text", "a review needs a text or a rating")
    if len(text) > MAX_TEXT:
        raise field_error("text", f"at most {MAX_TEXT} characters")
    for name, value, limit in (("author", data.author, 200), ("link", data.link, 1000),
                               ("external_id", data.external_id, 200), ("phone", data.phone, 40),
                               ("email", data.email, 254)):
        if len(value or "") > limit:
            raise field_error(name, f"at most {limit} characters")
    if data.link and not data.link.startswith(("https://", "http://")):
        raise field_error("link", "an http(s) address")
    external = data.external_id.strip() or hashlib.sha256("\x1f".join(
        (data.platform, data.author, data.posted_at.isoformat() if data.posted_at else "", text)).encode()
    ).hexdigest()[:32]
    return ReviewIn(platform=data.platform, text=text, rating=data.rating, author=data.author.strip(),
                    link=data.link.strip(), posted_at=data.posted_at, external_id=external,
                    phone=data.phone.strip(), email=data.email.strip(), source=data.source)


def stars(rating: int | None) -> str:
    return "" if rating is None else "★" * rating + "☆" * (5 - rating)


def _understand(text: str) -> tuple[str, str | None, str | None]:
    """(language, sentiment, reason) from the assistant's understanding; no model → (language, None, None)."""
    from otklik.assistant.language import detect_language

    language = detect_language(text) if text else "ru"
    if not text:
        return language, None, None
    try:
        from otklik.assistant.service import get_assistant

        u = get_assistant().understander.understand(text, language)
    except Exception:  # the understanding is a help; a review is never lost for it
        return language, None, None
    return language, u.sentiment, u.reason


def receive_review(session: Session, workspace_id: int, data: ReviewIn, *,
                   received_at: dt.datetime | None = None) -> tuple[Review, bool]:
    """The review's conversation (new, or the stored one for the same platform and external id: False).
    `received_at`: when it arrived, for a history import (the demo); else now."""
    data = check(data)
    existing = session.scalar(select(Review).where(Review.workspace_id == workspace_id,
                                                   Review.platform == data.platform,
                                                   Review.external_id == data.external_id))
    if existing is not None:
        return existing, False
    if data.email:
        kind, value = "email", data.email
    elif data.phone:
        kind, value = "phone", data.phone
    else:  # no contact: the author on that site is the customer until someone links them
        who = re.sub(r"[^\w.:@+-]+", "_", data.author or data.external_id).strip("_") or data.external_id
        kind, value = "external", f"review:{data.platform}:{who}"[:200]
    language, sentiment, reason = _understand(data.text)
    head = " ".join(p for p in (PLATFORMS[data.platform], stars(data.rating), data.author) if p and p != "—")
    body = data.text or stars(data.rating)
    received = conversations.receive(session, workspace_id, conversations.InboundMessage(
        channel="review", identity_kind=kind, identity_value=value, text=body, customer_name=data.author,
        channel_message_id=f"review:{data.platform}:{data.external_id}"[:200], subject=head[:200],
        sent_at=received_at,
        language=language, meta={"kind": "review", "platform": data.platform, "rating": data.rating,
                                 "author": data.author, "link": data.link, "external_id": data.external_id}))
    conversation = received.conversation
    if conversation.sentiment is None and sentiment is not None:
        conversation.sentiment = sentiment
    if conversation.category is None and reason is not None:
        conversation.category = reason
    review = Review(workspace_id=workspace_id, conversation_id=conversation.id,
                    customer_id=conversation.customer_id, platform=data.platform, external_id=data.external_id,
                    rating=data.rating, text=data.text, author=data.author, link=data.link,
                    posted_at=data.posted_at, language=language, sentiment=sentiment, reason=reason,
                    source=data.source)
    if received_at is not None:
        review.created_at = received_at
    session.add(review)
    session.flush()
    return review, True


# -- the answer -------------------------------------------------------------------------------------------

def is_negative(review: Review) -> bool:
    """Four steps for a rating of 1–3, or without a rating when the text reads negative; else a thank-you."""
    if review.rating is not None:
        return review.rating <= 3
    return review.sentiment == "negative"


SOLUTIONS = {
    "ru": {
        "late_delivery": "Мы выяснили, почему заказ задержался, и передали его в приоритетную доставку.",
        "order_status": "Мы проверили ваш заказ и держим его на контроле до получения.",
        "delivery_info": "Мы проверили ваш заказ и держим его на контроле до получения.",
        "defective": "Мы заменим товар или вернём деньги — как вам удобнее.",
        "damaged_in_delivery": "Мы заменим товар или вернём деньги — как вам удобнее, и разберёмся со службой "
                               "доставки.",
        "missing_parts": "Мы отправим недостающее за наш счёт.",
        "return_good_quality": "Мы оформим возврат, как только получим товар, и вернём деньги.",
        "warranty_repair": "Мы примем товар на гарантийный ремонт без очереди.",
        "payment_refund": "Мы проверили платёж и вернём деньги, если списание было ошибочным.",
    },
    "en": {
        "late_delivery": "We found out why your order was late and moved it to priority delivery.",
        "order_status": "We have checked your order and are keeping an eye on it until it reaches you.",
        "delivery_info": "We have checked your order and are keeping an eye on it until it reaches you.",
        "defective": "We will replace the item or refund you, whichever you prefer.",
        "damaged_in_delivery": "We will replace the item or refund you, whichever you prefer, and take it up "
                               "with the courier.",
        "missing_parts": "We will send the missing parts at our expense.",
        "return_good_quality": "We will arrange the return and refund you as soon as the item reaches us.",
        "warranty_repair": "We will repair the item under warranty without a queue.",
        "payment_refund": "We have checked the payment and will refund you if the charge was a mistake.",
    },
}
GENERIC_SOLUTION = {"ru": "Мы разобрали ваш случай с командой, чтобы это не повторилось.",
                    "en": "We have gone through what happened with the team so that it does not happen again."}
STEPS = {
    "ru": ("{name}спасибо, что нашли время написать отзыв.",
           "Нам очень жаль, что так вышло: вы ждали от нас другого, и это наша ошибка.",
           "{solution}",
           "Мы свяжемся с вами, чтобы убедиться, что всё решено; если удобнее — напишите нам напрямую, "
           "и мы доведём дело до конца."),
    "en": ("{name}thank you for taking the time to write a review.",
           "We are sorry this happened: you expected better from us, and that is our mistake.",
           "{solution}",
           "We will get in touch to make sure everything is settled; if you prefer, write to us directly and we "
           "will see it through."),
}
THANKS = {"ru": "{name}спасибо за отзыв и высокую оценку! Нам очень приятно, что вам понравилось, — передадим "
                "ваши слова команде. Будем рады видеть вас снова.",
          "en": "{name}thank you for the review and the high rating! We are glad you liked it and will pass your "
                "words on to the team. We look forward to seeing you again."}


def draft(review: Review) -> dict[str, Any]:
    """The draft public reply: its steps (for a negative review) and the text to paste."""
    language = "en" if review.language == "en" else "ru"
    first = (review.author or "").split()[0] if (review.author or "").strip() else ""
    name = f"{first}, " if first else ("Здравствуйте! " if language == "ru" else "Hello! ")
    if not is_negative(review):
        text = THANKS[language].format(name=name)
        text = text[0].upper() + text[1:]
        return {"kind": "thanks", "language": language, "steps": [], "text": text}
    solution = SOLUTIONS[language].get(review.reason or "", GENERIC_SOLUTION[language])
    steps = [s.format(name=name, solution=solution) for s in STEPS[language]]
    steps[0] = steps[0][0].upper() + steps[0][1:]
    names = ("thank", "apologise", "solution", "follow_up")
    return {"kind": "four_steps", "language": language, "steps": [{"step": n, "text": t} for n, t in
                                                                  zip(names, steps, strict=True)],
            "text": " ".join(steps)}


def review_of(session: Session, actor: Actor, conversation_id: int) -> Review:
    conversations.get_conversation(session, actor, conversation_id)  # 404 across workspaces
    review = session.scalar(select(Review).where(Review.workspace_id == actor.workspace_id,
                                                 Review.conversation_id == conversation_id))
    if review is None:
        raise NotFound(f"conversation {conversation_id} is not a review")
    return review


def publish(session: Session, actor: Actor, conversation_id: int, text: str,
            acknowledge: Sequence[str] = ()) -> Review:
    """Record the reply the agent posted on the review's site: the conversation's public reply (the first
    response; the phrase checker reads it first — 409 with its objection), the SLA's clock stops."""
    review = review_of(session, actor, conversation_id)
    plain = (text or "").strip()
    if not plain:
        raise field_error("text", "the published reply's text")
    if len(plain) > MAX_TEXT:
        raise field_error("text", f"at most {MAX_TEXT} characters")
    conversation = conversations.get_conversation(session, actor, conversation_id, for_update=True)
    reply_checks.ensure_content_ok(session, conversation, plain, acknowledged=acknowledge,
                                   context={"author": "agent", "meta": {"kind": REVIEW_REPLY}, "path": "review"})
    conversations.reply(session, actor, conversation_id, text=plain, history=True,
                        meta={"kind": REVIEW_REPLY, "platform": review.platform, "link": review.link})
    review.reply_text, review.replied_at, review.replied_by = plain, utcnow(), actor.user_id
    return review


def follow_up(session: Session, actor: Actor, conversation_id: int) -> Review:
    """The review's follow-up task on its customer (once: a second call returns the same)."""
    review = review_of(session, actor, conversation_id)
    if review.follow_up_task_id is None:
        platform = PLATFORMS[review.platform] if review.platform != "other" else ""
        title = f"Отзыв {platform} {stars(review.rating)}: связаться с автором и проверить, что всё решено"
        task = create_task(session, actor.workspace_id, customer_id=review.customer_id,
                           conversation_id=conversation_id, title=" ".join(title.split())[:200],
                           due_at=utcnow() + dt.timedelta(days=1), assignee_id=actor.user_id, actor=actor)
        review.follow_up_task_id = task.id
    return review


def review_data(review: Review) -> dict[str, Any]:
    return {"id": review.id, "conversation_id": review.conversation_id, "customer_id": review.customer_id,
            "platform": review.platform, "platform_name": PLATFORMS[review.platform],
            "external_id": review.external_id, "rating": review.rating, "stars": stars(review.rating),
            "text": review.text, "author": review.author, "link": review.link,
            "posted_at": review.posted_at.isoformat() if review.posted_at else None, "language": review.language,
            "sentiment": review.sentiment, "reason": review.reason, "source": review.source,
            "negative": is_negative(review), "reply_text": review.reply_text,
            "replied_at": review.replied_at.isoformat() if review.replied_at else None,
            "follow_up_task_id": review.follow_up_task_id}


def _refuse_chat_reply(session: Session, conversation: Conversation, meta: dict[str, Any]) -> str | None:
    return REFUSAL


reply_checks.register("review", _refuse_chat_reply)


# -- CSV import -------------------------------------------------------------------------------------------

CSV_COLUMNS = ("platform", "rating", "text", "author", "link", "date", "external_id", "phone", "email")


def parse_date(value: str, where: str) -> dt.datetime | None:
    value = (value or "").strip()
    if not value:
        return None
    for fmt in ("%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d", "%d.%m.%Y %H:%M",
                "%d.%m.%Y"):
        try:
            parsed = dt.datetime.strptime(value.replace("Z", "+0000"), fmt)
        except ValueError:
            continue
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    raise field_error(where, "a date: YYYY-MM-DD, YYYY-MM-DDTHH:MM:SS or DD.MM.YYYY")


def rows_from_csv(raw: bytes) -> list[ReviewIn]:
    """The reviews of a CSV file (UTF-8, a header with the CSV_COLUMNS it has; `,` or `;`): 422 naming the row
    and column of the first bad cell, nothing stored."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise field_error("file", "not UTF-8 text") from None
    sample = text[:4096]
    delimiter = ";" if sample.count(";") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    header = [h.strip().lower() for h in reader.fieldnames or []]
    if "platform" not in header or not ({"text", "rating"} & set(header)):
        raise field_error("file", f"a header with platform and text or rating (columns: {', '.join(CSV_COLUMNS)})")
    out: list[ReviewIn] = []
    try:
        for i, row in enumerate(reader, start=2):
            if i - 1 > MAX_CSV_ROWS:
                raise field_error("file", f"at most {MAX_CSV_ROWS} rows")
            cells = {(k or "").strip().lower(): (v or "").strip() if isinstance(v, str) else "" for k, v in
                     row.items()}
            rating = cells.get("rating", "")
            if rating and not rating.isdigit():
                raise field_error(f"row {i}.rating", "a whole number from 1 to 5")
            try:
                out.append(check(ReviewIn(
                    platform=cells.get("platform", ""), text=cells.get("text", ""),
                    rating=int(rating) if rating else None, author=cells.get("author", ""),
                    link=cells.get("link", ""), posted_at=parse_date(cells.get("date", ""), f"row {i}.date"),
                    external_id=cells.get("external_id", ""), phone=cells.get("phone", ""),
                    email=cells.get("email", ""), source="csv")))
            except DomainError as exc:
                if exc.fields and not exc.fields[0]["field"].startswith("row "):
                    exc.fields = [{"field": f"row {i}.{f['field']}", "message": f["message"]} for f in exc.fields]
                    exc.message = f"row {i}: {exc.message}"
                raise
    except csv.Error as exc:
        raise field_error("file", f"not a CSV file: {exc}") from None
    return out


# -- the dashboard ----------------------------------------------------------------------------------------

def by_platform(session: Session, workspace_id: int, lo: dt.datetime, hi: dt.datetime,
                platforms: Iterable[str] | None = None) -> dict[str, Any]:
    """Reviews received in [lo, hi) per platform: how many, per rating, the mean rating, how many negative and
    how many answered."""
    rows = session.execute(select(Review.platform, Review.rating, func.count(), func.count(Review.replied_at))
                           .where(Review.workspace_id == workspace_id, Review.created_at >= lo,
                                  Review.created_at < hi)
                           .group_by(Review.platform, Review.rating)).all()
    out: dict[str, dict[str, Any]] = {}
    for platform, rating, n, answered in rows:
        p = out.setdefault(platform, {"platform": platform, "name": PLATFORMS.get(platform, platform),
                                      "reviews": 0, "answered": 0, "by_rating": {r: 0 for r in range(1, 6)},
                                      "rating_sum": 0, "rated": 0, "negative": 0})
        p["reviews"] += n
        p["answered"] += answered
        if rating is not None:
            p["by_rating"][rating] += n
            p["rating_sum"] += rating * n
            p["rated"] += n
            if rating <= 3:
                p["negative"] += n
    for p in out.values():
        p["rating_avg"] = round(p.pop("rating_sum") / p["rated"], 2) if p["rated"] else None
    total = sum(p["reviews"] for p in out.values())
    return {"reviews": total, "platforms": sorted(out.values(), key=lambda p: -p["reviews"])}
