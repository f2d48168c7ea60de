"""Due work (the outbox): jobs written in the same transaction as the change that needs them.

A handler is registered per job kind. `external=True` marks a handler whose work leaves the database
(an HTTP call, an SMS, an email): the worker records that the call started, in its own commit, before
making it, so a crash afterwards is seen as `unknown` and never silently repeated — unless the target
accepts our idempotency key (`accepts_idempotency_key=True`), in which case repeating is safe.
A database-only handler runs in the same transaction that marks the job done: exactly once.

Life of a job: `pending` → claimed by a worker under a lease (`running`, attempts + 1) → `done`; a
handler that raises goes back to `pending` with an exponential backoff, or to `parked` (with the reason)
once it has used its attempts. A running job whose lease expired is claimed again — unless its external
call may have started and the target can't dedupe, which makes it `unknown` until a person retries or
resolves it. Every transition a worker makes is guarded by (locked_by, attempts), so a worker that lost
its lease can't finish a job someone else now owns.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, null, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from siyu.core import clock
from siyu.core.audit import Actor, record, snapshot
from siyu.core.db import any_of, is_postgres
from siyu.core.errors import Conflict, Invalid
from siyu.core.models import Job
from siyu.core.pagination import page
from siyu.core.tenancy import get_scoped

# Modules whose handlers every worker registers (each product module adds its `tasks` module here).
# `siyu.contacts` installs the person resolver, so events a worker records find their contacts too;
# segments, tag rules, lifecycle and imports register their subscribers and jobs.
TASK_MODULES: tuple[str, ...] = (
    "siyu.core.events", "siyu.contacts", "siyu.contacts.segments", "siyu.contacts.tag_rules",
    "siyu.contacts.lifecycle", "siyu.contacts.imports", "siyu.channels.service", "siyu.conversations.tasks",
    "siyu.messaging.broadcast_sending",
    "siyu.channels.wechat_oa.tasks",
    "siyu.channels.chat_archive",
    "siyu.messaging.welcome", "siyu.messaging.keywords",
    "siyu.channels.webhook_events",
    "siyu.channels.wecom.tasks",
    "siyu.acquisition.tasks",
    "siyu.acquisition.groups",
    "siyu.acquisition.spend",
)
# Backoff after the n-th failed attempt: BASE * 2**(n-1) seconds, at most CAP, times a draw in [0.5, 1).
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 3600.0

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
    # When the worker's lease on the job ends (a batch handler stops starting new work well before).
    lease_until: datetime | None = None


Handler = Callable[[Session, JobContext], dict[str, Any] | None]
# Runs several jobs of one kind and one workspace in one transaction: per job, in order, its result, or
# the exception it would have raised alone (its own writes left out; the worker settles it as a failure).
BatchHandler = Callable[[Session, Sequence[JobContext]], Sequence[dict[str, Any] | Exception | None]]


@dataclass(frozen=True)
class HandlerSpec:
    kind: str
    fn: Handler
    external: bool
    accepts_idempotency_key: bool
    max_attempts: int
    many: BatchHandler | None = None

    @property
    def may_repeat(self) -> bool:
        """True when running a job of this kind twice does no harm (database-only, or a deduping target)."""
        return not self.external or self.accepts_idempotency_key


_HANDLERS: dict[str, HandlerSpec] = {}


def handler(
    kind: str, *, external: bool = False, accepts_idempotency_key: bool = False, max_attempts: int = 8,
    many: BatchHandler | None = None,
) -> Callable[[Handler], Handler]:
    """Register the function that does jobs of `kind`; `many`, when given, does a claimed batch of them
    in one transaction (bulk work such as a broadcast's sends: one commit and one event batch for the
    lot instead of one per job). The worker still records each job's own outcome."""

    def register(fn: Handler) -> Handler:
        _HANDLERS[kind] = HandlerSpec(kind, fn, external, accepts_idempotency_key, max_attempts, many)
        return fn

    return register


def handler_for(kind: str) -> HandlerSpec | None:
    """The registered handler of a kind, if any."""
    return _HANDLERS.get(kind)


def _job_values(
    session: Session, kind: str, idempotency_key: str, payload: dict[str, Any] | None, *, workspace_id: int | None,
    run_at: datetime | None, max_attempts: int | None,
) -> dict[str, Any]:
    from siyu.core.tenancy import bound_workspace

    spec = _HANDLERS.get(kind)
    now = clock.now()
    return {
        "kind": kind,
        "idempotency_key": idempotency_key,
        "payload": payload or {},
        "workspace_id": workspace_id if workspace_id is not None else bound_workspace(session),
        "status": PENDING,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": max_attempts or (spec.max_attempts if spec else 8),
        "created_at": now,
    }


