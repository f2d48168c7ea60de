"""REST endpoints of broadcasts: CRUD, schedule / send now, pause / resume / cancel, the report, the
recipients, and the workspace's caps and quiet hours."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import IdIn, Page, Strict
from siyu.messaging import broadcast_report, broadcasts, caps
from siyu.messaging.broadcast_models import Broadcast
from siyu.messaging.content import HELP as CONTENT_HELP

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("messaging", "read"))]
Write = Annotated[Auth, Depends(api_auth("messaging", "write"))]
Status = Literal["draft", "scheduled", "sending", "paused", "done", "cancelled"]
RecipientStatus = Literal["pending", "held", "queued", "sending", "sent", "delivered", "opened", "clicked",
                          "failed", "skipped"]


class BroadcastIn(Strict):
    name: str = Field(min_length=1, max_length=120)
    account_id: IdIn
    segment_id: IdIn
    content: dict[str, Any] = Field(description=CONTENT_HELP + " — of the types the account's channel carries")
    optimise_send_time: bool = False
    window_hours: int = Field(default=24, ge=1, le=broadcasts.MAX_WINDOW_HOURS)


class BroadcastUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    account_id: IdIn | None = None
    segment_id: IdIn | None = None
    content: dict[str, Any] | None = Field(default=None, description=CONTENT_HELP)
    optimise_send_time: bool | None = None
    window_hours: int | None = Field(default=None, ge=1, le=broadcasts.MAX_WINDOW_HOURS)


class ScheduleIn(Strict):
    at: str = Field(min_length=1, max_length=40,
                    description="wall-clock time in the workspace's timezone, e.g. 2026-12-01T10:00")


class BroadcastOut(BaseModel):
    id: int
    name: str
    status: str
    account_id: int | None
    segment_id: int | None
    content: dict[str, Any]
    optimise_send_time: bool
    window_hours: int
    scheduled_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    audience_count: int
    processed_count: int
    created_by: str
    created_at: datetime


class SeriesOut(BaseModel):
    labels: list[str]
    sent: list[int]
    clicked: list[int]


class ReasonOut(BaseModel):
    status: str
    reason: str
    count: int


class LinkOut(BaseModel):
    url: str
    clicks: int
    clicked_by: int


class ReportOut(BaseModel):
    broadcast: BroadcastOut
    counts: dict[str, int] = Field(description="recipients per status")
    reasons: list[ReasonOut]
    over_time: SeriesOut = Field(description="messages sent and first clicks per minute (or hour), local time")
    links: list[LinkOut]


class RecipientOut(BaseModel):
    id: int
    contact_id: int
    status: str
    reason: str | None
    planned_at: datetime | None
    send_time: dict[str, Any] | None = Field(description="why this time: own or workspace bucket and hour")
    message_id: int | None
    sent_at: datetime | None
    clicked_at: datetime | None


class Limits(Strict):
    day: int | None = Field(default=None, ge=0, le=caps.MAX_CAP)
    week: int | None = Field(default=None, ge=0, le=caps.MAX_CAP)
    month: int | None = Field(default=None, ge=0, le=caps.MAX_CAP)


class SettingsIn(Strict):
    caps: dict[str, Limits] = Field(default_factory=dict, description='per channel kind, "*" for all')
    quiet_start: str | None = Field(default=None, description="HH:MM local time, e.g. 21:00")
    quiet_end: str | None = Field(default=None, description="HH:MM local time, e.g. 09:00")


class SettingsOut(BaseModel):
    caps: dict[str, dict[str, int]]
    quiet_start: str | None
    quiet_end: str | None
    timezone: str


def _out(b: Broadcast) -> BroadcastOut:
    return BroadcastOut(**{name: getattr(b, name) for name in BroadcastOut.model_fields})


@router.get("/broadcasts", tags=["broadcasts"])
def list_broadcasts(
    auth: Read, session: SessionDep, status: Status | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[BroadcastOut]:
    """Broadcasts, newest first, optionally of one status."""
    rows, nxt = broadcasts.list_broadcasts(session, status=status, cursor=cursor, limit=limit)
    return Page[BroadcastOut](items=[_out(b) for b in rows], next_cursor=nxt)


@router.post("/broadcasts", status_code=201, tags=["broadcasts"])
def create_broadcast(body: BroadcastIn, auth: Write, session: SessionDep) -> BroadcastOut:
    """A draft broadcast to a segment through one account."""
    data = body.model_dump()
    data["content"] = body.content
    return _out(broadcasts.create_broadcast(session, actor=auth.actor, **data))


@router.get("/broadcasts/{broadcast_id}", tags=["broadcasts"])
def read_broadcast(broadcast_id: int, auth: Read, session: SessionDep) -> BroadcastOut:
    """One broadcast."""
    return _out(broadcasts.get_broadcast(session, broadcast_id))


@router.patch("/broadcasts/{broadcast_id}", tags=["broadcasts"])
def update_broadcast(broadcast_id: int, body: BroadcastUpdate, auth: Write, session: SessionDep) -> BroadcastOut:
    """Change a draft or scheduled broadcast."""
    b = broadcasts.get_broadcast(session, broadcast_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    if body.content is not None:
        changes["content"] = body.content
    return _out(broadcasts.update_broadcast(session, b, changes=changes, actor=auth.actor))


@router.delete("/broadcasts/{broadcast_id}", status_code=204, tags=["broadcasts"])
def delete_broadcast(broadcast_id: int, auth: Write, session: SessionDep) -> None:
    """Delete a broadcast that is not sending (its messages stay in the archive)."""
    broadcasts.delete_broadcast(session, broadcasts.get_broadcast(session, broadcast_id), actor=auth.actor)


@router.post("/broadcasts/{broadcast_id}/schedule", tags=["broadcasts"])
def schedule_broadcast(broadcast_id: int, body: ScheduleIn, auth: Write, session: SessionDep) -> BroadcastOut:
    """Send at a time in the workspace's timezone."""
    b = broadcasts.get_broadcast(session, broadcast_id)
    return _out(broadcasts.schedule(session, b, at=body.at, actor=auth.actor))


