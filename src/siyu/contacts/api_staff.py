"""REST endpoints of staff members, owners, handovers and lifecycle settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from siyu.contacts import lifecycle, lifecycle_overview
from siyu.contacts import staff as staff_service
from siyu.contacts.models import StaffMember
from siyu.contacts.tags import MAX_BULK
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import IdIn, Page, Strict
from siyu.core.tenancy import MAX_ID

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("contacts", "read"))]
Write = Annotated[Auth, Depends(api_auth("contacts", "write"))]


class StaffIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    user_id: IdIn | None = Field(default=None, description="a console user of this workspace")
    wecom_userid: str | None = Field(default=None, max_length=64)
    active: bool = True


class StaffUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    user_id: IdIn | None = None
    wecom_userid: str | None = Field(default=None, max_length=64)
    active: bool | None = None


class StaffOut(BaseModel):
    id: int
    name: str
    active: bool
    user_id: int | None
    wecom_userid: str | None
    contact_count: int
    created_at: datetime


class HandoverIn(Strict):
    to_staff_id: IdIn
    reason: Literal["leaving", "reassignment"]
    contact_ids: list[IdIn] | None = Field(
        default=None, max_length=MAX_BULK, description="leave out to hand over every contact the staff member owns"
    )


class HandoverOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    from_staff_id: int | None
    to_staff_id: int | None
    reason: str
    contact_ids: list[int]
    contact_count: int
    actor: str
    at: datetime


class AssignIn(Strict):
    contact_ids: list[IdIn] = Field(min_length=1, max_length=MAX_BULK)


class AssignOut(BaseModel):
    changed: int = Field(description="contacts whose owner changed")


class LifecycleRules(Strict):
    customer_orders: int = Field(default=1, ge=1, le=3650, description="paid orders that make a customer")
    repeat_orders: int = Field(default=2, ge=1, le=3650, description="paid orders that make a repeat customer")
    dormant_days: int = Field(default=60, ge=1, le=3650, description="days without activity before dormant")
    churned_days: int = Field(default=180, ge=1, le=3650, description="days without activity before churned")


class LifecycleOut(LifecycleRules):
    stages: dict[str, int] = Field(description="contacts in each stage now")
    rfm: dict[str, dict[int, int]] = Field(description="buyers per score 1-5 of recency, frequency and monetary")


def _lifecycle(session: Session, rules: dict[str, int]) -> LifecycleOut:
    return LifecycleOut(**rules, stages=lifecycle.stage_counts(session),
                        rfm=lifecycle_overview.rfm_distribution(session))


def _out(staff: StaffMember, count: int) -> StaffOut:
    return StaffOut(id=staff.id, name=staff.name, active=staff.active, user_id=staff.user_id,
                    wecom_userid=staff.wecom_userid, contact_count=count, created_at=staff.created_at)


@router.get("/staff", tags=["staff"])
def list_staff(auth: Read, session: SessionDep, active: bool | None = None) -> list[StaffOut]:
    """The workspace's staff members with how many contacts each owns."""
    counts = staff_service.owned_counts(session)
    return [_out(s, counts.get(s.id, 0)) for s in staff_service.list_staff(session, active=active)]


@router.post("/staff", status_code=201, tags=["staff"])
def create_staff(body: StaffIn, auth: Write, session: SessionDep) -> StaffOut:
    """A new staff member, optionally linked to a console user and a WeCom userid."""
    return _out(staff_service.create_staff(session, actor=auth.actor, **body.model_dump()), 0)


@router.get("/staff/{staff_id}", tags=["staff"])
def read_staff(staff_id: int, auth: Read, session: SessionDep) -> StaffOut:
    """One staff member."""
    member = staff_service.get_staff(session, staff_id)
    return _out(member, staff_service.owned_counts(session).get(member.id, 0))


@router.patch("/staff/{staff_id}", tags=["staff"])
def update_staff(staff_id: int, body: StaffUpdate, auth: Write, session: SessionDep) -> StaffOut:
    """Rename, relink or (once their contacts are handed over) deactivate a staff member."""
    member = staff_service.get_staff(session, staff_id)
    changes = body.model_dump(exclude_unset=True)
    for required in ("name", "active"):
        if changes.get(required, "") is None:
            changes.pop(required)
    staff_service.update_staff(session, member, changes=changes, actor=auth.actor)
    return _out(member, staff_service.owned_counts(session).get(member.id, 0))


@router.post("/staff/{staff_id}/contacts", tags=["staff"])
def assign_contacts(staff_id: int, body: AssignIn, auth: Write, session: SessionDep) -> AssignOut:
    """Make this staff member the owner of contacts (each change a contact.owner_changed event)."""
    member = staff_service.get_staff(session, staff_id)
    return AssignOut(changed=staff_service.assign_owner(session, body.contact_ids, member.id, actor=auth.actor))


@router.post("/staff/{staff_id}/handover", status_code=201, tags=["staff"])
def hand_over(staff_id: int, body: HandoverIn, auth: Write, session: SessionDep) -> HandoverOut:
    """Move all (or the listed) contacts of this staff member to another; a `leaving` handover of all
    contacts also deactivates them."""
    member = staff_service.get_staff(session, staff_id)
    record = staff_service.handover(
        session, from_staff_id=member.id, to_staff_id=body.to_staff_id, contact_ids=body.contact_ids,
        reason=body.reason, actor=auth.actor,
    )
    return HandoverOut.model_validate(record)


@router.get("/handovers", tags=["staff"])
def list_handovers(
    auth: Read, session: SessionDep, staff_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[HandoverOut]:
    """Handovers, newest first; `staff_id` keeps those from or to one staff member."""
    rows, nxt = staff_service.list_handovers(session, staff_id=staff_id, cursor=cursor, limit=limit)
    return Page[HandoverOut](items=[HandoverOut.model_validate(r) for r in rows], next_cursor=nxt)


@router.get("/handovers/{handover_id}", tags=["staff"])
def read_handover(handover_id: int, auth: Read, session: SessionDep) -> HandoverOut:
    """One handover record."""
    return HandoverOut.model_validate(staff_service.get_handover(session, handover_id))


@router.get("/lifecycle", tags=["lifecycle"])
def read_lifecycle(auth: Read, session: SessionDep) -> LifecycleOut:
    """The lifecycle rules, how many contacts are in each stage, and the RFM score distribution."""
    return _lifecycle(session, lifecycle.get_rules(session))


@router.put("/lifecycle", tags=["lifecycle"])
def update_lifecycle(body: LifecycleRules, auth: Write, session: SessionDep) -> LifecycleOut:
    """Replace the lifecycle rules; stages are recomputed by a refresh queued now."""
    rules = lifecycle.update_rules(session, body.model_dump(), actor=auth.actor)
    return _lifecycle(session, rules)