def _insert_jobs(session: Session, rows: list[dict[str, Any]]) -> Any:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(Job).values(rows).on_conflict_do_nothing(index_elements=["kind", "idempotency_key"])


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
    values = _job_values(session, kind, idempotency_key, payload, workspace_id=workspace_id, run_at=run_at,
                         max_attempts=max_attempts)
    result = session.execute(_enqueue_statement(session.get_bind().dialect.name), values)
    return result.first() is not None


@cache
def _enqueue_statement(dialect: str) -> Any:
    # One statement with its values as parameters: compiled once, where a VALUES clause built per call
    # (as enqueue_many's multi-row inserts are) is compiled every time.
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    return insert(Job).on_conflict_do_nothing(index_elements=["kind", "idempotency_key"]).returning(Job.id)


# Rows per multi-row INSERT: SQLite takes at most 32,766 parameters in one statement.
_ENQUEUE_ROWS = 1_000


def enqueue_many(
    session: Session, kind: str, items: Sequence[tuple[str, dict[str, Any], datetime | None]], *,
    workspace_id: int | None = None,
) -> dict[str, int]:
    """`enqueue` for many jobs of one kind — `(idempotency_key, payload, run_at)` each — in a few
    multi-row statements; every key's job id, whether this call or an earlier one created it."""
    ids: dict[str, int] = {}
    rows = [_job_values(session, kind, key, payload, workspace_id=workspace_id, run_at=run_at, max_attempts=None)
            for key, payload, run_at in items]
    for start in range(0, len(rows), _ENQUEUE_ROWS):
        part = rows[start:start + _ENQUEUE_ROWS]
        made = session.execute(_insert_jobs(session, part).returning(Job.id, Job.idempotency_key))
        ids.update({str(key): int(job_id) for job_id, key in made})
        older = [r["idempotency_key"] for r in part if r["idempotency_key"] not in ids]
        if older:
            found = session.execute(select(Job.id, Job.idempotency_key).where(
                Job.kind == kind, any_of(session, Job.idempotency_key, older)))
            ids.update({str(key): int(job_id) for job_id, key in found})
    return ids


def get_job(session: Session, kind: str, idempotency_key: str) -> Job | None:
    """A job by its kind and idempotency key."""
    return session.execute(
        select(Job).where(Job.kind == kind, Job.idempotency_key == idempotency_key)
    ).scalar_one_or_none()


def load_handler_modules(extra: str = "") -> list[str]:
    """Import TASK_MODULES and the comma-separated `extra` modules so their handlers register."""
    names = [*TASK_MODULES, *(n.strip() for n in extra.split(",") if n.strip())]
    for name in names:
        importlib.import_module(name)
    return names


class ExternalOutcomeUnknown(Exception):
    """Raised by an external handler that can't tell whether its call took effect (a read timeout)."""


class NotStarted(Exception):
    """A batch handler's answer for a job it did not get to (the lease ran short): the worker gives the
    job back with its attempt uncounted."""


