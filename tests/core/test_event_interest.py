"""A subscriber's `wants` narrows, per workspace and batch, which matching events queue a job for it."""

from __future__ import annotations

from sqlalchemy import select

from siyu.core import events
from siyu.core.events import record_events
from siyu.core.models import Job
from siyu.core.tenancy import bind_workspace, bound_workspace
from tests.conftest import bearer


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


def test_batch_listeners_hear_what_the_api_stored_counted_by_type(client, make_workspace, make_key, monkeypatch):
    # No per-event subscriber either: the listener alone must get the API to read back what it stored.
    monkeypatch.setattr(events, "_subscribers", {})
    ws = make_workspace("Shop")
    secret = make_key(ws, scopes=["events:write"])
    heard: list[tuple[int, dict[str, int]]] = []
    events.on_batch("test.listener")(lambda _s, workspace_id, batch: heard.append((workspace_id, batch.counts)))
    try:
        body = [{"type": "page.viewed", "idempotency_key": "a"}, {"type": "page.viewed", "idempotency_key": "b"},
                {"type": "coupon.redeemed", "idempotency_key": "c"}, {"type": "Bad Type"}]
        first = client.post("/api/v1/events", json={"events": body}, headers=bearer(secret))
        again = client.post("/api/v1/events", json={"events": body[:1]}, headers=bearer(secret))
    finally:
        events.remove_batch_listener("test.listener")

    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 3
    assert again.json()["duplicates"] == 1
    # Only stored events count; a batch that stored nothing is not heard.
    assert heard == [(ws.id, {"page.viewed": 2, "coupon.redeemed": 1})]
