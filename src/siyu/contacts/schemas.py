"""API shapes of contacts, identities, notes, consent, attributes, settings and merges."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from siyu.core.schemas import Strict
from siyu.core.tenancy import MAX_ID

ContactId = Field(ge=1, le=MAX_ID)


class IdentityIn(Strict):
    """One key of a person: `{"type": "phone", "value": "+86 138 0000 0000"}` (normalised on the way in)."""

    type: str = Field(min_length=1, max_length=40,
                      description="phone, email, openid, unionid, external_userid, shop_customer_id or custom:<name>")
    value: str = Field(min_length=1, max_length=200)


class IdentityOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    type: str
    value: str
    created_at: datetime


class ContactFields(Strict):
    """The standard fields; null clears one (on update)."""

    name: str | None = Field(default=None, max_length=120)
    nickname: str | None = Field(default=None, max_length=120)
    avatar_url: str | None = Field(default=None, max_length=1000)
    gender: Literal["male", "female", "other"] | None = None
    birthday: date | None = None
    city: str | None = Field(default=None, max_length=120)
    locale: str | None = Field(default=None, max_length=16)
    phone: str | None = Field(default=None, max_length=64)
    email: str | None = Field(default=None, max_length=254)


class ContactCreate(ContactFields):
    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)
    attributes: dict[str, Any] = Field(default_factory=dict)
    owner_id: int | None = Field(default=None, ge=1, le=MAX_ID)


class ContactUpdate(ContactFields):
    attributes: dict[str, Any] | None = None
    do_not_contact: bool | None = None


class ContactUpsert(Strict):
    """Find the person by any identity (merging contacts that turn out to be one), or create them."""

    identities: list[IdentityIn] = Field(default_factory=list, max_length=20)
    fields: ContactFields = Field(default_factory=ContactFields)
    attributes: dict[str, Any] = Field(default_factory=dict)
    overwrite: bool = Field(default=False, description="Replace non-empty values too (default: fill empty ones)")


class ContactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    nickname: str | None
    avatar_url: str | None
    gender: str | None
    birthday: date | None
    city: str | None
    locale: str | None
    phone: str | None
    email: str | None
    attributes: dict[str, Any]
    owner_id: int | None
    do_not_contact: bool
    stage: str
    order_count: int
    revenue: int
    first_order_at: datetime | None
    last_order_at: datetime | None
    last_active_at: datetime | None
    rfm_recency: int | None = Field(description="1-5 among the workspace's buyers, 5 = most recent order")
    rfm_frequency: int | None = Field(description="1-5, 5 = most orders")
    rfm_monetary: int | None = Field(description="1-5, 5 = most revenue")
    created_at: datetime
    updated_at: datetime


class ContactDetail(ContactOut):
    identities: list[IdentityOut]


class UpsertOut(BaseModel):
    contact: ContactDetail
    created: bool


class NoteIn(Strict):
    body: str = Field(min_length=1, max_length=10_000)


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    contact_id: int
    body: str
    author: str
    created_at: datetime


class ConsentIn(Strict):
    channel: Literal["wechat_oa", "wecom", "sms", "email"]
    status: Literal["granted", "withdrawn"]
    source: str = Field(min_length=1, max_length=80, description="Where it came from: a form, a reply, a call")
    proof: str | None = Field(default=None, max_length=10_000)


class ConsentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    channel: str
    status: str
    source: str
    proof: str | None
    at: datetime


class PermissionOut(BaseModel):
    allowed: bool
    reason: str


class MergeIn(Strict):
    other_id: int = Field(ge=1, le=MAX_ID, description="The contact to merge with; the older one is kept")


class MergeRecordOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    keeper_id: int | None
    merged_id: int
    identity_type: str | None
    identity_value: str | None
    automatic: bool
    merged_snapshot: dict[str, Any]
    actor: str
    at: datetime


class MergeProposalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    # NULL once that contact was merged into the other or deleted (decided proposals are history).
    contact_a_id: int | None
    contact_b_id: int | None
    identity_type: str
    identity_value: str
    status: str
    created_at: datetime
    decided_at: datetime | None
    merge_id: int | None = None


class AttributeCreate(Strict):
    key: str = Field(min_length=1, max_length=64)
    label: str = Field(min_length=1, max_length=120)
    type: Literal["text", "number", "date", "choice", "multi_choice"]
    choices: list[str] = Field(default_factory=list, max_length=200)


class AttributeUpdate(Strict):
    label: str | None = Field(default=None, min_length=1, max_length=120)
    choices: list[str] | None = Field(default=None, max_length=200)


class AttributeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    key: str
    label: str
    type: str
    choices: list[str]
    created_at: datetime


class SettingsUpdate(Strict):
    one_person_keys: list[str] | None = Field(default=None, max_length=20)
    segment_refresh_minutes: int | None = Field(default=None, ge=1, le=1440)


class SettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    one_person_keys: list[str]
    segment_refresh_minutes: int
