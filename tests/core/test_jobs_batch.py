"""Kinds with a batch handler: a claimed batch runs per workspace in one transaction, and every job still
gets its own outcome (done, retried, unknown) as if it had run alone."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from siyu.core import jobs, worker
from siyu.core.tenancy import bound_workspace
from tests.core.conftest import CALLS, START
from tests.core.test_jobs import LEASE, add, batch, claim, state

BATCHES: list[tuple[str, int | None, list[str]]] = []


def _effect(session: Session, ctx: jobs.JobContext) -> dict[str, Any] | Exception:
    if ctx.payload.get("later"):
        return jobs.NotStarted("no time left")
    if ctx.payload.get("fail"):
        return RuntimeError(f"bad item {ctx.idempotency_key}")
    session.execute(text("INSERT INTO unit_effects (job_id, workspace_id) VALUES (:j, :w)"),
                    {"j": ctx.job_id, "w": bound_workspace(session)})
    return {"bound_to": bound_workspace(session)}


def _bulk_many(session: Session, ctxs: Sequence[jobs.JobContext]) -> list[dict[str, Any] | Exception]:
    BATCHES.append(("unit.bulk", bound_workspace(session), [c.idempotency_key for c in ctxs]))
    answers = [_effect(session, ctx) for ctx in ctxs]
    if any(ctx.payload.get("explode") for ctx in ctxs):
        raise RuntimeError("the batch broke")
    return answers


@jobs.handler("unit.bulk", many=_bulk_many)
def _bulk(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    if ctx.payload.get("explode"):
        raise RuntimeError("this one breaks")
    answer = _effect(session, ctx)
    if isinstance(answer, Exception):
        raise answer
    return answer


def _call_many(session: Session, ctxs: Sequence[jobs.JobContext]) -> list[dict[str, Any] | Exception]:
    BATCHES.append(("unit.bulk_call", bound_workspace(session), [c.idempotency_key for c in ctxs]))
    # Every job was marked started, in a commit of its own, before any call.
    started = session.execute(text("SELECT count(*) FROM jobs WHERE kind = 'unit.bulk_call' "
                                   "AND external_started_at IS NOT NULL")).scalar_one()
    assert started >= len(ctxs)
    answers: list[dict[str, Any] | Exception] = []
    for ctx in ctxs:
        CALLS.append(ctx.idempotency_key)
        outcome = ctx.payload.get("outcome")
        answers.append(jobs.ExternalOutcomeUnknown("read timeout") if outcome == "timeout" else {"ok": True})
    if any(ctx.payload.get("outcome") == "explode" for ctx in ctxs):
        raise RuntimeError("recording the calls failed")
    return answers


@jobs.handler("unit.bulk_call", external=True, many=_call_many)
def _call(session: Session, ctx: jobs.JobContext) -> dict[str, Any]:
    answer = _call_many(session, [ctx])[0]
    if isinstance(answer, Exception):
        raise answer
    return answer


@pytest.fixture(autouse=True)
def _no_batches_yet() -> None:
    BATCHES.clear()


def test_a_batch_runs_once_per_workspace_bound_to_it_and_every_job_is_done(db, scope, effects, frozen,
                                                                          make_workspace):
    a, b = make_workspace(), make_workspace()
    made = [add(db, "unit.bulk", f"k{i}", workspace_id=(a if i % 2 else b).id) for i in range(6)]
    single = add(db, "unit.bulk", "alone", workspace_id=None)

    assert batch(scope) == 7

    assert sorted(BATCHES) == sorted([
        ("unit.bulk", b.id, ["k0", "k2", "k4"]), ("unit.bulk", a.id, ["k1", "k3", "k5"])])
    for job in made:
        done = state(db, job)
        assert (done.status, done.attempts) == ("done", 1)
        assert done.result == {"bound_to": done.workspace_id}
    assert state(db, single).status == "done"  # a batch of one runs through the one-job handler
    assert sorted(effects()) == sorted([(j.id, j.workspace_id) for j in made] + [(single.id, None)])


def test_a_job_answering_an_exception_fails_alone_and_keeps_no_writes(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    good = add(db, "unit.bulk", "good", workspace_id=ws.id)
    bad = add(db, "unit.bulk", "bad", {"fail": True}, workspace_id=ws.id)

    batch(scope)

    assert state(db, good).status == "done"
    failed = state(db, bad)
    assert (failed.status, failed.attempts) == ("pending", 1)
    assert failed.run_at == START + jobs.timedelta(seconds=jobs.backoff_seconds(1, 0.0))
    assert "RuntimeError: bad item bad" in failed.last_error
    assert effects() == [(good.id, ws.id)]


def test_a_batch_that_breaks_runs_its_jobs_one_by_one(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    good = [add(db, "unit.bulk", f"g{i}", workspace_id=ws.id) for i in range(3)]
    breaks = add(db, "unit.bulk", "x", {"explode": True}, workspace_id=ws.id)

    batch(scope)

    assert [state(db, j).status for j in good] == ["done"] * 3
    assert state(db, breaks).status == "pending"
    assert "this one breaks" in state(db, breaks).last_error
    # The batch's own writes were rolled back: each good job wrote once, in its own run.
    assert effects() == [(j.id, ws.id) for j in good]


def test_external_batch_jobs_are_marked_started_first_and_an_unclear_one_is_unknown(db, scope, frozen,
                                                                                   make_workspace):
    ws = make_workspace()
    ok = [add(db, "unit.bulk_call", f"c{i}", workspace_id=ws.id) for i in range(3)]
    unclear = add(db, "unit.bulk_call", "t", {"outcome": "timeout"}, workspace_id=ws.id)

    batch(scope)

    assert [state(db, j).status for j in ok] == ["done"] * 3
    assert state(db, unclear).status == "unknown"
    assert sorted(CALLS) == ["c0", "c1", "c2", "t"]
    frozen.advance(days=1)
    assert batch(scope) == 0
    assert len(CALLS) == 4


def test_an_external_batch_that_breaks_after_its_calls_is_unknown_never_repeated(db, scope, frozen,
                                                                                  make_workspace):
    ws = make_workspace()
    made = [add(db, "unit.bulk_call", f"c{i}", workspace_id=ws.id) for i in range(2)]
    made.append(add(db, "unit.bulk_call", "e", {"outcome": "explode"}, workspace_id=ws.id))

    batch(scope)

    for job in made:
        unknown = state(db, job)
        assert unknown.status == "unknown"
        assert unknown.last_error.startswith("the external call was made but its result was not recorded")
    frozen.advance(days=1)
    assert batch(scope) == 0
    assert sorted(CALLS) == ["c0", "c1", "e"]


def test_a_batch_with_a_job_another_worker_took_keeps_nothing(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    made = [add(db, "unit.bulk", f"k{i}", workspace_id=ws.id) for i in range(3)]
    stale = claim(scope, "slow")
    frozen.advance(seconds=LEASE + 1)
    [fresh] = [c for c in claim(scope, "w2") if c.context.job_id == made[0].id]

    assert worker.run_claimed_many(stale, sessions=scope, lease_seconds=LEASE) == [None, None, None]
    assert effects() == []
    assert worker.run_claimed(fresh, sessions=scope, lease_seconds=LEASE) == "done"
    assert effects() == [(made[0].id, ws.id)]


def test_a_job_the_batch_did_not_get_to_is_given_back_uncounted(db, scope, effects, frozen, make_workspace):
    ws = make_workspace()
    done = add(db, "unit.bulk", "now", workspace_id=ws.id)
    later = add(db, "unit.bulk", "later", {"later": True}, workspace_id=ws.id)

    batch(scope)

    assert state(db, done).status == "done"
    back = state(db, later)
    assert (back.status, back.attempts, back.locked_by, back.run_at) == ("pending", 0, None, START)
    assert effects() == [(done.id, ws.id)]
