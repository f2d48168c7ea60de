"""REST: a webhook account's event deliveries, with where each stands and why it failed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from siyu.channels import webhook_events
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("channels", "read"))]


class DeliveryOut(BaseModel):
    """One event's delivery to the account's endpoint: `status` is the job's (pending while retrying,
    done, parked after its attempts), `last_error` the endpoint's latest refusal or failure."""

    id: int
    event_id: int
    event_type: str
    status: str
    attempts: int
    last_error: str | None
    response_status: int | None
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


@router.get("/channel-accounts/{account_id}/webhook-deliveries", tags=["channels"])
def list_webhook_deliveries(
    account_id: int, auth: Read, session: SessionDep, status: str | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[DeliveryOut]:
    """The account's event deliveries, newest first; `status=parked` lists those that gave up."""
    rows, nxt = webhook_events.list_deliveries(session, account_id, cursor=cursor, limit=limit, status=status)
    return Page[DeliveryOut](items=[DeliveryOut(**vars(r)) for r in rows], next_cursor=nxt)