def backoff_seconds(attempt: int, draw: float) -> float:
    """Seconds to wait after the `attempt`-th failure; `draw` in [0, 1) spreads retries of many jobs."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(max(attempt - 1, 0), 30))
    return ceiling * (0.5 + min(max(draw, 0.0), 1.0) / 2)


@dataclass(frozen=True)
class Claimed:
    """A job a worker holds under a lease, with what it needs to run it."""

    context: JobContext
    spec: HandlerSpec
    worker_id: str
    lease_until: datetime


@dataclass(frozen=True)
class ClaimResult:
    """What one claim did: jobs to run now, and how many rows it settled without running them."""

    claimed: list[Claimed]
    settled: int


def claim_due(session: Session, *, worker_id: str, limit: int, lease_seconds: float) -> ClaimResult:
    """Lease up to `limit` due jobs to `worker_id` (an unbound session; the caller commits at once).

    Due means pending with run_at reached, or running with its lease expired (its worker died). On
    PostgreSQL the rows are locked with SKIP LOCKED so concurrent workers take disjoint batches.
    """
    now = clock.now()
    # Two queries, each walking the (status, run_at) index: one OR over both would sort every due row.
    expired = _lock_due(session, select(Job).where(Job.status == RUNNING, Job.lease_until < now), limit)
    pending = select(Job).where(Job.status == PENDING, Job.run_at <= now)
    due = _lock_due(session, pending, limit - len(expired))
    return _lease(session, [*expired, *due], worker_id=worker_id, lease_seconds=lease_seconds)


def claim_ids(session: Session, ids: Sequence[int], *, worker_id: str, lease_seconds: float) -> ClaimResult:
    """Lease these jobs now if they are still pending, due or not (a callback's urgent work: a WeCom
    welcome code lives 20 s and must not wait behind bulk jobs). Jobs a worker already took are left."""
    if not ids:
        return ClaimResult([], 0)
    rows = _lock_due(session, select(Job).where(Job.id.in_(list(ids)), Job.status == PENDING), len(ids))
    return _lease(session, rows, worker_id=worker_id, lease_seconds=lease_seconds)


def _lease(session: Session, rows: Sequence[Job], *, worker_id: str, lease_seconds: float) -> ClaimResult:
    now = clock.now()
    lease_until = now + timedelta(seconds=lease_seconds)
    claimed: list[Claimed] = []
    settled = 0
    for job in rows:
        spec = _HANDLERS.get(job.kind)
        lost = job.status == RUNNING
        if spec is None:
            _park(job, now, f"no handler for kind {job.kind!r} in worker {worker_id}")
            settled += 1
        elif lost and job.external_started_at is not None and not spec.may_repeat:
            # locked_by and attempts stay, so the worker that made the call can still record its result.
            job.status = UNKNOWN
            job.lease_until = None
            started = job.external_started_at.isoformat()
            job.last_error = (
                f"the worker stopped after starting the external call at {started}; it may or may not "
                "have taken effect: check the target, then resolve or retry this job"
            )
            settled += 1
        elif lost and job.attempts >= job.max_attempts:
            _park(job, now, f"its worker was lost while running it, {job.attempts} attempts in all")
            settled += 1
        else:
            job.status = RUNNING
            job.attempts += 1
            job.locked_by = worker_id
            job.lease_until = lease_until
            job.external_started_at = None
            context = JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, job.attempts,
                                 dict(job.payload or {}), lease_until)
            claimed.append(Claimed(context, spec, worker_id, lease_until))
    return ClaimResult(claimed, settled)


def _lock_due(session: Session, stmt: Select[Any], limit: int) -> Sequence[Job]:
    if limit <= 0:
        return []
    stmt = stmt.order_by(Job.run_at).limit(limit)
    if is_postgres(session):
        stmt = stmt.with_for_update(skip_locked=True)
    return session.execute(stmt).scalars().all()


def _park(job: Job, now: datetime, reason: str) -> None:
    job.status = PARKED
    job.lease_until = None
    job.finished_at = now
    job.last_error = reason


def _owned(c: Claimed, *statuses: str) -> ColumnElement[bool]:
    return and_(
        Job.id == c.context.job_id,
        Job.locked_by == c.worker_id,
        Job.attempts == c.context.attempt,
        Job.status.in_(statuses or (RUNNING,)),
    )


def _guarded(session: Session, c: Claimed, statuses: Sequence[str], **values: Any) -> bool:
    stmt = update(Job).where(_owned(c, *statuses)).values(**values)
    stmt = stmt.execution_options(synchronize_session=False)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]


def mark_external_started(session: Session, c: Claimed, *, lease_seconds: float) -> bool:
    """Record that the external call is about to be made (commit before making it); False if lost."""
    now = clock.now()
    return _guarded(session, c, (RUNNING,), external_started_at=now,
                    lease_until=now + timedelta(seconds=lease_seconds))


def mark_done(session: Session, c: Claimed, result: dict[str, Any] | None) -> bool:
    """Finish a job in the transaction of its handler's writes; False if this worker no longer owns it.

    An `unknown` job still counts as owned: the worker that made the call knows it happened.
    """
    return _guarded(session, c, (RUNNING, UNKNOWN), status=DONE, result=null() if result is None else result,
                    finished_at=clock.now(), lease_until=None, last_error=None)


def mark_unknown(session: Session, c: Claimed, reason: str) -> bool:
    """The external call may or may not have taken effect: show the job to a person."""
    return _guarded(session, c, (RUNNING,), status=UNKNOWN, lease_until=None, last_error=reason)


def mark_failed(
    session: Session, c: Claimed, error: str, *, draw: float, not_before: float | None = None
) -> str | None:
    """Schedule a retry with backoff, or park the job once its attempts are used; the new status.

    `not_before`: seconds the target asked us to wait (a platform's block): the retry is due no sooner.
    """
    now = clock.now()
    row = session.execute(select(Job.max_attempts).where(_owned(c))).first()
    if row is None:
        return None
    if c.context.attempt >= row.max_attempts:
        reason = f"gave up after {c.context.attempt} attempts: {error}"
        _guarded(session, c, (RUNNING,), status=PARKED, lease_until=None, finished_at=now, last_error=reason)
        return PARKED
    wait = timedelta(seconds=max(backoff_seconds(c.context.attempt, draw), not_before or 0.0))
    _guarded(session, c, (RUNNING,), status=PENDING, run_at=now + wait, lease_until=None, locked_by=None,
             external_started_at=None, last_error=error)
    return PENDING


def release(session: Session, c: Claimed) -> bool:
    """Give back a claimed job that was not started (a stopping worker); its attempt is not counted."""
    return _guarded(session, c, (RUNNING,), status=PENDING, lease_until=None, locked_by=None,
                    attempts=c.context.attempt - 1)


def withdraw_pending(session: Session, ids: Sequence[int], reason: str) -> list[int]:
    """Close these jobs as done without running them, if no worker took them yet (a paused broadcast's
    messages that have not left); the ids withdrawn. A job a worker holds is left to finish."""
    withdrawn: list[int] = []
    for start in range(0, len(ids), 1000):
        stmt = (update(Job).where(Job.id.in_(list(ids[start:start + 1000])), Job.status == PENDING)
                .values(status=DONE, finished_at=clock.now(), result={"withdrawn": reason})
                .returning(Job.id).execution_options(synchronize_session=False))
        withdrawn.extend(int(i) for i in session.execute(stmt).scalars())
    return withdrawn


# What a person does with jobs (console, API). Sessions are bound to the person's workspace.


def list_jobs(
    session: Session, *, status: str | None = None, cursor: str | None = None, limit: int = 50
) -> tuple[Sequence[Job], str | None]:
    """A page of the workspace's jobs, newest first, optionally of one status."""
    stmt = select(Job)
    if status is not None:
        if status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}", field="status")
        stmt = stmt.where(Job.status == status)
    return page(session, stmt, Job.id, cursor=cursor, limit=limit)


