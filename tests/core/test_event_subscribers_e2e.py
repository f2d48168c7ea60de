"""A subscriber registered with on_event runs once per matching event in a real worker run."""

from __future__ import annotations

from sqlalchemy import select

from siyu.core import events, workspaces
from siyu.core.audit import Actor
from siyu.core.db import session_scope
from siyu.core.models import Job
from siyu.core.tenancy import bind_workspace
from siyu.core.worker import run_worker
from tests.cli_support import configured_database


def test_recorded_event_reaches_its_subscriber_exactly_once_through_the_worker(monkeypatch):
    seen: list[tuple[int, str]] = []

    @events.on_event("order.*", "test.orders")
    def remember(session, event):
        seen.append((event.workspace_id, event.type))

    try:
        with configured_database(monkeypatch):
            with session_scope() as s:
                ws = workspaces.create_workspace(s, Actor.cli("t"), name="Shop")
                bind_workspace(s, ws.id)
                first = events.record_event(
                    s, type="order.refunded", idempotency_key="r-1",
                    properties={"order_id": "o-1", "amount": 500, "currency": "CNY"},
                )
                again = events.record_event(
                    s, type="order.refunded", idempotency_key="r-1",
                    properties={"order_id": "o-1", "amount": 500, "currency": "CNY"},
                )
                events.record_event(s, type="page.viewed", properties={"path": "/"})
            assert first is not None
            assert again is None

            # The second run finds nothing left: the subscriber ran once.
            run_worker(burst=True)
            run_worker(burst=True)

            with session_scope() as s:
                # Other modules' subscribers (contacts' lifecycle listens to orders) have jobs of their own.
                mine = select(Job).where(Job.kind == events.DISPATCH, Job.idempotency_key.like("%:test.orders"))
                statuses = [j.status for j in s.execute(mine).scalars()]
    finally:
        events.remove_subscriber("test.orders")

    assert seen == [(ws.id, "order.refunded")]
    assert statuses == ["done"]
