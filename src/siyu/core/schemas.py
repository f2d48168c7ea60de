"""API shapes of the platform's own resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

T = TypeVar("T")


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_has_nul(v) for v in value)
    if isinstance(value, BaseModel):
        return any(_has_nul(getattr(value, name)) for name in type(value).model_fields)
    return False


class Strict(BaseModel):
    """Input models refuse fields they don't know, and text with the NUL character in any field."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL stores no NUL in text or jsonb: refused here, on every engine, so both behave alike
        # and no such value reaches a query (names, descriptions, rules, configs...).
        if _has_nul(value):
            raise ValueError("text may not contain the NUL character (\\u0000)")
        return value


class Page(BaseModel, Generic[T]):
    """A page of results and the cursor of the next one (null at the end)."""

    items: list[T]
    next_cursor: str | None


class ErrorBody(BaseModel):
    code: str
    message: str
    field: str | None


class ErrorOut(BaseModel):
    """The one error shape of the API."""

    error: ErrorBody


class WorkspaceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    timezone: str
    currency: str
    locale: str
    created_at: datetime


class WorkspaceUpdate(Strict):
    name: str | None = Field(default=None, max_length=120)
    timezone: str | None = None
    currency: str | None = None
    locale: str | None = None


class MemberOut(BaseModel):
    user_id: int
    email: str
    name: str
    role: str
    joined_at: datetime


class MemberCreate(Strict):
    email: str
    role: str
    name: str | None = None
    password: str | None = None


class MemberUpdate(Strict):
    role: str


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The whole key. Shown once: store it now.")


class ApiKeyCreate(Strict):
    name: str = Field(max_length=120)
    scopes: list[str] = Field(min_length=1)


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    at: datetime
    actor_type: str
    actor_id: str | None
    actor_label: str
    via: str
    action: str
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
