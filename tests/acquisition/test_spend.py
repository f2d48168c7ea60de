"""Spend per source and day: entered, uploaded, computed from the cost model; refused when wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from siyu.acquisition import spend
from siyu.acquisition.models import Spend
from siyu.core import clock
from siyu.core.errors import Invalid, NotFound
from siyu.core.models import AuditEntry, Job
from siyu.core.tenancy import bind_workspace
from tests.acquisition.factories import ACTOR, acquire, make_code, make_source

CARDS = {"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000}
D = date(2026, 5, 1)


@pytest.fixture
def ws(db, make_workspace):
    workspace = make_workspace()
    bind_workspace(db, workspace.id)
    return workspace


def _rows(db):
    return list(db.execute(select(Spend).order_by(Spend.source_id, Spend.day)).scalars())


def test_a_days_spend_is_set_then_replaced_with_before_and_after_in_the_audit_log(db, ws):
    source = make_source(db)
    spend.put_spend(db, source_id=source.id, day="2026-05-01", amount=5000, actor=ACTOR)
    row = spend.put_spend(db, source_id=source.id, day=D, amount=6000, currency="CNY", note="reprint", actor=ACTOR)
    assert [(r.day, r.amount, r.currency, r.origin) for r in _rows(db)] == [(D, 6000, "CNY", "manual")]
    entries = db.execute(select(AuditEntry).where(AuditEntry.action == "acquisition.spend_set")
                         .order_by(AuditEntry.id)).scalars().all()
    assert entries[-1].before["amount"] == 5000
    assert entries[-1].after["amount"] == 6000
    assert entries[-1].entity_id == str(row.id)


def test_spend_in_another_currency_than_the_sources_is_refused_and_nothing_is_stored(db, ws):
    source = make_source(db, currency="CNY")
    with pytest.raises(Invalid) as refused:
        spend.put_spend(db, source_id=source.id, day=D, amount=5000, currency="USD", actor=ACTOR)
    assert refused.value.field == "currency"
    with pytest.raises(Invalid) as negative:
        spend.put_spend(db, source_id=source.id, day=D, amount=-1, actor=ACTOR)
    assert negative.value.field == "amount"
    with pytest.raises(Invalid):
        spend.put_spend(db, source_id=source.id, day=D, amount=1.5, actor=ACTOR)  # type: ignore[arg-type]
    assert _rows(db) == []


def test_units_alone_on_a_per_unit_source_cost_unit_cost_times_units(db, ws):
    source = make_source(db, cost_model=CARDS)
    row = spend.put_spend(db, source_id=source.id, day=D, amount=None, units=1200, actor=ACTOR)
    assert (row.amount, row.units) == (6000, 1200)


def test_another_workspaces_source_is_not_found(db, ws, make_workspace):
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    theirs = make_source(db, "Theirs")
    bind_workspace(db, ws.id)
    with pytest.raises(NotFound):
        spend.put_spend(db, source_id=theirs.id, day=D, amount=1, actor=ACTOR)
    with pytest.raises(NotFound):
        spend.compute_spend(db, start=D, end=D, source_ids=[theirs.id])
    assert spend.list_spend(db, start=D, end=D) == []


def test_the_cost_model_fills_days_nobody_entered_and_keeps_entered_ones(db, ws):
    source = make_source(db, cost_model=CARDS)
    spend.put_spend(db, source_id=source.id, day=D + timedelta(days=1), amount=7000, actor=ACTOR)
    done = spend.compute_spend(db, start=D, end=D + timedelta(days=2), actor=ACTOR)
    assert (done.written, done.kept) == (2, 1)
    assert [(r.amount, r.origin) for r in _rows(db)] == [(5000, "model"), (7000, "manual"), (5000, "model")]
    # A later entry replaces the model's figure; recomputing leaves it.
    spend.put_spend(db, source_id=source.id, day=D, amount=4000, actor=ACTOR)
    spend.compute_spend(db, start=D, end=D + timedelta(days=2))
    assert [r.amount for r in _rows(db)] == [4000, 7000, 5000]


def test_per_period_is_spread_so_a_month_adds_up_to_its_amount(db, ws):
    source = make_source(db, cost_model={"kind": "per_period", "amount": 100_000, "period": "month"})
    spend.compute_spend(db, start=date(2026, 2, 1), end=date(2026, 2, 28))
    rows = _rows(db)
    assert len(rows) == 28
    assert sum(r.amount for r in rows) == 100_000
    assert {r.amount for r in rows} <= {3571, 3572}
    assert source.id == rows[0].source_id


def test_per_acquired_pays_for_the_new_contacts_of_each_day(db, ws):
    source = make_source(db, cost_model={"kind": "per_acquired", "unit_cost": 300})
    code = make_code(db, source)
    for hour in (2, 3, 4):
        acquire(db, source, datetime(2026, 5, 1, hour, tzinfo=UTC), code=code)
    spend.compute_spend(db, start=D, end=D + timedelta(days=1))
    assert [(r.day, r.amount, r.units) for r in _rows(db)] == [(D, 900, 3), (D + timedelta(days=1), 0, 0)]


def test_a_fixed_cost_is_paid_once_on_its_day(db, ws):
    make_source(db, cost_model={"kind": "fixed", "amount": 20_000, "starts_on": "2026-05-02"})
    spend.compute_spend(db, start=D, end=D + timedelta(days=5))
    assert [(r.day, r.amount) for r in _rows(db)] == [(D + timedelta(days=1), 20_000)]


def test_a_source_with_a_broken_cost_model_is_skipped_with_the_reason(db, ws):
    broken = make_source(db, cost_model={"kind": "per_unit"})
    done = spend.compute_spend(db, start=D, end=D)
    assert broken.id in done.skipped
    assert _rows(db) == []


def test_the_daily_job_fills_yesterday_and_queues_tomorrow(db, ws, scope):
    from siyu.core import worker

    make_source(db, cost_model=CARDS)
    clock.set_clock(lambda: datetime(2026, 5, 1, 16, 40, tzinfo=UTC))  # 00:40 on May 2nd in Shanghai
    assert spend.ensure_daily_spend(db)
    job = db.execute(select(Job).where(Job.kind == spend.DAILY)).scalar_one()
    assert job.run_at == datetime(2026, 5, 2, 16, 30, tzinfo=UTC)
    assert job.payload == {"day": "2026-05-02"}
    clock.set_clock(lambda: datetime(2026, 5, 2, 16, 31, tzinfo=UTC))
    db.commit()
    while worker.run_batch(worker_id="t", sessions=scope, batch_size=10, lease_seconds=60, draw=lambda: 0.0):
        pass
    db.expire_all()
    assert [(r.day, r.amount, r.origin) for r in _rows(db)] == [(date(2026, 5, 2), 5000, "model")]
    runs = db.execute(select(Job.run_at).where(Job.kind == spend.DAILY).order_by(Job.run_at)).scalars().all()
    assert runs[-1] == datetime(2026, 5, 3, 16, 30, tzinfo=UTC)


# --- CSV ---------------------------------------------------------------------------------------------


def test_a_csv_file_stores_every_row_in_major_units(db, ws):
    cards = make_source(db, "Parcel cards")
    poster = make_source(db, "Store poster 门店海报", cost_model=CARDS)
    content = (
        "source,day,amount,currency,units,note\n"
        "Parcel cards,2026-05-01,50.00,CNY,1000,May print run\n"
        f"{poster.id},2026-05-01,\"1,250.5\",,,\n"
        "Store poster 门店海报,2026-05-02,,,200,\n"
    ).encode("utf-8-sig")
    done = spend.import_spend_csv(db, content, actor=ACTOR)
    assert (done.written, done.replaced) == (3, 0)
    got = [(r.source_id, r.day, r.amount, r.units, r.origin, r.note) for r in _rows(db)]
    assert got == [(cards.id, D, 5000, 1000, "csv", "May print run"), (poster.id, D, 125050, None, "csv", ""),
                   (poster.id, D + timedelta(days=1), 1000, 200, "csv", "")]


def test_a_csv_file_with_bad_rows_is_refused_whole_with_an_error_per_row(db, ws):
    make_source(db, "Parcel cards")
    make_source(db, "Poster", currency="USD")
    content = (
        b"source,day,amount,currency\n"
        b"Parcel cards,2026-05-01,50.00,CNY\n"
        b"Nowhere,2026-05-01,10,CNY\n"
        b"Parcel cards,2026-13-01,10,CNY\n"
        b"Parcel cards,2026-05-02,-3.00,CNY\n"
        b"Parcel cards,2026-05-03,1.234,CNY\n"
        b"Poster,2026-05-01,3,CNY\n"
        b"Parcel cards,2026-05-01,60,CNY\n"
        b"Parcel cards,2026-05-04,abc,\n"
    )
    with pytest.raises(spend.SpendFileRefused) as refused:
        spend.import_spend_csv(db, content, actor=ACTOR)
    got = [(e.row, e.field, e.code) for e in refused.value.rows]
    assert got == [(3, "source", "unknown_source"), (4, "day", "invalid_day"), (5, "amount", "negative"),
                   (6, "amount", "invalid_amount"), (7, "currency", "wrong_currency"), (8, "day", "duplicate"),
                   (9, "amount", "invalid_amount")]
    assert _rows(db) == []


@pytest.mark.parametrize(("content", "code"), [
    (b"", "empty"), (b"source,day\nA,2026-05-01\n", "missing_columns"),
    (b"source,day,amount,cost\n", "unknown_columns"), (b"source,day,amount\n", "empty"),
])
def test_a_file_that_is_not_a_spend_file_is_refused(db, ws, content, code):
    with pytest.raises(spend.SpendFileRefused) as refused:
        spend.import_spend_csv(db, content, actor=ACTOR)
    assert refused.value.code == code
    assert refused.value.rows == []


# --- properties --------------------------------------------------------------------------------------

models = st.one_of(
    st.fixed_dictionaries({"kind": st.just("per_unit"), "unit_cost": st.integers(0, 10_000),
                           "units_per_day": st.integers(0, 100_000)}),
    st.fixed_dictionaries({"kind": st.just("per_period"), "amount": st.integers(0, 10**9),
                           "period": st.sampled_from(["day", "week", "month"])}),
    st.fixed_dictionaries({"kind": st.just("fixed"), "amount": st.integers(0, 10**9),
                           "starts_on": st.dates(date(2026, 1, 1), date(2026, 12, 31)).map(date.isoformat)}),
)


@given(model=models, start=st.dates(date(2025, 12, 1), date(2027, 1, 31)), length=st.integers(0, 70))
def test_computed_spend_of_a_range_is_the_sum_of_its_days(model, start, length):
    parsed = spend.parse_cost_model(model)
    assert parsed is not None
    end = start + timedelta(days=length)
    total = sum(spend.model_amount(parsed, d)[0] for d in spend.days_of(start, end))
    halves = start + timedelta(days=length // 2)
    first = sum(spend.model_amount(parsed, d)[0] for d in spend.days_of(start, halves))
    rest = sum(spend.model_amount(parsed, d)[0] for d in spend.days_of(halves + timedelta(days=1), end))
    assert total == first + rest
    if parsed.kind == "per_unit":
        assert total == model["unit_cost"] * model["units_per_day"] * (length + 1)


@given(amount=st.integers(0, 10**12), days=st.integers(1, 31))
def test_a_period_spread_adds_up_exactly_and_days_differ_by_at_most_one_unit(amount, days):
    shares = [spend.spread(amount, i, days) for i in range(days)]
    assert sum(shares) == amount
    assert max(shares) - min(shares) <= 1


amounts = st.integers(0, 10**9)


@given(data=st.lists(st.tuples(st.integers(0, 40), amounts, st.sampled_from(["CNY", "JPY", "KWD"])),
                     min_size=1, max_size=12, unique_by=lambda t: t[0]))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_spend_file_round_trips(db, ws, data):
    # Each example in a savepoint of its own, rolled back at its end.
    nested = db.begin_nested()
    sources = {cur: make_source(db, f"src {cur}", currency=cur) for cur in ("CNY", "JPY", "KWD")}
    for offset, amount, cur in data:
        spend.put_spend(db, source_id=sources[cur].id, day=D + timedelta(days=offset), amount=amount,
                        actor=ACTOR, origin="csv")
    before = [(r.source_id, r.day, r.amount, r.currency) for r in _rows(db)]
    exported = spend.export_spend_csv(db, start=D, end=D + timedelta(days=40))
    for row in _rows(db):
        db.delete(row)
    db.flush()
    spend.import_spend_csv(db, exported.encode(), actor=ACTOR)
    assert [(r.source_id, r.day, r.amount, r.currency) for r in _rows(db)] == before
    nested.rollback()


def test_a_source_with_a_cost_model_has_its_nightly_fill_queued(db, ws):
    from siyu.acquisition import service

    service.create_source(db, name="No cost", type="other", currency="CNY", actor=ACTOR)
    assert not db.execute(select(Job).where(Job.kind == spend.DAILY)).scalars().all()
    service.create_source(db, name="Cards", type="parcel_card", currency="CNY", actor=ACTOR,
                          cost_model={"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000})
    assert len(db.execute(select(Job).where(Job.kind == spend.DAILY)).scalars().all()) == 1
