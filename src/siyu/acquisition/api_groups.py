"""REST endpoints of customer groups and group live codes (module "acquisition")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from siyu.acquisition import group_codes, groups
from siyu.acquisition.group_models import CustomerGroup, GroupCode
from siyu.channels.wecom import service as wecom
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Strict

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("acquisition", "read"))]
Write = Annotated[Auth, Depends(api_auth("acquisition", "write"))]
TAGS: list[str | Any] = ["acquisition"]


class WelcomeIn(Strict):
    text: str = Field(min_length=1, max_length=4000)
    url: str | None = Field(default=None, max_length=2000)
    title: str | None = Field(default=None, max_length=120)


class GroupCodeIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    account_id: int
    state: str = Field(min_length=1, max_length=30, description="comes back on each member who joins through it")
    group_ids: list[int] = Field(min_length=1, max_length=5, description="customer groups, in the order they fill")
    source_id: int | None = None
    auto_create_room: bool = False
    room_base_name: str = Field(default="", max_length=40)
    room_base_id: int | None = Field(default=None, ge=0, le=1_000_000)
    welcome: WelcomeIn | None = None
    expires_at: datetime | None = None


class GroupCodeUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    group_ids: list[int] | None = Field(default=None, min_length=1, max_length=5)
    source_id: int | None = None
    auto_create_room: bool | None = None
    room_base_name: str | None = Field(default=None, max_length=40)
    room_base_id: int | None = Field(default=None, ge=0, le=1_000_000)
    welcome: WelcomeIn | None = None
    expires_at: datetime | None = None


class StatusIn(Strict):
    status: Literal["active", "paused", "expired"]


class GroupOut(BaseModel):
    id: int
    account_id: int
    chat_id: str
    name: str
    owner_userid: str
    status: str
    member_count: int
    external_count: int
    created_at: datetime
    dismissed_at: datetime | None

    @classmethod
    def of(cls, g: CustomerGroup) -> GroupOut:
        return cls(id=g.id, account_id=g.account_id, chat_id=g.chat_id, name=g.name, owner_userid=g.owner_userid,
                   status=g.status, member_count=g.member_count, external_count=g.external_count,
                   created_at=g.created_at, dismissed_at=g.dismissed_at)


class CodeGroupOut(GroupOut):
    in_way: bool = Field(description="still in WeCom's join-way list (False once full or removed)")


class GroupCodeOut(BaseModel):
    id: int
    name: str
    account_id: int | None
    source_id: int | None
    state: str
    status: str
    config_id: str | None
    qr_url: str | None
    auto_create_room: bool
    room_base_name: str
    room_base_id: int | None
    welcome: dict[str, Any]
    welcome_template_id: str | None
    expires_at: datetime | None
    sync_error: str | None
    groups: list[CodeGroupOut]
    totals: dict[str, int] = Field(description="customers the code brought: joined, left, staying")


class SeriesOut(BaseModel):
    labels: list[str]
    joins: list[int]
    leaves: list[int]
    size: list[int]


class ImportOut(BaseModel):
    added: int


def _code_out(session: Any, code: GroupCode) -> GroupCodeOut:
    listed = [CodeGroupOut(**GroupOut.of(g).model_dump(), in_way=link.in_way)
              for link, g in group_codes.code_groups(session, code)]
    return GroupCodeOut(
        id=code.id, name=code.name, account_id=code.account_id, source_id=code.source_id, state=code.state,
        status=group_codes.effective_status(code), config_id=code.config_id, qr_url=code.qr_url,
        auto_create_room=code.auto_create_room, room_base_name=code.room_base_name, room_base_id=code.room_base_id,
        welcome=dict(code.welcome), welcome_template_id=code.welcome_template_id, expires_at=code.expires_at,
        sync_error=code.sync_error, groups=listed, totals=groups.code_totals(session, code.id))


@router.get("/customer-groups", tags=TAGS)
def list_groups(auth: Read, session: SessionDep,
                status: Annotated[Literal["active", "dismissed"] | None, Query()] = None) -> list[GroupOut]:
    """The workspace's WeCom customer groups with their member counts."""
    return [GroupOut.of(g) for g in groups.list_groups(session, status=status)]


