"""Due work (the outbox): jobs written in the same transaction as the change that needs them.

A handler is registered per job kind. `external=True` marks a handler whose work leaves the database
(an HTTP call, an SMS, an email): the worker records that the call started, in its own commit, before
making it, so a crash afterwards is seen as `unknown` and never silently repeated — unless the target
accepts our idempotency key (`accepts_idempotency_key=True`), in which case repeating is safe.
A database-only handler runs in the same transaction that marks the job done: exactly once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.models import Job

PENDING, RUNNING, DONE, PARKED, UNKNOWN = "pending", "running", "done", "parked", "unknown"
STATUSES = (PENDING, RUNNING, DONE, PARKED, UNKNOWN)


@dataclass(frozen=True)
class JobContext:
    """What a handler gets besides the session: the job and its idempotency key to pass to targets."""

    job_id: int
    workspace_id: int | None
    kind: str
    idempotency_key: str
    attempt: int
    payload: dict[str, Any]


Handler = Callable[[Session, JobContext], dict[str, Any] | None]


@dataclass(frozen=True)
class HandlerSpec:
    kind: str
    fn: Handler
    external: bool
    accepts_idempotency_key: bool
    max_attempts: int


_HANDLERS: dict[str, HandlerSpec] = {}


def handler(
    kind: str, *, external: bool = False, accepts_idempotency_key: bool = False, max_attempts: int = 8
) -> Callable[[Handler], Handler]:
    """Register the function that does jobs of `kind`."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = HandlerSpec(kind, fn, external, accepts_idempotency_key, max_attempts)
        return fn

    return register


def handler_for(kind: str) -> HandlerSpec | None:
    """The registered handler of a kind, if any."""
    return _HANDLERS.get(kind)


def enqueue(
    session: Session,
    kind: str,
    idempotency_key: str,
    payload: dict[str, Any] | None = None,
    *,
    workspace_id: int | None = None,
    run_at: datetime | None = None,
    max_attempts: int | None = None,
) -> bool:
    """Add a job in the caller's transaction; a second job with the same kind and key is ignored.

    Returns True when this call created the job.
    """
    spec = _HANDLERS.get(kind)
    from siyu.core.tenancy import bound_workspace

    values = {
        "kind": kind,
        "idempotency_key": idempotency_key,
        "payload": payload or {},
        "workspace_id": workspace_id if workspace_id is not None else bound_workspace(session),
        "status": PENDING,
        "run_at": run_at or clock.now(),
        "attempts": 0,
        "max_attempts": max_attempts or (spec.max_attempts if spec else 8),
        "created_at": clock.now(),
    }
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(Job).values(**values).on_conflict_do_nothing(index_elements=["kind", "idempotency_key"])
    result = session.execute(stmt.returning(Job.id))
    return result.first() is not None


def get_job(session: Session, kind: str, idempotency_key: str) -> Job | None:
    """A job by its kind and idempotency key."""
    return session.execute(
        select(Job).where(Job.kind == kind, Job.idempotency_key == idempotency_key)
    ).scalar_one_or_none()
