"""REST endpoints of segments: CRUD, the rule schema, a live preview, members paged, refresh, static lists."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from siyu.contacts import segments
from siyu.contacts.segment_rules import rule_schema
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page, Strict

router = APIRouter(tags=["segments"])
Read = Annotated[Auth, Depends(api_auth("contacts", "read"))]
Write = Annotated[Auth, Depends(api_auth("contacts", "write"))]
Rule = Annotated[dict[str, Any], Field(description="A segment rule: see GET /api/v1/segments/rule-schema.")]


class SegmentOut(BaseModel):
    """A segment; `member_count` and `refreshed_at` are as of its last refresh."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    description: str | None
    kind: str
    rule: dict[str, Any] | None
    member_count: int
    refreshed_at: datetime | None
    created_at: datetime
    updated_at: datetime


class SegmentCreate(Strict):
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["dynamic", "static"]
    rule: Rule | None = Field(default=None, description="Required for dynamic; for static, snapshot its matches now.")
    description: str | None = Field(default=None, max_length=2000)


class SegmentUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    rule: Rule | None = None


class SegmentContactOut(BaseModel):
    """A contact as a segment lists it."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str | None
    nickname: str | None
    city: str | None
    phone: str | None
    email: str | None
    birthday: date | None
    stage: str
    owner_id: int | None
    created_at: datetime


class PreviewIn(Strict):
    rule: Rule
    limit: int = Field(default=20, ge=1, le=200)


class PreviewOut(BaseModel):
    """How many contacts match the rule now, and the newest of them."""

    count: int
    sample: list[SegmentContactOut]


class RefreshOut(BaseModel):
    entered: int
    exited: int
    member_count: int


class IdentityIn(Strict):
    type: str = Field(min_length=1, max_length=40, description="phone, email, unionid, ...")
    value: str = Field(min_length=1, max_length=200)


class MembersIn(Strict):
    contact_ids: list[int] = Field(default_factory=list, max_length=10_000)
    identities: list[IdentityIn] = Field(default_factory=list, max_length=10_000)


class MembersRemove(Strict):
    contact_ids: list[int] = Field(min_length=1, max_length=10_000)


class MembershipOut(BaseModel):
    """What a change did; `unknown` lists the ids and identities that named no contact of the workspace."""

    added: int
    removed: int
    unchanged: int
    unknown: list[str]
    member_count: int


@router.get("/segments/rule-schema")
def read_rule_schema(auth: Read) -> dict[str, Any]:
    """The JSON Schema of segment rules (docs/segment-rules.md explains each condition)."""
    return rule_schema()


@router.get("/segments")
def list_segments(
    auth: Read, session: SessionDep, cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50
) -> Page[SegmentOut]:
    """The workspace's segments, newest first."""
    rows, nxt = segments.list_segments(session, cursor=cursor, limit=limit)
    return Page[SegmentOut](items=[SegmentOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/segments", status_code=201)
def create_segment(body: SegmentCreate, auth: Write, session: SessionDep) -> SegmentOut:
    """A dynamic segment (refreshed by the worker) or a static one (a snapshot of the rule, or empty)."""
    segment = segments.create_segment(session, name=body.name, kind=body.kind, rule=body.rule,
                                      description=body.description, actor=auth.actor)
    return SegmentOut.model_validate(segment)


@router.post("/segments/preview")
def preview(body: PreviewIn, auth: Read, session: SessionDep) -> PreviewOut:
    """Count the contacts a rule matches now and show the newest ones, without saving anything."""
    count, sample = segments.preview(session, body.rule, limit=body.limit)
    return PreviewOut(count=count, sample=[SegmentContactOut.model_validate(c) for c in sample])


@router.get("/segments/{segment_id}")
def read_segment(segment_id: int, auth: Read, session: SessionDep) -> SegmentOut:
    """One segment."""
    return SegmentOut.model_validate(segments.get_segment(session, segment_id))


@router.patch("/segments/{segment_id}")
def update_segment(segment_id: int, body: SegmentUpdate, auth: Write, session: SessionDep) -> SegmentOut:
    """Rename or describe a segment, or change a dynamic segment's rule (applied by the worker at once)."""
    segment = segments.get_segment(session, segment_id)
    updated = segments.update_segment(session, segment, name=body.name, description=body.description,
                                      rule=body.rule, actor=auth.actor)
    return SegmentOut.model_validate(updated)


@router.delete("/segments/{segment_id}", status_code=204)
def delete_segment(segment_id: int, auth: Write, session: SessionDep) -> Response:
    """Delete a segment (refused while another segment's rule refers to it)."""
    segments.delete_segment(session, segments.get_segment(session, segment_id), actor=auth.actor)
    return Response(status_code=204)


@router.get("/segments/{segment_id}/members")
def list_members(
    segment_id: int, auth: Read, session: SessionDep, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[SegmentContactOut]:
    """The segment's contacts as of its last refresh, newest contact first."""
    segment = segments.get_segment(session, segment_id)
    rows, nxt = segments.list_members(session, segment, cursor=cursor, limit=limit)
    return Page[SegmentContactOut](items=[SegmentContactOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.post("/segments/{segment_id}/refresh")
def refresh(segment_id: int, auth: Write, session: SessionDep) -> RefreshOut:
    """Re-evaluate a dynamic segment now (the worker also does it on events and on schedule)."""
    result = segments.refresh_now(session, segments.get_segment(session, segment_id), actor=auth.actor)
    return RefreshOut(entered=result.entered, exited=result.exited, member_count=result.member_count)


def _membership(change: segments.MembershipChange, member_count: int) -> MembershipOut:
    return MembershipOut(added=change.added, removed=change.removed, unchanged=change.unchanged,
                         unknown=change.unknown, member_count=member_count)


@router.post("/segments/{segment_id}/members")
def add_members(segment_id: int, body: MembersIn, auth: Write, session: SessionDep) -> MembershipOut:
    """Put contacts into a static segment by id or by identity (phone, email...); unknown ones are listed."""
    segment = segments.get_segment(session, segment_id)
    change = segments.add_members(session, segment, contact_ids=body.contact_ids,
                                  identities=[(i.type, i.value) for i in body.identities], actor=auth.actor)
    return _membership(change, segment.member_count)


@router.post("/segments/{segment_id}/members/remove")
def remove_members(segment_id: int, body: MembersRemove, auth: Write, session: SessionDep) -> MembershipOut:
    """Take contacts out of a static segment."""
    segment = segments.get_segment(session, segment_id)
    change = segments.remove_members(session, segment, contact_ids=body.contact_ids, actor=auth.actor)
    return _membership(change, segment.member_count)
