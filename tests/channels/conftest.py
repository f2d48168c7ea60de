"""Fixtures of the channels tests: a bound workspace, the worker's unit of work, running due jobs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.orm import Session

from siyu.channels import ratelimit
from siyu.contacts import resolver
from siyu.core import events, worker
from siyu.core.tenancy import bind_workspace


@pytest.fixture(autouse=True)
def _person_resolver() -> Iterator[None]:
    previous = events._resolver
    resolver.install()
    yield
    events.register_person_resolver(previous)


@pytest.fixture(autouse=True)
def limits() -> Iterator[ratelimit.LocalBackend]:
    """Shared platform limits, counters and tokens of this test alone (a block one test provokes must not
    stop the next)."""
    backend = ratelimit.LocalBackend()
    ratelimit.use(backend)
    yield backend
    ratelimit.use(None)


@pytest.fixture
def ws(db, make_workspace):
    workspace = make_workspace()
    bind_workspace(db, workspace.id)
    return workspace



@pytest.fixture
def run_jobs(db: Session, scope) -> Callable[[], int]:
    """Run every due job now (the test session's work flushed first); how many were handled."""

    def run() -> int:
        db.flush()
        total = 0
        while n := worker.run_batch(worker_id="t", sessions=scope, batch_size=50, lease_seconds=60,
                                    draw=lambda: 0.0):
            total += n
        db.expire_all()
        return total

    return run


@pytest.fixture
def frozen_now():
    """A clock the test moves (`advance(seconds)`), starting now."""
    from siyu.core import clock

    c = clock.FrozenClock(clock.now())
    clock.set_clock(c)
    return c
