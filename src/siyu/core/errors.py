"""Errors that carry their HTTP status, a stable code and the field they are about."""

from __future__ import annotations


class SiyuError(Exception):
    """Base of every error siyu shows to a person or a program."""

    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code:
            self.code = code

    def as_dict(self) -> dict[str, str | None]:
        """The one error shape of the API."""
        return {"code": self.code, "message": self.message, "field": self.field}


class Invalid(SiyuError):
    status = 422
    code = "invalid"


class NotAuthenticated(SiyuError):
    status = 401
    code = "not_authenticated"


class Forbidden(SiyuError):
    status = 403
    code = "forbidden"


class NotFound(SiyuError):
    status = 404
    code = "not_found"


class Conflict(SiyuError):
    status = 409
    code = "conflict"


class TooLarge(SiyuError):
    status = 413
    code = "too_large"


class Throttled(SiyuError):
    status = 429
    code = "throttled"

    def __init__(self, message: str, *, minutes: int, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.minutes = minutes


class TenancyViolation(RuntimeError):
    """A row of one workspace was about to be written through another workspace's session."""
