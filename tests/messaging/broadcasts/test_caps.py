"""The cap, quiet-hour and send-time arithmetic, as properties over instants in a DST-free zone
(Asia/Shanghai) and a DST zone (Europe/Madrid)."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from siyu.core.errors import Invalid
from siyu.messaging import caps, send_time

ZONES = st.sampled_from([ZoneInfo("Asia/Shanghai"), ZoneInfo("Europe/Madrid")])
# Instants over several years, so DST changes (last Sundays of March and October in Madrid) are drawn.
INSTANTS = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC))
CLOCKS = st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45]))


@given(at=INSTANTS, tz=ZONES, period=st.sampled_from(caps.PERIODS))
def test_a_period_window_holds_its_instant_and_starts_at_local_midnight(at, tz, period):
    start, end = caps.period_window(at, period, tz)
    assert start <= at < end
    local_start = start.astimezone(tz)
    assert (local_start.hour, local_start.minute) == (0, 0)
    if period == "day":
        assert timedelta(hours=23) <= end - start <= timedelta(hours=25)
    if period == "week":
        assert local_start.weekday() == 0
    if period == "month":
        assert local_start.day == 1


@given(at=INSTANTS, tz=ZONES, offsets=st.lists(st.integers(-40 * 86400, 40 * 86400), max_size=12),
       limit=st.integers(0, 5), period=st.sampled_from(caps.PERIODS))
def test_a_cap_skips_exactly_when_the_period_already_holds_the_limit(at, tz, offsets, limit, period):
    history = [at + timedelta(seconds=s) for s in offsets]
    start, end = caps.period_window(at, period, tz)
    inside = sum(1 for t in history if start <= t < end)
    verdict = caps.cap_verdict(history, at, {period: limit}, tz)
    assert verdict == (f"cap:{period}" if inside >= limit else None)
    # One more message in the past never lets a skipped contact through.
    if verdict is not None:
        assert caps.cap_verdict([*history, at], at, {period: limit}, tz) == verdict


@given(at=INSTANTS, tz=ZONES, start=CLOCKS, end=CLOCKS)
def test_quiet_hours_defer_to_the_first_instant_after_them(at, tz, start, end):
    deferred = caps.after_quiet_hours(at, start, end, tz)
    assert deferred >= at
    assert not caps.is_quiet(deferred, start, end, tz)
    if not caps.is_quiet(at, start, end, tz):
        assert deferred == at
    else:
        assert deferred - at <= timedelta(hours=25)
        # Nothing earlier would have done: a minute before, it was still quiet.
        assert caps.is_quiet(deferred - timedelta(minutes=1), start, end, tz) or deferred - at < timedelta(minutes=1)


def test_quiet_hours_across_midnight_in_shanghai():
    tz = ZoneInfo("Asia/Shanghai")
    ten_pm = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    assert caps.after_quiet_hours(ten_pm, time(21), time(9), tz) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    three_am = datetime(2026, 12, 1, 19, 0, tzinfo=UTC)
    assert caps.after_quiet_hours(three_am, time(21), time(9), tz) == datetime(2026, 12, 2, 1, 0, tzinfo=UTC)


def test_quiet_hours_on_the_night_madrid_puts_its_clocks_back():
    tz = ZoneInfo("Europe/Madrid")
    # 2026-10-25 02:30 UTC is 03:30 CET, after the change at 03:00 CEST; the night ends 09:00 CET = 08:00 UTC.
    night = datetime(2026, 10, 25, 2, 30, tzinfo=UTC)
    assert caps.after_quiet_hours(night, time(21), time(9), tz) == datetime(2026, 10, 25, 8, 0, tzinfo=UTC)


def test_settings_are_checked_by_field():
    with pytest.raises(Invalid) as bad:
        caps.clean_caps({"sms": {"day": -1}})
    assert bad.value.field == "caps.sms.day"
    with pytest.raises(Invalid) as period:
        caps.clean_caps({"sms": {"year": 1}})
    assert period.value.field == "caps.sms.year"
    with pytest.raises(Invalid):
        caps.parse_clock("25:00", "quiet_start")


@given(hours=st.lists(st.integers(0, 23), min_size=1, max_size=30), tz=ZONES, day=INSTANTS)
def test_the_learned_hour_is_in_the_bucket_with_most_engagement(hours, tz, day):
    midnight = datetime.combine(day.astimezone(tz).date(), time(0), tzinfo=tz)
    times = [(midnight + timedelta(hours=h, minutes=30)).astimezone(UTC) for h in hours]
    local_hours = [t.astimezone(tz).hour for t in times]
    learned = send_time.learn(times, tz)
    assert learned is not None
    per_bucket = {b: sum(1 for h in local_hours if send_time.bucket_of(h) == b) for b in send_time.BUCKETS}
    assert per_bucket[learned.bucket] == max(per_bucket.values())
    assert send_time.bucket_of(learned.hour) == learned.bucket
    assert learned.total == len(hours)


@given(start=INSTANTS, tz=ZONES, hour=st.integers(0, 23), window=st.integers(1, 72))
def test_the_planned_time_is_the_hour_within_the_window_or_the_start(start, tz, hour, window):
    at = send_time.next_time(start, window, hour, tz)
    if at is not None:
        assert start <= at <= start + timedelta(hours=window)
        assert at.astimezone(tz).hour == hour or at == start
    elif window >= 25:
        # Every local hour comes within a day, except one skipped by a DST change.
        assert tz.key == "Europe/Madrid"


def test_without_any_history_mornings_win():
    assert send_time.default_preference().bucket == "morning"
    assert send_time.learn([], ZoneInfo("UTC")) is None
