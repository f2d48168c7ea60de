"""REST endpoints of acquisition: sources, channel codes and their members, arrivals, daily series."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.acquisition import arrivals as _arrivals  # noqa: F401  (registers the receive hook and welcome)
from siyu.acquisition import service
from siyu.acquisition.models import ChannelCode
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page, Strict
from siyu.core.tenancy import MAX_ID

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("acquisition", "read"))]
Write = Annotated[Auth, Depends(api_auth("acquisition", "write"))]
SourceType = Literal["parcel_card", "store_poster", "phone_call", "sms", "ai_voice_call", "oa_article", "app",
                     "short_video", "live_stream", "staff_card", "event", "other"]
TAG_SOURCES: list[str | Enum] = ["sources"]
TAG_CODES: list[str | Enum] = ["channel codes"]


# --- sources ----------------------------------------------------------------------------------------


class SourceIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    type: SourceType
    currency: str | None = Field(default=None, min_length=3, max_length=3,
                                 description="ISO 4217; the workspace's currency when left out")
    cost_model: dict[str, Any] = Field(default_factory=dict, description=(
        '{"kind": "per_unit"|"per_period"|"per_acquired"|"fixed", "unit_cost", "units_per_day", "amount", '
        '"period", "starts_on", "ends_on"}; money in the currency\'s minor units'))
    notes: str = Field(default="", max_length=2000)


class SourceUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    type: SourceType | None = None
    currency: str | None = Field(default=None, min_length=3, max_length=3)
    cost_model: dict[str, Any] | None = None
    notes: str | None = Field(default=None, max_length=2000)
    archived: bool | None = None


class SourceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    type: str
    currency: str
    cost_model: dict[str, Any]
    archived: bool
    notes: str
    created_at: datetime


@router.get("/sources", tags=TAG_SOURCES)
def list_sources(auth: Read, session: SessionDep, archived: bool | None = False) -> list[SourceOut]:
    """The source catalogue by name (`archived=true` for the archived, leave empty for all)."""
    return [SourceOut.model_validate(s) for s in service.list_sources(session, archived=archived)]


@router.post("/sources", status_code=201, tags=TAG_SOURCES)
def create_source(body: SourceIn, auth: Write, session: SessionDep) -> SourceOut:
    """A new source; a cost model's money in another currency is refused (422, `cost_model.currency`)."""
    return SourceOut.model_validate(service.create_source(session, **body.model_dump(), actor=auth.actor))


@router.get("/sources/{source_id}", tags=TAG_SOURCES)
def read_source(source_id: int, auth: Read, session: SessionDep) -> SourceOut:
    """One source."""
    return SourceOut.model_validate(service.get_source(session, source_id))