def get_job_by_id(session: Session, job_id: Any) -> Job:
    """One job of the bound workspace, or NotFound."""
    return get_scoped(session, Job, job_id, what="job")


def job_counts(session: Session) -> dict[str, int]:
    """How many of the workspace's jobs are in each status."""
    rows = session.execute(select(Job.status, func.count()).group_by(Job.status)).all()
    counts = dict.fromkeys(STATUSES, 0)
    counts.update({status: int(n) for status, n in rows})
    return counts


def retry_job(session: Session, actor: Actor, job: Job) -> Job:
    """Run a parked or unknown job again from attempt one (unknown: a person checked it did not happen)."""
    if job.status not in (PARKED, UNKNOWN):
        raise Conflict(f"only parked or unknown jobs can be retried; this one is {job.status}", field="job_id")
    before = snapshot(job)
    job.status = PENDING
    job.attempts = 0
    job.run_at = clock.now()
    job.lease_until = None
    job.locked_by = None
    job.external_started_at = None
    job.finished_at = None
    session.flush()
    _audit(session, actor, job, "job.retry", before)
    return job


def resolve_job(session: Session, actor: Actor, job: Job, *, note: str) -> Job:
    """Close an unknown job as done: a person confirmed its external effect happened."""
    if job.status != UNKNOWN:
        raise Conflict(f"only unknown jobs can be resolved; this one is {job.status}", field="job_id")
    note = note.strip()
    if not note:
        raise Invalid("say what you checked", field="note")
    before = snapshot(job)
    job.status = DONE
    job.result = {"resolved_by": actor.label, "note": note}
    job.finished_at = clock.now()
    job.lease_until = None
    session.flush()
    _audit(session, actor, job, "job.resolve", before)
    return job


def _audit(session: Session, actor: Actor, job: Job, action: str, before: dict[str, Any]) -> None:
    # Platform jobs (no workspace) are not reachable through a workspace's console or API.
    if job.workspace_id is not None:
        record(session, actor, workspace_id=job.workspace_id, action=action, entity_type="job",
               entity_id=job.id, before=before, after=snapshot(job))
