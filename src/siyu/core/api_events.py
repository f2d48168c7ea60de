"""REST endpoints of events: batch ingestion from shops and other systems, and reading them back."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import AwareDatetime, BaseModel, TypeAdapter

from siyu.core import events
from siyu.core.auth import Auth, SessionDep, api_auth, in_unit_of_work
from siyu.core.models import Event
from siyu.core.schemas import ErrorOut, Page

router = APIRouter(tags=["events"])


def _inline(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON schema with its local $defs written in place, to sit inside an OpenAPI operation."""
    defs = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref", "")
            if ref.startswith("#/$defs/"):
                return walk(defs[ref.removeprefix("#/$defs/")])
            return {k: walk(v) for k, v in node.items()}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    result: dict[str, Any] = walk(schema)
    return result


_BATCH_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _inline(TypeAdapter(events.EventBatch).json_schema())}},
}


class ItemErrorOut(BaseModel):
    index: int
    code: str
    message: str
    field: str | None


class BatchOut(BaseModel):
    """How many items were stored, how many were already known, and why the others were refused."""

    accepted: int
    duplicates: int
    errors: list[ItemErrorOut]


class IdentityOut(BaseModel):
    type: str
    value: str


class EventOut(BaseModel):
    id: int
    type: str
    occurred_at: datetime
    received_at: datetime
    idempotency_key: str
    contact_id: int | None
    identity: IdentityOut | None
    source: str
    properties: dict[str, Any]

    @classmethod
    def of(cls, e: Event) -> EventOut:
        """The API shape of a stored event."""
        identity = (
            IdentityOut(type=e.identity_type, value=e.identity_value)
            if e.identity_type is not None and e.identity_value is not None
            else None
        )
        return cls(
            id=e.id,
            type=e.type,
            occurred_at=e.occurred_at,
            received_at=e.received_at,
            idempotency_key=e.idempotency_key,
            contact_id=e.contact_id,
            identity=identity,
            source=e.source,
            properties=e.properties,
        )


_REFUSALS: dict[int | str, dict[str, Any]] = {s: {"model": ErrorOut} for s in (400, 401, 403, 413, 422)}


@router.post("/events", responses=_REFUSALS, openapi_extra={"requestBody": _BATCH_BODY})
async def ingest_events(
    request: Request, auth: Annotated[Auth, Depends(api_auth("events", "write"))], session: SessionDep
) -> BatchOut:
    """Store a batch of 1 to 1,000 events: good items stored, known idempotency keys skipped, bad items
    reported by index."""
    # The raw body goes to the service, which decodes and checks it in one pass (see event_input.py); the
    # answer has only counts, so no ids are read back.
    body = await request.body()
    result = await in_unit_of_work(session, events.record_events_json, session, body, source="api", with_ids=False)
    return BatchOut(
        accepted=result.accepted,
        duplicates=result.duplicates,
        errors=[
            ItemErrorOut(index=e.index, code=e.code, message=e.message, field=e.field) for e in result.errors
        ],
    )


@router.get("/events")
def list_events(
    auth: Annotated[Auth, Depends(api_auth("events", "read"))],
    session: SessionDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    type: str | None = None,
    contact_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    since: Annotated[AwareDatetime | None, Query(description="occurred at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="occurred before")] = None,
) -> Page[EventOut]:
    """The workspace's events, newest first."""
    rows, nxt = events.list_events(
        session, type=type, contact_id=contact_id, since=since, until=until, cursor=cursor, limit=limit
    )
    return Page[EventOut](items=[EventOut.of(e) for e in rows], next_cursor=nxt)


@router.get("/events/{event_id}", responses={404: {"model": ErrorOut}})
def read_event(
    event_id: int, auth: Annotated[Auth, Depends(api_auth("events", "read"))], session: SessionDep
) -> EventOut:
    """One event."""
    return EventOut.of(events.get_event(session, event_id))