@router.patch("/sources/{source_id}", tags=TAG_SOURCES)
def update_source(source_id: int, body: SourceUpdate, auth: Write, session: SessionDep) -> SourceOut:
    """Change a source (its currency only while it has no spend)."""
    source = service.get_source(session, source_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return SourceOut.model_validate(service.update_source(session, source, changes=changes, actor=auth.actor))


@router.delete("/sources/{source_id}", tags=TAG_SOURCES)
def delete_source(source_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a source; one with codes or spend is archived instead (answered 200 with the source)."""
    source = service.get_source(session, source_id)
    if service.delete_source(session, source, actor=auth.actor):
        return Response(status_code=204)
    return Response(SourceOut.model_validate(source).model_dump_json(), media_type="application/json")


# --- codes ------------------------------------------------------------------------------------------


class ShiftIn(Strict):
    days: list[int] = Field(min_length=1, max_length=7, description="ISO weekdays, 1 Monday to 7 Sunday")
    start: str = Field(default="00:00", max_length=5, description="HH:MM in the workspace's timezone")
    end: str = Field(default="24:00", max_length=5)


class MemberIn(Strict):
    staff_id: int = Field(ge=1, le=MAX_ID)
    weight: int = Field(default=1, description="for weighted rotation, 1 or more")
    daily_cap: int | None = Field(default=None, description="contacts a local day; none: no cap")
    hours: list[ShiftIn] = Field(default_factory=list, max_length=14, description="none: always on duty")
    backup: bool = Field(default=False, description="takes contacts only when every regular member is full or off")


class CodeIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    source_id: int = Field(ge=1, le=MAX_ID)
    kind: Literal["wecom", "wechat_oa", "link"]
    account_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="the WeCom or Official Account")
    state: str | None = Field(default=None, max_length=200,
                              description="1 to 30 of A-Z a-z 0-9 _ -, unique; generated when left out")
    members: list[MemberIn] = Field(default_factory=list, max_length=100)
    rotation: Literal["round_robin", "random", "weighted"] = "round_robin"
    welcome: dict[str, Any] | None = Field(default=None, description="the code's own welcome; none: the account's")
    tag_ids: list[int] = Field(default_factory=list, max_length=20)
    target_url: str | None = Field(default=None, max_length=2000, description="link codes: where a click goes")
    expires_at: datetime | None = None
    skip_verify: bool = True


class CodeUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    source_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    members: list[MemberIn] | None = Field(default=None, max_length=100)
    rotation: Literal["round_robin", "random", "weighted"] | None = None
    welcome: dict[str, Any] | None = None
    tag_ids: list[int] | None = Field(default=None, max_length=20)
    target_url: str | None = Field(default=None, max_length=2000)
    expires_at: datetime | None = None
    skip_verify: bool | None = None


class MemberOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    staff_id: int
    weight: int
    daily_cap: int | None
    hours: list[dict[str, Any]]
    backup: bool
    position: int
    platform_error: str | None = Field(description="WeCom's refusal of this member (not verified, no permission)")


class CodeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    source_id: int
    kind: str
    account_id: int | None
    state: str
    status: str
    expires_at: datetime | None
    target_url: str | None
    config_id: str | None
    qr_url: str | None
    qr_content: str | None
    skip_verify: bool
    welcome: dict[str, Any]
    tag_ids: list[int]
    rotation: str
    synced_userids: list[str]
    sync_error: str | None
    created_at: datetime
    members: list[MemberOut] = Field(default_factory=list)


class ArrivalOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code_id: int
    source_id: int
    contact_id: int | None
    staff_id: int | None
    kind: str
    new_contact: bool
    note: str | None
    occurred_at: datetime
    local_day: Any


class SeriesOut(BaseModel):
    days: list[str]
    scans: list[int]
    adds: list[int]
    conversions: list[int]


def _code_out(session: Session, code: ChannelCode) -> CodeOut:
    out = CodeOut.model_validate(code)
    out.status = service.live_status(code)
    out.members = [MemberOut.model_validate(m) for m in service.members_of(session, code)]
    return out


def _members(members: list[MemberIn] | None) -> list[dict[str, Any]] | None:
    return None if members is None else [m.model_dump() for m in members]


@router.get("/channel-codes", tags=TAG_CODES)
def list_codes(auth: Read, session: SessionDep, source_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
               status: Literal["active", "paused", "expired"] | None = None) -> list[CodeOut]:
    """The workspace's codes, newest first."""
    return [_code_out(session, c) for c in service.list_codes(session, source_id=source_id, status=status)]


@router.post("/channel-codes", status_code=201, tags=TAG_CODES)
def create_code(body: CodeIn, auth: Write, session: SessionDep) -> CodeOut:
    """A new code: on WeCom a contact way is made (its config_id kept), on the Official Account a permanent
    QR code with the state as its scene, a link code answers at `<public url>/c/<state>`."""
    values = body.model_dump(exclude={"members", "rotation"})
    code = service.create_code(session, **values, members=_members(body.members), rotation_strategy=body.rotation,
                               actor=auth.actor)
    return _code_out(session, code)


@router.get("/channel-codes/{code_id}", tags=TAG_CODES)
def read_code(code_id: int, auth: Read, session: SessionDep) -> CodeOut:
    """One code with its members and their WeCom errors."""
    return _code_out(session, service.get_code(session, code_id))


@router.patch("/channel-codes/{code_id}", tags=TAG_CODES)
def update_code(code_id: int, body: CodeUpdate, auth: Write, session: SessionDep) -> CodeOut:
    """Re-point a code without changing its printed QR (`expires_at: null` removes the expiry)."""
    code = service.get_code(session, code_id)
    changes = body.model_dump(exclude_unset=True)
    if "members" in changes:
        changes["members"] = _members(body.members)
    for required in ("name", "source_id", "members", "rotation", "tag_ids", "target_url", "skip_verify"):
        if changes.get(required, "") is None:
            changes.pop(required)
    return _code_out(session, service.update_code(session, code, changes=changes, actor=auth.actor))


@router.delete("/channel-codes/{code_id}", status_code=204, tags=TAG_CODES)
def delete_code(code_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a code nobody arrived through (409 otherwise: expire it)."""
    service.delete_code(session, service.get_code(session, code_id), actor=auth.actor)
    return Response(status_code=204)


@router.post("/channel-codes/{code_id}/pause", tags=TAG_CODES)
def pause_code(code_id: int, auth: Write, session: SessionDep) -> CodeOut:
    """Pause a code: people still arrive through it, their arrival says it was paused."""
    code = service.set_status(session, service.get_code(session, code_id), "paused", actor=auth.actor)
    return _code_out(session, code)


@router.post("/channel-codes/{code_id}/resume", tags=TAG_CODES)
def resume_code(code_id: int, auth: Write, session: SessionDep) -> CodeOut:
    """Resume a paused or expired code (an expired one needs a later `expires_at` first)."""
    code = service.set_status(session, service.get_code(session, code_id), "active", actor=auth.actor)
    return _code_out(session, code)


@router.post("/channel-codes/{code_id}/expire", tags=TAG_CODES)
def expire_code(code_id: int, auth: Write, session: SessionDep) -> CodeOut:
    """End a code now (arrivals still land, marked expired)."""
    code = service.set_status(session, service.get_code(session, code_id), "expired", actor=auth.actor)
    return _code_out(session, code)


@router.get("/channel-codes/{code_id}/members", tags=TAG_CODES)
def code_members(code_id: int, auth: Read, session: SessionDep) -> list[MemberOut]:
    """A code's members in rotation order, with WeCom's refusal of any."""
    code = service.get_code(session, code_id)
    return [MemberOut.model_validate(m) for m in service.members_of(session, code)]


@router.put("/channel-codes/{code_id}/members", tags=TAG_CODES)
def set_code_members(code_id: int, body: list[MemberIn], auth: Write, session: SessionDep) -> list[MemberOut]:
    """Replace a code's members (on WeCom the same contact way is updated)."""
    code = service.get_code(session, code_id)
    service.update_code(session, code, changes={"members": _members(body)}, actor=auth.actor)
    return [MemberOut.model_validate(m) for m in service.members_of(session, code)]


@router.get("/channel-codes/{code_id}/arrivals", tags=TAG_CODES)
def code_arrivals(code_id: int, auth: Read, session: SessionDep, cursor: str | None = None,
                  limit: Annotated[int, Query(ge=1, le=200)] = 50) -> Page[ArrivalOut]:
    """Everyone who scanned, added or clicked through the code, newest first."""
    code = service.get_code(session, code_id)
    rows, nxt = service.list_arrivals(session, code, cursor=cursor, limit=limit)
    return Page[ArrivalOut](items=[ArrivalOut.model_validate(a) for a in rows], next_cursor=nxt)


@router.get("/channel-codes/{code_id}/daily", tags=TAG_CODES)
def code_daily(code_id: int, auth: Read, session: SessionDep,
               days: Annotated[int, Query(ge=1, le=366)] = 30) -> SeriesOut:
    """Scans, adds and conversions (a first `order.paid` after arriving) per local day."""
    series = service.daily_series(session, service.get_code(session, code_id), days=days)
    return SeriesOut(**series.as_dict())
