"""Acquisition cost, conversion, revenue, ROI, payback and 30/90-day revenue per source, code and staff."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from siyu.acquisition import metrics, spend
from siyu.contacts import staff as staff_service
from siyu.core import clock
from siyu.core.tenancy import bind_workspace
from tests.acquisition.factories import ACTOR, acquire, make_code, make_source, order

D = date(2026, 5, 1)
# 10:00 in Shanghai on D.
MORNING = datetime(2026, 5, 1, 2, tzinfo=UTC)


@pytest.fixture
def ws(db, make_workspace):
    workspace = make_workspace()
    bind_workspace(db, workspace.id)
    clock.set_clock(lambda: datetime(2026, 10, 1, tzinfo=UTC))
    return workspace


def _one(report):
    assert len(report.rows) == 1
    return report.rows[0]


def test_1000_parcel_cards_a_day_at_0_05_bringing_50_contacts_cost_1_00_each(db, ws):
    cards = make_source(db, cost_model={"kind": "per_unit", "unit_cost": 5, "units_per_day": 1000})
    code = make_code(db, cards)
    for i in range(50):
        acquire(db, cards, MORNING + timedelta(minutes=i), code=code)
    spend.compute_spend(db, start=D, end=D)
    row = _one(metrics.source_metrics(db, start=D, end=D))
    assert (row.spend, row.acquired, row.currency) == (5000, 50, "CNY")
    assert row.cac == Decimal("1.00")


def test_conversion_revenue_roi_and_payback_follow_the_orders(db, ws):
    src = make_source(db)
    spend.put_spend(db, source_id=src.id, day=D, amount=10_000, actor=ACTOR)
    buyer, late_buyer, _idle = (acquire(db, src, MORNING + timedelta(hours=h)) for h in range(3))
    order(db, buyer, 4_000, MORNING + timedelta(days=2))
    order(db, buyer, 3_000, MORNING + timedelta(days=40))
    order(db, late_buyer, 5_000, MORNING + timedelta(days=95))
    order(db, late_buyer, 900, MORNING + timedelta(days=3), currency="USD")
    order(db, _idle, 100_000, MORNING - timedelta(days=1))  # before acquisition: not this source's
    row = _one(metrics.source_metrics(db, start=D, end=D))
    assert (row.acquired, row.converted, row.conversion) == (3, 2, Decimal("0.6667"))
    assert (row.revenue, row.other_revenue) == (12_000, {"USD": 900})
    assert (row.revenue_30d, row.revenue_90d) == (4_000, 7_000)
    assert row.revenue_30d_per_contact == Decimal("13.33")
    assert row.revenue_90d_per_contact == Decimal("23.33")
    assert row.roi == Decimal("0.2000")
    # 4,000 + 3,000 by day 40, + 5,000 on day 95 reaches the 10,000 spent.
    assert row.payback_days == 95


def test_no_spend_means_no_cac_roi_or_payback_and_nobody_acquired_means_no_cac(db, ws):
    src = make_source(db)
    acquire(db, src, MORNING)
    row = _one(metrics.source_metrics(db, start=D, end=D))
    assert (row.spend, row.cac, row.roi, row.payback_days) == (0, Decimal("0.00"), None, None)
    other = make_source(db, "Poster")
    spend.put_spend(db, source_id=other.id, day=D, amount=500, actor=ACTOR)
    rows = {r.key: r for r in metrics.source_metrics(db, start=D, end=D).rows}
    assert rows[other.id].cac is None
    assert rows[other.id].spend == 500


def test_a_contact_is_counted_on_its_first_touchs_local_day(db, ws):
    src = make_source(db)
    # 23:59:59 on Apr 30th and 00:00 on May 1st in Shanghai (UTC+8).
    acquire(db, src, datetime(2026, 4, 30, 15, 59, 59, tzinfo=UTC))
    acquire(db, src, datetime(2026, 4, 30, 16, 0, tzinfo=UTC))
    acquire(db, src, datetime(2026, 5, 1, 15, 59, 59, tzinfo=UTC))
    acquire(db, src, datetime(2026, 5, 1, 16, 0, tzinfo=UTC))
    report = metrics.source_metrics(db, start=date(2026, 4, 30), end=date(2026, 5, 2), bucket="day")
    assert [(r.bucket, r.acquired) for r in report.rows] == [
        (date(2026, 4, 30), 1), (date(2026, 5, 1), 2), (date(2026, 5, 2), 1)]


def test_local_days_hold_across_a_daylight_saving_change(db, make_workspace):
    ws = make_workspace("NY", timezone="America/New_York")
    bind_workspace(db, ws.id)
    clock.set_clock(lambda: datetime(2026, 4, 1, tzinfo=UTC))
    src = make_source(db, currency="USD")
    # Clocks go forward on March 8th 2026: that day has 23 hours (midnight EST is 05:00Z, the next 04:00Z).
    at = [datetime(2026, 3, 8, 4, 59, tzinfo=UTC), datetime(2026, 3, 8, 5, 0, tzinfo=UTC),
          datetime(2026, 3, 9, 3, 59, tzinfo=UTC), datetime(2026, 3, 9, 4, 0, tzinfo=UTC),
          datetime(2026, 3, 10, 3, 59, tzinfo=UTC)]
    for moment in at:
        acquire(db, src, moment, tz="America/New_York")
    report = metrics.source_metrics(db, start=date(2026, 3, 7), end=date(2026, 3, 9), bucket="day")
    assert [(r.bucket, r.acquired) for r in report.rows] == [
        (date(2026, 3, 7), 1), (date(2026, 3, 8), 2), (date(2026, 3, 9), 2)]


def test_weeks_and_months_cut_the_range_in_the_workspaces_calendar(db, ws):
    src = make_source(db)
    for day in (date(2026, 4, 27), date(2026, 5, 3), date(2026, 5, 4), date(2026, 6, 1)):
        spend.put_spend(db, source_id=src.id, day=day, amount=100, actor=ACTOR)
    weekly = metrics.source_metrics(db, start=date(2026, 4, 29), end=date(2026, 6, 1), bucket="week")
    assert [(r.bucket, r.bucket_end, r.spend) for r in weekly.rows] == [
        (date(2026, 4, 29), date(2026, 5, 3), 100), (date(2026, 5, 4), date(2026, 5, 10), 100),
        (date(2026, 6, 1), date(2026, 6, 1), 100)]
    monthly = metrics.source_metrics(db, start=date(2026, 4, 1), end=date(2026, 6, 30), bucket="month")
    assert [(r.bucket, r.spend) for r in monthly.rows] == [
        (date(2026, 4, 1), 100), (date(2026, 5, 1), 200), (date(2026, 6, 1), 100)]


def test_by_code_and_by_staff_share_the_sources_spend_by_who_was_acquired(db, ws):
    src = make_source(db)
    a, b = make_code(db, src, "A"), make_code(db, src, "B")
    alice = staff_service.create_staff(db, name="Alice", actor=ACTOR)
    for i in range(2):
        acquire(db, src, MORNING + timedelta(minutes=i), code=a, staff_id=alice.id)
    acquire(db, src, MORNING, code=b)
    spend.put_spend(db, source_id=src.id, day=D, amount=1000, actor=ACTOR)
    spend.put_spend(db, source_id=src.id, day=D + timedelta(days=1), amount=50, actor=ACTOR)
    by_code = {r.key: r for r in metrics.source_metrics(db, start=D, end=D + timedelta(days=1), by="code",
                                                        bucket="all").rows}
    assert {k: (r.spend, r.acquired) for k, r in by_code.items()} == {a.id: (667, 2), b.id: (333, 1), None: (50, 0)}
    by_staff = {r.key: r for r in metrics.source_metrics(db, start=D, end=D, by="staff").rows}
    assert {k: (r.spend, r.acquired) for k, r in by_staff.items()} == {alice.id: (667, 2), None: (333, 1)}


def test_another_workspaces_contacts_orders_and_spend_are_not_counted(db, ws, make_workspace):
    src = make_source(db)
    other = make_workspace("Other")
    bind_workspace(db, other.id)
    theirs = make_source(db, "Theirs")
    c = acquire(db, theirs, MORNING)
    order(db, c, 999, MORNING + timedelta(hours=1))
    spend.put_spend(db, source_id=theirs.id, day=D, amount=777, actor=ACTOR)
    bind_workspace(db, ws.id)
    assert metrics.source_metrics(db, start=D, end=D).rows == []
    assert [s.id for s, _ in metrics.compare_sources(db, start=D, end=D).rows] == [src.id]


def test_the_comparison_lists_every_source_with_its_currency(db, ws):
    cny = make_source(db, "Cards")
    usd = make_source(db, "Ads", currency="USD")
    spend.put_spend(db, source_id=usd.id, day=D, amount=2000, actor=ACTOR)
    c = acquire(db, usd, MORNING)
    order(db, c, 5000, MORNING + timedelta(days=1), currency="USD")
    order(db, c, 7000, MORNING + timedelta(days=1), currency="CNY")
    rows = {s.name: r for s, r in metrics.compare_sources(db, start=D, end=D).rows}
    assert (rows["Cards"].acquired, rows["Cards"].spend, rows["Cards"].currency) == (0, 0, "CNY")
    assert (rows["Ads"].revenue, rows["Ads"].other_revenue, rows["Ads"].cac) == (5000, {"CNY": 7000}, Decimal("20.00"))
    assert cny.id != usd.id


def test_spend_left_in_a_sources_former_currency_is_not_added_to_the_new_one(db, ws):
    src = make_source(db, currency="USD")
    spend.put_spend(db, source_id=src.id, day=D, amount=700, actor=ACTOR)
    src.currency = "CNY"
    spend.put_spend(db, source_id=src.id, day=D + timedelta(days=1), amount=5000, actor=ACTOR)
    row = _one(metrics.source_metrics(db, start=D, end=D + timedelta(days=1), bucket="all"))
    assert (row.spend, row.currency) == (5000, "CNY")


@pytest.mark.parametrize(("field", "kwargs"), [
    ("end", {"start": D, "end": D - timedelta(days=1)}), ("by", {"start": D, "end": D, "by": "planet"}),
    ("bucket", {"start": D, "end": D, "bucket": "year"}), ("start", {"start": "May", "end": D}),
])
def test_a_bad_range_or_grouping_is_refused(db, ws, field, kwargs):
    from siyu.core.errors import Invalid

    with pytest.raises(Invalid) as refused:
        metrics.source_metrics(db, **kwargs)
    assert refused.value.field == field


# --- properties --------------------------------------------------------------------------------------


@given(spent=st.integers(0, 10**12), acquired=st.integers(1, 10**6), currency=st.sampled_from(["CNY", "JPY", "KWD"]))
def test_cac_times_acquired_is_spend_within_rounding(spent, acquired, currency):
    row = metrics.MetricRow(1, currency, D, D, spend=spent, acquired=acquired)
    cac = row.cac
    assert cac is not None
    digits = {"CNY": 2, "JPY": 0, "KWD": 3}[currency]
    half_unit = Decimal(acquired) / 2
    assert abs(cac.scaleb(digits) * acquired - spent) <= half_unit


@given(amount=st.integers(0, 10**12), weights=st.lists(st.integers(1, 1000), min_size=1, max_size=8))
def test_shared_out_spend_adds_up_exactly(amount, weights):
    shares = metrics.share_out(amount, list(enumerate(weights)))
    assert sum(shares.values()) == amount
    assert all(v >= 0 for v in shares.values())


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=15)
@given(orders=st.lists(st.tuples(st.integers(0, 3), st.integers(0, 10_000), st.sampled_from(["CNY", "USD", "EUR"])),
                       max_size=10))
def test_revenue_is_never_summed_across_currencies(db, ws, orders):
    nested = db.begin_nested()
    src = make_source(db, "Mixed")
    people = [acquire(db, src, MORNING + timedelta(minutes=i)) for i in range(4)]
    for who, amount, currency in orders:
        order(db, people[who], amount, MORNING + timedelta(days=1), currency=currency)
    row = _one(metrics.source_metrics(db, start=D, end=D, bucket="all"))
    assert row.revenue == sum(a for _, a, c in orders if c == "CNY")
    for currency in ("USD", "EUR"):
        assert row.other_revenue.get(currency, 0) == sum(a for _, a, c in orders if c == currency)
    nested.rollback()
