"""HTTP surface of password reset: ask for a link, set the new password, an admin's one-time link."""

from __future__ import annotations

import datetime as dt
import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import BaseModel, Field

from otklik.accounts import password_reset
from otklik.accounts.deps import DB, CurrentActor
from otklik.accounts.schemas import Strict
from otklik.platform.config import get_settings
from otklik.platform.errors import Conflict
from otklik.platform.jsonbody import SafeJSONRoute
from otklik.platform.mailer import mail_configured, send_mail
from otklik.platform.ratelimit import SlidingWindow

log = logging.getLogger(__name__)
router = APIRouter(tags=["auth"], route_class=SafeJSONRoute)  # public: bodies get the shared JSON limits
# shared by every process through Redis when it is configured (platform/ratelimit.py)
_per_client = SlidingWindow(limit=10, seconds=60, name="reset-client")
_per_address = SlidingWindow(limit=5, seconds=900, name="reset-address")


class ResetRequestIn(Strict):
    email: str = Field(min_length=3, max_length=254)
    workspace: str | None = Field(default=None, max_length=64)


class ResetRequestOut(BaseModel):
    status: str = Field(description="Always `sent_if_known`: the answer never tells whether the address exists.")


class ResetConfirmIn(Strict):
    token: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class ResetLinkOut(BaseModel):
    url: str = Field(description="Shown once; give it to the user. It works once and expires.")
    expires_at: dt.datetime


def public_base_url() -> str:
    """Where emailed links point: OTKLIK_PUBLIC_URL, else the address `otklik serve` listens on."""
    settings = get_settings()
    return settings.public_url or f"http://{settings.host}:{settings.port}"


def send_reset_mails(issued: list[password_reset.IssuedReset], base_url: str) -> None:
    for item in issued:
        subject, text = password_reset.reset_mail(item, base_url)
        try:
            send_mail(to=item.email, subject=subject, text=text)
        except Exception as exc:  # a mail outage must not surface as a 500 nor leak the link into logs
            log.warning("password reset mail for user %s not sent: %s", item.user_id, type(exc).__name__)


def request_and_mail(db: DB, request: Request, background: BackgroundTasks, email: str,
                     workspace: str | None) -> None:
    """Shared by the API and the sign-in pages: rate-limit, issue tokens, mail them after the response."""
    if not mail_configured():
        raise Conflict("email is not set up on this server; ask an administrator for a one-time reset link",
                       code="email_not_configured")
    client = request.client.host if request.client else "?"
    _per_client.hit(client)
    _per_address.hit(email.strip().lower())
    issued = password_reset.request_reset(db, email=email, workspace_slug=workspace)
    # After the response (and the commit): known and unknown addresses answer at the same speed.
    background.add_task(send_reset_mails, issued, public_base_url())


@router.post("/auth/password-reset", response_model=ResetRequestOut, status_code=202)
def request_reset(body: ResetRequestIn, request: Request, background: BackgroundTasks, db: DB) -> ResetRequestOut:
    request_and_mail(db, request, background, body.email, body.workspace)
    return ResetRequestOut(status="sent_if_known")


@router.post("/auth/password-reset/confirm", status_code=204)
def confirm_reset(body: ResetConfirmIn, db: DB) -> Response:
    password_reset.complete_reset(db, token=body.token, password=body.password)
    return Response(status_code=204)


@router.post("/users/{user_id}/password-reset-link", response_model=ResetLinkOut, status_code=201,
             tags=["users"])
def issue_link(user_id: int, request: Request, actor: CurrentActor, db: DB) -> ResetLinkOut:
    issued = password_reset.issue_reset_link(db, actor, user_id)
    return ResetLinkOut(url=password_reset.reset_link(str(request.base_url), issued.token),
                        expires_at=issued.expires_at)
