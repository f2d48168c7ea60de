"""REST: a webhook account's event deliveries, with where each stands and why it failed."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from siyu.channels import webhook_events
from siyu.channels.webhook_events import Delivery
from siyu.core.auth import Auth, SessionDep, api_auth
from siyu.core.schemas import Page

router = APIRouter()
Read = Annotated[Auth, Depends(api_auth("channels", "read"))]


@router.get("/channel-accounts/{account_id}/webhook-deliveries", tags=["channels"])
def list_webhook_deliveries(
    account_id: int, auth: Read, session: SessionDep, status: str | None = None, cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[Delivery]:
    """The account's event deliveries, newest first: `status` is the job's (pending while retrying, done,
    parked after its attempts), `last_error` the endpoint's latest refusal; `status=parked` lists those
    that gave up."""
    rows, nxt = webhook_events.list_deliveries(session, account_id, cursor=cursor, limit=limit, status=status)
    return Page[Delivery](items=rows, next_cursor=nxt)
