"""HTTP surface of reviews: one inbound shape (JSON, a CSV file, a review site's notification e-mail), a
conversation's review with its draft reply, publishing the reply and the follow-up task."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool

from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.models import Role
from otklik.accounts.schemas import Strict
from otklik.feedback import review_mail, reviews
from otklik.platform.errors import field_error

router = APIRouter(tags=["reviews"])
MAX_UPLOAD = 5_000_000


class ReviewBody(Strict):
    platform: str = Field(max_length=24, description=f"one of {', '.join(reviews.PLATFORMS)}")
    text: str = Field(default="", max_length=reviews.MAX_TEXT)
    rating: int | None = Field(default=None, ge=1, le=5)
    author: str = Field(default="", max_length=200)
    link: str = Field(default="", max_length=1000)
    date: dt.datetime | None = Field(default=None, description="when it was posted on the site")
    external_id: str = Field(default="", max_length=200, description="the site's id: the same id is one review")
    phone: str = Field(default="", max_length=40, description="links the review to the customer with it")
    email: str = Field(default="", max_length=254, description="links the review to the customer with it")


class PublishBody(Strict):
    text: str = Field(min_length=1, max_length=reviews.MAX_TEXT)
    acknowledge: list[Annotated[str, Field(max_length=64)]] = Field(default_factory=list, max_length=20)


def _created(review: reviews.Review, created: bool) -> dict[str, Any]:
    return {**reviews.review_data(review), "created": created}


@router.post("/reviews", status_code=200)
def post_review(body: ReviewBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A review becomes a conversation of channel `review` (`created: false`: that platform's external id is
    stored already, nothing changes)."""
    actor.require(Role.agent)
    date = body.date if body.date is None or body.date.tzinfo else body.date.replace(tzinfo=dt.UTC)
    review, created = reviews.receive_review(db, actor.workspace_id, reviews.ReviewIn(
        platform=body.platform, text=body.text, rating=body.rating, author=body.author, link=body.link,
        posted_at=date, external_id=body.external_id, phone=body.phone, email=body.email, source="api"))
    return _created(review, created)


async def _raw(request: Request) -> bytes:
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_UPLOAD:
            raise field_error("file", f"at most {MAX_UPLOAD} bytes")
    return bytes(raw)


@router.post("/reviews/import")
async def import_csv(request: Request, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A CSV file as the body (text/csv; columns platform, rating, text, author, link, date, external_id, phone,
    email): every row checked first (422 naming the row and column), then stored; a row already stored is
    skipped."""
    actor.require(Role.supervisor)
    rows = reviews.rows_from_csv(await _raw(request))

    def store() -> dict[str, Any]:  # in the request's transaction: all rows or none
        created = [reviews.receive_review(db, actor.workspace_id, row) for row in rows]
        return {"rows": len(rows), "created": sum(1 for _, new in created if new),
                "conversation_ids": [r.conversation_id for r, _ in created]}

    return await run_in_threadpool(store)


@router.post("/reviews/email")
async def from_email(request: Request, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """A review site's notification e-mail, the raw message (message/rfc822) as the body: Yandex Maps, 2GIS,
    Flamp, Otzovik (422 naming what could not be read)."""
    actor.require(Role.agent)
    data = review_mail.parse(await _raw(request))
    return await run_in_threadpool(lambda: _created(*reviews.receive_review(db, actor.workspace_id, data)))


@router.get("/conversations/{conversation_id}/review")
def get_review(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The review, its draft reply (four steps or a thank-you) and what was published."""
    review = reviews.review_of(db, actor, conversation_id)
    return {**reviews.review_data(review), "draft": reviews.draft(review)}


@router.post("/conversations/{conversation_id}/review/publish")
def publish(conversation_id: int, body: PublishBody, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The reply as posted on the review's site: recorded as the conversation's public reply (the SLA's first
    response); the phrase checker may refuse it (409) like any reply."""
    return reviews.review_data(reviews.publish(db, actor, conversation_id, body.text, body.acknowledge))


@router.post("/conversations/{conversation_id}/review/task", status_code=201)
def follow_up(conversation_id: int, actor: CurrentActor, db: DB) -> dict[str, Any]:
    """The follow-up task on the review's customer (once)."""
    return reviews.review_data(reviews.follow_up(db, actor, conversation_id))
