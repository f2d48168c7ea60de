"""The job lifecycle in one process: claim, run, retry with backoff, park, unknown, lost leases."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from siyu.core import faults, jobs, worker
from siyu.core.models import Job
from siyu.core.tenancy import bound_workspace
from tests.core.conftest import CALLS, START

LEASE = 60.0


@jobs.handler("unit.effect")
def _effect(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    session.execute(text("INSERT INTO unit_effects (job_id, workspace_id) VALUES (:j, :w)"),
                    {"j": ctx.job_id, "w": bound_workspace(session)})
    return {"bound_to": bound_workspace(session)}


@jobs.handler("unit.poison", max_attempts=3)
def _poison(session: Session, ctx: jobs.JobContext) -> None:
    session.execute(text("INSERT INTO unit_effects (job_id) VALUES (:j)"), {"j": ctx.job_id})
    raise RuntimeError(f"bad payload {ctx.payload}")


@jobs.handler("unit.call", external=True)
def _call(_session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    CALLS.append(ctx.idempotency_key)
    if ctx.payload.get("outcome") == "timeout":
        raise jobs.ExternalOutcomeUnknown("read timeout after the request was sent")
    return {"message_id": f"m-{ctx.idempotency_key}"}


@jobs.handler("unit.call_idem", external=True, accepts_idempotency_key=True)
def _call_idem(_session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    CALLS.append(ctx.idempotency_key)
    if ctx.payload.get("outcome") == "timeout":
        raise jobs.ExternalOutcomeUnknown("read timeout")
    return {"ok": True}


Scope = Callable[[], AbstractContextManager[Session]]


def add(db: Session, kind: str, key: str, payload: dict[str, Any] | None = None, **kw: Any) -> Job:
    assert jobs.enqueue(db, kind, key, payload, **kw)
    db.commit()
    job = jobs.get_job(db, kind, key)
    assert job is not None
    return job


def state(db: Session, job: Job) -> Job:
    db.expire_all()
    fresh = db.execute(select(Job).where(Job.id == job.id)).scalar_one()
    return fresh


def batch(scope: Scope, worker_id: str = "w1", **kw: Any) -> int:
    return worker.run_batch(worker_id=worker_id, sessions=scope, batch_size=10, lease_seconds=LEASE,
                            draw=lambda: 0.0, **kw)


def claim(scope: Scope, worker_id: str) -> list[jobs.Claimed]:
    with scope() as s:
        return jobs.claim_due(s, worker_id=worker_id, limit=10, lease_seconds=LEASE).claimed


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1, exclude_max=True))
def test_backoff_grows_with_attempts_is_jittered_and_capped(attempt, draw):
    wait = jobs.backoff_seconds(attempt, draw)
    ceiling = min(jobs.BACKOFF_CAP_SECONDS, jobs.BACKOFF_BASE_SECONDS * 2 ** (attempt - 1))
    assert ceiling / 2 <= wait <= ceiling
    assert jobs.backoff_seconds(attempt + 1, draw) >= wait


def test_fault_plans_are_parsed_strictly():
    assert faults.parse("jobs.after_external:3, jobs.before_done:7") == {
        "jobs.after_external": 3, "jobs.before_done": 7}
    assert faults.parse("") == {}
    for bad in ("jobs.after_external", "jobs.nowhere:2", "jobs.before_done:0", "jobs.before_done:x"):
        with pytest.raises(ValueError, match="bad fault"):
            faults.parse(bad)


def test_enqueue_twice_with_one_key_makes_one_job(db, make_workspace):
    ws = make_workspace()
    assert jobs.enqueue(db, "unit.effect", "k1", workspace_id=ws.id)
    assert not jobs.enqueue(db, "unit.effect", "k1", {"other": 1}, workspace_id=ws.id)
    assert db.execute(select(Job).where(Job.idempotency_key == "k1")).scalars().all()[0].payload == {}


def test_database_job_writes_and_done_mark_commit_together_once(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    job = add(db, "unit.effect", "e1", workspace_id=ws.id)

    assert batch(scope) == 1
    assert batch(scope) == 0

    done = state(db, job)
    assert (done.status, done.attempts, done.result) == ("done", 1, {"bound_to": ws.id})
    assert done.finished_at == START
    assert effects() == [(job.id, ws.id)]


def test_failures_back_off_then_park_with_the_reason_and_leave_no_writes(db, scope, effects, frozen):
    job = add(db, "unit.poison", "p1", {"n": 1})

    batch(scope)
    first = state(db, job)
    assert first.status == "pending"
    assert first.run_at == START + timedelta(seconds=jobs.backoff_seconds(1, 0.0))
    assert "RuntimeError: bad payload" in first.last_error
    assert batch(scope) == 0  # not due yet

    frozen.advance(seconds=jobs.backoff_seconds(1, 0.0))
    batch(scope)
    assert state(db, job).run_at == frozen.current + timedelta(seconds=jobs.backoff_seconds(2, 0.0))
    frozen.advance(hours=1)
    batch(scope)

    parked = state(db, job)
    assert (parked.status, parked.attempts) == ("parked", 3)
    assert parked.last_error.startswith("gave up after 3 attempts: RuntimeError: bad payload")
    assert effects() == []
    frozen.advance(days=1)
    assert batch(scope) == 0


def test_job_of_an_unknown_kind_is_parked(db, scope, frozen):
    job = add(db, "unit.nobody_handles_this", "x1")
    assert batch(scope) == 1
    parked = state(db, job)
    assert parked.status == "parked"
    assert "no handler for kind 'unit.nobody_handles_this'" in parked.last_error


def test_lost_external_call_becomes_unknown_and_is_never_repeated(db, scope, frozen):
    job = add(db, "unit.call", "c1")
    [c] = claim(scope, "dead")
    with scope() as s:
        assert jobs.mark_external_started(s, c, lease_seconds=LEASE)
    # The worker dies here, having maybe made the call.
    frozen.advance(seconds=LEASE + 1)

    assert batch(scope, "w2") == 1
    lost = state(db, job)
    assert lost.status == "unknown"
    assert "may or may not have taken effect" in lost.last_error
    assert CALLS == []
    frozen.advance(days=1)
    assert batch(scope, "w2") == 0


def test_idempotent_target_and_database_jobs_are_simply_claimed_again(db, scope, effects, frozen):
    call = add(db, "unit.call_idem", "i1")
    effect = add(db, "unit.effect", "e1")
    claim(scope, "dead")
    frozen.advance(seconds=LEASE + 1)

    assert batch(scope, "w2") == 2
    assert (state(db, call).status, state(db, call).attempts) == ("done", 2)
    assert state(db, effect).status == "done"
    assert CALLS == ["i1"]
    assert effects() == [(effect.id, None)]


def test_worker_that_lost_its_lease_cannot_finish_the_job(db, scope, effects, frozen):
    job = add(db, "unit.effect", "e1")
    [stale] = claim(scope, "slow")
    frozen.advance(seconds=LEASE + 1)
    [fresh] = claim(scope, "w2")

    assert worker.run_claimed(stale, sessions=scope, lease_seconds=LEASE) is None
    assert worker.run_claimed(fresh, sessions=scope, lease_seconds=LEASE) == "done"
    assert state(db, job).locked_by == "w2"
    assert effects() == [(job.id, None)]


def test_slow_external_caller_can_still_record_its_result_after_being_marked_unknown(db, scope, frozen):
    job = add(db, "unit.call", "c1")
    [c] = claim(scope, "slow")
    with scope() as s:
        jobs.mark_external_started(s, c, lease_seconds=LEASE)
    frozen.advance(seconds=LEASE + 1)
    batch(scope, "w2")
    assert state(db, job).status == "unknown"

    with scope() as s:
        assert jobs.mark_done(s, c, {"message_id": "m-c1"})
    assert (state(db, job).status, state(db, job).result) == ("done", {"message_id": "m-c1"})


def test_worker_that_keeps_dying_on_a_job_parks_it(db, scope, frozen):
    job = add(db, "unit.effect", "e1", max_attempts=2)
    claim(scope, "dies-1")
    frozen.advance(seconds=LEASE + 1)
    claim(scope, "dies-2")
    frozen.advance(seconds=LEASE + 1)

    assert batch(scope, "w3") == 1
    parked = state(db, job)
    assert parked.status == "parked"
    assert "its worker was lost while running it, 2 attempts" in parked.last_error


def test_timeout_after_sending_is_unknown_unless_the_target_dedupes(db, scope, frozen):
    plain = add(db, "unit.call", "c1", {"outcome": "timeout"})
    idem = add(db, "unit.call_idem", "i1", {"outcome": "timeout"})

    batch(scope)

    assert (state(db, plain).status, state(db, plain).last_error) == (
        "unknown", "ExternalOutcomeUnknown: read timeout after the request was sent")
    assert state(db, idem).status == "pending"
    assert sorted(CALLS) == ["c1", "i1"]


def test_stopping_worker_hands_back_jobs_it_did_not_start(db, scope, effects, frozen):
    first = add(db, "unit.effect", "e1")
    second = add(db, "unit.effect", "e2")
    stop = worker.threading.Event()
    stop.set()

    assert batch(scope, stop=stop) == 2

    for job in (first, second):
        back = state(db, job)
        assert (back.status, back.attempts, back.locked_by) == ("pending", 0, None)
    assert effects() == []


def test_burst_worker_does_what_is_due_and_leaves_the_future(db, scope, effects, frozen):
    now_job = add(db, "unit.effect", "now")
    later = add(db, "unit.effect", "later", run_at=START + timedelta(hours=1))

    handled = worker.run_worker(burst=True, worker_id="w1", sessions=scope, batch_size=1)

    assert handled == 1
    assert state(db, now_job).status == "done"
    assert state(db, later).status == "pending"
    assert effects() == [(now_job.id, None)]


def test_external_call_whose_result_was_not_recorded_is_unknown_not_repeated(db, scope, frozen, monkeypatch):
    plain = add(db, "unit.call", "c1")
    idem = add(db, "unit.call_idem", "i1")

    def database_gone(*_args: Any, **_kw: Any) -> bool:
        raise ConnectionError("server closed the connection unexpectedly")

    monkeypatch.setattr(jobs, "mark_done", database_gone)
    batch(scope)

    assert state(db, plain).status == "unknown"
    assert state(db, plain).last_error.startswith("the external call was made but its result was not")
    assert state(db, idem).status == "pending"
    frozen.advance(days=1)
    monkeypatch.undo()
    batch(scope)
    assert sorted(CALLS) == ["c1", "i1", "i1"]


def test_run_now_runs_the_named_jobs_at_once_due_or_not_and_leaves_others(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    urgent = add(db, "unit.effect", "u1", workspace_id=ws.id, run_at=START + timedelta(hours=1))
    other = add(db, "unit.effect", "o1", workspace_id=ws.id)

    assert worker.run_now([urgent.id], sessions=scope) == ["done"]
    assert worker.run_now([urgent.id], sessions=scope) == []  # already done: never twice
    assert (state(db, urgent).status, state(db, other).status) == ("done", "pending")
    assert effects() == [(urgent.id, ws.id)]


def test_a_worker_on_a_server_without_autovacuum_says_so(db, scope, monkeypatch, caplog):
    on_postgres = db.get_bind().dialect.name == "postgresql"
    shown = db.execute(text("SHOW autovacuum")).scalar_one() if on_postgres else None
    assert worker.autovacuum_off(db) is (shown == "off")
    for off in (True, False):
        monkeypatch.setattr(worker, "autovacuum_off", lambda _session, off=off: off)
        caplog.clear()
        with caplog.at_level("WARNING", logger="siyu.worker"):
            worker.run_worker(burst=True, worker_id="w1", sessions=scope)
        assert ("autovacuum is off" in caplog.text) is off


def test_a_worker_starting_while_the_database_is_away_starts_anyway(caplog):
    def away():
        raise ConnectionError("the database is restarting")

    with caplog.at_level("WARNING", logger="siyu.worker"):
        worker._warn_without_autovacuum(away)  # the loop retries the database; start-up goes on
    assert "autovacuum" not in caplog.text
