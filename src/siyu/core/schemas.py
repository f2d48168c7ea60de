"""API shapes of the platform's own resources."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from siyu.core.errors import Invalid
from siyu.core.tenancy import MAX_ID

T = TypeVar("T")
# An id as the API takes it in a body or a query (a path id goes through `tenancy.parse_id`).
IdIn = Annotated[int, Field(ge=1, le=MAX_ID)]


NUL_REFUSED = "text may not contain NUL characters"


def nul_path(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in a decoded JSON value (PostgreSQL text can't hold one), or None."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            where = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return where
            if (found := nul_path(item, where)) is not None:
                return found
    elif isinstance(value, list):
        for n, item in enumerate(value):
            if (found := nul_path(item, f"{path}.{n}" if path else str(n))) is not None:
                return found
    return None


class Strict(BaseModel):
    """Input models refuse fields they don't know, and text with NUL characters anywhere inside."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _refuse_nul(cls, data: Any) -> Any:
        where = nul_path(data)
        if where is not None:
            raise Invalid(NUL_REFUSED, field=where or None)
        return data


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
