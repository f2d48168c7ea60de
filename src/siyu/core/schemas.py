"""API shapes of the platform's own resources."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Strict(BaseModel):
    """Input models refuse fields they don't know."""

    model_config = ConfigDict(extra="forbid")


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
