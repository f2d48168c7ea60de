"""Outbound event webhooks: subscribed types only, signed, retried, parked with the reason, listed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from siyu.channels import service, webhook, webhook_events
from siyu.core import clock, jobs
from siyu.core.audit import Actor
from siyu.core.errors import Invalid
from siyu.core.events import record_event
from siyu.core.models import Job
from tests.conftest import bearer
from tests.servers import serve

ACTOR = Actor(type="user", id="1", label="tester@example.com", via="console")
SECRET = "hook-secret-0123456789"


class Endpoint:
    """The brand's receiver: checks each signature as docs/webhooks.md tells, answers as told."""

    def __init__(self) -> None:
        self.got: list[tuple[dict[str, Any], str, bool]] = []
        self.answers: list[int] = []

    async def receive(self, request: Request) -> JSONResponse:
        body = await request.body()
        ok = webhook.verify(SECRET, request.headers["X-Siyu-Timestamp"], body, request.headers["X-Siyu-Signature"],
                            now=clock.now().timestamp())
        self.got.append((await request.json(), request.headers["Idempotency-Key"], ok))
        status = self.answers.pop(0) if self.answers else 200
        return JSONResponse({}, status_code=status)


@pytest.fixture
def endpoint():
    e = Endpoint()
    with serve(Starlette(routes=[Route("/events", e.receive, methods=["POST"])])) as url:
        yield e, url + "/events"


def hook_account(db, url: str, events: Any, name: str = "CRM"):
    return service.create_account(db, kind="webhook", name=name, config={"url": url, "events": events},
                                  secrets={"secret": SECRET}, actor=ACTOR)


def test_subscribed_events_are_posted_signed_once_each(db, ws, endpoint, run_jobs):
    e, url = endpoint
    account = hook_account(db, url, ["order.*", "contact.merged"])
    hook_account(db, url, "message.*", name="Other")  # the console's one-line form
    shipped = record_event(db, type="order.shipped", properties={"order": "A1"}, idempotency_key="o1")
    record_event(db, type="coupon.used", properties={}, idempotency_key="c1")
    merged = record_event(db, type="contact.merged", properties={"into": 7}, idempotency_key="m1")
    run_jobs()
    run_jobs()

    got = sorted(e.got, key=lambda g: g[0]["event"]["id"])
    assert [(p["type"], p["event"]["type"], key, ok) for p, key, ok in got] == [
        ("event", "order.shipped", f"event:{shipped.id}", True),
        ("event", "contact.merged", f"event:{merged.id}", True),
    ]
    assert got[0][0]["event"]["properties"] == {"order": "A1"}
    deliveries, _ = webhook_events.list_deliveries(db, account.id, cursor=None, limit=10)
    assert [(d.event_type, d.status, d.response_status) for d in deliveries] == [
        ("contact.merged", "done", 200), ("order.shipped", "done", 200)]


def test_no_job_is_queued_when_no_account_wants_the_type(db, ws, endpoint):
    _, url = endpoint
    hook_account(db, url, ["order.*"])
    hook_account(db, url, [], name="Messages only")
    record_event(db, type="coupon.used", properties={}, idempotency_key="c1")
    db.flush()
    keys = db.execute(select(Job.idempotency_key).where(Job.kind == "event.dispatch")).scalars().all()
    assert not [k for k in keys if k.endswith(":channels.webhook_events")]
    wanted = record_event(db, type="order.shipped", properties={}, idempotency_key="o1")
    db.flush()
    keys = db.execute(select(Job.idempotency_key).where(Job.kind == "event.dispatch")).scalars().all()
    assert [k for k in keys if k.endswith(":channels.webhook_events")] == [f"{wanted.id}:channels.webhook_events"]


def test_failures_are_retried_then_parked_with_the_reason_and_listed(db, ws, endpoint, run_jobs, frozen_now,
                                                                      client, make_key):
    e, url = endpoint
    account = hook_account(db, url, ["*"])
    e.answers = [503] * 20
    event = record_event(db, type="order.shipped", properties={}, idempotency_key="o1")
    for _ in range(10):
        run_jobs()
        frozen_now.advance(seconds=3600)

    assert len(e.got) == 8  # the job's attempts, then parked
    assert {key for _, key, _ in e.got} == {f"event:{event.id}"}
    db.flush()
    answer = client.get(f"/api/v1/channel-accounts/{account.id}/webhook-deliveries?status=parked",
                        headers=bearer(make_key(ws)))
    assert answer.status_code == 200
    (item,) = answer.json()["items"]
    assert (item["event_id"], item["status"], item["attempts"]) == (event.id, "parked", 8)
    assert "503" in item["last_error"]

    e.answers = []
    jobs.retry_job(db, ACTOR, db.get(Job, item["id"]))
    run_jobs()
    assert len(e.got) == 9
    assert db.get(Job, item["id"]).status == "done"


def test_deliveries_of_other_kinds_or_workspaces_are_not_found(db, ws, endpoint, client, make_key, make_workspace):
    _, url = endpoint
    hook = hook_account(db, url, ["*"])
    sms = service.create_account(
        db, kind="sms", name="SMS", actor=ACTOR,
        config={"access_key_id": "id", "sign_name": "思域"},
        secrets={"access_key_secret": "s", "push_token": "t" * 16},
    )
    key = make_key(ws)
    assert client.get(f"/api/v1/channel-accounts/{sms.id}/webhook-deliveries",
                      headers=bearer(key)).status_code == 404
    bad = client.get(f"/api/v1/channel-accounts/{hook.id}/webhook-deliveries?status=nope", headers=bearer(key))
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "status")
    other = make_workspace("Other")
    assert client.get(f"/api/v1/channel-accounts/{hook.id}/webhook-deliveries",
                      headers=bearer(make_key(other))).status_code == 404


@given(st.lists(st.sampled_from(["order.*", "order.paid", "contact.merged", "message.*", "*", "x"]), max_size=4),
       st.sampled_from(["order.paid", "order.shipped", "contact.merged", "message.sent", "coupon.used"]))
def test_the_interest_matches_exactly_the_types_some_pattern_covers(patterns, event_type):
    interest = webhook_events.Interest(tuple(patterns))
    expected = any(p == "*" or p == event_type or (p.endswith(".*") and event_type.startswith(p[:-1]))
                   for p in patterns)
    assert (event_type in interest) is expected


def test_bad_event_patterns_are_refused_with_the_field(db, ws):
    for events, field in ((["Order.Paid"], "config.events.0"), ("order.* bad/type", "config.events.1"),
                          ({"a": 1}, "config.events"), ([1], "config.events")):
        with pytest.raises(Invalid) as refused:
            hook_account(db, "https://example.com/hook", events)
        assert refused.value.field == field
