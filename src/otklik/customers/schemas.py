"""API shapes of the customers domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from otklik.accounts.schemas import Strict
from otklik.customers.models import IdentityKind


class IdentityIn(Strict):
    kind: IdentityKind
    external_id: str = Field(min_length=1, max_length=254)
    verified: bool = False
    display: str | None = Field(default=None, max_length=254)


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    kind: str
    external_id: str
    display: str | None
    verified: bool


class CustomerCreate(Strict):
    name: str = Field(default="", max_length=200)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    timezone: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] = Field(default_factory=dict)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)


class CustomerUpdate(Strict):
    name: str | None = Field(default=None, max_length=200)
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    timezone: str | None = Field(default=None, max_length=64)
    attributes: dict[str, Any] | None = None


class CustomerOut(BaseModel):
    id: int
    name: str
    language: str | None
    timezone: str | None
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    merged_into_id: int | None
    loyalty_tier: str | None = Field(None, description="The loyalty tier the customer's orders reach (read-only; "
                                                       "/api/v1/loyalty/tiers)")
    created_at: dt.datetime
    updated_at: dt.datetime


class MergeIn(Strict):
    source_id: int = Field(description="The duplicate; everything it has moves to the customer in the path.")


class NoteIn(Strict):
    body: str = Field(min_length=1, max_length=10_000)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    author_user_id: int | None
    body: str
    created_at: dt.datetime
