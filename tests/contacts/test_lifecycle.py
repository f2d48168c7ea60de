"""Lifecycle stages and RFM from events: orders net of refunds, activity, quiet time, quintile scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.contacts import lifecycle
from siyu.contacts.models import Contact
from siyu.core import clock, events, jobs
from siyu.core.errors import Invalid
from siyu.core.models import Job
from siyu.core.tenancy import bind_workspace
from tests.contacts.tag_support import ACTOR, add_contacts, events_of

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def ws(make_workspace, db):
    clock.set_clock(clock.FrozenClock(NOW))
    workspace = make_workspace("Tea Shop", currency="CNY", timezone="Asia/Shanghai")
    bind_workspace(db, workspace.id)
    return workspace


def paid(contact_id, order_id, amount, days_ago, currency="CNY"):
    return {"type": "order.paid", "contact_id": contact_id, "idempotency_key": f"paid-{order_id}-{days_ago}",
            "occurred_at": NOW - timedelta(days=days_ago),
            "properties": {"order_id": order_id, "amount": amount, "currency": currency,
                           "items": [{"sku": "TEA", "qty": 1, "price": amount}]}}


def refunded(contact_id, order_id, amount, days_ago):
    return {"type": "order.refunded", "contact_id": contact_id, "idempotency_key": f"refund-{order_id}-{amount}",
            "occurred_at": NOW - timedelta(days=days_ago),
            "properties": {"order_id": order_id, "amount": amount, "currency": "CNY"}}


def visit(contact_id, days_ago, type_="page.viewed"):
    return {"type": type_, "contact_id": contact_id, "occurred_at": NOW - timedelta(days=days_ago),
            "properties": {"path": "/"}}


def contact(db, cid) -> Contact:
    db.expire_all()
    return db.get(Contact, cid)


def test_stages_follow_orders_activity_and_quiet_time(db, ws):
    ids = add_contacts(db, ws.id, 7, created_at=NOW - timedelta(days=10))
    new, engaged, customer, repeat, dormant, churned, refunded_all = ids
    events.record_events(db, [
        visit(engaged, 2), visit(engaged, 1, "tag.added"),
        paid(customer, "c1", 5000, 3),
        paid(repeat, "r1", 5000, 20), paid(repeat, "r2", 7000, 5), refunded(repeat, "r2", 2000, 4),
        paid(dormant, "d1", 9900, 90),
        visit(churned, 200),
        paid(refunded_all, "x1", 5000, 3), refunded(refunded_all, "x1", 5000, 2),
    ])

    done = lifecycle.refresh_lifecycle(db)

    stages = {cid: contact(db, cid).stage for cid in ids}
    assert stages == {new: "new", engaged: "engaged", customer: "customer", repeat: "repeat",
                      dormant: "dormant", churned: "churned", refunded_all: "engaged"}
    r = contact(db, repeat)
    assert (r.order_count, r.revenue) == (2, 10000)
    assert r.first_order_at == NOW - timedelta(days=20)
    assert r.last_order_at == NOW - timedelta(days=5)
    assert r.last_active_at == NOW - timedelta(days=4)
    x = contact(db, refunded_all)
    assert (x.order_count, x.revenue) == (0, 0)
    # A tag put on a contact is not something they did.
    assert contact(db, engaged).last_active_at == NOW - timedelta(days=2)
    changed = {e.contact_id: e.properties for e in events_of(db, "contact.stage_changed")}
    assert changed[repeat] == {"from": "new", "to": "repeat"}
    assert new not in changed
    assert done.stage_changes == 6


def test_a_second_refresh_changes_nothing_and_time_moves_stages(db, ws):
    cid = add_contacts(db, ws.id, 1, created_at=NOW - timedelta(days=10))[0]
    events.record_events(db, [paid(cid, "o1", 5000, 1)])
    lifecycle.refresh_lifecycle(db)

    assert lifecycle.refresh_lifecycle(db).updated == 0
    clock.set_clock(clock.FrozenClock(NOW + timedelta(days=61)))
    lifecycle.refresh_lifecycle(db)

    assert contact(db, cid).stage == "dormant"
    assert [e.properties for e in events_of(db, "contact.stage_changed")] == [
        {"from": "new", "to": "customer"}, {"from": "customer", "to": "dormant"}]


def test_revenue_counts_the_workspace_currency_only(db, ws):
    cid = add_contacts(db, ws.id, 1)[0]
    events.record_events(db, [paid(cid, "o1", 5000, 1), paid(cid, "o2", 700, 1, currency="USD")])
    lifecycle.refresh_lifecycle(db, [cid])
    c = contact(db, cid)
    assert (c.order_count, c.revenue, c.stage) == (2, 5000, "repeat")


def test_rfm_scores_are_quintiles_among_buyers(db, ws):
    ids = add_contacts(db, ws.id, 6)
    browser = ids[5]
    items = [paid(cid, f"o{n}-{k}", 1000 * (n + 1), 50 - 10 * n + k) for n, cid in enumerate(ids[:5])
             for k in range(n + 1)]
    events.record_events(db, [*items, visit(browser, 1)])

    lifecycle.refresh_lifecycle(db)

    scores = [(contact(db, cid).rfm_recency, contact(db, cid).rfm_frequency, contact(db, cid).rfm_monetary)
              for cid in ids]
    assert scores[:5] == [(1, 1, 1), (2, 2, 2), (3, 3, 3), (4, 4, 4), (5, 5, 5)]
    assert scores[5] == (None, None, None)


def test_a_batch_of_orders_refreshes_its_buyers_in_one_job(db, ws):
    a, b, browser = add_contacts(db, ws.id, 3)
    events.record_events(db, [paid(a, "o1", 5000, 0), paid(b, "o2", 3000, 0), paid(a, "o3", 1000, 0),
                              visit(browser, 0)])
    bind_workspace(db, None)
    queued = db.execute(
        select(Job).where(Job.kind == lifecycle.REFRESH, Job.idempotency_key.like("%:orders:%"))
    ).scalars().one()
    assert not db.execute(select(Job).where(Job.kind == events.DISPATCH,
                                            Job.idempotency_key.like("%:contacts.lifecycle"))).all()

    ctx = jobs.JobContext(queued.id, queued.workspace_id, queued.kind, queued.idempotency_key, 1, queued.payload)
    jobs.handler_for(lifecycle.REFRESH).fn(db, ctx)

    assert queued.payload == {"contact_ids": sorted([a, b])}
    assert (contact(db, a).stage, contact(db, a).order_count) == ("repeat", 2)
    assert (contact(db, b).stage, contact(db, b).order_count) == ("customer", 1)
    assert contact(db, browser).order_count == 0


def test_the_daily_job_refreshes_everyone_and_queues_tomorrow(db, ws):
    cid = add_contacts(db, ws.id, 1, created_at=NOW - timedelta(days=100))[0]
    bind_workspace(db, None)
    ctx = jobs.JobContext(1, ws.id, lifecycle.REFRESH, f"{ws.id}:2026-12-01", 1, {"daily": True})

    result = jobs.handler_for(lifecycle.REFRESH).fn(db, ctx)

    assert result == {"contacts": 1, "updated": 1, "stage_changes": 1}
    assert contact(db, cid).stage == "dormant"
    bind_workspace(db, None)
    assert db.execute(select(Job.idempotency_key).where(Job.kind == lifecycle.REFRESH)).scalars().all() == [
        f"{ws.id}:2026-12-02"]


def test_rules_are_validated_and_saved(db, ws):
    with pytest.raises(Invalid) as order:
        lifecycle.update_rules(db, {"dormant_days": 200}, actor=ACTOR)
    with pytest.raises(Invalid) as unknown:
        lifecycle.update_rules(db, {"vip_days": 3}, actor=ACTOR)
    with pytest.raises(Invalid) as zero:
        lifecycle.update_rules(db, {"customer_orders": 0}, actor=ACTOR)

    saved = lifecycle.update_rules(db, {"dormant_days": 30, "churned_days": 90}, actor=ACTOR)

    assert (order.value.field, unknown.value.field, zero.value.field) == ("churned_days", "vip_days", "customer_orders")
    assert saved == {**lifecycle.DEFAULT_RULES, "dormant_days": 30, "churned_days": 90}
    assert lifecycle.get_rules(db) == saved


# --- the stage function -----------------------------------------------------------------------------

rules_st = st.builds(
    lambda c, r, d, ch: {"customer_orders": c, "repeat_orders": c + r, "dormant_days": d, "churned_days": d + ch},
    st.integers(1, 5), st.integers(1, 5), st.integers(1, 400), st.integers(1, 400),
)
RANK = {s: i for i, s in enumerate(lifecycle.STAGES)}


@given(rules=rules_st, orders=st.integers(0, 20), active_days_ago=st.one_of(st.none(), st.integers(0, 1000)),
       age=st.integers(0, 1000), later=st.integers(0, 1000))
def test_time_only_moves_a_contact_towards_churn(rules, orders, active_days_ago, age, later):
    created = NOW - timedelta(days=max(age, active_days_ago or 0))
    active = None if active_days_ago is None else NOW - timedelta(days=active_days_ago)
    kwargs = {"order_count": orders, "last_active_at": active, "created_at": created, "rules": rules}
    before = lifecycle.stage_for(now=NOW, **kwargs)
    after = lifecycle.stage_for(now=NOW + timedelta(days=later), **kwargs)

    assert before in lifecycle.STAGES
    quiet = {"dormant": 1, "churned": 2}
    assert quiet.get(after, 0) >= quiet.get(before, 0)
    if before == "churned":
        assert after == "churned"


@given(rules=rules_st, orders=st.integers(0, 20), more=st.integers(0, 5), days_ago=st.integers(0, 1000))
def test_more_orders_never_lower_a_stage_and_quiet_time_decides_first(rules, orders, more, days_ago):
    active = NOW - timedelta(days=days_ago)
    one = lifecycle.stage_for(order_count=orders, last_active_at=active, created_at=active, now=NOW, rules=rules)
    two = lifecycle.stage_for(order_count=orders + more, last_active_at=active, created_at=active, now=NOW, rules=rules)

    if days_ago >= rules["churned_days"]:
        assert one == two == "churned"
    elif days_ago >= rules["dormant_days"]:
        assert one == two == "dormant"
    else:
        assert RANK[two] >= RANK[one]
        assert (one == "repeat") == (orders >= rules["repeat_orders"])
        assert one != "new"


# --- merges and the daily schedule ------------------------------------------------------------------


def run_dispatches(db, subscriber: str) -> int:
    """Run the pending dispatch jobs of one subscriber as the worker would; how many ran."""
    bind_workspace(db, None)
    pending = db.execute(
        select(Job).where(Job.kind == events.DISPATCH, Job.status == "pending",
                          Job.idempotency_key.like(f"%:{subscriber}"))
    ).scalars().all()
    for job in pending:
        ctx = jobs.JobContext(job.id, job.workspace_id, job.kind, job.idempotency_key, 1, job.payload)
        events.dispatch_event(db, ctx)
        job.status = "done"
    db.flush()
    return len(pending)


def test_a_merged_keeper_is_recomputed_from_its_events_not_added_up(db, ws):
    from siyu.contacts import service

    keeper_id, merged_id = add_contacts(db, ws.id, 2, created_at=NOW - timedelta(days=10))
    # The same order paid under one contact and refunded under the other: one person, no order left.
    events.record_events(db, [paid(keeper_id, "o1", 5000, 5), paid(merged_id, "o2", 3000, 4),
                              refunded(merged_id, "o1", 5000, 3)])
    lifecycle.refresh_lifecycle(db)
    keeper, merged = contact(db, keeper_id), contact(db, merged_id)
    assert (keeper.order_count, keeper.revenue, merged.order_count, merged.revenue) == (1, 5000, 1, 0)

    service.merge_contacts(db, keeper, merged, actor=ACTOR, automatic=False)
    bind_workspace(db, ws.id)
    expected = lifecycle.contact_metrics(db, [keeper_id])[keeper_id]
    ran = run_dispatches(db, "contacts.lifecycle_merge")

    after = contact(db, keeper_id)
    assert ran == 1
    assert (expected.order_count, expected.revenue) == (1, 3000)
    assert (after.order_count, after.revenue, after.stage) == (1, 3000, "customer")
    assert after.last_order_at == NOW - timedelta(days=4)
    assert after.rfm_frequency is not None


def test_the_first_contact_starts_the_daily_refresh_and_time_alone_moves_stages(db, ws):
    from siyu.contacts import service

    cid = service.create_contact(db, fields={"name": "Quiet"}, actor=ACTOR).id
    service.create_contact(db, fields={"name": "Second"}, actor=ACTOR)
    bind_workspace(db, None)
    (daily,) = db.execute(select(Job).where(Job.kind == lifecycle.REFRESH)).scalars().all()
    assert (daily.idempotency_key, daily.run_at) == (f"{ws.id}:2026-12-02", datetime(2026, 12, 1, 19, 0, tzinfo=UTC))

    # No order ever: 61 days later the daily run finds the contact dormant and queues the next day.
    clock.set_clock(clock.FrozenClock(NOW + timedelta(days=61)))
    ctx = jobs.JobContext(daily.id, ws.id, daily.kind, daily.idempotency_key, 1, daily.payload)
    jobs.handler_for(lifecycle.REFRESH).fn(db, ctx)

    assert contact(db, cid).stage == "dormant"
    bind_workspace(db, None)
    keys = db.execute(select(Job.idempotency_key).where(Job.kind == lifecycle.REFRESH)).scalars().all()
    assert sorted(keys) == [f"{ws.id}:2026-12-02", f"{ws.id}:2027-02-01"]


def test_contacts_created_from_events_start_the_daily_refresh_too(db, ws):
    events.record_events(db, [{"type": "page.viewed", "identity": {"type": "phone", "value": "13800000001"}}])
    bind_workspace(db, None)
    assert db.execute(select(Job.idempotency_key).where(Job.kind == lifecycle.REFRESH)).scalars().all() == [
        f"{ws.id}:2026-12-02"]
