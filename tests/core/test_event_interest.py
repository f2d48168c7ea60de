"""A subscriber's `wants` narrows, per workspace and batch, which matching events queue a job for it."""

from __future__ import annotations

from sqlalchemy import select

from siyu.core import events
from siyu.core.events import record_events
from siyu.core.models import Job
from siyu.core.tenancy import bind_workspace, bound_workspace


def test_a_broad_subscriber_queues_jobs_only_for_the_types_it_wants(db, make_workspace):
    ws = make_workspace("Shop")
    asked: list[int | None] = []

    def wants(session):
        asked.append(bound_workspace(session))
        return {"coupon.redeemed"}

    events.on_event("*", "test.interest", wants=wants)(lambda _s, _e: None)
    try:
        bind_workspace(db, ws.id)
        result = record_events(
            db, [{"type": "page.viewed"}, {"type": "coupon.redeemed"}, {"type": "page.viewed"}]
        )
        bind_workspace(db, None)
        keys = db.execute(select(Job.idempotency_key).where(Job.kind == events.DISPATCH)).scalars().all()
    finally:
        events.remove_subscriber("test.interest")

    assert keys == [f"{result.event_ids[1]}:test.interest"]
    # Asked once for the whole batch, inside the recording workspace.
    assert asked == [ws.id]
