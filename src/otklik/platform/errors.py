"""One error shape for every endpoint: {"error": {"code", "message", "fields": [{"field", "message"}]}}.

Services raise `DomainError` subclasses; the web layer turns them (and validation errors) into that shape.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, fields: list[dict[str, str]] | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.fields = fields or []
        if code:
            self.code = code

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "fields": self.fields}}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


def field_error(field: str, message: str) -> InvalidInput:
    return InvalidInput(f"{field}: {message}", fields=[{"field": field, "message": message}])
