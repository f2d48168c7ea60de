"""record_event(s): the one way modules record facts; schemas, resolvers, subscribers, batch arithmetic."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AwareDatetime, StrictStr
from sqlalchemy import func, select

from siyu.core import clock, events, jobs
from siyu.core.errors import Invalid, TenancyViolation
from siyu.core.event_schemas import _SCHEMAS, EventProperties, register_event_schema
from siyu.core.events import PersonError, PersonRef, record_event, record_events, record_events_json
from siyu.core.models import Event, Job
from siyu.core.tenancy import bind_workspace

# The kernel's contract, without the contacts module's resolver (tests/contacts covers that one).
pytestmark = pytest.mark.usefixtures("without_person_resolver")


@pytest.fixture
def ws(make_workspace, db):
    workspace = make_workspace()
    bind_workspace(db, workspace.id)
    return workspace


@pytest.fixture
def resolver() -> Iterator[None]:
    """A test resolver: phones starting +86 map to contact 42, contact ids above 1000 belong to others."""

    def resolve(_session, refs: list[PersonRef]) -> list[int | PersonError | None]:
        answers: list[int | PersonError | None] = []
        for ref in refs:
            if ref.contact_id is not None and ref.contact_id > 1000:
                answers.append(
                    PersonError("unknown_contact", "no such contact in this workspace", "contact_id")
                )
            elif ref.identity_type == "phone" and (ref.identity_value or "").startswith("+86"):
                answers.append(42)
            else:
                answers.append(ref.contact_id)
        return answers

    previous = events._resolver
    events.register_person_resolver(resolve)
    yield
    events.register_person_resolver(previous)


def count(db, model=Event) -> int:
    return db.execute(select(func.count()).select_from(model)).scalar_one()


def test_record_event_stores_once_and_reads_back_exactly(db, ws):
    at = datetime(2026, 3, 1, 10, 0, 0, tzinfo=UTC)

    event = record_event(
        db,
        type="coupon.redeemed",
        properties={"code": "TEA", "at": at},
        contact_id=3,
        occurred_at=at,
        idempotency_key="c-1",
    )
    again = record_event(db, type="coupon.redeemed", properties={}, idempotency_key="c-1")

    assert event is not None
    assert again is None
    db.expire_all()
    loaded = db.execute(select(Event).where(Event.occurred_at == at)).scalar_one()
    assert loaded.id == event.id
    assert loaded.occurred_at == at
    assert loaded.properties == {"code": "TEA", "at": "2026-03-01T10:00:00Z"}
    assert loaded.source == "module"
    assert loaded.workspace_id == ws.id


def test_occurred_at_defaults_to_the_clock(db, ws):
    frozen = clock.FrozenClock(datetime(2026, 5, 4, 3, 2, 1, 123456, tzinfo=UTC))
    clock.set_clock(frozen)

    event = record_event(db, type="contact.created", properties={})

    assert event is not None
    db.expire_all()
    assert db.get(Event, event.id).occurred_at == frozen.current
    assert db.get(Event, event.id).received_at == frozen.current


def test_record_event_refuses_bad_facts_with_the_field(db, ws):
    with pytest.raises(Invalid) as bad:
        record_event(
            db,
            type="order.refunded",
            properties={"order_id": "o", "amount": 0, "currency": "CNY"},
            idempotency_key="r-1",
        )
    with pytest.raises(Invalid) as future:
        record_event(db, type="x.y", properties={}, occurred_at=clock.now() + timedelta(days=1))

    assert bad.value.field == "properties.amount"
    assert future.value.field == "occurred_at"
    assert count(db) == 0


def test_an_unbound_session_may_not_record(db, ws):
    bind_workspace(db, None)
    with pytest.raises(TenancyViolation):
        record_event(db, type="x.y", properties={})


def test_later_modules_register_schemas(db, ws):
    class LotteryDrawn(EventProperties):
        prize: StrictStr

    register_event_schema("lottery.drawn", LotteryDrawn)
    try:
        result = record_events(
            db,
            [
                {"type": "lottery.drawn", "properties": {"prize": "tea"}},
                {"type": "lottery.drawn", "properties": {"prize": 5}},
            ],
        )
    finally:
        _SCHEMAS.pop("lottery.drawn")

    assert result.accepted == 1
    assert [(e.index, e.field) for e in result.errors] == [(1, "properties.prize")]


def test_a_known_type_stores_its_properties_as_the_model_dumps_them(db, ws):
    class Delivered(EventProperties):
        at: AwareDatetime
        by: StrictStr = "courier"

    register_event_schema("parcel.delivered", Delivered)
    try:
        body = {"events": [{"type": "parcel.delivered", "properties": {"at": "2026-03-01T10:00:00+08:00"}}]}
        result = record_events_json(db, json.dumps(body).encode())
    finally:
        _SCHEMAS.pop("parcel.delivered")

    stored = db.get(Event, result.event_ids[0])
    assert stored is not None
    assert stored.properties == Delivered(at="2026-03-01T10:00:00+08:00").model_dump(mode="json")
    assert stored.properties == {"at": "2026-03-01T10:00:00+08:00", "by": "courier"}


def test_order_amount_may_differ_from_the_items(db, ws):
    # Shipping and discounts make the charged amount differ from the items: that is still a valid order.
    props = {
        "order_id": "o",
        "amount": 1000,
        "currency": "JPY",
        "items": [{"sku": "a", "qty": 3, "price": 500}],
    }
    assert record_event(db, type="order.paid", properties=props, idempotency_key="o") is not None


def test_resolver_maps_identities_and_refuses_foreign_contacts(db, ws, resolver):
    result = record_events(
        db,
        [
            {"type": "message.read", "identity": {"type": "phone", "value": "+8613800000000"}},
            {"type": "message.read", "contact_id": 5000},
            {"type": "message.read", "identity": {"type": "email", "value": "a@example.com"}},
            {"type": "message.read"},
        ],
    )

    assert result.accepted == 3
    assert [(e.index, e.code, e.field) for e in result.errors] == [(1, "unknown_contact", "contact_id")]
    rows = {e.id: e for e in db.execute(select(Event)).scalars()}
    phone = rows[result.event_ids[0]]
    assert (phone.contact_id, phone.identity_type, phone.identity_value) == (42, "phone", "+8613800000000")
    email = rows[result.event_ids[2]]
    assert (email.contact_id, email.identity_value) == (None, "a@example.com")


def test_subscribers_get_one_job_per_matching_event_and_run_once(db, ws):
    seen: list[tuple[str, int]] = []
    events.on_event("order.*", "test.orders")(lambda _s, e: seen.append((e.type, e.id)))
    try:
        result = record_events(
            db,
            [
                {
                    "type": "order.refunded",
                    "idempotency_key": "r",
                    "properties": {"order_id": "o", "amount": 5, "currency": "CNY"},
                },
                {"type": "page.viewed"},
            ],
        )
        bind_workspace(db, None)
        queued = db.execute(select(Job).where(Job.kind == events.DISPATCH)).scalars().all()
        assert len(queued) == 1
        job = queued[0]
        assert job.workspace_id == ws.id
        assert job.idempotency_key == f"{result.event_ids[0]}:test.orders"

        ctx = jobs.JobContext(
            job_id=job.id,
            workspace_id=job.workspace_id,
            kind=job.kind,
            idempotency_key=job.idempotency_key,
            attempt=1,
            payload=job.payload,
        )
        assert jobs.handler_for(events.DISPATCH) is not None
        outcome = jobs.handler_for(events.DISPATCH).fn(db, ctx)
    finally:
        events.remove_subscriber("test.orders")

    assert seen == [("order.refunded", result.event_ids[0])]
    assert outcome == {"subscriber": "test.orders", "event_id": result.event_ids[0]}
    # A subscriber gone from the code owes nothing to the events queued for it.
    assert events.dispatch_event(db, ctx) == {"skipped": "no subscriber named 'test.orders' in this process"}


def test_a_big_batch_without_subscribers_queues_no_jobs(db, ws):
    events.on_event("lottery.*", "test.lottery")(lambda _s, _e: None)
    try:
        result = record_events(db, [{"type": "page.viewed", "properties": {"i": i}} for i in range(1000)])
    finally:
        events.remove_subscriber("test.lottery")

    assert result.accepted == 1000
    bind_workspace(db, None)
    assert count(db, Job) == 0


def test_batches_in_one_transaction_each_store_only_their_own_events(db, make_workspace):
    # On PostgreSQL a batch with a known key passes through a staging table that lives as long as the
    # connection: a second such batch in the same transaction, for another workspace, must not carry
    # the first one's rows along.
    first, second = make_workspace(), make_workspace()
    outcomes = []
    for workspace, keys in ((first, "ab"), (second, "cd")):
        bind_workspace(db, workspace.id)
        record_events(db, [{"type": "page.viewed", "idempotency_key": keys[0]}])
        result = record_events(db, [{"type": "page.viewed", "idempotency_key": k} for k in keys])
        outcomes.append((result.accepted, result.duplicates, sorted(db.scalars(select(Event.idempotency_key)))))

    assert outcomes == [(1, 1, ["a", "b"]), (1, 1, ["c", "d"])]


# --- batch arithmetic ---------------------------------------------------------------------------------

_PAID = {"order_id": "o", "amount": 100, "currency": "CNY", "items": [{"sku": "a", "qty": 1, "price": 100}]}
valid_items = st.one_of(
    st.builds(
        lambda k: {"type": "order.paid", "idempotency_key": k, "properties": _PAID}, st.sampled_from("abcdef")
    ),
    st.builds(lambda k: {"type": "page.viewed", "idempotency_key": k}, st.sampled_from("abcdefgh")),
    st.just({"type": "page.viewed", "properties": {"free": [1, "x", None]}}),
)
invalid_items = st.one_of(
    st.just({"type": "order.paid", "idempotency_key": "z", "properties": {**_PAID, "amount": -1}}),
    st.just({"type": "order.paid", "properties": _PAID}),
    st.just({"type": "BAD"}),
    st.just({"type": "a.b", "unknown": 1}),
    st.just({"type": "a.b", "contact_id": "7"}),
    st.just({"type": "a.b", "identity": {"type": "phone"}}),
    st.integers(),
    st.none(),
)


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(st.lists(st.one_of(valid_items, invalid_items), min_size=1, max_size=30))
def test_every_item_is_accepted_duplicate_or_refused(db, ws, items):
    savepoint = db.begin_nested()
    try:
        first = record_events(db, items)
        assert first.accepted + first.duplicates + len(first.errors) == len(items)
        assert len({e.index for e in first.errors}) == len(first.errors)
        assert count(db) == first.accepted

        # Sent again, only the items without a key (each given a fresh one) are stored again.
        second = record_events(db, items)
        keyless = sum(
            1
            for i, item in enumerate(items)
            if i not in {e.index for e in first.errors} and "idempotency_key" not in item
        )
        assert second.accepted == keyless
        assert second.accepted + second.duplicates + len(second.errors) == len(items)
        assert count(db) == first.accepted + second.accepted
    finally:
        savepoint.rollback()


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=40)
@given(st.lists(st.one_of(valid_items, invalid_items), min_size=1, max_size=30))
def test_the_json_fast_path_agrees_with_the_item_path(db, ws, items):
    body = json.dumps({"events": items}).encode()
    outcomes = []
    for record in (lambda: record_events(db, items), lambda: record_events_json(db, body)):
        savepoint = db.begin_nested()
        try:
            result = record()
            outcomes.append((result.accepted, result.duplicates, result.errors, sorted(result.event_ids)))
        finally:
            savepoint.rollback()
    assert outcomes[0] == outcomes[1]
