"""API shapes of the conversations domain."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from otklik.accounts.schemas import Strict
from otklik.conversations.models import Priority, Status
from otklik.customers.models import IdentityKind

Channel = Literal["api", "widget", "email", "telegram", "vk", "whatsapp", "max", "phone", "form", "review", "viber",
                  "instagram"]


class ConversationCreate(Strict):
    customer_id: int
    channel: Channel
    subject: str = Field(default="", max_length=300)
    priority: Priority = Priority.normal
    assignee_id: int | None = None
    team_id: int | None = None
    tags: list[str] = Field(default_factory=list, max_length=20)


class ConversationUpdate(Strict):
    status: Status | None = None
    priority: Priority | None = None
    assignee_id: int | None = None
    team_id: int | None = None
    category: str | None = Field(default=None, max_length=64)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    subject: str | None = Field(default=None, max_length=300)
    tags: list[str] | None = Field(default=None, max_length=20)
    version: int | None = Field(default=None, description="The version you saw; a 409 if it changed meanwhile.")


class CustomerBrief(BaseModel):
    id: int
    name: str


class ConversationOut(BaseModel):
    id: int
    number: int
    channel: str
    subject: str
    status: Status
    priority: Priority
    category: str | None
    language: str | None
    tags: list[str]
    assignee_id: int | None
    team_id: int | None
    customer: CustomerBrief
    previous_conversation_id: int | None
    merged_into_id: int | None
    message_count: int
    last_message_preview: str
    version: int
    created_at: dt.datetime
    updated_at: dt.datetime
    last_message_at: dt.datetime
    last_customer_message_at: dt.datetime
    first_response_at: dt.datetime | None  # the first public reply of a person (never the assistant's)
    solved_at: dt.datetime | None
    closed_at: dt.datetime | None
    waiting_since: dt.datetime | None = None  # a customer waits on a person since (docs/service-levels.md)
    assistant_answered_at: dt.datetime | None = None
    sla_due_at: dt.datetime | None = None  # the earliest running SLA target's due time
    sla_breached: bool = False
    legal_due_at: dt.datetime | None = None  # the earliest running consumer-law deadline (also in sla_due_at)
    transfer_count: int = 0  # reassignments to another person after the first assignment (routing)


class AttachmentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


class MessageOut(BaseModel):
    id: int
    conversation_id: int
    channel: str
    direction: str
    author_kind: str
    author_user_id: int | None
    body_text: str
    body_html: str
    is_internal: bool
    channel_message_id: str | None
    delivery_status: str
    delivery_error: str | None
    attachments: list[AttachmentOut]
    created_at: dt.datetime


class ReplyIn(Strict):
    text: str | None = Field(default=None, max_length=100_000)
    html: str | None = Field(default=None, max_length=400_000)
    is_internal: bool = False
    channel: Channel | None = None
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)
    # codes of "confirm" reply checks (a «never» phrase, an overdue legal deadline) the sender saw in the 409
    # and chose to send anyway
    acknowledge: list[Annotated[str, StringConstraints(max_length=60)]] = Field(default_factory=list, max_length=20)

    @model_validator(mode="after")
    def _has_body(self) -> ReplyIn:
        if not (self.text and self.text.strip()) and not self.html and not self.attachment_ids:
            raise ValueError("give text, html or attachment_ids")
        return self


class InboundIn(Strict):
    """A customer's message arriving through the API channel (an integrator's own site, app or CRM)."""

    identity_kind: IdentityKind = IdentityKind.external
    identity: str = Field(min_length=1, max_length=254, description="email, E.164 phone, or your customer id")
    customer_name: str = Field(default="", max_length=200)
    text: str | None = Field(default=None, max_length=100_000)
    html: str | None = Field(default=None, max_length=400_000)
    subject: str = Field(default="", max_length=300)
    message_id: str | None = Field(default=None, min_length=1, max_length=200,
                                   description="Your id for this message; a retry with the same id is ignored.")
    conversation_id: int | None = None
    attachment_ids: list[int] = Field(default_factory=list, max_length=20)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    meta: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _has_body(self) -> InboundIn:
        if not (self.text and self.text.strip()) and not self.html and not self.attachment_ids:
            raise ValueError("give text, html or attachment_ids")
        return self


class InboundBatchIn(Strict):
    messages: list[InboundIn] = Field(min_length=1, max_length=500)


class InboundOut(BaseModel):
    conversation_id: int
    conversation_number: int
    message_id: int
    customer_id: int
    duplicate: bool
    new_conversation: bool


class MergeConversationIn(Strict):
    source_id: int


class OutboxOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    message_id: int
    channel: str
    status: str
    attempts: int
    next_attempt_at: dt.datetime
    last_error: str | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