@router.get("/customer-groups/{group_id}/series", tags=TAGS)
def group_series(group_id: int, auth: Read, session: SessionDep,
                 days: Annotated[int, Query(ge=1, le=366)] = 30) -> SeriesOut:
    """Customers who joined and left a group each day, and its size in customers at each day's end."""
    group = groups.get_group(session, group_id)
    return SeriesOut(**groups.daily_series(session, group_ids=[group.id], days=days))


@router.post("/channel-accounts/{account_id}/customer-groups/import", tags=TAGS)
def import_groups(account_id: int, auth: Write, session: SessionDep) -> ImportOut:
    """Learn a WeCom account's existing customer groups (their details follow in the background)."""
    account = wecom.wecom_account(session, account_id)
    return ImportOut(added=groups.import_groups(session, account, actor=auth.actor))


@router.get("/group-codes", tags=TAGS)
def list_codes(auth: Read, session: SessionDep) -> list[GroupCodeOut]:
    """The workspace's group live codes."""
    return [_code_out(session, c) for c in group_codes.list_group_codes(session)]


@router.post("/group-codes", status_code=201, tags=TAGS)
def create_code(body: GroupCodeIn, auth: Write, session: SessionDep) -> GroupCodeOut:
    """A group live code: a WeCom join way of up to 5 groups, its QR code and welcome template."""
    values = body.model_dump()
    values["welcome"] = body.welcome.model_dump(exclude_none=True) if body.welcome else None
    return _code_out(session, group_codes.create_group_code(session, actor=auth.actor, **values))


@router.get("/group-codes/{group_code_id}", tags=TAGS)
def read_code(group_code_id: int, auth: Read, session: SessionDep) -> GroupCodeOut:
    """One group code with its groups and totals."""
    return _code_out(session, group_codes.get_group_code(session, group_code_id))


@router.patch("/group-codes/{group_code_id}", tags=TAGS)
def update_code(group_code_id: int, body: GroupCodeUpdate, auth: Write, session: SessionDep) -> GroupCodeOut:
    """Change a code's name, groups, source, auto-creation, welcome or end (its QR code stays)."""
    code = group_codes.get_group_code(session, group_code_id)
    changes = body.model_dump(exclude_unset=True)
    if "welcome" in changes:
        changes["welcome"] = body.welcome.model_dump(exclude_none=True) if body.welcome else {}
    return _code_out(session, group_codes.update_group_code(session, code, changes=changes, actor=auth.actor))


@router.post("/group-codes/{group_code_id}/status", tags=TAGS)
def set_status(group_code_id: int, body: StatusIn, auth: Write, session: SessionDep) -> GroupCodeOut:
    """Pause, resume or expire a code."""
    code = group_codes.get_group_code(session, group_code_id)
    return _code_out(session, group_codes.set_status(session, code, body.status, actor=auth.actor))


@router.get("/group-codes/{group_code_id}/series", tags=TAGS)
def code_series(group_code_id: int, auth: Read, session: SessionDep,
                days: Annotated[int, Query(ge=1, le=366)] = 30) -> SeriesOut:
    """Customers the code brought each day, those of them who left, and its groups' size per day."""
    code = group_codes.get_group_code(session, group_code_id)
    return SeriesOut(**groups.daily_series(session, code_id=code.id, days=days))


@router.delete("/group-codes/{group_code_id}", status_code=204, tags=TAGS)
def delete_code(group_code_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a code and its WeCom join way (the printed QR stops working)."""
    group_codes.delete_group_code(session, group_codes.get_group_code(session, group_code_id), actor=auth.actor)
    return Response(status_code=204)
