"""The worker: claims due jobs under a lease, runs their handlers, records the outcome.

Run it as `siyu worker`, as `python -m siyu.core.worker [--burst] [--processes N]`, or inside
`siyu serve` (one worker thread, see `attach_in_process_worker`). Any number of worker processes may
share a PostgreSQL database; SQLite takes one worker (its writers are serialised anyway).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager
from types import FrameType
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from siyu.core import clock, faults, jobs
from siyu.core.db import is_postgres, session_scope
from siyu.core.tenancy import bind_workspace
from siyu.settings import get_settings

log = logging.getLogger("siyu.worker")

SessionFactory = Callable[[], AbstractContextManager[Session]]
# Longest an error message kept on a job.
_MAX_ERROR = 2000


def new_worker_id() -> str:
    """host:pid:random — unique per worker, readable in the jobs list."""
    return f"{socket.gethostname()[:50]}:{os.getpid()}:{random.randbytes(3).hex()}"


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:_MAX_ERROR]


def run_claimed(
    c: jobs.Claimed, *, sessions: SessionFactory = session_scope, lease_seconds: float,
    draw: Callable[[], float] = random.random,
) -> str | None:
    """Run one claimed job to its next status ("done", "pending", "parked", "unknown"; None if lost)."""
    faults.fault("jobs.before_handler")
    spec, ctx = c.spec, c.context
    if not spec.may_repeat:
        with sessions() as session:
            started = jobs.mark_external_started(session, c, lease_seconds=lease_seconds)
        if not started:
            return None
        faults.fault("jobs.before_external")
    returned = False
    try:
        with sessions() as session:
            # The handler's writes and the guarded done mark commit together, or not at all.
            bind_workspace(session, ctx.workspace_id)
            result = spec.fn(session, ctx)
            returned = True
            if spec.external:
                faults.fault("jobs.after_external")
            faults.fault("jobs.before_done")
            bind_workspace(session, None)
            if not jobs.mark_done(session, c, result):
                # Someone else owns the job now; our writes roll back with this transaction.
                session.rollback()
                log.warning("job %s lost its lease before finishing; its writes were rolled back", ctx.job_id)
                return None
        faults.fault("jobs.after_done")
        return jobs.DONE
    except Exception as exc:
        return _settle_raised(c, exc, returned=returned, sessions=sessions, draw=draw)


def _settle_raised(
    c: jobs.Claimed, exc: Exception, *, returned: bool, sessions: SessionFactory, draw: Callable[[], float]
) -> str | None:
    """What becomes of a job whose handler raised (`returned`: it had returned, the raise came after)."""
    spec, ctx = c.spec, c.context
    if isinstance(exc, jobs.ExternalOutcomeUnknown):
        if spec.may_repeat:
            return _failed(c, exc, sessions=sessions, draw=draw)
        return _unknown(c, _error_text(exc), sessions=sessions)
    if returned and not spec.may_repeat:
        # The call was made; only recording it failed (the database went away). Never repeat it.
        reason = f"the external call was made but its result was not recorded: {_error_text(exc)}"
        return _unknown(c, reason, sessions=sessions)
    log.warning("job %s (%s) attempt %s failed: %s", ctx.job_id, ctx.kind, ctx.attempt, _error_text(exc))
    return _failed(c, exc, sessions=sessions, draw=draw)


def run_claimed_many(
    cs: list[jobs.Claimed], *, sessions: SessionFactory = session_scope, lease_seconds: float,
    draw: Callable[[], float] = random.random,
) -> list[str | None]:
    """Run claimed jobs of one kind and one workspace through the kind's batch handler, in one
    transaction with their done marks; each job's outcome as `run_claimed` gives it. The fault points
    are passed once per job, as if the jobs ran one by one."""
    spec = cs[0].spec
    assert spec.many is not None
    for _ in cs:
        faults.fault("jobs.before_handler")
    outcomes: dict[int, str | None] = {c.context.job_id: None for c in cs}
    if not spec.may_repeat:
        with sessions() as session:
            cs = [c for c in cs if jobs.mark_external_started(session, c, lease_seconds=lease_seconds)]
        if not cs:
            return list(outcomes.values())
        for _ in cs:
            faults.fault("jobs.before_external")
    raised: list[tuple[jobs.Claimed, Exception]] = []
    given_back: list[jobs.Claimed] = []
    returned = False
    try:
        with sessions() as session:
            bind_workspace(session, cs[0].context.workspace_id)
            answers = spec.many(session, [c.context for c in cs])
            if len(answers) != len(cs):
                raise RuntimeError(f"the batch handler of {spec.kind} answered {len(answers)} of {len(cs)} jobs")
            returned = True
            for _ in cs:
                if spec.external:
                    faults.fault("jobs.after_external")
                faults.fault("jobs.before_done")
            bind_workspace(session, None)
            for c, answer in zip(cs, answers, strict=True):
                if isinstance(answer, jobs.NotStarted):
                    given_back.append(c)
                elif isinstance(answer, Exception):
                    raised.append((c, answer))
                elif jobs.mark_done(session, c, answer):
                    outcomes[c.context.job_id] = jobs.DONE
                else:
                    # One job has another owner now: the batch's writes roll back, and every job of it
                    # is left to its lease (the others run again, or show as unknown if they can't).
                    session.rollback()
                    log.warning("job %s lost its lease before its batch finished; the batch's writes were "
                                "rolled back", c.context.job_id)
                    return [None] * len(outcomes)
        for c in cs:
            if outcomes[c.context.job_id] == jobs.DONE:
                faults.fault("jobs.after_done")
    except Exception as exc:
        if spec.may_repeat and not returned:
            # Nothing was kept: run the jobs one by one, so one bad job fails alone.
            for c in cs:
                outcomes[c.context.job_id] = run_claimed(c, sessions=sessions, lease_seconds=lease_seconds,
                                                         draw=draw)
        else:
            for c in cs:
                outcomes[c.context.job_id] = _settle_raised(c, exc, returned=returned or not spec.may_repeat,
                                                            sessions=sessions, draw=draw)
        return list(outcomes.values())
    if given_back:
        with sessions() as session:
            for c in given_back:
                outcomes[c.context.job_id] = jobs.PENDING if jobs.release(session, c) else None
    for c, failure in raised:
        outcomes[c.context.job_id] = _settle_raised(c, failure, returned=False, sessions=sessions, draw=draw)
    return list(outcomes.values())


def _unknown(c: jobs.Claimed, reason: str, *, sessions: SessionFactory) -> str | None:
    with sessions() as session:
        ok = jobs.mark_unknown(session, c, reason[:_MAX_ERROR])
    return jobs.UNKNOWN if ok else None


def _failed(
    c: jobs.Claimed, exc: Exception, *, sessions: SessionFactory, draw: Callable[[], float]
) -> str | None:
    with sessions() as session:
        # A handler's exception may say how long its target wants us to wait (`retry_after` seconds),
        # and may keep a record of the failure (`on_retry(session)`, committed with the retry's schedule).
        on_retry = getattr(exc, "on_retry", None)
        if callable(on_retry):
            on_retry(session)
        retry_after = getattr(exc, "retry_after", None)
        return jobs.mark_failed(session, c, _error_text(exc), draw=draw(),
                                not_before=float(retry_after) if isinstance(retry_after, int | float) else None)


def run_batch(
    *, worker_id: str, sessions: SessionFactory = session_scope, batch_size: int, lease_seconds: float,
    draw: Callable[[], float] = random.random, stop: threading.Event | None = None,
) -> int:
    """Claim one batch and run it; the number of jobs claimed or settled (0: nothing was due).

    Jobs of a kind with a batch handler run together, per workspace; the others one by one."""
    with sessions() as session:
        claim = jobs.claim_due(session, worker_id=worker_id, limit=batch_size, lease_seconds=lease_seconds)
    faults.fault("jobs.after_claim")
    groups = _groups(claim.claimed)
    for i, group in enumerate(groups):
        if (stop is not None and stop.is_set()) or clock.now() >= group[0].lease_until:
            # Hand the rest back rather than run jobs whose lease is gone or whose worker is stopping.
            with sessions() as session:
                for rest in groups[i:]:
                    for c in rest:
                        jobs.release(session, c)
            break
        if len(group) > 1:
            run_claimed_many(group, sessions=sessions, lease_seconds=lease_seconds, draw=draw)
        else:
            run_claimed(group[0], sessions=sessions, lease_seconds=lease_seconds, draw=draw)
    return len(claim.claimed) + claim.settled


def _groups(claimed: list[jobs.Claimed]) -> list[list[jobs.Claimed]]:
    """The claimed jobs in claim order, those of a batch-handled kind gathered per kind and workspace."""
    groups: list[list[jobs.Claimed]] = []
    index: dict[tuple[str, int | None], list[jobs.Claimed]] = {}
    for c in claimed:
        if c.spec.many is None:
            groups.append([c])
            continue
        key = (c.context.kind, c.context.workspace_id)
        if key not in index:
            index[key] = []
            groups.append(index[key])
        index[key].append(c)
    return groups


def run_now(job_ids: list[int], *, sessions: SessionFactory = session_scope) -> list[str | None]:
    """Run these jobs at once in this thread if no worker took them yet (urgent callback work); the
    outcome of each job run. The jobs were committed first, so a crash here leaves them to the workers."""
    lease_seconds = get_settings().worker_lease_seconds
    with sessions() as session:
        claim = jobs.claim_ids(session, job_ids, worker_id=new_worker_id(), lease_seconds=lease_seconds)
    return [run_claimed(c, sessions=sessions, lease_seconds=lease_seconds) for c in claim.claimed]


def run_worker(
    *, burst: bool = False, worker_id: str | None = None, batch_size: int | None = None,
    poll_seconds: float | None = None, stop_event: threading.Event | None = None,
    sessions: SessionFactory = session_scope,
) -> int:
    """Work until stopped (SIGTERM, `stop_event`) or, in `burst` mode, until nothing is due; jobs handled."""
    settings = get_settings()
    if settings.clock_offset_seconds:
        clock.set_offset(settings.clock_offset_seconds)
    jobs.load_handler_modules(settings.job_modules)
    faults.parse(settings.faults)  # a mistyped fault plan fails here, not at the first job
    stop = stop_event or threading.Event()
    worker_id = worker_id or new_worker_id()
    batch = batch_size or settings.worker_batch_size
    poll = settings.worker_poll_seconds if poll_seconds is None else poll_seconds
    previous = _stop_on_signals(stop) if threading.current_thread() is threading.main_thread() else {}
    log.info("worker %s started (batch %s, lease %ss)", worker_id, batch, settings.worker_lease_seconds)
    _warn_without_autovacuum(sessions)
    try:
        handled = _loop(worker_id, sessions=sessions, batch=batch, poll=poll, burst=burst, stop=stop,
                        lease_seconds=settings.worker_lease_seconds)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    log.info("worker %s stopped after %s jobs", worker_id, handled)
    return handled


def autovacuum_off(session: Session) -> bool:
    """True on a PostgreSQL server that does not vacuum by itself (SQLite has no such thing)."""
    return is_postgres(session) and session.execute(text("SHOW autovacuum")).scalar_one() == "off"


def _warn_without_autovacuum(sessions: SessionFactory) -> None:
    """Say so at start when the server won't vacuum; a database still starting is the loop's business."""
    try:
        with sessions() as session:
            off = autovacuum_off(session)
    except Exception:
        log.debug("worker: could not ask the database about autovacuum", exc_info=True)
        return
    if off:
        log.warning("PostgreSQL's autovacuum is off: the jobs table keeps every dead row, and claims and "
                    "broadcasts slow down as it grows; turn autovacuum on, or VACUUM ANALYZE jobs and "
                    "messages regularly")


def _loop(
    worker_id: str, *, sessions: SessionFactory, batch: int, poll: float, burst: bool, stop: threading.Event,
    lease_seconds: float,
) -> int:
    handled = 0
    while not stop.is_set():
        try:
            n = run_batch(worker_id=worker_id, sessions=sessions, batch_size=batch,
                          lease_seconds=lease_seconds, stop=stop)
        except Exception:
            if burst:
                raise
            # The database may be restarting; leases make it safe to pick up where we were.
            log.exception("worker %s: batch failed, retrying in %ss", worker_id, poll)
            stop.wait(poll)
            continue
        handled += n
        if n == 0:
            if burst:
                break
            stop.wait(poll)
    return handled


def _stop_on_signals(stop: threading.Event) -> dict[int, Any]:
    """SIGTERM/SIGINT finish the current job, then stop; returns the handlers they replaced."""

    def handle(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    return {signum: signal.signal(signum, handle) for signum in (signal.SIGTERM, signal.SIGINT)}


def run_processes(n: int, *, burst: bool = False, batch_size: int | None = None) -> int:
    """Run `n` worker processes (`python -m siyu.core.worker`) until they end; 0 if all ended well.

    SIGTERM or Ctrl-C here is passed on to every worker, which finishes its current job and stops.
    """
    args = [sys.executable, "-m", "siyu.core.worker", *(["--burst"] if burst else []),
            *(["--batch-size", str(batch_size)] if batch_size else [])]
    children = [subprocess.Popen(args) for _ in range(n)]

    def forward(signum: int, _frame: FrameType | None) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
    codes = [child.wait() for child in children]
    return next((code for code in codes if code != 0), 0)


def attach_in_process_worker(app: Any, *, join_seconds: float = 30.0, **worker_kwargs: Any) -> None:
    """Run one worker thread while `app` runs: started at startup, stopped (current job finished) at shutdown.

    `worker_kwargs` go to `run_worker` (tests pass their own `sessions` and `poll_seconds`).
    """
    original = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(application: Any) -> AsyncIterator[Any]:
        stop = threading.Event()
        thread = threading.Thread(target=run_worker, kwargs={**worker_kwargs, "stop_event": stop},
                                  name="siyu-worker", daemon=True)
        application.state.worker_thread = thread
        thread.start()
        try:
            async with original(application) as state:
                yield state
        finally:
            stop.set()
            await asyncio.to_thread(thread.join, join_seconds)

    app.router.lifespan_context = lifespan


def main(argv: list[str] | None = None) -> int:
    """`python -m siyu.core.worker [--burst] [--processes N] [--batch-size N]`."""
    parser = argparse.ArgumentParser(prog="python -m siyu.core.worker", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when no job is due")
    parser.add_argument("--processes", type=int, default=1, help="worker processes to run")
    parser.add_argument("--batch-size", type=int, default=None, help="jobs claimed at a time")
    opts = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if opts.processes > 1:
        return run_processes(opts.processes, burst=opts.burst, batch_size=opts.batch_size)
    run_worker(burst=opts.burst, batch_size=opts.batch_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
