"""Acquisition cost and what the acquired contacts bought: per source, per channel code or per staff
member, over a range of days, by day, week, month or the whole range, in the workspace's timezone.

- acquired: contacts whose first touch (`Attribution.first_*`) is the source, code or staff member,
  counted on the local day of `first_at`;
- spend: the source's figures (`Spend`) of the bucket's days. A code's or staff member's spend is the
  source's spend of each day shared out by the contacts each of them acquired for it that day (whole
  minor units, largest remainder, so the shares add up); a day's spend with nobody acquired stays with
  the row whose key is None ("not allocated");
- CAC = spend / acquired (0.05 × 1,000 cards / 50 contacts = 1.00);
- converted: acquired contacts with at least one `order.paid` at or after their first touch; conversion =
  converted / acquired;
- revenue: the amounts of those orders, up to now, in the source's currency (orders in other currencies
  are in `other_revenue`, per currency, never added in); ROI = (revenue − spend) / spend;
- payback_days: from the bucket's first day to the local day the bucket's cumulative revenue reached its
  spend (0: that same day), None while it hasn't (or when nothing was spent);
- revenue_30d / revenue_90d: orders within 30 / 90 days of each contact's first touch; per contact,
  divided by acquired (contacts acquired less than 30 / 90 days ago are still counted: a young cohort's
  figures grow).

Money stays integer minor units; ratios are computed from them and rounded half-even once, for display
(CAC and revenue per contact to the currency's decimals, rates to 4 decimals). Rows carry their
currency, and rows in different currencies are never added together.

The queries are set-based: one over attributions (acquired and converted per group and local day),
one over attributions joined to their `order.paid` events (revenue per group, cohort day, order day and
currency), one over spend. Local days are computed in SQL from epoch seconds against the UTC instants of
the range's local midnights, so the same code is exact on SQLite and PostgreSQL, across DST changes.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from siyu.acquisition.models import Attribution, ChannelCode, Source, Spend
from siyu.acquisition.spend import _workspace, check_range, days_of, local_today, parse_day, workspace_tz
from siyu.core import clock
from siyu.core.db import is_postgres
from siyu.core.errors import Invalid
from siyu.core.models import Event
from siyu.core.money import minor_units

By = Literal["source", "code", "staff"]
Bucket = Literal["day", "week", "month", "all"]
BY: tuple[str, ...] = ("source", "code", "staff")
BUCKETS: tuple[str, ...] = ("day", "week", "month", "all")
RATE = Decimal("0.0001")
DAY_SECONDS = 86_400


# --- rounding ---------------------------------------------------------------------------------------


def ratio(numerator: int, denominator: int, places: Decimal = RATE) -> Decimal | None:
    """numerator / denominator rounded half-even to `places`; None when the denominator is 0."""
    if denominator == 0:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(places, rounding=ROUND_HALF_EVEN)


def per_head(amount: int, heads: int, currency: str) -> Decimal | None:
    """Minor units shared per head, in major units rounded half-even to the currency's decimals."""
    if heads == 0:
        return None
    digits = minor_units(currency)
    return (Decimal(amount) / Decimal(heads)).scaleb(-digits).quantize(Decimal(1).scaleb(-digits),
                                                                       rounding=ROUND_HALF_EVEN)


# --- local days in SQL ------------------------------------------------------------------------------


