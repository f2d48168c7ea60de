"""Outbound event webhooks: a webhook account subscribed to event types (config `events`: patterns such
as `order.*`, `message.*`, `contact.merged`) gets each matching event as a signed POST
`{"type": "event", "event": {...}}` (the event as `GET /api/v1/events/{id}` shows it).

One subscriber listens to every type but asks (`wants`) for only the types some active webhook account
of the workspace subscribes to, so no job is queued for events nobody wants. Each (account, event) is
then its own external job: the endpoint dedupes on `Idempotency-Key: event:<id>`, so a repeat after a
crash is safe; failures are retried with backoff and the job is parked with the reason after its
attempts. `list_deliveries` shows those jobs per account.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from siyu.channels import service as channels
from siyu.channels.base import ChannelError
from siyu.channels.models import ChannelAccount
from siyu.channels.webhook import patterns_of, post_signed, subscribes
from siyu.core import jobs
from siyu.core.api_events import EventOut
from siyu.core.errors import Invalid, NotFound
from siyu.core.events import on_event
from siyu.core.models import Event, Job
from siyu.core.pagination import page
from siyu.core.tenancy import get_scoped, parse_id

DELIVER_EVENT = "channels.webhook_event"


@dataclass(frozen=True)
class Interest(Collection[str]):
    """The event types the workspace's webhook accounts want, as patterns: `"order.paid" in interest`."""

    patterns: tuple[str, ...]

    def __contains__(self, event_type: object) -> bool:
        return isinstance(event_type, str) and subscribes(self.patterns, event_type)

    def __iter__(self) -> Iterator[str]:
        return iter(self.patterns)

    def __len__(self) -> int:
        return len(self.patterns)


def _subscribed_accounts(session: Session) -> list[ChannelAccount]:
    return [a for a in channels.list_accounts(session, kind="webhook")
            if a.status == "active" and patterns_of(a.config)]


def wanted_event_types(session: Session) -> Interest:
    """What the bound workspace's active webhook accounts subscribe to (asked once per recorded batch, so
    one light query: the settings column alone)."""
    configs = session.execute(select(ChannelAccount.config).where(
        ChannelAccount.kind == "webhook", ChannelAccount.status == "active")).scalars()
    return Interest(tuple(p for config in configs for p in patterns_of(config)))


@on_event("*", "channels.webhook_events", wants=wanted_event_types)
def fan_out(session: Session, event: Event) -> None:
    """One delivery job per active webhook account subscribed to the event's type."""
    for account in _subscribed_accounts(session):
        if subscribes(patterns_of(account.config), event.type):
            jobs.enqueue(session, DELIVER_EVENT, f"{account.id}:{event.id}",
                         {"account_id": account.id, "event_id": event.id, "event_type": event.type})


def event_payload(event: Event) -> dict[str, Any]:
    """The body POSTed for one event."""
    return {"type": "event", "event": EventOut.of(event).model_dump(mode="json")}


@jobs.handler(DELIVER_EVENT, external=True, accepts_idempotency_key=True)
def deliver_event(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    """POST one event to one account; a failure raises, so the job is retried, then parked with it."""
    account = session.get(ChannelAccount, parse_id(ctx.payload["account_id"], "account"))
    if account is None or account.kind != "webhook":
        return {"skipped": "account_deleted"}
    if account.status != "active":
        return {"skipped": "account_paused"}
    event = get_scoped(session, Event, ctx.payload["event_id"], what="event")
    try:
        response = channels.run_async(post_signed(account.config["url"], account.secrets["secret"],
                                                  event_payload(event), f"event:{event.id}"))
    except ChannelError as exc:
        raise DeliveryFailed(f"{exc.code}: {exc}") from exc
    channels.record_health(session, account)
    return {"status": response.status_code}


class DeliveryFailed(Exception):
    """The endpoint did not take the event; the job retries it with backoff."""


@dataclass(frozen=True)
class Delivery:
    id: int
    event_id: int
    event_type: str
    status: str  # pending | running | done | parked | unknown
    attempts: int
    last_error: str | None
    response_status: int | None
    next_attempt_at: datetime | None
    created_at: datetime
    finished_at: datetime | None


def _delivery(job: Job) -> Delivery:
    result = job.result or {}
    return Delivery(
        id=job.id, event_id=int(job.payload.get("event_id", 0)), event_type=str(job.payload.get("event_type", "")),
        status=job.status, attempts=job.attempts, last_error=job.last_error,
        response_status=result.get("status") if isinstance(result.get("status"), int) else None,
        next_attempt_at=job.run_at if job.status == jobs.PENDING else None, created_at=job.created_at,
        finished_at=job.finished_at,
    )


def list_deliveries(session: Session, account_id: Any, *, cursor: str | None, limit: int,
                    status: str | None = None) -> tuple[list[Delivery], str | None]:
    """A webhook account's event deliveries, newest first (404 for another workspace's or kind's account)."""
    account = channels.get_account(session, account_id)
    if account.kind != "webhook":
        raise NotFound("this account is not a webhook", field="account_id")
    stmt = select(Job).where(Job.kind == DELIVER_EVENT, Job.idempotency_key.like(f"{account.id}:%"))
    if status is not None:
        if status not in jobs.STATUSES:
            raise Invalid(f"status is one of {', '.join(jobs.STATUSES)}", field="status")
        stmt = stmt.where(Job.status == status)
    rows, next_cursor = page(session, stmt, Job.id, cursor=cursor, limit=limit)
    return [_delivery(j) for j in rows], next_cursor