@router.post("/broadcasts/{broadcast_id}/send", tags=["broadcasts"])
def send_now(broadcast_id: int, auth: Write, session: SessionDep) -> BroadcastOut:
    """Send now (the worker starts it within seconds)."""
    b = broadcasts.get_broadcast(session, broadcast_id)
    return _out(broadcasts.schedule(session, b, at=None, actor=auth.actor))


def _action(name: str) -> Any:
    def act(broadcast_id: int, auth: Write, session: SessionDep) -> BroadcastOut:
        b = broadcasts.get_broadcast(session, broadcast_id)
        return _out(getattr(broadcasts, name)(session, b, actor=auth.actor))

    act.__doc__ = {"pause": "Stop sending; messages that have not left are held.",
                   "resume": "Continue a paused broadcast; nobody gets a second message.",
                   "cancel": "Stop for good; what has not left is skipped as cancelled."}[name]
    act.__name__ = f"{name}_broadcast"
    return act


for _name in ("pause", "resume", "cancel"):
    router.post(f"/broadcasts/{{broadcast_id}}/{_name}", tags=["broadcasts"])(_action(_name))


def report_of(session: Session, b: Broadcast) -> ReportOut:
    """The report's shape, shared with the console's polling."""
    series = broadcast_report.over_time(session, b, broadcasts.workspace_tz(session))
    return ReportOut(
        broadcast=_out(b), counts=broadcast_report.status_counts(session, b),
        reasons=[ReasonOut(status=s, reason=r, count=n) for s, r, n in broadcast_report.reasons(session, b)],
        over_time=SeriesOut(labels=series.labels, sent=series.sent, clicked=series.clicked),
        links=[LinkOut(url=u, clicks=c, clicked_by=n) for u, c, n in broadcast_report.link_clicks(session, b)],
    )


@router.get("/broadcasts/{broadcast_id}/report", tags=["broadcasts"])
def read_report(broadcast_id: int, auth: Read, session: SessionDep) -> ReportOut:
    """Counts by status, skip and failure reasons, sends and clicks over time, clicks per link."""
    return report_of(session, broadcasts.get_broadcast(session, broadcast_id))


@router.get("/broadcasts/{broadcast_id}/recipients", tags=["broadcasts"])
def list_recipients(
    broadcast_id: int, auth: Read, session: SessionDep, status: RecipientStatus | None = None,
    cursor: str | None = None, limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[RecipientOut]:
    """The broadcast's recipients with their message's status, newest first."""
    b = broadcasts.get_broadcast(session, broadcast_id)
    rows, nxt = broadcast_report.list_recipients(session, b, status=status, cursor=cursor, limit=limit)
    items = [RecipientOut(id=r.id, contact_id=r.contact_id, status=broadcast_report.effective(r, m),
                          reason=r.reason or (m.error if m else None), planned_at=r.planned_at, send_time=r.note,
                          message_id=r.message_id, sent_at=m.sent_at if m else None,
                          clicked_at=m.clicked_at if m else None) for r, m in rows]
    return Page[RecipientOut](items=items, next_cursor=nxt)


def _settings_out(session: Session) -> SettingsOut:
    s = caps.get_settings(session)
    return SettingsOut(caps=s.caps or {}, quiet_start=s.quiet_start, quiet_end=s.quiet_end,
                       timezone=broadcasts.workspace_tz(session).key)


@router.get("/broadcast-settings", tags=["broadcasts"])
def read_settings(auth: Read, session: SessionDep) -> SettingsOut:
    """Frequency caps per channel and quiet hours (in the workspace's timezone)."""
    return _settings_out(session)


@router.put("/broadcast-settings", tags=["broadcasts"])
def update_settings(body: SettingsIn, auth: Write, session: SessionDep) -> SettingsOut:
    """Replace the caps and quiet hours."""
    caps.update_settings(session, caps={k: v.model_dump(exclude_none=True) for k, v in body.caps.items()},
                         quiet_start=body.quiet_start, quiet_end=body.quiet_end, actor=auth.actor)
    return _settings_out(session)
