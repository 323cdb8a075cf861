"""Normalising channel identities so the same person matches across channels (phones in E.164)."""

from __future__ import annotations

import re

import phonenumbers

from otklik.accounts.service import normalise_email
from otklik.customers.models import IdentityKind
from otklik.platform.errors import field_error

_NUMERIC = re.compile(r"^-?[0-9]{1,20}$")
_TOKEN = re.compile(r"^[\w.:@+-]{1,200}$", re.UNICODE)
_VIBER = re.compile(r"^[A-Za-z0-9+/=_-]{1,64}$")  # Viber user ids are base64 strings such as 01234567890A=


def normalise_phone(raw: str, *, default_region: str = "RU", field: str = "external_id") -> str:
    try:
        number = phonenumbers.parse(raw, default_region)
    except phonenumbers.NumberParseException:
        raise field_error(field, f"{raw!r} is not a phone number") from None
    if not phonenumbers.is_valid_number(number):
        raise field_error(field, f"{raw!r} is not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_identity(kind: str, external_id: str, *, field: str = "external_id") -> tuple[IdentityKind, str]:
    try:
        kind_enum = IdentityKind(kind)
    except ValueError:
        allowed = ", ".join(k.value for k in IdentityKind)
        raise field_error("kind", f"unknown identity kind {kind!r}; one of: {allowed}") from None
    value = (external_id or "").strip()
    if not value:
        raise field_error(field, "must not be empty")
    if kind_enum is IdentityKind.email:
        return kind_enum, normalise_email(value, field)
    if kind_enum in (IdentityKind.phone, IdentityKind.whatsapp):
        return kind_enum, normalise_phone(value, field=field)
    if kind_enum is IdentityKind.viber:
        if not _VIBER.match(value):
            raise field_error(field, "a Viber user id is up to 64 letters, digits and + / =")
        return kind_enum, value
    if kind_enum in (IdentityKind.telegram, IdentityKind.vk, IdentityKind.max, IdentityKind.instagram):
        if not _NUMERIC.match(value):
            raise field_error(field, f"a {kind_enum.value} id is a number")
        return kind_enum, value
    if not _TOKEN.match(value):
        raise field_error(field, "use at most 200 letters, digits and . : @ + - _")
    return kind_enum, value
