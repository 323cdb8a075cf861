"""API shapes of the accounts domain."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from otklik.accounts.models import Role


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginIn(Strict):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=1024)
    workspace: str | None = Field(default=None, max_length=64)
    otp: str | None = Field(default=None, max_length=32, description="With two-factor sign-in: the app's "
                            "current code, or a recovery code.")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    email: str
    name: str
    role: Role
    language: str
    is_active: bool
    created_at: dt.datetime


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str
    expires_at: dt.datetime


class UserCreate(Strict):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    role: Role = Role.agent
    password: str | None = Field(default=None, min_length=10, max_length=1024)
    language: str = Field(default="ru", pattern=r"^[a-z]{2}$")


class UserUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    role: Role | None = None
    is_active: bool | None = None
    language: str | None = Field(default=None, pattern=r"^[a-z]{2}$")
    password: str | None = Field(default=None, min_length=10, max_length=1024)
    current_password: str | None = Field(default=None, max_length=1024,
                                         description="Required to change your own password.")


class TwoFactorSetupOut(BaseModel):
    secret: str
    otpauth_uri: str


class TwoFactorCode(Strict):
    code: str = Field(min_length=6, max_length=32)


class TwoFactorEnabled(BaseModel):
    recovery_codes: list[str] = Field(description="Shown once; each signs in once instead of a code.")


class PasswordIn(Strict):
    password: str = Field(min_length=1, max_length=1024)


class LoginSessionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    created_at: dt.datetime
    expires_at: dt.datetime
    ip: str | None
    user_agent: str | None
    current: bool = False


class TeamCreate(Strict):
    name: str = Field(min_length=1, max_length=120)
    member_ids: list[int] = Field(default_factory=list, max_length=1000)


class TeamMembers(Strict):
    member_ids: list[int] = Field(max_length=1000)


class TeamOut(BaseModel):
    id: int
    name: str
    member_ids: list[int]
    created_at: dt.datetime


class TokenCreate(Strict):
    name: str = Field(min_length=1, max_length=120)
    user_id: int | None = None
    expires_at: dt.datetime | None = Field(default=None, description="When it stops working (none: until revoked).")

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: dt.datetime | None) -> dt.datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("give a time zone (e.g. 2027-01-01T00:00:00Z)")
        return value


class TokenOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    name: str
    prefix: str
    user_id: int
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    expires_at: dt.datetime | None = None


class TokenCreated(TokenOut):
    token: str = Field(description="Shown once; only its hash is stored.")


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    slug: str
    name: str
    language: str
    timezone: str


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    actor_user_id: int | None
    actor_kind: str
    entity_type: str
    entity_id: int
    action: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    note: str | None
    created_at: dt.datetime