def _epoch(session: Session, column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970 of a UTC timestamp column."""
    if is_postgres(session):
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), BigInteger)


def _midnight(day: date, tz: ZoneInfo) -> int:
    return int(datetime.combine(day, time(0), tzinfo=tz).timestamp())


def day_index(session: Session, column: Any, start: date, last: date, tz: ZoneInfo) -> ColumnElement[int]:
    """The local day of `column` as days after `start` (valid for instants from start to the end of last).

    Runs of 24-hour days divide the seconds since the run's first midnight by 86,400; a day of another
    length (a DST change) is a run of its own, matched by the CASE on its bounds."""
    epoch = _epoch(session, column)
    runs: list[tuple[int, int, int, bool]] = []  # (first day's index, its midnight, next run's midnight, uniform)
    days = days_of(start, last)
    bounds = [_midnight(d, tz) for d in [*days, last + timedelta(days=1)]]
    i = 0
    while i < len(days):
        uniform = bounds[i + 1] - bounds[i] == DAY_SECONDS
        j = i + 1
        if uniform:
            while j < len(days) and bounds[j + 1] - bounds[j] == DAY_SECONDS:
                j += 1
        runs.append((i, bounds[i], bounds[j], uniform))
        i = j
    if len(runs) == 1:
        first, midnight, _, _ = runs[0]
        return literal(first) + (epoch - midnight) // DAY_SECONDS
    whens = [
        (epoch < end, literal(first) + (epoch - midnight) // DAY_SECONDS if uniform else literal(first))
        for first, midnight, end, uniform in runs
    ]
    return case(*whens, else_=literal(len(days)))


def utc_bounds(start: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants of start's local midnight and of the midnight after `last`."""
    return (datetime.combine(start, time(0), tzinfo=tz).astimezone(UTC),
            datetime.combine(last + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC))


# --- buckets ----------------------------------------------------------------------------------------


def bucket_start(day: date, bucket: str, start: date) -> date:
    """The first day of `day`'s bucket, clipped to the range's start."""
    if bucket == "day":
        return day
    if bucket == "week":
        first = day - timedelta(days=day.weekday())
    elif bucket == "month":
        first = day.replace(day=1)
    else:
        first = start
    return max(first, start)


def bucket_end(first: date, bucket: str, last: date) -> date:
    """The last day of the bucket starting on `first`, clipped to the range's end."""
    if bucket == "day":
        end = first
    elif bucket == "week":
        end = first + timedelta(days=6 - first.weekday())
    elif bucket == "month":
        end = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    else:
        end = last
    return min(end, last)


# --- the result -------------------------------------------------------------------------------------


@dataclass
class MetricRow:
    """One group (source, code or staff member; None: no code/staff or not allocated) in one bucket."""

    key: int | None
    currency: str
    bucket: date
    bucket_end: date
    spend: int = 0
    acquired: int = 0
    converted: int = 0
    revenue: int = 0
    other_revenue: dict[str, int] = field(default_factory=dict)
    revenue_30d: int = 0
    revenue_90d: int = 0
    payback_days: int | None = None

    @property
    def cac(self) -> Decimal | None:
        """Spend per acquired contact, in major units (None: nobody acquired)."""
        return per_head(self.spend, self.acquired, self.currency)

    @property
    def conversion(self) -> Decimal | None:
        """Share of acquired contacts with a paid order since."""
        return ratio(self.converted, self.acquired)

    @property
    def roi(self) -> Decimal | None:
        """(revenue − spend) / spend (None: nothing spent)."""
        return ratio(self.revenue - self.spend, self.spend)

    @property
    def revenue_per_contact(self) -> Decimal | None:
        """Revenue per acquired contact, in major units."""
        return per_head(self.revenue, self.acquired, self.currency)

    @property
    def revenue_30d_per_contact(self) -> Decimal | None:
        """30-day revenue per acquired contact, in major units."""
        return per_head(self.revenue_30d, self.acquired, self.currency)

    @property
    def revenue_90d_per_contact(self) -> Decimal | None:
        """90-day revenue per acquired contact, in major units."""
        return per_head(self.revenue_90d, self.acquired, self.currency)


@dataclass(frozen=True)
class Report:
    """Rows ordered by key then bucket; the range and how it was cut."""

    by: str
    bucket: str
    start: date
    end: date
    timezone: str
    rows: list[MetricRow]


# --- the queries ------------------------------------------------------------------------------------


def _group_column(by: str) -> Any:
    return {"source": Attribution.first_source_id, "code": Attribution.first_code_id,
            "staff": Attribution.first_staff_id}[by]


def _cohorts(session: Session, by: str, start: date, last: date, tz: ZoneInfo,
             source_ids: Sequence[int] | None) -> list[tuple[int, int | None, int, int, int]]:
    """(source, group, cohort day index, acquired, converted)."""
    lo, hi = utc_bounds(start, last, tz)
    ws = _workspace(session)
    group = _group_column(by)
    day = day_index(session, Attribution.first_at, start, last, tz).label("d")
    in_range = and_(Attribution.workspace_id == ws, Attribution.first_source_id.is_not(None),
                    Attribution.first_at >= lo, Attribution.first_at < hi)
    # Each acquired contact's latest paid order: converted when it is at or after the first touch. One
    # grouped pass over the range's contacts' orders, joined by hash (a correlated EXISTS per contact took
    # four times as long at 100,000 contacts on PostgreSQL, bench/bench_source_metrics.py).
    latest = (
        select(Event.contact_id.label("contact_id"), func.max(Event.occurred_at).label("last_paid"))
        .where(Event.workspace_id == ws, Event.type == "order.paid",
               Event.contact_id.in_(select(Attribution.contact_id).where(in_range)))
        .group_by(Event.contact_id)
        .subquery()
    )
    stmt = (
        select(Attribution.first_source_id, group, day, func.count(),
               func.count(case((latest.c.last_paid >= Attribution.first_at, 1))))
        .outerjoin(latest, latest.c.contact_id == Attribution.contact_id)
        .where(in_range)
        .group_by(Attribution.first_source_id, group, day)
    )
    if source_ids is not None:
        stmt = stmt.where(Attribution.first_source_id.in_(list(source_ids)))
    return [(int(s), None if g is None else int(g), int(d), int(n), int(c or 0))
            for s, g, d, n, c in session.execute(stmt)]


def _revenue(session: Session, by: str, start: date, last: date, tz: ZoneInfo, today: date,
             source_ids: Sequence[int] | None) -> list[tuple[int, int | None, int, int, str, int, int, int]]:
    """(source, group, cohort day index, order day index, currency, amount, within 30 days, within 90)."""
    lo, hi = utc_bounds(start, last, tz)
    ws = _workspace(session)
    group = _group_column(by)
    cohort = day_index(session, Attribution.first_at, start, last, tz).label("d")
    order_day = day_index(session, Event.occurred_at, start, max(last, today), tz).label("od")
    amount = func.coalesce(Event.properties["amount"].as_integer(), 0)
    currency = func.coalesce(Event.properties["currency"].as_string(), "").label("cur")
    age = _epoch(session, Event.occurred_at) - _epoch(session, Attribution.first_at)
    stmt = (
        select(Attribution.first_source_id, group, cohort, order_day, currency, func.sum(amount),
               func.sum(case((age < 30 * DAY_SECONDS, amount), else_=0)),
               func.sum(case((age < 90 * DAY_SECONDS, amount), else_=0)))
        .select_from(Attribution)
        .join(Event, and_(Event.workspace_id == ws, Event.contact_id == Attribution.contact_id,
                          Event.type == "order.paid", Event.occurred_at >= Attribution.first_at))
        .where(Attribution.workspace_id == ws, Attribution.first_source_id.is_not(None),
               Attribution.first_at >= lo, Attribution.first_at < hi)
        .group_by(Attribution.first_source_id, group, cohort, order_day, currency)
    )
    if source_ids is not None:
        stmt = stmt.where(Attribution.first_source_id.in_(list(source_ids)))
    return [(int(s), None if g is None else int(g), int(d), int(od), str(cur), int(a or 0), int(a30 or 0),
             int(a90 or 0)) for s, g, d, od, cur, a, a30, a90 in session.execute(stmt)]


def _spend(session: Session, start: date, last: date, source_ids: Sequence[int] | None) -> dict[tuple[int, date], int]:
    # Figures in another currency than the source's (left from before its currency changed) are not
    # added to it: spend in two currencies is never one number.
    stmt = (select(Spend.source_id, Spend.day, func.sum(Spend.amount))
            .join(Source, Source.id == Spend.source_id)
            .where(Spend.workspace_id == _workspace(session), Spend.day >= start, Spend.day <= last,
                   Spend.currency == Source.currency)
            .group_by(Spend.source_id, Spend.day))
    if source_ids is not None:
        stmt = stmt.where(Spend.source_id.in_(list(source_ids)))
    return {(int(s), d): int(a) for s, d, a in session.execute(stmt)}


def _currencies(session: Session) -> dict[int, str]:
    rows = session.execute(select(Source.id, Source.currency).where(Source.workspace_id == _workspace(session)))
    return {int(i): str(c) for i, c in rows}


def share_out(amount: int, weights: Sequence[tuple[Any, int]]) -> dict[Any, int]:
    """`amount` shared by weight in whole units (largest remainder, ties to the earlier key); sums exactly."""
    total = sum(w for _, w in weights)
    shares = {k: amount * w // total for k, w in weights}
    left = amount - sum(shares.values())
    by_remainder = sorted(weights, key=lambda kw: -(amount * kw[1] % total))
    for k, _ in by_remainder[:left]:
        shares[k] += 1
    return shares


# --- the report -------------------------------------------------------------------------------------


def source_metrics(
    session: Session, *, start: Any, end: Any, by: str = "source", bucket: str = "day",
    source_ids: Sequence[int] | None = None,
) -> Report:
    """Spend, acquired, CAC, conversion, revenue, ROI, payback and 30/90-day revenue per group and bucket."""
    first, last = parse_day(start, field="start"), parse_day(end, field="end")
    check_range(first, last)
    if by not in BY:
        raise Invalid("by is source, code or staff", field="by")
    if bucket not in BUCKETS:
        raise Invalid("the bucket is day, week, month or all", field="bucket")
    tz = workspace_tz(session)
    today = max(local_today(session), first)
    days = days_of(first, last)
    currency_of = _currencies(session)
    rows: dict[tuple[int | None, str, date], MetricRow] = {}

    def row(key: int | None, source_id: int, day: date) -> MetricRow:
        cur = currency_of[source_id]
        b = bucket_start(day, bucket, first)
        found = rows.get((key, cur, b))
        if found is None:
            found = rows[(key, cur, b)] = MetricRow(key, cur, b, bucket_end(b, bucket, last))
        return found

    acquired_by_day: dict[tuple[int, date], list[tuple[int | None, int]]] = defaultdict(list)
    for sid, group, d, n, converted in _cohorts(session, by, first, last, tz, source_ids):
        if sid not in currency_of:
            continue
        target = row(group, sid, days[d])
        target.acquired += n
        target.converted += converted
        acquired_by_day[(sid, days[d])].append((group, n))
    for (sid, day), amount in _spend(session, first, last, source_ids).items():
        if sid not in currency_of:
            continue
        if by == "source":
            row(sid, sid, day).spend += amount
            continue
        weights = sorted(acquired_by_day.get((sid, day), []), key=lambda gw: (gw[0] is None, gw[0] or 0))
        if not weights or amount == 0:
            row(None, sid, day).spend += amount
            continue
        for group, share in share_out(amount, weights).items():
            row(group, sid, day).spend += share
    # Revenue by order day per row, for payback: {(key, cur, bucket): {order day index: amount}}.
    earned: dict[tuple[int | None, str, date], dict[int, int]] = defaultdict(lambda: defaultdict(int))
    for sid, group, d, od, cur, amount, a30, a90 in _revenue(session, by, first, last, tz, today, source_ids):
        if sid not in currency_of:
            continue
        target = row(group, sid, days[d])
        if cur != target.currency:
            target.other_revenue[cur] = target.other_revenue.get(cur, 0) + amount
            continue
        target.revenue += amount
        target.revenue_30d += a30
        target.revenue_90d += a90
        earned[(target.key, target.currency, target.bucket)][od] += amount
    for (key, cur, b), target in rows.items():
        target.payback_days = _payback(target.spend, earned.get((key, cur, b), {}), (b - first).days)
    ordered = sorted(rows.values(), key=lambda r: (r.key is None, r.key or 0, r.currency, r.bucket))
    return Report(by=by, bucket=bucket, start=first, end=last, timezone=tz.key, rows=ordered)


def _payback(spend: int, by_day: dict[int, int], first_index: int) -> int | None:
    """Days from the bucket's first day until cumulative revenue reached spend (None: not yet, or no spend)."""
    if spend <= 0:
        return None
    total = 0
    for index in sorted(by_day):
        total += by_day[index]
        if total >= spend:
            return max(index - first_index, 0)
    return None


@dataclass(frozen=True)
class Comparison:
    """Every source over one range: one row per source (zeros for a source with no data)."""

    start: date
    end: date
    timezone: str
    rows: list[tuple[Source, MetricRow]]


def compare_sources(session: Session, *, start: Any, end: Any, include_archived: bool = False) -> Comparison:
    """CAC, conversion and 30/90-day revenue per contact of every source over the range."""
    report = source_metrics(session, start=start, end=end, by="source", bucket="all")
    by_key = {r.key: r for r in report.rows}
    stmt = select(Source).where(Source.workspace_id == _workspace(session))
    if not include_archived:
        stmt = stmt.where(Source.archived.is_(False))
    sources = list(session.execute(stmt.order_by(Source.name, Source.id)).scalars())
    shown = {s.id for s in sources}
    sources += [s for s in session.execute(select(Source).where(Source.id.in_(
        [k for k in by_key if k is not None and k not in shown]))).scalars()]
    rows = [(s, by_key.get(s.id) or MetricRow(s.id, s.currency, report.start, report.end)) for s in sources]
    return Comparison(start=report.start, end=report.end, timezone=report.timezone, rows=rows)


def code_names(session: Session, ids: Sequence[int]) -> dict[int, str]:
    """Channel code names by id (for labelling rows grouped by code)."""
    if not ids:
        return {}
    rows = session.execute(select(ChannelCode.id, ChannelCode.name).where(ChannelCode.id.in_(list(ids))))
    return {int(i): str(n) for i, n in rows}


def default_range(session: Session, days: int = 30) -> tuple[date, date]:
    """The last `days` local days up to today."""
    today = clock.now().astimezone(workspace_tz(session)).date()
    return today - timedelta(days=days - 1), today


__all__ = [
    "BUCKETS",
    "BY",
    "Comparison",
    "MetricRow",
    "Report",
    "code_names",
    "compare_sources",
    "default_range",
    "per_head",
    "ratio",
    "share_out",
    "source_metrics",
]
